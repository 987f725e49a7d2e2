#include <dbactor/detail/statement.hpp>

#include <SQLiteCpp/Exception.h>
#include <sqlite3.h>

#include <utility>

namespace dbactor::detail {

statement::statement(sqlite3* db, std::string_view sql, bool persistent)
{
    prepare(db, sql, persistent);
}

statement::statement(statement&& other) noexcept : s_(std::exchange(other.s_, nullptr)) {}

statement& statement::operator=(statement&& other) noexcept
{
    if (this != &other) {
        finalize();
        s_ = std::exchange(other.s_, nullptr);
    }
    return *this;
}

statement::~statement()
{
    sqlite3_finalize(s_);
}

void statement::prepare(sqlite3* db, std::string_view sql, bool persistent)
{
    finalize();
    const unsigned flags = persistent ? SQLITE_PREPARE_PERSISTENT : 0;
    if (sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()), flags, &s_, nullptr) != SQLITE_OK)
        throw SQLite::Exception(db, sqlite3_extended_errcode(db));
}

void statement::finalize() noexcept
{
    sqlite3_finalize(s_);
    s_ = nullptr;
}

int statement::step() noexcept
{
    return sqlite3_step(s_);
}

void statement::reset() noexcept
{
    sqlite3_reset(s_);
}

int statement::run() noexcept
{
    int rc;
    while ((rc = sqlite3_step(s_)) == SQLITE_ROW) {
    }
    sqlite3_reset(s_);
    return rc;
}

std::exception_ptr statement::try_run() noexcept
{
    const int rc = run();
    if (rc == SQLITE_DONE)
        return nullptr;
    return std::make_exception_ptr(SQLite::Exception(sqlite3_db_handle(s_), rc));
}

void statement::bind(int index, std::int64_t v) noexcept
{
    sqlite3_bind_int64(s_, index, v);
}

void statement::bind(int index, std::string_view text) noexcept
{
    sqlite3_bind_text(s_, index, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
}

std::int64_t statement::column_int64(int col) const noexcept
{
    return sqlite3_column_int64(s_, col);
}

std::string statement::column_text(int col) const
{
    const auto* t = sqlite3_column_text(s_, col);
    return t ? std::string(reinterpret_cast<const char*>(t),
                           static_cast<std::size_t>(sqlite3_column_bytes(s_, col)))
             : std::string();
}

std::vector<std::string> text_rows(sqlite3* db, std::string_view sql, std::size_t limit, std::size_t* total)
{
    statement s(db, sql);
    std::vector<std::string> rows;
    std::size_t n = 0;
    int rc;
    while ((rc = s.step()) == SQLITE_ROW) {
        if (rows.size() < limit)
            rows.push_back(s.column_text(0));
        ++n;
    }
    if (rc != SQLITE_DONE)
        throw SQLite::Exception(db, rc);
    if (total)
        *total = n;
    return rows;
}

std::string text_value(sqlite3* db, std::string_view sql)
{
    auto rows = text_rows(db, sql, 1);
    return rows.empty() ? std::string() : rows.front();
}

} // namespace dbactor::detail
