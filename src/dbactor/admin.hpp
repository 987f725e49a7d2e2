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

/// The schema version: the newest version in dbactor's ledger, or PRAGMA user_version when there is none.
std::int64_t schema_version(connection& c);

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
/// Errors: errc::migration_modified or errc::database_ahead as at boot; errc::migration_source_invalid for a
/// pending timestamped migration older than the newest applied one, unless `allow_out_of_order`;
/// errc::migration_failed when a step down has no down file or one without statements (the message names
/// it) or `target` is above the newest version of `set`. Nothing is changed.
std::vector<migration_step> plan_migration(connection& c,
                                           const migration_set& set,
                                           std::int64_t target = -1,
                                           bool allow_out_of_order = false);

/// One problem a dry run found.
struct migration_problem
{
    std::int64_t version = 0;
    bool up = true;
    errc code = errc::migration_failed;
    std::string message; ///< as the real run would say it, with file:line:col
};

/// A dry run: plan_migration's steps, run on a scratch in-memory copy of the database's schema (no rows) with
/// every check of the real run, going on past a failing step so that every problem is reported, in plan
/// order. `problems` gets them; a step's `failed` is set when it is one of them. What depends on the rows
/// (a UNIQUE or foreign-key violation of existing data) shows only in the real run.
/// Errors: as plan_migration; nothing is changed.
std::vector<migration_step> dry_run_migration(connection& c,
                                              const migration_set& set,
                                              std::int64_t target,
                                              std::vector<migration_problem>& problems,
                                              bool allow_out_of_order = false);

/// What adopt() did.
struct adopt_result
{
    std::string tool;  ///< the other tool ("sqlx", "goose", …), empty when only --version said what ran
    std::string table; ///< its ledger table, left as it is; empty when there is none
    std::vector<std::int64_t> versions; ///< recorded in dbactor_migrations
    std::int64_t user_version = 0;      ///< PRAGMA user_version, which adopt leaves as it is
};

/// Takes over a database another tool manages: records in `dbactor_migrations` the migrations of `set` that
/// the other tool's ledger says are applied (`_sqlx_migrations`, `goose_db_version`, `schema_migrations` of
/// dbmate or golang-migrate, `__diesel_schema_migrations`, `refinery_schema_history`), or with `up_to` every
/// migration of `set` up to that version, after checking that the live schema is what those migrations build
/// in a scratch in-memory database. Nothing else is written: the other ledger and user_version stay.
/// Errors: errc::migration_modified when the schemas differ (the message lists the differences);
/// errc::migration_failed when the database already has a dbactor ledger, when the other ledger names a
/// version `set` lacks, when there is no ledger and no `up_to`, or when a migration fails on the scratch
/// database; errc::busy. Nothing is written on error, nor when `record` is false (a dry run: only the
/// checks).
adopt_result adopt(connection& c, const migration_set& set, std::int64_t up_to = -1, bool record = true);

/// Runs plan_migration's steps, each in its own transaction with its ledger row. `keep_going` is asked
/// before each step; when it returns false the remaining steps are left undone (and `done` stays false).
/// Errors: as run at boot (migration_failed with file:line:col and rolled back, foreign_key_violation, busy);
/// the steps before the failing one stay done.
std::vector<migration_step> migrate_to(connection& c,
                                       const migration_set& set,
                                       std::int64_t target = -1,
                                       const std::function<bool()>& keep_going = {},
                                       bool allow_out_of_order = false);

/// migrate_to that reports its progress in `steps` (the plan, each step's `done`, and `failed` on the step
/// that threw), so that a caller can say what was applied before an error. Errors: as migrate_to; `steps` is
/// filled as far as it got (empty when planning failed).
void migrate_to(connection& c,
                const migration_set& set,
                std::int64_t target,
                std::vector<migration_step>& steps,
                const std::function<bool()>& keep_going = {},
                bool allow_out_of_order = false);

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
