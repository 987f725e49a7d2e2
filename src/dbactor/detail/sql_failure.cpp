#include <dbactor/detail/sql_failure.hpp>

#include <fmt/format.h>
#include <sqlite3.h>

namespace dbactor::detail {

stmt::~stmt()
{
    sqlite3_finalize(s);
}

std::string sqlite_text(sqlite3* db)
{
    const char* m = sqlite3_errmsg(db);
    return m ? m : "unknown error";
}

void fail_sql(sqlite3* db, int rc, errc otherwise, const std::string& what)
{
    const int ext = sqlite3_extended_errcode(db) ? sqlite3_extended_errcode(db) : rc;
    const errc code = errc_for_sqlite(ext, otherwise);
    std::string advice;
    if (code == errc::busy)
        advice = " Another connection holds the write lock longer than busy_timeout; retry when it is done.";
    else if (code == errc::integrity_check_failed)
        advice =
            " The database file is damaged: `dbtool check --full` shows where; restore it from a backup.";
    else if (code == errc::not_a_database)
        advice = " The file is not a SQLite database (or is encrypted); check the path.";
    throw error(code, fmt::format("{}: {} (SQLite code {}).{}", what, sqlite_text(db), ext, advice), ext);
}

/// Runs statements without results (BEGIN, COMMIT, pragmas); throws with `what` on failure.
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
