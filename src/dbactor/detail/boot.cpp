// The boot gate: nothing that writes runs before the file has been read and checked.
//
// One function per step, over the boot_context the steps share, numbered in the order they run. The
// numbers differ from DESIGN.md's "Boot sequence" in one place, on purpose:
//   step_1_open                  DESIGN 1  open (the file's header is read first, without SQLite)
//   step_2_read_schema           DESIGN 2  read the schema (non-database, truncated file, foreign -wal)
//   step_3_integrity_check       DESIGN 3  quick_check / integrity_check
//   step_4_check_application_id  DESIGN 5  before the pragmas (journal_mode=WAL rewrites the header), with
//                                          the check for another migration tool's database and the shard
//                                          record's; a new one gets its id at the end of step 5 (its shard
//                                          record after step 7)
//   step_5_pragmas               DESIGN 4  set, and each read back
//   step_6_migrations            DESIGN 6  migrations, then step 5's pragmas read back once more
//   step_7_foreign_key_check     DESIGN 6  foreign_key_check after the migrations
// DESIGN 7 (the request loop) is the caller's.
#include <dbactor/detail/boot.hpp>

#include <dbactor/detail/file_checks.hpp>
#include <dbactor/detail/foreign_ledger.hpp>
#include <dbactor/detail/lock_waiter.hpp>
#include <dbactor/detail/migrate.hpp>
#include <dbactor/detail/pragmas.hpp>
#include <dbactor/detail/shard_record.hpp>
#include <dbactor/detail/statement.hpp>
#include <dbactor/error.hpp>

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Exception.h>
#include <fmt/format.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>

namespace dbactor::detail {
namespace {

using clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

/// What the steps share: the options, the report they fill, what they learnt of the file, the connection.
struct boot_context
{
    const options& o;
    boot_summary& report;
    std::unique_ptr<SQLite::Database>& db;
    immutable_open& im;
    bool memory = false;
    bool plain_file = false; ///< a path, not ":memory:" or a URI: its files can be read directly
    sqlite3* h = nullptr;    ///< db's handle, from step 1 on
    file_header header;
    std::optional<main_file_view> main_only; ///< set when a non-empty -wal lies next to a database file
    bool empty_schema = true;
    std::int64_t app_id = 0;
    const char* current_step = "open";
    lock_waiter waits{o.busy_timeout}; ///< the busy handler of boot's connection

    remedy_context where() const { return {o.path, o.busy_timeout.count(), "options::busy_timeout"}; }
    std::string damaged_remedy() const { return remedy(errc::integrity_check_failed, where()); }

    /// An SQLite failure of the current step as a sentence: what, where, SQLite's text, what to do. The
    /// advice for busy, corrupt and not-a-database files is dbactor::remedy's; a boot that stops there never
    /// wrote to the file, and says so.
    error sqlite_failure(const SQLite::Exception& e, errc otherwise, std::string_view advice) const
    {
        const int ext = e.getExtendedErrorCode();
        const errc code = errc_for_sqlite(ext, otherwise);
        std::string what = remedy(code, where());
        if (code == errc::not_a_database)
            what += " It was not modified.";
        if (what.empty())
            what = std::string(advice);
        if (!what.empty())
            what.insert(0, " ");
        return error(
            code,
            fmt::format("Boot of '{}' failed at step '{}': {}.{}", o.path, current_step, e.what(), what),
            ext);
    }
};

/// Runs one step and records its duration in the report.
void timed(boot_context& c, const char* name, void (*step)(boot_context&))
{
    c.current_step = name;
    const auto t0 = clock::now();
    step(c);
    c.report.steps.emplace_back(name,
                                std::chrono::duration_cast<std::chrono::microseconds>(clock::now() - t0));
}

/// A read-only boot's open path: the file itself, or (for a WAL file with no writer) an immutable URI.
std::string read_only_open_path(boot_context& c)
{
    if (c.plain_file && !c.header.exists)
        throw error(errc::open_failed,
                    fmt::format("The database '{}' does not exist. A read-only boot (dbtool check/status) "
                                "never creates one; check the path, or create it with `dbtool migrate`.",
                                c.o.path));
    // A read-only connection to a WAL database would create -wal and -shm files when there are none
    // (no writer is running): read the main file as immutable instead, which creates nothing.
    if (c.im.allowed && c.plain_file && c.header.wal_mode && c.o.vfs.empty() &&
        !fs::exists(c.o.path + "-wal")) {
        take_snapshot(c.o.path, c.im);
        c.im.used = true;
        return file_uri(c.o.path, "mode=ro&immutable=1");
    }
    return c.o.path;
}

// 1. Open. Nothing here writes; the file is created (empty) only when allowed.
void step_1_open(boot_context& c)
{
    if (c.plain_file)
        c.header = read_header(c.o.path);
    if (c.plain_file && c.header.sqlite_magic && c.header.size > 0) {
        std::error_code ec;
        if (fs::exists(c.o.path + "-wal", ec) && fs::file_size(c.o.path + "-wal", ec) > 0)
            c.main_only = read_main_file_only(c.o.path, c.o.vfs); // before the -wal is read with the file
    }
    c.report.created = c.memory || !c.header.exists || c.header.size == 0;
    std::string open_path = c.o.path;
    int flags = SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI;
    if (c.o.read_only) {
        flags |= SQLITE_OPEN_READONLY;
        open_path = read_only_open_path(c);
    }
    else {
        flags |= SQLITE_OPEN_READWRITE | (c.o.create ? SQLITE_OPEN_CREATE : 0);
        refuse_unwritable(c.o, c.header, c.plain_file);
    }
    try {
        c.db = std::make_unique<SQLite::Database>(open_path, flags, 0, c.o.vfs);
    }
    catch (const SQLite::Exception& e) {
        throw error(
            errc::open_failed,
            fmt::format("Cannot open the database '{}'{}: {}. Check that the path exists and is "
                        "writable{}.",
                        c.o.path,
                        c.o.vfs.empty() ? std::string() : fmt::format(" with VFS '{}'", c.o.vfs),
                        e.what(),
                        c.o.vfs.empty() ? "" : ", and that the VFS is registered (sqlite3_vfs_register)"),
            e.getExtendedErrorCode());
    }
    c.h = c.db->getHandle();
    sqlite3_extended_result_codes(c.h, 1);
    c.waits.install(c.h);
}

// 2. Read the schema: a non-database fails here; a truncated file is caught from its own header.
void step_2_read_schema(boot_context& c)
{
    if (c.plain_file && c.header.exists && c.header.size > 0) {
        std::error_code ec;
        const bool wal_pending =
            fs::exists(c.o.path + "-wal", ec) && fs::file_size(c.o.path + "-wal", ec) > 0;
        const auto expected = std::uintmax_t(c.header.page_count) * c.header.page_size;
        if (!wal_pending && c.header.page_count > 0 && c.header.size < expected)
            throw error(errc::integrity_check_failed,
                        fmt::format("Boot of '{}' failed at step 'read schema': the file is truncated (its "
                                    "header says {} pages of {} bytes, {} bytes, but the file has {} bytes). "
                                    "{}",
                                    c.o.path,
                                    c.header.page_count,
                                    c.header.page_size,
                                    expected,
                                    c.header.size,
                                    c.damaged_remedy()),
                        SQLITE_CORRUPT);
    }
    try {
        std::size_t objects = 0;
        text_rows(c.h, "SELECT name FROM sqlite_schema", 0, &objects);
        c.empty_schema = objects == 0;
    }
    catch (const SQLite::Exception& e) {
        throw c.sqlite_failure(e, errc::open_failed, "");
    }
    if (c.main_only) {
        main_file_view seen;
        try {
            seen = view_of(c.h);
        }
        catch (const SQLite::Exception& e) {
            throw c.sqlite_failure(e, errc::open_failed, "");
        }
        const std::int64_t with_wal = seen.schema_version;
        const bool ledger_lost = c.main_only->has_ledger && !seen.has_ledger;
        if (with_wal < c.main_only->schema_version || ledger_lost)
            throw error(errc::integrity_check_failed,
                        fmt::format("Boot of '{}' failed at step 'read schema': the file '{}-wal' next to it "
                                    "does not belong to this database: read with it, the database {} "
                                    "(schema version {} with the -wal, {} in the main file alone). Nothing "
                                    "was modified. If '{}-wal' was copied or left there by mistake, move it "
                                    "(and '{}-shm') away and boot again; if the main file was replaced by an "
                                    "older copy, put the matching file back.",
                                    c.o.path,
                                    c.o.path,
                                    ledger_lost ? "loses its migration ledger (dbactor_migrations)"
                                                : "goes back to an older schema",
                                    with_wal,
                                    c.main_only->schema_version,
                                    c.o.path,
                                    c.o.path),
                        SQLITE_CORRUPT);
    }
}

// 3. Integrity, still without writing.
void step_3_integrity_check(boot_context& c)
{
    if (c.o.integrity_check == check_level::none || c.empty_schema) {
        c.report.integrity = c.o.integrity_check == check_level::none ? "skipped" : "ok";
        return;
    }
    const char* pragma = c.o.integrity_check == check_level::full ? "integrity_check" : "quick_check";
    std::vector<std::string> rows;
    try {
        rows = text_rows(c.h, fmt::format("PRAGMA {}(20)", pragma), 20);
    }
    catch (const SQLite::Exception& e) {
        throw c.sqlite_failure(e, errc::integrity_check_failed, "");
    }
    if (rows.size() == 1 && rows.front() == "ok") {
        c.report.integrity = "ok";
        return;
    }
    rows = problem_lines(rows);
    std::string first;
    for (std::size_t i = 0; i < rows.size() && i < 5; ++i)
        first += (i ? "; " : "") + rows[i];
    c.report.integrity = first;
    throw error(
        errc::integrity_check_failed,
        fmt::format("Boot of '{}' failed at step 'integrity check': PRAGMA {} reported {}{}: {}. {}",
                    c.o.path,
                    pragma,
                    rows.size() >= 20 ? "20 or more problems" : fmt::format("{} problem(s)", rows.size()),
                    rows.size() > 5 ? ", the first five" : "",
                    first,
                    c.damaged_remedy()),
        SQLITE_CORRUPT);
}

// 4. application_id (DESIGN.md's step 5) is checked before anything is written: journal_mode=WAL in step 5
// rewrites the header of another application's file too. A new database gets its id at the end of step 5.
void step_4_check_application_id(boot_context& c)
{
    std::optional<foreign_management> other; // migrations on a schema another tool manages are refused
    try {
        c.app_id = std::stoll(text_value(c.h, "PRAGMA application_id"));
        if (!c.o.migrations.empty() && !c.empty_schema)
            other = managed_elsewhere(c.h);
        check_shard_record(c.h, c.o);
    }
    catch (const SQLite::Exception& e) {
        throw c.sqlite_failure(e, errc::open_failed, "");
    }
    if (c.o.application_id && !c.empty_schema && c.app_id != *c.o.application_id)
        throw error(
            errc::wrong_application,
            fmt::format("Boot of '{}' failed at step 'application_id': the database belongs to another "
                        "application (PRAGMA application_id is {} ({:#x}), this program expects {} "
                        "({:#x})). It was not modified; check the path.",
                        c.o.path,
                        c.app_id,
                        static_cast<std::uint32_t>(c.app_id),
                        *c.o.application_id,
                        static_cast<std::uint32_t>(*c.o.application_id)));
    if (other)
        refuse_unmanaged(*other, c.o.path);
}

// 5. Pragmas (DESIGN.md's step 4), each read back. A read-only boot sets none and only reports them.
void step_5_pragmas(boot_context& c)
{
    const auto pragmas = boot_pragmas(c.o);
    for (const auto& [name, value] : pragmas) {
        try {
            if (!c.o.read_only || lower(name) == "busy_timeout") {
                const std::string sql = fmt::format("PRAGMA {} = {}", name, value);
                if (c.waits.exec(c.h, sql) != SQLITE_OK)
                    throw SQLite::Exception(c.h, sqlite3_extended_errcode(c.h));
            }
            std::string actual = lower(text_value(c.h, "PRAGMA " + name));
            if (c.o.read_only && lower(name) == "journal_mode" && c.header.wal_mode)
                actual = "wal"; // opened immutable: the file itself is in WAL mode
            c.report.pragmas.push_back({name, value, actual});
            if (c.o.read_only)
                continue;
            if (lower(name) == "journal_mode" && c.memory && actual == "memory")
                continue;
            if (actual != expected_readback(name, value))
                throw error(
                    errc::pragma_mismatch,
                    fmt::format("Boot of '{}' failed at step 'pragmas': PRAGMA {} was set to '{}' but "
                                "reads back '{}'. The file system or VFS may not support it (WAL needs "
                                "shared memory: a local file system); choose another value.",
                                c.o.path,
                                name,
                                value,
                                actual));
        }
        catch (const SQLite::Exception& e) {
            throw c.sqlite_failure(
                e,
                errc::pragma_mismatch,
                fmt::format("PRAGMA {} = {} was refused; check the pragma's name and value.", name, value));
        }
    }
    c.waits.install(c.h); // PRAGMA busy_timeout installed SQLite's own handler
    if (!c.o.read_only && c.o.application_id && c.app_id != *c.o.application_id) {
        const std::string sql = fmt::format("PRAGMA application_id = {}", *c.o.application_id);
        if (c.waits.exec(c.h, sql) != SQLITE_OK)
            throw c.sqlite_failure(SQLite::Exception(c.h, sqlite3_extended_errcode(c.h)),
                                   errc::open_failed,
                                   "Setting the application_id of the new database failed.");
    }
}

// 6. Migrations: applied (each in its own transaction), or only reported by a read-only boot.
void step_6_migrations(boot_context& c)
{
    auto state = compare_state(c.o.migrations, read_ledger(c.h, c.o.path));
    if (c.o.read_only || !c.o.apply_migrations) {
        c.report.migrations = std::move(state);
        return;
    }
    refuse_inconsistent(state, c.o.migrations, c.o.path);
    refuse_out_of_order(state, c.o.migrations, c.o.path, c.o.allow_out_of_order);
    std::vector<std::int64_t> applied_now;
    for (const auto& s : state) {
        if (s.status != migration_status::state::pending)
            continue;
        const auto& m = *c.o.migrations.find(s.version);
        if (run_migration(c.h, m, true, c.o.path)) {
            applied_now.push_back(m.version);
            log(c.o, log_level::info, fmt::format("Applied migration {} to '{}'.", m.source, c.o.path));
        }
    }
    c.report.migrations = compare_state(c.o.migrations, read_ledger(c.h, c.o.path));
    refuse_inconsistent(c.report.migrations, c.o.migrations, c.o.path); // another migrator may be newer
    c.waits.hand_back(c.h);                  // busy_timeout reads back as set, unless a migration changed it
    verify_pragmas_unchanged(c.h, c.report); // step 5 once more, before the handle exists
    c.waits.install(c.h);
    for (auto& s : c.report.migrations)
        s.applied_now = std::find(applied_now.begin(), applied_now.end(), s.version) != applied_now.end();
}

// 7. Foreign keys, after the migrations. A caller that migrates after boot (dbtool migrate) checks after its
// own migrations instead: checked here, a violation a pending migration repairs would block it.
void step_7_foreign_key_check(boot_context& c)
{
    std::vector<std::string> first;
    try {
        c.report.foreign_key_violations = foreign_key_violations(c.h, first, 5);
    }
    catch (const error& e) {
        throw error(e.value(),
                    fmt::format("Boot of '{}' failed at step 'foreign_key_check': {}", c.o.path, e.what()),
                    e.sqlite_code());
    }
    if (c.report.foreign_key_violations > 0 && !c.o.read_only)
        throw error(errc::foreign_key_violation,
                    fmt::format("Boot of '{}' failed at step 'foreign_key_check': {} row(s) refer to missing "
                                "parent rows, e.g. {}. Fix the data (delete or re-point those rows) in a "
                                "migration or with dbtool, then boot again.",
                                c.o.path,
                                c.report.foreign_key_violations,
                                fmt::join(first, "; ")));
}

void boot_steps(const options& o,
                boot_summary& report,
                std::unique_ptr<SQLite::Database>& db,
                immutable_open& im)
{
    const auto t0 = clock::now();
    report = boot_summary{};
    report.path = o.path;
    report.sqlite_version = sqlite3_libversion();
    boot_context c{o, report, db, im};
    c.memory = is_memory(o.path);
    c.plain_file = !c.memory && !o.path.starts_with("file:");
    timed(c, "open", step_1_open);
    timed(c, "read schema", step_2_read_schema);
    timed(c, "integrity check", step_3_integrity_check);
    timed(c, "application_id", step_4_check_application_id);
    timed(c, "pragmas", step_5_pragmas);
    timed(c, "migrations", step_6_migrations);
    if (o.check_foreign_keys)
        timed(c, "foreign_key_check", step_7_foreign_key_check);
    else
        report.steps.emplace_back("foreign_key_check (skipped)", std::chrono::microseconds(0));
    try {
        write_shard_record(c.h, o, c.waits); // a shard's first boot as one records its place
        report.schema_version = schema_version(c.h);
    }
    catch (const SQLite::Exception& e) {
        throw c.sqlite_failure(e, errc::open_failed, "");
    }
    c.waits.hand_back(c.h); // the actor's session takes busy_timeout from the connection
    report.lock_waits = c.waits.waits();
    report.lock_wait = std::chrono::duration_cast<std::chrono::microseconds>(c.waits.waited());
    report.total = std::chrono::duration_cast<std::chrono::microseconds>(clock::now() - t0);
}

void close_without_checkpoint(std::unique_ptr<SQLite::Database>& db) noexcept
{
    // The last connection to close a WAL database checkpoints the -wal into the main file. A failed
    // boot must not: a file refused at boot stays byte-for-byte what it was, and a -wal that is not
    // its own is never copied into it.
    if (db) {
        sqlite3_db_config(db->getHandle(), SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, nullptr);
        db.reset();
    }
}

} // namespace

bool is_memory(const std::string& path) noexcept
{
    return path.empty() || path == ":memory:" || path.starts_with("file::memory:") ||
           (path.starts_with("file:") && path.find("mode=memory") != std::string::npos);
}

void log(const options& o, log_level level, std::string_view message) noexcept
{
    try {
        if (o.on_log)
            o.on_log(level, message);
        else if (level >= log_level::warning)
            std::fprintf(stderr, "dbactor: %.*s\n", static_cast<int>(message.size()), message.data());
    }
    catch (...) {
        // A logging hook must not take the actor down.
    }
}

std::unique_ptr<SQLite::Database> boot(const options& o, boot_summary& report)
{
    std::unique_ptr<SQLite::Database> db;
    immutable_open im;
    for (;;) {
        try {
            boot_steps(o, report, db, im);
            return db;
        }
        catch (const error& e) {
            close_without_checkpoint(db);
            // An immutable connection reads pages without locks: had a service started and checkpointed
            // meanwhile, the "corruption" may be pages changing under the check. Check once more, with locks.
            if (im.used && im.allowed && e.value() == errc::integrity_check_failed &&
                changed_since(o.path, im)) {
                log(o,
                    log_level::info,
                    fmt::format(
                        "'{}' changed while it was checked without locks (a writer started); checking it "
                        "again with a normal read-only connection.",
                        o.path));
                im.allowed = false;
                im.used = false;
                continue;
            }
            throw;
        }
        catch (...) {
            close_without_checkpoint(db);
            throw;
        }
    }
}

std::unique_ptr<SQLite::Database> open_reader(const options& o)
{
    auto db = std::make_unique<SQLite::Database>(o.path,
                                                 SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI,
                                                 static_cast<int>(o.busy_timeout.count()),
                                                 o.vfs);
    sqlite3_extended_result_codes(db->getHandle(), 1);
    return db;
}

} // namespace dbactor::detail
