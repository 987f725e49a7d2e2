// dbactor::admin: the operations behind dbtool (migration state, migrating up and down, sizes, backup).
#pragma once

#include <dbactor/connection.hpp>
#include <dbactor/migration.hpp>
#include <dbactor/report.hpp>

#include <cstddef>
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
    bool up = true;      ///< applies NNNN_name.sql; false: reverts with NNNN_name.down.sql
    bool done = false;   ///< migrate_to ran it (false in a plan, or when another migrator did it)
    bool failed = false; ///< migrate_to stopped at this step with an error (it was rolled back)
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
std::vector<migration_step> migrate_to(connection& c,
                                       const migration_set& set,
                                       std::int64_t target = -1,
                                       const std::function<bool()>& keep_going = {});

/// migrate_to that reports its progress in `steps` (the plan, each step's `done`, and `failed` on the step
/// that threw), so that a caller can say what was applied before an error. Errors: as migrate_to; `steps` is
/// filled as far as it got (empty when planning failed).
void migrate_to(connection& c,
                const migration_set& set,
                std::int64_t target,
                std::vector<migration_step>& steps,
                const std::function<bool()>& keep_going = {});

/// What `PRAGMA foreign_key_check` found.
struct foreign_key_report
{
    std::int64_t violations = 0;
    std::vector<std::string>
        first; ///< up to `limit` readable rows ("child rowid 1 refers to a missing row of parent")
};

/// Runs `PRAGMA foreign_key_check` on the whole database.
/// Errors: errc::busy when locked; errc::integrity_check_failed / not_a_database for a damaged file.
foreign_key_report foreign_key_check(connection& c, std::size_t limit = 5);

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

/// Reads the journal mode, user_version, page size and counts, and the file sizes.
/// Errors: dbactor::error when a pragma fails (errc::busy, errc::integrity_check_failed,
/// errc::not_a_database, otherwise errc::open_failed), or a file size cannot be read; never zeros in place of
/// an error.
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
/// stops the backup and removes the partial copy. The copy is written to `to + ".partial"` and published as
/// `to` only when it passed quick_check, without ever replacing a file (link/rename without overwrite): a
/// `to` created meanwhile by someone else is left alone. The partial copy (and its -journal/-wal/-shm) is
/// removed on every failure. Errors: errc::open_failed when `to` exists or cannot be written;
/// errc::integrity_check_failed when the copy fails quick_check (nothing is published: the source is probably
/// damaged); errc::cancelled when stopped; errc::busy.
backup_result backup(connection& c,
                     const std::string& to,
                     const std::function<bool(std::int64_t done, std::int64_t total)>& progress = {},
                     int pages_per_step = 256);

} // namespace dbactor::admin
