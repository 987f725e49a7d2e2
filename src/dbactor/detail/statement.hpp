// detail::statement: the one owner of the library's own prepared statements (RAII), and text queries over it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>
#include <string_view>
#include <vector>

struct sqlite3;
struct sqlite3_stmt;

namespace dbactor::detail {

/// One prepared statement of the library's own SQL (BEGIN, COMMIT, the ledger, pragmas), finalized when the
/// owner goes away. Never throws from its destructor; prepare() throws SQLite::Exception.
class statement
{
public:
    statement() = default;
    /// Prepares `sql` on `db`. `persistent`: SQLITE_PREPARE_PERSISTENT (kept for the connection's life).
    statement(sqlite3* db, std::string_view sql, bool persistent = false);
    statement(statement&& other) noexcept;
    statement& operator=(statement&& other) noexcept;
    statement(const statement&) = delete;
    statement& operator=(const statement&) = delete;
    ~statement();

    /// Errors: SQLite::Exception with the connection's message and extended code.
    void prepare(sqlite3* db, std::string_view sql, bool persistent = false);
    void finalize() noexcept;

    sqlite3_stmt* get() const noexcept { return s_; }
    explicit operator bool() const noexcept { return s_ != nullptr; }

    /// sqlite3_step: SQLITE_ROW, SQLITE_DONE or an error code.
    int step() noexcept;
    void reset() noexcept;
    /// Steps to completion (skipping rows) and resets; SQLITE_DONE or the error code.
    int run() noexcept;
    /// run(), returning the failure as an SQLite::Exception instead of a code (nullptr on success).
    std::exception_ptr try_run() noexcept;

    void bind(int index, std::int64_t v) noexcept;
    void bind(int index, std::string_view text) noexcept; ///< copied (SQLITE_TRANSIENT)
    std::int64_t column_int64(int col) const noexcept;
    /// The column as text ("" for NULL).
    std::string column_text(int col) const;

private:
    sqlite3_stmt* s_ = nullptr;
};

/// The first column of up to `limit` rows of `sql`, as text; `total` (when given) counts every row.
/// Errors: SQLite::Exception.
std::vector<std::string>
text_rows(sqlite3* db, std::string_view sql, std::size_t limit, std::size_t* total = nullptr);

/// The first column of the first row of `sql` as text ("" when there is none). Errors: SQLite::Exception.
std::string text_value(sqlite3* db, std::string_view sql);

} // namespace dbactor::detail
