// The boot gate: nothing that writes runs before the file has been read and checked.
#include <dbactor/detail/boot.hpp>

#include <dbactor/detail/file_checks.hpp>
#include <dbactor/detail/migrate.hpp>
#include <dbactor/detail/statement.hpp>
#include <dbactor/error.hpp>

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Exception.h>
#include <fmt/format.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

namespace dbactor::detail {
namespace {

using clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

std::string lower(std::string s)
{
    for (auto& c : s)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

/// sqlite3_exec, retrying SQLITE_BUSY until `timeout` passed: changing the journal mode needs an exclusive
/// lock, and SQLite returns BUSY at once (no busy handler, to avoid a deadlock) while another connection
/// holds a write lock. The contract is "busy after about busy_timeout", so wait here.
int exec_waiting(sqlite3* db, const std::string& sql, std::chrono::milliseconds timeout)
{
    const auto until = clock::now() + timeout;
    for (;;) {
        const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr);
        if ((rc & 0xff) != SQLITE_BUSY || clock::now() >= until)
            return rc;
        sqlite3_sleep(10); // the same back-off the busy handler would use
    }
}

/// What `PRAGMA name` reads back as when it was set to `value` (synchronous reads back as a number).
std::string expected_readback(const std::string& name, const std::string& value)
{
    const std::string n = lower(name), v = lower(value);
    if (n == "synchronous") {
        if (v == "off")
            return "0";
        if (v == "normal")
            return "1";
        if (v == "full")
            return "2";
        if (v == "extra")
            return "3";
    }
    if (v == "on" || v == "true" || v == "yes")
        return "1";
    if (v == "off" || v == "false" || v == "no")
        return "0";
    return v;
}

/// Records each step's duration in the report.
class stepper
{
public:
    explicit stepper(boot_summary& r) : r_(r) {}
    template <class Fn>
    void operator()(const char* name, Fn&& fn)
    {
        current_ = name;
        const auto t0 = clock::now();
        fn();
        r_.steps.emplace_back(name, std::chrono::duration_cast<std::chrono::microseconds>(clock::now() - t0));
    }
    const char* current() const { return current_; }

private:
    boot_summary& r_;
    const char* current_ = "open";
};

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

namespace {

void boot_steps(const options& o,
                boot_summary& report,
                std::unique_ptr<SQLite::Database>& db,
                immutable_open& im);

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

namespace {
void boot_steps(const options& o,
                boot_summary& report,
                std::unique_ptr<SQLite::Database>& db,
                immutable_open& im)
{
    const auto t0 = clock::now();
    report = boot_summary{};
    report.path = o.path;
    report.sqlite_version = sqlite3_libversion();
    const bool memory = is_memory(o.path);
    const bool plain_file = !memory && !o.path.starts_with("file:");
    stepper step(report);
    sqlite3* h = nullptr;
    const std::string damaged_remedy =
        remedy(errc::integrity_check_failed,
               remedy_context{o.path, o.busy_timeout.count(), "options::busy_timeout"});

    // Wraps an SQLite failure of the current step into a sentence: what, where, SQLite's text, what to do.
    auto sqlite_failure = [&](const SQLite::Exception& e, errc otherwise, std::string_view advice) {
        const int ext = e.getExtendedErrorCode();
        const errc code = errc_for_sqlite(ext, otherwise);
        // One wording of the advice for busy, corrupt and not-a-database files, library- and dbtool-wide;
        // a boot that stops there never wrote to the file, and says so.
        std::string what =
            remedy(code, remedy_context{o.path, o.busy_timeout.count(), "options::busy_timeout"});
        if (code == errc::not_a_database)
            what += " It was not modified.";
        if (what.empty())
            what = std::string(advice);
        if (!what.empty())
            what.insert(0, " ");
        return error(
            code,
            fmt::format("Boot of '{}' failed at step '{}': {}.{}", o.path, step.current(), e.what(), what),
            ext);
    };

    // 1. Open. Nothing here writes; the file is created (empty) only when allowed.
    file_header header;
    std::optional<main_file_view> main_only; // set when a non-empty -wal lies next to a database file
    step("open", [&] {
        if (plain_file)
            header = read_header(o.path);
        if (plain_file && header.sqlite_magic && header.size > 0) {
            std::error_code ec;
            if (fs::exists(o.path + "-wal", ec) && fs::file_size(o.path + "-wal", ec) > 0)
                main_only = read_main_file_only(o.path, o.vfs); // before the -wal is read with the file
        }
        report.created = memory || !header.exists || header.size == 0;
        std::string open_path = o.path;
        int flags = SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI;
        if (o.read_only) {
            flags |= SQLITE_OPEN_READONLY;
            if (plain_file && !header.exists)
                throw error(
                    errc::open_failed,
                    fmt::format("The database '{}' does not exist. A read-only boot (dbtool check/status) "
                                "never creates one; check the path, or create it with `dbtool migrate`.",
                                o.path));
            // A read-only connection to a WAL database would create -wal and -shm files when there are none
            // (no writer is running): read the main file as immutable instead, which creates nothing.
            if (im.allowed && plain_file && header.wal_mode && o.vfs.empty() &&
                !fs::exists(o.path + "-wal")) {
                take_snapshot(o.path, im);
                im.used = true;
                open_path = file_uri(o.path, "mode=ro&immutable=1");
            }
        }
        else {
            flags |= SQLITE_OPEN_READWRITE;
            if (o.create)
                flags |= SQLITE_OPEN_CREATE;
            if (plain_file) {
                // Fail fast and clearly where SQLite would say only "unable to open" or "readonly database"
                // after the first write.
                const fs::path dir = fs::absolute(o.path).parent_path();
                if (header.exists && ::access(o.path.c_str(), W_OK) != 0)
                    throw error(
                        errc::open_failed,
                        fmt::format("The database '{}' is read-only (no write permission). dbactor opens "
                                    "a database for writing: make the file writable (chmod u+w), or use "
                                    "options::read_only / dbtool check to inspect it.",
                                    o.path));
                if (::access(dir.c_str(), W_OK | X_OK) != 0)
                    throw error(
                        errc::open_failed,
                        fmt::format("The directory '{}' of the database '{}' is not writable (or does "
                                    "not exist). SQLite creates '{}-wal' and '{}-shm' next to the database; "
                                    "make the directory writable, or move the database.",
                                    dir.string(),
                                    o.path,
                                    o.path,
                                    o.path));
                if (!header.exists && !o.create)
                    throw error(
                        errc::open_failed,
                        fmt::format("The database '{}' does not exist and options::create is false. Check "
                                    "the path, or set create = true to make a new database.",
                                    o.path));
            }
        }
        try {
            db = std::make_unique<SQLite::Database>(open_path, flags, 0, o.vfs);
        }
        catch (const SQLite::Exception& e) {
            throw error(
                errc::open_failed,
                fmt::format("Cannot open the database '{}'{}: {}. Check that the path exists and is "
                            "writable{}.",
                            o.path,
                            o.vfs.empty() ? std::string() : fmt::format(" with VFS '{}'", o.vfs),
                            e.what(),
                            o.vfs.empty() ? "" : ", and that the VFS is registered (sqlite3_vfs_register)"),
                e.getExtendedErrorCode());
        }
        h = db->getHandle();
        sqlite3_extended_result_codes(h, 1);
        sqlite3_busy_timeout(h, static_cast<int>(o.busy_timeout.count()));
    });

    // 2. Read the schema: a non-database fails here; a truncated file is caught from its own header.
    bool empty_schema = true;
    step("read schema", [&] {
        if (plain_file && header.exists && header.size > 0) {
            std::error_code ec;
            const bool wal_pending =
                fs::exists(o.path + "-wal", ec) && fs::file_size(o.path + "-wal", ec) > 0;
            const auto expected = std::uintmax_t(header.page_count) * header.page_size;
            if (!wal_pending && header.page_count > 0 && header.size < expected)
                throw error(
                    errc::integrity_check_failed,
                    fmt::format("Boot of '{}' failed at step 'read schema': the file is truncated (its "
                                "header says {} pages of {} bytes, {} bytes, but the file has {} bytes). "
                                "{}",
                                o.path,
                                header.page_count,
                                header.page_size,
                                expected,
                                header.size,
                                damaged_remedy),
                    SQLITE_CORRUPT);
        }
        try {
            std::size_t objects = 0;
            text_rows(h, "SELECT name FROM sqlite_schema", 0, &objects);
            empty_schema = objects == 0;
        }
        catch (const SQLite::Exception& e) {
            throw sqlite_failure(e, errc::open_failed, "");
        }
        if (main_only) {
            main_file_view seen;
            try {
                seen = view_of(h);
            }
            catch (const SQLite::Exception& e) {
                throw sqlite_failure(e, errc::open_failed, "");
            }
            const std::int64_t with_wal = seen.schema_version;
            const bool ledger_lost = main_only->has_ledger && !seen.has_ledger;
            if (with_wal < main_only->schema_version || ledger_lost)
                throw error(
                    errc::integrity_check_failed,
                    fmt::format("Boot of '{}' failed at step 'read schema': the file '{}-wal' next to it "
                                "does not belong to this database: read with it, the database {} "
                                "(schema version {} with the -wal, {} in the main file alone). Nothing "
                                "was modified. If '{}-wal' was copied or left there by mistake, move it "
                                "(and '{}-shm') away and boot again; if the main file was replaced by an "
                                "older copy, put the matching file back.",
                                o.path,
                                o.path,
                                ledger_lost ? "loses its migration ledger (dbactor_migrations)"
                                            : "goes back to an older schema",
                                with_wal,
                                main_only->schema_version,
                                o.path,
                                o.path),
                    SQLITE_CORRUPT);
        }
    });

    // 3. Integrity, still without writing.
    step("integrity check", [&] {
        if (o.integrity_check == check_level::none || empty_schema) {
            report.integrity = o.integrity_check == check_level::none ? "skipped" : "ok";
            return;
        }
        const char* pragma = o.integrity_check == check_level::full ? "integrity_check" : "quick_check";
        std::vector<std::string> rows;
        try {
            rows = text_rows(h, fmt::format("PRAGMA {}(20)", pragma), 20);
        }
        catch (const SQLite::Exception& e) {
            throw sqlite_failure(e, errc::integrity_check_failed, "");
        }
        if (rows.size() == 1 && rows.front() == "ok") {
            report.integrity = "ok";
            return;
        }
        // integrity_check puts several problems in one row, one per line.
        std::vector<std::string> lines;
        for (const auto& row : rows) {
            std::size_t pos = 0;
            while (pos <= row.size()) {
                const auto nl = row.find('\n', pos);
                auto line = row.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
                if (!line.empty() && !line.starts_with("*** in database"))
                    lines.push_back(std::move(line));
                if (nl == std::string::npos)
                    break;
                pos = nl + 1;
            }
        }
        rows = std::move(lines);
        std::string first;
        for (std::size_t i = 0; i < rows.size() && i < 5; ++i)
            first += (i ? "; " : "") + rows[i];
        report.integrity = first;
        throw error(
            errc::integrity_check_failed,
            fmt::format("Boot of '{}' failed at step 'integrity check': PRAGMA {} reported {}{}: {}. {}",
                        o.path,
                        pragma,
                        rows.size() >= 20 ? "20 or more problems" : fmt::format("{} problem(s)", rows.size()),
                        rows.size() > 5 ? ", the first five" : "",
                        first,
                        damaged_remedy),
            SQLITE_CORRUPT);
    });

    // 5a. application_id is checked before anything is written (journal_mode=WAL rewrites the header of
    // another application's file too); a new database gets it after the pragmas.
    std::int64_t app_id = 0;
    step("application_id", [&] {
        try {
            app_id = std::stoll(text_value(h, "PRAGMA application_id"));
        }
        catch (const SQLite::Exception& e) {
            throw sqlite_failure(e, errc::open_failed, "");
        }
        if (o.application_id && !empty_schema && app_id != *o.application_id)
            throw error(
                errc::wrong_application,
                fmt::format("Boot of '{}' failed at step 'application_id': the database belongs to another "
                            "application (PRAGMA application_id is {} ({:#x}), this program expects {} "
                            "({:#x})). It was not modified; check the path.",
                            o.path,
                            app_id,
                            static_cast<std::uint32_t>(app_id),
                            *o.application_id,
                            static_cast<std::uint32_t>(*o.application_id)));
    });

    // 4. Pragmas, each read back. A read-only boot sets none and only reports them.
    step("pragmas", [&] {
        std::vector<std::pair<std::string, std::string>> pragmas = {
            {"journal_mode", "wal"},
            {"synchronous", o.synchronous == synchronous_mode::full ? "full" : "normal"},
            {"foreign_keys", "on"},
            {"busy_timeout", std::to_string(o.busy_timeout.count())},
            {"journal_size_limit", std::to_string(o.journal_size_limit)},
        };
        pragmas.insert(pragmas.end(), o.pragmas.begin(), o.pragmas.end());
        for (const auto& [name, value] : pragmas) {
            try {
                if (!o.read_only || lower(name) == "busy_timeout") {
                    const std::string sql = fmt::format("PRAGMA {} = {}", name, value);
                    if (exec_waiting(h, sql, o.busy_timeout) != SQLITE_OK)
                        throw SQLite::Exception(h, sqlite3_extended_errcode(h));
                }
                std::string actual = lower(text_value(h, "PRAGMA " + name));
                if (o.read_only && lower(name) == "journal_mode" && header.wal_mode)
                    actual = "wal"; // opened immutable: the file itself is in WAL mode
                report.pragmas.push_back({name, value, actual});
                if (o.read_only)
                    continue;
                if (lower(name) == "journal_mode" && memory && actual == "memory")
                    continue;
                if (actual != expected_readback(name, value))
                    throw error(
                        errc::pragma_mismatch,
                        fmt::format("Boot of '{}' failed at step 'pragmas': PRAGMA {} was set to '{}' but "
                                    "reads back '{}'. The file system or VFS may not support it (WAL needs "
                                    "shared memory: a local file system); choose another value.",
                                    o.path,
                                    name,
                                    value,
                                    actual));
            }
            catch (const SQLite::Exception& e) {
                throw sqlite_failure(
                    e,
                    errc::pragma_mismatch,
                    fmt::format(
                        "PRAGMA {} = {} was refused; check the pragma's name and value.", name, value));
            }
        }
        if (!o.read_only && o.application_id && app_id != *o.application_id) {
            const std::string sql = fmt::format("PRAGMA application_id = {}", *o.application_id);
            if (exec_waiting(h, sql, o.busy_timeout) != SQLITE_OK)
                throw sqlite_failure(SQLite::Exception(h, sqlite3_extended_errcode(h)),
                                     errc::open_failed,
                                     "Setting the application_id of the new database failed.");
        }
    });

    // 6. Migrations: applied (each in its own transaction), or only reported by a read-only boot.
    step("migrations", [&] {
        auto state = compare_state(o.migrations, read_ledger(h, o.path));
        if (o.read_only || !o.apply_migrations) {
            report.migrations = std::move(state);
            return;
        }
        refuse_inconsistent(state, o.migrations, o.path);
        std::vector<std::int64_t> applied_now;
        for (const auto& s : state) {
            if (s.status != migration_status::state::pending)
                continue;
            const auto& m = o.migrations.items()[static_cast<std::size_t>(s.version - 1)];
            if (run_migration(h, m, true, o.path)) {
                applied_now.push_back(m.version);
                log(o, log_level::info, fmt::format("Applied migration {} to '{}'.", m.source, o.path));
            }
        }
        report.migrations = compare_state(o.migrations, read_ledger(h, o.path));
        refuse_inconsistent(report.migrations, o.migrations, o.path); // another migrator may be newer
        for (auto& s : report.migrations)
            s.applied_now = std::find(applied_now.begin(), applied_now.end(), s.version) != applied_now.end();
    });

    // 6b. Foreign keys, after the migrations. A caller that migrates after boot (dbtool migrate) checks after
    // its own migrations instead: checked here, a violation a pending migration repairs would block it.
    auto check_foreign_keys = [&] {
        std::vector<std::string> first;
        try {
            report.foreign_key_violations = foreign_key_violations(h, first, 5);
        }
        catch (const error& e) {
            throw error(e.value(),
                        fmt::format("Boot of '{}' failed at step 'foreign_key_check': {}", o.path, e.what()),
                        e.sqlite_code());
        }
        if (report.foreign_key_violations > 0 && !o.read_only)
            throw error(
                errc::foreign_key_violation,
                fmt::format("Boot of '{}' failed at step 'foreign_key_check': {} row(s) refer to missing "
                            "parent rows, e.g. {}. Fix the data (delete or re-point those rows) in a "
                            "migration or with dbtool, then boot again.",
                            o.path,
                            report.foreign_key_violations,
                            fmt::join(first, "; ")));
    };
    if (o.check_foreign_keys)
        step("foreign_key_check", check_foreign_keys);
    else
        report.steps.emplace_back("foreign_key_check (skipped)", std::chrono::microseconds(0));

    try {
        report.schema_version = std::stoll(text_value(h, "PRAGMA user_version"));
    }
    catch (const SQLite::Exception& e) {
        throw sqlite_failure(e, errc::open_failed, "");
    }
    report.total = std::chrono::duration_cast<std::chrono::microseconds>(clock::now() - t0);
}

} // namespace

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
