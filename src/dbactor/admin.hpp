// dbactor::admin: the operations behind dbtool (migration state, migrating up and down, sizes, backup).
#pragma once

#include <dbactor/connection.hpp>
#include <dbactor/migration.hpp>
#include <dbactor/report.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace dbactor::admin {

// Each function takes the `connection&` of a `database::call` request, and runs on the actor thread:
//     auto state = db.call([&](dbactor::connection& c) { return dbactor::admin::migration_state(c, set); });

/// Every migration of `set` compared with the database's ledger: applied, pending, modified, and ledger rows
/// that `set` does not know (unknown: the database is ahead).
/// Errors: errc::busy when the database is locked.
std::vector<migration_status> migration_state(connection& c, const migration_set& set);

/// One step of a migration plan.
struct migration_step
{
    std::int64_t version = 0;
    std::string name;
    bool up = true;               ///< applies NNNN_name.sql; false: reverts with NNNN_name.down.sql
    bool done = false;            ///< migrate_to ran it (false in a plan, or when another migrator did it)
    std::int64_t duration_ms = 0;
};

/// The steps that bring the schema from its current version to `target`: pending migrations up to it, or
/// applied ones above it reverted newest first. `target` -1 means the newest version of `set`.
/// Errors: errc::migration_modified or errc::database_ahead as at boot; errc::migration_failed when a step
/// down has no down file (the migration is irreversible; the message names it) or `target` is not a
/// version of `set`. Nothing is changed.
std::vector<migration_step> plan_migration(connection& c, const migration_set& set, std::int64_t target = -1);

/// Runs plan_migration's steps, each in its own transaction with its ledger row. `keep_going` is asked
/// before each step; when it returns false the remaining steps are left undone (and `done` stays false).
/// Errors: as run at boot (migration_failed with file:line:col and rolled back, foreign_key_violation, busy);
/// the steps before the failing one stay done.
std::vector<migration_step> migrate_to(connection& c, const migration_set& set, std::int64_t target = -1,
                                       const std::function<bool()>& keep_going = {});

/// Sizes and modes of the database file.
struct file_info
{
    std::string journal_mode;
    std::int64_t user_version = 0;
    std::int64_t page_size = 0;
    std::int64_t page_count = 0;
    std::int64_t freelist_count = 0;
    std::int64_t file_bytes = 0; ///< the main file
    std::int64_t wal_bytes = 0;  ///< the -wal file, 0 when there is none
};
file_info inspect(connection& c);

/// What backup() did.
struct backup_result
{
    std::int64_t pages = 0;
    std::vector<std::string> quick_check; ///< the copy's `PRAGMA quick_check` rows ("ok" alone when sound)
};

/// Copies the database online into the new file `to` with SQLite's backup API, `pages_per_step` pages at a
/// time inside one read transaction (so a writer in another process neither waits nor restarts the copy),
/// then runs `quick_check` on the copy. `progress(done, total)` is called after each step; returning false
/// stops the backup and removes the partial copy. The copy is written to `to + ".partial"` and renamed.
/// Errors: errc::open_failed when `to` exists or cannot be written; errc::cancelled when stopped; errc::busy.
backup_result backup(connection& c, const std::string& to,
                     const std::function<bool(std::int64_t done, std::int64_t total)>& progress = {},
                     int pages_per_step = 256);

} // namespace dbactor::admin
