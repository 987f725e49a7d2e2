// dbactor::connection: the actor-side view of the SQLite connection that requests run against.
#pragma once

#include <dbactor/detail/value_codec.hpp>
#include <dbactor/error.hpp>

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <SQLiteCpp/Database.h>

struct sqlite3;
struct sqlite3_stmt;

namespace dbactor {

namespace detail {

class statement_cache;
class change_log;
struct session;

/// Resets the statement and clears its bindings when the scope ends, so a cached SELECT never pins a read
/// snapshot (which would stop WAL checkpoints) and bound buffers are never referenced later.
/// A statement from connection::prepare: the cached one, or (when the cached one is still in use by an
/// enclosing query, e.g. the same SQL run again inside for_each) a fresh one owned by its user.
struct prepared
{
    sqlite3_stmt* stmt;
    bool owned;
};

class statement_use
{
public:
    explicit statement_use(prepared p) noexcept : s_(p.stmt), owned_(p.owned) {}
    statement_use(const statement_use&) = delete;
    statement_use& operator=(const statement_use&) = delete;
    ~statement_use();
    sqlite3_stmt* get() const noexcept { return s_; }
    /// Steps once: true on a row, false when done. Throws SQLite::Exception on error.
    bool step();

private:
    sqlite3_stmt* s_;
    bool owned_;
};

} // namespace detail

/// The actor-side view of the connection, handed to every request as `connection&`.
///
/// Thread safety: use it only inside the request it was handed to, on the actor thread; never keep it.
/// Errors: SQLite failures throw SQLite::Exception with the extended result code; value conversions
/// throw dbactor::error (errc::value_out_of_range, errc::unexpected_null).
/// Statements are prepared once per SQL text and cached for the connection's life; each is reset as soon
/// as its call returns.
class connection
{
public:
    /// Runs one statement with `args` bound to its `?` parameters in order; returns the rows it changed.
    template <class... Args>
    std::int64_t execute(std::string_view sql, const Args&... args)
    {
        detail::statement_use st(prepare(sql, sizeof...(Args)));
        bind_all(st.get(), args...);
        while (st.step()) {
        }
        return changes();
    }

    /// The first row of a query as T; std::nullopt when there is no row.
    ///
    /// T is a scalar (the first column), a std::tuple (the first columns, one per element), or an
    /// aggregate struct: its fields take the columns by position (Boost.PFR), a std::optional field takes
    /// NULL. Errors: a struct whose field count differs from the column count, a NULL in a non-optional
    /// field or element, and a value that does not fit throw dbactor::error (errc::value_out_of_range,
    /// errc::unexpected_null).
    template <class T, class... Args>
    std::optional<T> query_one(std::string_view sql, const Args&... args)
    {
        detail::statement_use st(prepare(sql, sizeof...(Args)));
        bind_all(st.get(), args...);
        if (!st.step())
            return std::nullopt;
        return detail::read_row<T>(st.get());
    }

    /// Every row of a query as T (a scalar, a std::tuple or an aggregate struct, as for query_one).
    template <class T, class... Args>
    std::vector<T> query(std::string_view sql, const Args&... args)
    {
        detail::statement_use st(prepare(sql, sizeof...(Args)));
        bind_all(st.get(), args...);
        std::vector<T> rows;
        while (st.step())
            rows.push_back(detail::read_row<T>(st.get()));
        return rows;
    }

    /// Calls `fn(row)` for each row, where row is T (as for query_one), without collecting them.
    template <class T, class Fn, class... Args>
    void for_each(std::string_view sql, Fn&& fn, const Args&... args)
    {
        detail::statement_use st(prepare(sql, sizeof...(Args)));
        bind_all(st.get(), args...);
        while (st.step())
            fn(detail::read_row<T>(st.get()));
    }

    /// Runs a script of several statements, without parameters and without caching.
    void exec(std::string_view script);

    /// The rowid of the most recent successful INSERT on this connection.
    std::int64_t last_insert_rowid() const noexcept;

    /// Rows changed by the most recent INSERT, UPDATE or DELETE.
    std::int64_t changes() const noexcept;

    /// Runs `fn(*this)` as a nested unit inside SAVEPOINT … RELEASE. If fn throws, only its changes are
    /// rolled back and the exception propagates.
    template <class Fn>
    auto savepoint(Fn&& fn) -> std::invoke_result_t<Fn&, connection&>
    {
        const int depth = begin_savepoint();
        try {
            if constexpr (std::is_void_v<std::invoke_result_t<Fn&, connection&>>) {
                fn(*this);
                end_savepoint(depth, true);
            }
            else {
                auto r = fn(*this);
                end_savepoint(depth, true);
                return r;
            }
        }
        catch (...) {
            end_savepoint(depth, false);
            throw;
        }
    }

    /// The underlying SQLiteCpp connection, for what this class does not offer. Statements created from it
    /// must be destroyed before the request returns.
    SQLite::Database& sqlite() noexcept { return *db_; }

    /// The raw handle, for the C API.
    sqlite3* handle() const noexcept;

    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;

    /// Used by the actor: wraps an open SQLiteCpp database.
    explicit connection(SQLite::Database& db);
    ~connection();

    /// Finalizes every cached statement (before the connection closes).
    void clear_cache() noexcept;
    /// Cached statements now.
    std::size_t cached_statements() const noexcept;

private:
    detail::prepared prepare(std::string_view sql, int args);
    int begin_savepoint();
    void end_savepoint(int depth, bool release);

    template <class... Args>
    static void bind_all([[maybe_unused]] sqlite3_stmt* s, const Args&... args)
    {
        [[maybe_unused]] int i = 0;
        (detail::bind_one(s, ++i, args), ...);
    }

    friend struct detail::session;

    SQLite::Database* db_;
    std::unique_ptr<detail::statement_cache> cache_;
    int savepoint_depth_ = 0;
    detail::change_log* changes_ = nullptr; // the writer's: savepoints keep the change feed's levels
};

} // namespace dbactor
