#include <dbactor/connection.hpp>

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Exception.h>
#include <fmt/format.h>
#include <sqlite3.h>

#include <string>
#include <unordered_map>

namespace dbactor {
namespace detail {

namespace {

[[noreturn]] void throw_sqlite(sqlite3* db, int rc)
{
    throw SQLite::Exception(db, rc);
}

void check_bind(sqlite3_stmt* s, int rc)
{
    if (rc != SQLITE_OK)
        throw_sqlite(sqlite3_db_handle(s), rc);
}

std::string sql_excerpt(sqlite3_stmt* s)
{
    std::string_view sql = sqlite3_sql(s) ? sqlite3_sql(s) : "";
    if (sql.size() > 80)
        return std::string(sql.substr(0, 77)) + "...";
    return std::string(sql);
}

[[noreturn]] void throw_parameter_count(std::string_view sql, int wanted, int given)
{
    throw SQLite::Exception(
        fmt::format("\"{}\" has {} parameter(s), but {} value(s) were given.", sql, wanted, given),
        SQLITE_RANGE);
}

struct string_hash
{
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

} // namespace

void bind_null(sqlite3_stmt* s, int index)
{
    check_bind(s, sqlite3_bind_null(s, index));
}
void bind_int64(sqlite3_stmt* s, int index, std::int64_t v)
{
    check_bind(s, sqlite3_bind_int64(s, index, v));
}
void bind_double(sqlite3_stmt* s, int index, double v)
{
    check_bind(s, sqlite3_bind_double(s, index, v));
}
void bind_text(sqlite3_stmt* s, int index, std::string_view v)
{
    // SQLITE_STATIC: the value outlives the statement's use (statement_use clears bindings on scope exit).
    check_bind(s, sqlite3_bind_text64(s, index, v.data(), v.size(), SQLITE_STATIC, SQLITE_UTF8));
}
void bind_blob(sqlite3_stmt* s, int index, const void* data, std::size_t size)
{
    if (size == 0)
        check_bind(s, sqlite3_bind_zeroblob(s, index, 0));
    else
        check_bind(s, sqlite3_bind_blob64(s, index, data, size, SQLITE_STATIC));
}
bool column_is_null(sqlite3_stmt* s, int index) noexcept
{
    return sqlite3_column_type(s, index) == SQLITE_NULL;
}
std::int64_t column_int64(sqlite3_stmt* s, int index) noexcept
{
    return sqlite3_column_int64(s, index);
}
double column_double(sqlite3_stmt* s, int index) noexcept
{
    return sqlite3_column_double(s, index);
}
std::string_view column_text(sqlite3_stmt* s, int index) noexcept
{
    auto p = reinterpret_cast<const char*>(sqlite3_column_text(s, index));
    return p ? std::string_view(p, static_cast<std::size_t>(sqlite3_column_bytes(s, index)))
             : std::string_view();
}
std::span<const std::byte> column_blob(sqlite3_stmt* s, int index) noexcept
{
    auto p = static_cast<const std::byte*>(sqlite3_column_blob(s, index));
    return p ? std::span<const std::byte>(p, static_cast<std::size_t>(sqlite3_column_bytes(s, index)))
             : std::span<const std::byte>();
}
int column_count(sqlite3_stmt* s) noexcept
{
    return sqlite3_column_count(s);
}

void throw_out_of_range(sqlite3_stmt* s, int index, std::string_view what)
{
    throw error(errc::value_out_of_range,
                fmt::format("Value {} of \"{}\": {}. Store such values as TEXT or BLOB, or use a signed "
                            "type.",
                            index,
                            sql_excerpt(s),
                            what));
}

void throw_unexpected_null(sqlite3_stmt* s, int index)
{
    const char* name = sqlite3_column_name(s, index);
    throw error(errc::unexpected_null,
                fmt::format("Column {} ('{}') of \"{}\" is NULL, but it is read into a type that cannot hold "
                            "NULL. Read it as std::optional<T>, or add NOT NULL / COALESCE in SQL.",
                            index,
                            name ? name : "?",
                            sql_excerpt(s)));
}

void throw_column_count(sqlite3_stmt* s, int wanted)
{
    throw error(errc::value_out_of_range,
                fmt::format("\"{}\" returns {} column(s), but {} are read. Select as many columns as the "
                            "tuple has elements.",
                            sql_excerpt(s),
                            sqlite3_column_count(s),
                            wanted));
}

statement_use::~statement_use()
{
    if (owned_) {
        sqlite3_finalize(s_);
        return;
    }
    // No sqlite3_clear_bindings: prepare() checks on every use that all parameters are bound again, so a
    // value bound by an earlier request (SQLITE_STATIC, into memory that is gone) is never read.
    sqlite3_reset(s_);
}

bool statement_use::step()
{
    const int rc = sqlite3_step(s_);
    if (rc == SQLITE_ROW)
        return true;
    if (rc == SQLITE_DONE)
        return false;
    // sqlite3_step's own code may be the generic one; the connection's extended code is more precise.
    sqlite3* db = sqlite3_db_handle(s_);
    throw SQLite::Exception(db, sqlite3_extended_errcode(db) ? sqlite3_extended_errcode(db) : rc);
}

class statement_cache
{
public:
    ~statement_cache() { clear(); }
    void clear() noexcept
    {
        for (auto& [sql, s] : map_)
            sqlite3_finalize(s);
        map_.clear();
    }
    std::unordered_map<std::string, sqlite3_stmt*, string_hash, std::equal_to<>> map_;
};

} // namespace detail

connection::connection(SQLite::Database& db) : db_(&db), cache_(std::make_unique<detail::statement_cache>())
{}

connection::~connection() = default;

sqlite3* connection::handle() const noexcept
{
    return db_->getHandle();
}

void connection::clear_cache() noexcept
{
    cache_->clear();
}

std::size_t connection::cached_statements() const noexcept
{
    return cache_->map_.size();
}

detail::prepared connection::prepare(std::string_view sql, int args)
{
    auto& map = cache_->map_;
    const auto it = map.find(sql);
    // The cached statement is busy when an enclosing query still steps it (the same SQL again inside
    // for_each, or inside a savepoint callback of a query): resetting it would restart that query.
    const bool busy = it != map.end() && sqlite3_stmt_busy(it->second);
    if (it != map.end() && !busy) {
        if (const int wanted = sqlite3_bind_parameter_count(it->second); wanted != args)
            detail::throw_parameter_count(sql, wanted, args);
        return {it->second, false};
    }

    sqlite3* db = handle();
    sqlite3_stmt* s = nullptr;
    const char* tail = nullptr;
    const int rc = sqlite3_prepare_v3(
        db, sql.data(), static_cast<int>(sql.size()), busy ? 0 : SQLITE_PREPARE_PERSISTENT, &s, &tail);
    if (rc != SQLITE_OK)
        throw SQLite::Exception(db, rc);
    if (s == nullptr)
        throw SQLite::Exception(fmt::format("\"{}\" contains no SQL statement.", sql), SQLITE_MISUSE);
    std::string_view rest(tail, static_cast<std::size_t>(sql.data() + sql.size() - tail));
    if (rest.find_first_not_of(" \t\r\n;") != std::string_view::npos) {
        sqlite3_finalize(s);
        throw SQLite::Exception(
            fmt::format("\"{}\" holds more than one statement; execute/query run one statement. Use "
                        "connection::exec for a script.",
                        sql),
            SQLITE_MISUSE);
    }
    if (const int wanted = sqlite3_bind_parameter_count(s); wanted != args) {
        sqlite3_finalize(s);
        detail::throw_parameter_count(sql, wanted, args);
    }
    if (busy)
        return {s, true};
    map.emplace(std::string(sql), s);
    return {s, false};
}

void connection::exec(std::string_view script)
{
    std::string text(script);
    char* msg = nullptr;
    const int rc = sqlite3_exec(handle(), text.c_str(), nullptr, nullptr, &msg);
    if (msg)
        sqlite3_free(msg);
    if (rc != SQLITE_OK)
        throw SQLite::Exception(handle(), rc);
}

std::int64_t connection::last_insert_rowid() const noexcept
{
    return sqlite3_last_insert_rowid(handle());
}

std::int64_t connection::changes() const noexcept
{
    return sqlite3_changes64(handle());
}

int connection::begin_savepoint()
{
    const int depth = ++savepoint_depth_;
    try {
        exec(fmt::format("SAVEPOINT dbactor_user_{}", depth));
    }
    catch (...) {
        --savepoint_depth_;
        throw;
    }
    return depth;
}

void connection::end_savepoint(int depth, bool release)
{
    savepoint_depth_ = depth - 1;
    if (release) {
        exec(fmt::format("RELEASE dbactor_user_{}", depth));
    }
    else {
        // Best effort: the original exception is what the caller needs to see.
        sqlite3_exec(handle(),
                     fmt::format("ROLLBACK TO dbactor_user_{0}; RELEASE dbactor_user_{0}", depth).c_str(),
                     nullptr,
                     nullptr,
                     nullptr);
    }
}

} // namespace dbactor
