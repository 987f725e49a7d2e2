// The migration ledger (dbactor_migrations): reading it and comparing it with a migration set.
#pragma once

#include <dbactor/migration.hpp>
#include <dbactor/report.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

struct sqlite3;

namespace dbactor::detail {

/// One row of `dbactor_migrations`.
struct ledger_row
{
    std::int64_t version = 0;
    std::string name;
    std::string checksum;
    std::string applied_at;
    std::int64_t duration_ms = 0;
};

inline constexpr const char* create_ledger =
    "CREATE TABLE IF NOT EXISTS dbactor_migrations ("
    "version INTEGER PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL, "
    "applied_at TEXT NOT NULL, duration_ms INTEGER NOT NULL)";

/// The ledger's rows in version order; empty when the table does not exist.
/// Errors: errc::busy when locked, errc::migration_failed for another SQLite failure.
std::vector<ledger_row> read_ledger(sqlite3* db, const std::string& path);

/// Every migration of `set` and every ledger row, compared: applied, pending, modified, unknown.
std::vector<migration_status> compare_state(const migration_set& set, const std::vector<ledger_row>& ledger);

/// Throws errc::migration_modified or errc::database_ahead when `state` says so.
void refuse_inconsistent(const std::vector<migration_status>& state,
                         const migration_set& set,
                         const std::string& path);

/// The ledger's checksum of `version`, re-read inside the migration's transaction.
/// Errors: as read_ledger.
std::optional<std::string> ledger_checksum(sqlite3* db, std::int64_t version, const std::string& path);

/// The highest version in the ledger, 0 when there is none (or no ledger).
std::int64_t ledger_max(sqlite3* db);

/// The number of ledger rows (applied migrations), 0 when there is no ledger.
std::int64_t ledger_count(sqlite3* db);

/// The schema version as dbactor reports it: the ledger's newest version, or PRAGMA user_version when the
/// database has no ledger (another tool's, or none).
std::int64_t schema_version(sqlite3* db);

/// Timestamped sets only: throws errc::migration_source_invalid, naming both files, when a pending migration
/// is older than the newest applied one, unless `allow`.
void refuse_out_of_order(const std::vector<migration_status>& state,
                         const migration_set& set,
                         const std::string& path,
                         bool allow);

} // namespace dbactor::detail
