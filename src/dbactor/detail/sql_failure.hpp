// The library's own SQL on a raw connection (the ledger, BEGIN/COMMIT, pragmas), failing as dbactor::error.
#pragma once

#include <dbactor/detail/statement.hpp>
#include <dbactor/error.hpp>

#include <string>
#include <string_view>

struct sqlite3;

namespace dbactor::detail {

/// sqlite3_errmsg, or "unknown error".
std::string sqlite_text(sqlite3* db);

/// The main database file of `db`, or ":memory:" when it has none.
std::string database_path(sqlite3* db);

/// dbactor::remedy for `code`, pointing at `db`'s file and busy timeout (empty for codes without advice).
std::string remedy_for(sqlite3* db, errc code);

/// Throws dbactor::error for the failure `rc` on `db`: `what`, SQLite's text and code, and the remedy. The
/// code is errc_for_sqlite of the extended code, `otherwise` when it has no class of its own.
[[noreturn]] void fail_sql(sqlite3* db, int rc, errc otherwise, const std::string& what);

/// Prepares `sql` on `db`; a failure goes to fail_sql with `otherwise` and `what`.
statement prepare_or_fail(sqlite3* db, std::string_view sql, errc otherwise, const std::string& what);

/// Runs statements without results (BEGIN, COMMIT, pragmas); throws with `what` on failure.
void exec(sqlite3* db, const char* sql, const std::string& what, errc otherwise = errc::migration_failed);

/// ROLLBACK when a transaction is open; never throws.
void rollback_quietly(sqlite3* db) noexcept;

} // namespace dbactor::detail
