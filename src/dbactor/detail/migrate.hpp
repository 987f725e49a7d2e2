// The migration runner (implemented in migration.cpp): ledger, state, and one migration up or down.
#pragma once

#include <dbactor/error.hpp>
#include <dbactor/migration.hpp>
#include <dbactor/report.hpp>

#include <cstdint>
#include <string>
#include <string_view>
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

/// The ledger's rows in version order; empty when the table does not exist.
/// Errors: errc::busy when locked, errc::migration_failed for another SQLite failure.
std::vector<ledger_row> read_ledger(sqlite3* db, const std::string& path);

/// Every migration of `set` and every ledger row, compared: applied, pending, modified, unknown.
std::vector<migration_status> compare_state(const migration_set& set, const std::vector<ledger_row>& ledger);

/// Throws errc::migration_modified or errc::database_ahead when `state` says so.
void refuse_inconsistent(const std::vector<migration_status>& state,
                         const migration_set& set,
                         const std::string& path);

/// Applies (`up`) or reverts one migration together with its ledger row and user_version, in its own
/// BEGIN IMMEDIATE transaction (unless no-transaction), re-reading the ledger inside it. Returns false when
/// another connection already did it. Errors: migration_failed (rolled back, with file:line:col),
/// foreign_key_violation, migration_modified, busy.
bool run_migration(
    sqlite3* db, const migration& m, bool up, const std::string& path, std::int64_t* duration_ms = nullptr);

/// Runs `PRAGMA foreign_key_check`; returns the number of violations and fills `first` with up to `limit`
/// readable rows.
std::int64_t foreign_key_violations(sqlite3* db, std::vector<std::string>& first, std::size_t limit = 5);

} // namespace dbactor::detail
