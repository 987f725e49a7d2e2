// I/O error sweeps (fault VFS: write error, fsync error, disk full, at every point N) outside a request:
// during a migration, during the boot of an existing database, and during close() (PRAGMA optimize and the
// final checkpoint). Each case prints one line of figures per fault kind.
#include "common.hpp"
#include "vfs.hpp"

#include <SQLiteCpp/Exception.h>
#include <fmt/format.h>

#include <filesystem>
#include <mutex>
#include <set>

using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

using rel::since;

using rel::fault_vfs::kind_name;

enum class phase
{
    migration,            ///< boot of a v2 database with two pending migrations that do real work
    wal_conversion,       ///< boot of an existing rollback-journal database: boot switches it to WAL
    hot_rollback_journal, ///< boot of a database that crashed mid-transaction in rollback-journal mode
    hot_wal,  ///< boot of a WAL database whose last commits are only in the -wal (not checkpointed)
    shutdown, ///< close() after acknowledged writes: PRAGMA optimize and the final checkpoint
};

const char* phase_name(phase p)
{
    switch (p) {
    case phase::migration: return "migration";
    case phase::wal_conversion: return "boot_wal_conversion";
    case phase::hot_rollback_journal: return "boot_hot_rollback_journal";
    case phase::hot_wal: return "boot_hot_wal";
    case phase::shutdown: return "shutdown";
    }
    return "?";
}

constexpr int base_requests = 30; // in every database before the phase: requests 1..30, 3 rows each

// The two pending migrations of the migration phase, each checkable: fully there, or fully absent.
const std::vector<std::pair<std::string, std::string>> pending = {
    {"0003_fill.sql",
     "CREATE TABLE fill(id INTEGER PRIMARY KEY, w TEXT NOT NULL);\n"
     "INSERT INTO fill(id, w)\n"
     "  WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < 300)\n"
     "  SELECT i, printf('%04d', i) || hex(randomblob(100)) FROM r;\n"
     "CREATE INDEX fill_w ON fill(w);\n"},
    {"0004_extra.sql",
     "ALTER TABLE acks ADD COLUMN extra TEXT NOT NULL DEFAULT '';\n"
     "UPDATE acks SET extra = hex(randomblob(60));\n"
     "CREATE INDEX acks_extra ON acks(extra);\n"},
};

dbactor::migration_set migrations_for(phase p)
{
    std::vector<std::pair<std::string, std::string>> files;
    const auto schema = rel::schema();
    for (const auto& m : schema.items())
        files.emplace_back(fmt::format("{:04}_{}.sql", m.version, m.name), m.up_sql);
    if (p == phase::migration)
        files.insert(files.end(), pending.begin(), pending.end());
    return dbactor::migration_set::from_files(files, "reliability");
}

void insert_requests(dbactor::connection& c, std::int64_t from, std::int64_t to)
{
    for (std::int64_t r = from; r <= to; ++r)
        for (int part = 0; part < rel::rows_per_request; ++part)
            c.execute(
                "INSERT INTO acks(req, part, payload) VALUES (?, ?, ?)", r, part, std::string(300, 'b'));
}

/// Builds the database the phase starts from in `dir` (default VFS).
void prepare(phase p, const test::temp_dir& dir)
{
    dbactor::options o;
    o.path = dir.db();
    o.migrations = migrations_for(phase::wal_conversion); // the suite's schema, v2
    o.on_log = [](dbactor::log_level, std::string_view) {};
    if (p == phase::shutdown)
        return; // the phase makes its own, through the fault VFS
    {
        auto db = dbactor::database::open(std::move(o));
        db.write([](dbactor::connection& c) { insert_requests(c, 1, base_requests); });
        db.close();
    }
    if (p == phase::wal_conversion || p == phase::hot_rollback_journal) {
        rel::raw_db raw(dir.db());
        REQUIRE(raw.column("PRAGMA journal_mode=DELETE") == std::vector<std::string>{"delete"});
    }
    if (p == phase::hot_rollback_journal) {
        // A transaction that spilled pages into the main file (tiny cache), copied while it is open: the copy
        // is what a crash leaves, a main file with uncommitted pages and the hot journal that undoes them.
        const auto crashed = dir.file("crashed.sqlite");
        {
            rel::raw_db raw(dir.db());
            raw.exec("PRAGMA cache_size=2");
            REQUIRE(raw.exec("BEGIN IMMEDIATE") == SQLITE_OK);
            for (int r = 0; r < 40; ++r)
                REQUIRE(
                    raw.exec(fmt::format("INSERT INTO acks VALUES ({}, 0, '{}'), ({}, 1, 'x'), ({}, 2, 'x')",
                                         10000 + r,
                                         std::string(2000, 'u'),
                                         10000 + r,
                                         10000 + r)) == SQLITE_OK);
            REQUIRE(rel::exists(dir.db() + "-journal"));
            fs::copy_file(dir.db(), crashed);
            fs::copy_file(dir.db() + "-journal", crashed + "-journal");
            raw.exec("ROLLBACK");
        }
        fs::rename(crashed, dir.db());
        fs::rename(crashed + "-journal", dir.db() + "-journal");
    }
    if (p == phase::hot_wal) {
        // Commits that only the -wal holds: a connection that closes without checkpointing.
        rel::raw_db raw(dir.db());
        REQUIRE(sqlite3_db_config(raw.get(), SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, nullptr) == SQLITE_OK);
        raw.exec("PRAGMA wal_autocheckpoint=0");
        for (int r = 0; r < 10; ++r)
            REQUIRE(raw.exec(fmt::format("INSERT INTO acks VALUES ({}, 0, 'w'), ({}, 1, 'w'), ({}, 2, 'w')",
                                         20000 + r,
                                         20000 + r,
                                         20000 + r)) == SQLITE_OK);
    }
}

/// Copies the prepared files of `from` into `to` (main file, and a -journal or -wal when there is one).
void copy_prepared(const test::temp_dir& from, const test::temp_dir& to)
{
    for (const char* suffix : {"", "-journal", "-wal"})
        if (rel::exists(from.db() + suffix))
            fs::copy_file(from.db() + suffix, to.db() + suffix);
}

/// The requests a phase's database must hold afterwards, each with all its rows.
std::set<std::int64_t> committed_before(phase p)
{
    std::set<std::int64_t> s;
    for (std::int64_t r = 1; r <= base_requests; ++r)
        s.insert(r);
    if (p == phase::hot_wal)
        for (std::int64_t r = 20000; r < 20010; ++r)
            s.insert(r);
    return s;
}

struct totals
{
    long points = 0, injected = 0, failed = 0, untyped = 0, booted_despite_fault = 0, partial = 0, lost = 0,
         not_serving = 0, reopen_failed = 0, torn_migrations = 0, close_threw = 0, close_logged = 0,
         close_unreported = 0, wal_left = 0;
    std::string first_problem, first_error;
};

/// How the caller was told: a dbactor::error is typed; an SQLite::Exception or anything else is not (boot and
/// close report through dbactor::error only).
bool typed(const std::exception_ptr& e, std::string& text)
{
    try {
        std::rethrow_exception(e);
    }
    catch (const dbactor::error& x) {
        text = fmt::format("dbactor::error({}) {}", static_cast<int>(x.value()), x.what());
        return true;
    }
    catch (const std::exception& x) {
        text = std::string("untyped: ") + x.what();
    }
    catch (...) {
        text = "untyped: unknown exception";
    }
    return false;
}

struct log_capture
{
    std::mutex m;
    std::vector<std::string> warnings; // warning and error lines
    std::function<void(dbactor::log_level, std::string_view)> hook()
    {
        return [this](dbactor::log_level l, std::string_view msg) {
            if (l == dbactor::log_level::warning || l == dbactor::log_level::error) {
                std::lock_guard lock(m);
                warnings.emplace_back(msg);
            }
        };
    }
    std::size_t count()
    {
        std::lock_guard lock(m);
        return warnings.size();
    }
};

/// Each migration of the migration phase is fully there or fully absent, and agrees with ledger and
/// user_version. Returns "" when consistent, else what is wrong. Read-only: any -wal stays for the reboot.
std::string migration_consistency(const std::string& path)
{
    rel::raw_db raw(path, SQLITE_OPEN_READONLY);
    const auto ledger = raw.scalar("SELECT count(*) FROM dbactor_migrations");
    const auto version = raw.scalar("PRAGMA user_version");
    if (version != ledger || raw.scalar("SELECT coalesce(max(version), 0) FROM dbactor_migrations") != ledger)
        return fmt::format("ledger has {} rows, user_version is {}", ledger, version);
    auto count = [&](const std::string& sql) { return raw.scalar(sql); };
    const bool fill_table = count("SELECT count(*) FROM sqlite_master WHERE name = 'fill'") == 1;
    const bool fill_index = count("SELECT count(*) FROM sqlite_master WHERE name = 'fill_w'") == 1;
    const bool v3_there = fill_table && fill_index && count("SELECT count(*) FROM fill") == 300;
    const bool v3_absent = !fill_table && !fill_index;
    const bool extra_col = count("SELECT count(*) FROM pragma_table_info('acks') WHERE name = 'extra'") == 1;
    const bool extra_index = count("SELECT count(*) FROM sqlite_master WHERE name = 'acks_extra'") == 1;
    const bool v4_there =
        extra_col && extra_index &&
        count(fmt::format("SELECT count(*) FROM acks WHERE req <= {} AND extra = ''", base_requests)) == 0;
    const bool v4_absent = !extra_col && !extra_index;
    if (!(v3_there || v3_absent) || !(v4_there || v4_absent))
        return fmt::format("a migration is partly applied (0003 {}, 0004 {})",
                           v3_there    ? "there"
                           : v3_absent ? "absent"
                                       : "partial",
                           v4_there    ? "there"
                           : v4_absent ? "absent"
                                       : "partial");
    if (v3_there != (ledger >= 3) || v4_there != (ledger >= 4))
        return fmt::format("the schema disagrees with the ledger ({} rows)", ledger);
    return "";
}

void run_point(phase p, const test::temp_dir& prepared, rel::fault_vfs::kind k, long n, totals& t)
{
    test::temp_dir dir;
    copy_prepared(prepared, dir);
    auto problem = [&](std::string what) {
        if (t.first_problem.empty())
            t.first_problem = fmt::format("{} at point {}: {}", kind_name(k), n, std::move(what));
    };
    log_capture logs;
    dbactor::options o;
    o.path = dir.db();
    o.vfs = rel::fault_vfs::name;
    o.synchronous = dbactor::synchronous_mode::full;
    o.migrations = migrations_for(p);
    o.on_log = logs.hook();
    std::set<std::int64_t> must_have = committed_before(p);
    ++t.points;

    std::exception_ptr failure;
    bool injected = false;
    // A failure (of open or close) must be typed; the first one's text goes into the report.
    auto count_failure = [&] {
        if (!failure)
            return;
        ++t.failed;
        std::string text;
        if (!typed(failure, text)) {
            ++t.untyped;
            problem(text);
        }
        if (t.first_error.empty())
            t.first_error = text;
    };
    if (p == phase::shutdown) {
        auto db = dbactor::database::open(std::move(o));
        db.write([](dbactor::connection& c) { insert_requests(c, 1, base_requests); });
        // More acknowledged writes, each its own commit, so that the final checkpoint has pages to copy.
        for (std::int64_t r = 100; r < 110; ++r) {
            db.write([r](dbactor::connection& c) { insert_requests(c, r, r); });
            must_have.insert(r);
        }
        const auto before = logs.count();
        rel::fault_vfs::arm(k, n, k == rel::fault_vfs::kind::full);
        try {
            db.close();
        }
        catch (...) {
            failure = std::current_exception();
        }
        injected = rel::fault_vfs::injected() > 0;
        rel::fault_vfs::disarm();
        const bool logged = logs.count() > before;
        t.wal_left += rel::exists(dir.db() + "-wal"); // a failed final checkpoint leaves it for the next boot
        if (injected) {
            ++t.injected;
            t.close_threw += failure != nullptr;
            t.close_logged += logged;
            if (!failure && !logged) {
                ++t.close_unreported;
                problem("close() neither reported nor logged the injected failure");
            }
        }
        count_failure();
    }
    else {
        rel::fault_vfs::arm(k, n, k == rel::fault_vfs::kind::full);
        dbactor::database db; // a handle to nothing until open succeeds
        try {
            db = dbactor::database::open(std::move(o));
        }
        catch (...) {
            failure = std::current_exception();
        }
        injected = rel::fault_vfs::injected() > 0;
        rel::fault_vfs::disarm();
        t.injected += injected;
        count_failure();
        if (!failure) {
            t.booted_despite_fault += injected;
            // Booted: it serves a read and a write, and closes.
            try {
                (void)db.read([](dbactor::connection& c) {
                    return c.query_one<std::int64_t>("SELECT count(*) FROM acks");
                });
                db.write([](dbactor::connection& c) { insert_requests(c, 30000, 30000); });
                must_have.insert(30000);
                db.close();
            }
            catch (const std::exception& e) {
                ++t.not_serving;
                problem(std::string("booted, but then: ") + e.what());
            }
        }
        db = dbactor::database{};
    }

    // Before any reboot: each migration is wholly there or wholly absent (migration phase).
    if (p == phase::migration) {
        try {
            if (auto bad = migration_consistency(dir.db()); !bad.empty()) {
                ++t.torn_migrations;
                problem(bad);
            }
        }
        catch (const std::exception& e) {
            ++t.torn_migrations;
            problem(std::string("reading the migration state failed: ") + e.what());
        }
    }

    // A reboot with the default VFS succeeds (applying whatever is still pending), the database is sound, and
    // every committed or acknowledged request is there in full.
    try {
        dbactor::options again;
        again.path = dir.db();
        again.migrations = migrations_for(p);
        again.integrity_check = dbactor::check_level::full;
        again.on_log = [](dbactor::log_level, std::string_view) {};
        auto db = dbactor::database::open(std::move(again));
        const auto counts = db.read([](dbactor::connection& c) {
            return c.query<std::tuple<std::int64_t, std::int64_t>>(
                "SELECT req, count(*) FROM acks GROUP BY req");
        });
        const auto version =
            db.read([](dbactor::connection& c) { return *c.query_one<std::int64_t>("PRAGMA user_version"); });
        db.close();
        std::set<std::int64_t> present;
        for (auto [req, rows] : counts) {
            present.insert(req);
            if (rows != rel::rows_per_request) {
                ++t.partial;
                problem(fmt::format("request {} has {} of {} rows", req, rows, rel::rows_per_request));
            }
        }
        for (auto req : must_have)
            if (!present.contains(req)) {
                ++t.lost;
                problem(fmt::format("committed request {} is missing", req));
            }
        if (version != migrations_for(p).latest_version()) {
            ++t.reopen_failed;
            problem(fmt::format("after the reboot user_version is {}", version));
        }
        if (const auto ok = rel::integrity(dir.db()); ok != "ok") {
            ++t.reopen_failed;
            problem("integrity_check: " + ok);
        }
    }
    catch (const std::exception& e) {
        ++t.reopen_failed;
        problem(std::string("reboot with the default VFS failed: ") + e.what());
    }
}

/// Operations of kind `k` in the phase's armed part (the boot, or close()) when nothing fails.
long calibrate(phase p, const test::temp_dir& prepared, rel::fault_vfs::kind k)
{
    test::temp_dir dir;
    copy_prepared(prepared, dir);
    dbactor::options o;
    o.path = dir.db();
    o.vfs = rel::fault_vfs::name;
    o.synchronous = dbactor::synchronous_mode::full;
    o.migrations = migrations_for(p);
    o.on_log = [](dbactor::log_level, std::string_view) {};
    long ops = 0;
    if (p == phase::shutdown) {
        auto db = dbactor::database::open(std::move(o));
        db.write([](dbactor::connection& c) { insert_requests(c, 1, base_requests); });
        for (std::int64_t r = 100; r < 110; ++r)
            db.write([r](dbactor::connection& c) { insert_requests(c, r, r); });
        rel::fault_vfs::count_from_now();
        db.close();
        ops = rel::fault_vfs::seen(k);
    }
    else {
        rel::fault_vfs::count_from_now();
        auto db = dbactor::database::open(std::move(o));
        ops = rel::fault_vfs::seen(k);
        db.close();
    }
    return ops;
}

void sweep(phase p)
{
    rel::fault_vfs::install();
    test::temp_dir prepared;
    prepare(p, prepared);
    for (auto k : {rel::fault_vfs::kind::write, rel::fault_vfs::kind::sync, rel::fault_vfs::kind::full}) {
        const auto t0 = std::chrono::steady_clock::now();
        const long ops = calibrate(p, prepared, k);
        totals t;
        const long stride = std::max(1L, static_cast<long>(1.0 / std::min(1.0, rel::scale())));
        for (long n = 1; n <= ops + 1; n += (n < 8 ? 1 : stride))
            run_point(p, prepared, k, n, t);
        rel::report(fmt::format("io_error_sweep_{}_{}", kind_name(k), phase_name(p)),
                    {rel::num("operations", std::int64_t(ops)),
                     rel::num("points", std::int64_t(t.points)),
                     rel::num("points_injected", std::int64_t(t.injected)),
                     rel::num("failed", std::int64_t(t.failed)),
                     rel::num("untyped_errors", std::int64_t(t.untyped)),
                     rel::num("booted_despite_fault", std::int64_t(t.booted_despite_fault)),
                     rel::num("torn_migrations", std::int64_t(t.torn_migrations)),
                     rel::num("partial_requests", std::int64_t(t.partial)),
                     rel::num("lost_committed", std::int64_t(t.lost)),
                     rel::num("not_serving_after", std::int64_t(t.not_serving)),
                     rel::num("reboot_failures", std::int64_t(t.reopen_failed)),
                     rel::num("close_threw", std::int64_t(t.close_threw)),
                     rel::num("close_logged", std::int64_t(t.close_logged)),
                     rel::num("close_unreported", std::int64_t(t.close_unreported)),
                     rel::num("wal_left_after_close", std::int64_t(t.wal_left)),
                     rel::str("first_error", t.first_error.substr(0, 160)),
                     rel::num("seconds", since(t0))});
        INFO(phase_name(p) << ", " << kind_name(k) << ": " << ops << " operations; first problem: "
                           << t.first_problem << "; first error: " << t.first_error);
        CHECK(t.untyped == 0);
        CHECK(t.torn_migrations == 0);
        CHECK(t.partial == 0);
        CHECK(t.lost == 0);
        CHECK(t.not_serving == 0);
        CHECK(t.reopen_failed == 0);
        CHECK(t.close_unreported == 0);
        if (ops > 0)
            CHECK(t.injected > 0);
        if (p == phase::migration)
            CHECK(ops > 0); // the migration really writes and syncs
    }
}

} // namespace

TEST_CASE("an I/O error at any point of a migration fails open with a typed error, and each migration is "
          "wholly applied or absent",
          "[faults][boot]")
{
    sweep(phase::migration);
}

TEST_CASE("an I/O error at any point of the boot of an existing database fails open with a typed error and "
          "loses nothing",
          "[faults][boot]")
{
    for (auto p : {phase::wal_conversion, phase::hot_rollback_journal, phase::hot_wal})
        sweep(p);
}

TEST_CASE("an I/O error at any point of close() loses no acknowledged write and is reported or logged",
          "[faults][shutdown]")
{
    sweep(phase::shutdown);
}
