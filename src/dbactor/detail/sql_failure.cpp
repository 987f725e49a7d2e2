#include <dbactor/detail/sql_failure.hpp>

#include <SQLiteCpp/Exception.h>
#include <fmt/format.h>
#include <sqlite3.h>

namespace dbactor::detail {

std::string sqlite_text(sqlite3* db)
{
    const char* m = sqlite3_errmsg(db);
    return m ? m : "unknown error";
}

std::string database_path(sqlite3* db)
{
    const char* f = sqlite3_db_filename(db, "main");
    return f && *f ? f : ":memory:";
}

std::string remedy_for(sqlite3* db, errc code)
{
    // The C API has no getter for the busy timeout; the pragma reads it back without touching the file.
    long long busy_ms = 5000;
    if (code == errc::busy) {
        try {
            busy_ms = std::stoll(text_value(db, "PRAGMA busy_timeout"));
        }
        catch (...) {
            // keep the default: the advice matters more than the number
        }
    }
    const std::string path = database_path(db);
    return remedy(code, remedy_context{path, busy_ms, "options::busy_timeout"});
}

void fail_sql(sqlite3* db, int rc, errc otherwise, const std::string& what)
{
    const int ext = sqlite3_extended_errcode(db) ? sqlite3_extended_errcode(db) : rc;
    const errc code = errc_for_sqlite(ext, otherwise);
    const std::string text = sqlite_text(db); // before remedy_for runs a statement of its own
    const std::string advice = remedy_for(db, code);
    throw error(
        code,
        fmt::format("{}: {} (SQLite code {}).{}{}", what, text, ext, advice.empty() ? "" : " ", advice),
        ext);
}

statement prepare_or_fail(sqlite3* db, std::string_view sql, errc otherwise, const std::string& what)
{
    try {
        return statement(db, sql);
    }
    catch (const SQLite::Exception& e) {
        fail_sql(db, e.getErrorCode(), otherwise, what);
    }
}

void exec(sqlite3* db, const char* sql, const std::string& what, errc otherwise)
{
    const int rc = sqlite3_exec(db, sql, nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK)
        fail_sql(db, rc, otherwise, what);
}

void rollback_quietly(sqlite3* db) noexcept
{
    if (sqlite3_get_autocommit(db) == 0)
        sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
}

} // namespace dbactor::detail
