// The library's own SQL on a raw connection (the ledger, BEGIN/COMMIT, pragmas), failing as dbactor::error.
#pragma once

#include <dbactor/error.hpp>

#include <string>

struct sqlite3;
struct sqlite3_stmt;

namespace dbactor::detail {

/// A finalizing owner of one prepared statement.
struct stmt
{
    sqlite3_stmt* s = nullptr;
    stmt() = default;
    stmt(const stmt&) = delete;
    stmt& operator=(const stmt&) = delete;
    ~stmt();
};

/// sqlite3_errmsg, or "unknown error".
std::string sqlite_text(sqlite3* db);

/// Throws dbactor::error for the failure `rc` on `db`: `what`, SQLite's text and code, and what to do.
[[noreturn]] void fail_sql(sqlite3* db, int rc, errc otherwise, const std::string& what);

/// Runs statements without results (BEGIN, COMMIT, pragmas); throws with `what` on failure.
void exec(sqlite3* db, const char* sql, const std::string& what, errc otherwise = errc::migration_failed);

/// ROLLBACK when a transaction is open; never throws.
void rollback_quietly(sqlite3* db) noexcept;

} // namespace dbactor::detail
