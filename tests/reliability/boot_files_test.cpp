// Boot-time reliability: bad files, read-only media, locks, bad migrations, a long reader next to the writer,
// and a full disk (tmpfs and RLIMIT_FSIZE). Each case prints one line of figures.
#include "common.hpp"

#include <SQLiteCpp/Exception.h>
#include <fmt/format.h>

#include <filesystem>
#include <regex>
#include <thread>

#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

using rel::since;

dbactor::options base_options(const std::string& path)
{
    dbactor::options o;
    o.path = path;
    o.synchronous = dbactor::synchronous_mode::normal;
    o.migrations = rel::schema();
    o.on_log = [](dbactor::log_level, std::string_view) {};
    return o;
}

/// A closed, checkpointed database of the suite's schema holding `requests` requests (WAL gone).
void make_database(const std::string& path, int requests, std::size_t payload = 200)
{
    auto db = dbactor::database::open(base_options(path));
    db.write([&](dbactor::connection& c) {
        for (int r = 1; r <= requests; ++r)
            for (int part = 0; part < rel::rows_per_request; ++part)
                c.execute("INSERT INTO acks VALUES (?, ?, ?)",
                          r,
                          part,
                          std::string(payload, static_cast<char>('a' + r % 26)));
    });
    db.close();
}

/// What open did: the errc it failed with (nullopt when it booted) and its message.
struct boot_result
{
    std::optional<dbactor::errc> code;
    std::string message;
    double seconds = 0;
};

boot_result try_boot(dbactor::options o)
{
    boot_result r;
    const auto t0 = std::chrono::steady_clock::now();
    try {
        auto db = dbactor::database::open(std::move(o));
        db.close();
    }
    catch (const dbactor::error& e) {
        r.code = e.value();
        r.message = e.what();
    }
    r.seconds = since(t0);
    return r;
}

std::string errc_name(const std::optional<dbactor::errc>& c)
{
    return c ? dbactor::make_error_code(*c).message() : std::string("booted");
}

std::vector<std::string> schema_of(const std::string& path)
{
    rel::raw_db db(path, SQLITE_OPEN_READONLY);
    return db.column("SELECT type || ' ' || name || ' ' || coalesce(sql, '') FROM sqlite_master ORDER BY 1");
}

} // namespace

// ---- 5. bad files -----------------------------------------------------------------------------------------

namespace {

void bad_files(bool only_wal)
{
    struct bad
    {
        std::string name;
        std::function<void(const test::temp_dir&)> make;
        std::vector<dbactor::errc> expected; // empty: boots
        bool create = true;
    };
    const std::vector<bad> cases = {
        {"text_file",
         [](const test::temp_dir& d) { rel::spit(d.db(), std::string(5000, 'x') + "\nnot a database\n"); },
         {dbactor::errc::not_a_database}},
        {"truncated",
         [](const test::temp_dir& d) {
             make_database(d.db(), 300);
             auto bytes = rel::slurp(d.db());
             rel::spit(d.db(), bytes.substr(0, bytes.size() / 2));
         },
         {dbactor::errc::integrity_check_failed}},
        {"damaged_header",
         [](const test::temp_dir& d) {
             make_database(d.db(), 50);
             auto bytes = rel::slurp(d.db());
             for (int i = 0; i < 16; ++i)
                 bytes[static_cast<std::size_t>(i)] = static_cast<char>(0xA5);
             rel::spit(d.db(), bytes);
         },
         {dbactor::errc::not_a_database}},
        {"damaged_interior_page",
         [](const test::temp_dir& d) {
             make_database(d.db(), 300);
             auto bytes = rel::slurp(d.db());
             const std::size_t page = 4096, at = page * (bytes.size() / page / 2);
             for (std::size_t i = 0; i < 200; ++i)
                 bytes[at + 8 + i] = static_cast<char>(0xFF - i);
             rel::spit(d.db(), bytes);
         },
         {dbactor::errc::integrity_check_failed}},
        {"zero_length", [](const test::temp_dir& d) { rel::spit(d.db(), ""); }, {}},
        {"directory",
         [](const test::temp_dir& d) { fs::create_directory(d.db()); },
         {dbactor::errc::open_failed}},
        {"missing_without_create", [](const test::temp_dir&) {}, {dbactor::errc::open_failed}, false},
        {"mismatched_wal",
         [](const test::temp_dir& d) {
             // The -wal of another database (same page size) next to this one.
             make_database(d.db(), 20);
             const auto other = d.file("other.sqlite");
             {
                 rel::raw_db raw(other, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
                 raw.exec(
                     "PRAGMA journal_mode=WAL; CREATE TABLE foreign_t(x); INSERT INTO foreign_t VALUES (1);");
                 fs::copy_file(other + "-wal", d.db() + "-wal");
                 // closing `raw` checkpoints and removes its own WAL; the copy stays
             }
         },
         {dbactor::errc::integrity_check_failed}},
    };
    for (const auto& c : cases) {
        if ((c.name == "mismatched_wal") != only_wal)
            continue;
        test::temp_dir dir;
        c.make(dir);
        const bool was_there = rel::exists(dir.db());
        const bool existed = was_there && fs::is_regular_file(dir.db());
        const auto before = existed ? rel::slurp(dir.db()) : std::string();
        auto o = base_options(dir.db());
        o.create = c.create;
        const auto r = try_boot(std::move(o));
        const bool unchanged = !existed || rel::slurp(dir.db()) == before;
        bool right =
            c.expected.empty()
                ? !r.code
                : (r.code && std::find(c.expected.begin(), c.expected.end(), *r.code) != c.expected.end());
        std::int64_t rows_after = -1;
        if (c.name == "mismatched_wal") {
            // Refused, the database's own rows are intact: without the foreign -wal it boots with all of
            // them.
            std::error_code ec;
            fs::remove(dir.db() + "-wal", ec);
            fs::remove(dir.db() + "-shm", ec);
            auto db = dbactor::database::open(base_options(dir.db()));
            rows_after = db.read([](dbactor::connection& conn) {
                return *conn.query_one<std::int64_t>("SELECT count(*) FROM acks");
            });
            db.close();
            CHECK(rows_after == 20 * rel::rows_per_request);
        }
        rel::report("bad_file_" + c.name,
                    {rel::str("errc", errc_name(r.code)),
                     rel::flag("right_errc", right),
                     rel::flag("main_file_unchanged", unchanged),
                     rel::flag("created", !was_there && rel::exists(dir.db())),
                     rel::num("rows_after_boot", rows_after),
                     rel::num("seconds", r.seconds)});
        INFO(c.name << ": " << errc_name(r.code) << ": " << r.message << " (rows after boot " << rows_after
                    << ")");
        CHECK(right);
        if (r.code) {
            CHECK(unchanged);
            CHECK(!r.message.empty());
        }
        if (c.name == "missing_without_create")
            CHECK_FALSE(rel::exists(dir.db()));
    }
}

} // namespace

TEST_CASE("a bad file at boot fails with the right errc and leaves the main file byte-for-byte unchanged",
          "[boot][files]")
{
    bad_files(false);
}

// Found by this suite (fixed in 81eb1b6): SQLite replays any -wal whose frames are valid, and boot used to
// migrate the foreign schema it saw (no ledger) as if the database were new, losing the database's own rows.
TEST_CASE("a -wal of another database next to the file is refused, not replayed over its data",
          "[boot][files]")
{
    bad_files(true);
}

// ---- 6. read-only media, locks ----------------------------------------------------------------------------

namespace {

/// Boots the database in a child process (reliability_writer probe), as `uid` when given: "R <rows>" when it
/// booted and read the table, or "E <errc> <message>".
struct probe_result
{
    std::optional<int> errc; // nullopt: booted
    std::int64_t rows = -1;
    std::string line;
};

probe_result probe(const std::string& path, bool read_only, std::optional<uid_t> uid)
{
    std::vector<std::string> args = {path, "normal", "1", "probe", "1", read_only ? "ro" : "rw"};
    if (uid)
        args.push_back(std::to_string(*uid));
    rel::child w(DBACTOR_RELIABILITY_WRITER, args);
    probe_result r;
    auto line = w.read_line(20s);
    INFO("the probe did not report within 20 s");
    REQUIRE(line);
    r.line = *line;
    if (line->rfind("E ", 0) == 0)
        r.errc = std::stoi(line->substr(2));
    else if (line->rfind("R ", 0) == 0)
        r.rows = std::stoll(line->substr(2));
    w.wait(10s);
    return r;
}

} // namespace

// Permissions are not honoured for root, so as root the probe switches to an unprivileged uid (nobody) on
// files it owns: the same situation as a service user whose database was made read-only.
TEST_CASE("a read-only database file or directory fails to boot with open_failed and is not changed, and "
          "read_only boots it",
          "[boot][files]")
{
    const bool root = geteuid() == 0;
    const std::optional<uid_t> as = root ? std::optional<uid_t>(65534) : std::nullopt;
    std::vector<rel::figure> figures{rel::flag("as_root_switched_to_nobody", root)};
    for (const char* what : {"file", "directory"}) {
        test::temp_dir dir;
        const auto sub = dir.file("d");
        fs::create_directory(sub);
        const auto db = sub + "/db.sqlite";
        make_database(db, 20);
        if (root) {
            ::chmod(dir.path().c_str(), 0755); // mkdtemp made it 0700
            REQUIRE(::chown(sub.c_str(), *as, *as) == 0);
            REQUIRE(::chown(db.c_str(), *as, *as) == 0);
        }
        const bool file = std::string(what) == "file";
        REQUIRE(::chmod(file ? db.c_str() : sub.c_str(), file ? 0444 : 0555) == 0);
        const auto before = rel::slurp(db);
        const auto r = probe(db, false, as);
        const auto r2 = probe(db, true, as);
        const bool unchanged = rel::slurp(db) == before;
        const bool no_files = !rel::exists(db + "-wal") && !rel::exists(db + "-shm");
        ::chmod(sub.c_str(), 0755); // so that temp_dir can remove it
        figures.push_back(rel::str(std::string(what) + "_boot", r.line.substr(0, 120)));
        figures.push_back(rel::str(std::string(what) + "_read_only_boot", r2.line.substr(0, 120)));
        figures.push_back(rel::flag(std::string(what) + "_unchanged", unchanged));
        INFO(what << ": boot said: " << r.line << "; read_only boot said: " << r2.line);
        CHECK(r.errc == static_cast<int>(dbactor::errc::open_failed));
        CHECK(unchanged);
        CHECK(!r2.errc);
        CHECK(r2.rows == 20 * rel::rows_per_request);
        if (!file)
            CHECK(no_files); // nothing could be created next to it, and nothing was
    }
    rel::report("read_only_file_and_directory", figures);
}

// Root only (a bind mount needs CAP_SYS_ADMIN): otherwise it exits 77, which ctest reports as skipped.
TEST_CASE("a database on a read-only mount fails to boot with open_failed and is not changed, and read_only "
          "boots it",
          "[.][rofs]")
{
    test::temp_dir dir;
    fs::create_directory(dir.file("rw"));
    fs::create_directory(dir.file("ro"));
    const auto rw_db = dir.file("rw") + "/db.sqlite";
    make_database(rw_db, 20);
    if (geteuid() != 0 ||
        mount(dir.file("rw").c_str(), dir.file("ro").c_str(), nullptr, MS_BIND, nullptr) != 0 ||
        mount(nullptr, dir.file("ro").c_str(), nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY, nullptr) != 0) {
        umount2(dir.file("ro").c_str(), MNT_DETACH);
        std::printf("SKIPPED: a read-only bind mount needs root (CAP_SYS_ADMIN); "
                    "the chmod variant covers non-root users\n");
        rel::report("read_only_mount", {rel::flag("skipped", true)});
        std::fflush(stdout);
        std::error_code ignored;
        fs::remove_all(dir.path(), ignored); // _Exit skips the destructors
        std::_Exit(77);                      // ctest SKIP_RETURN_CODE
    }
    struct unmount
    {
        std::string p;
        ~unmount() { umount2(p.c_str(), MNT_DETACH); }
    } guard{dir.file("ro")};
    const auto ro_db = dir.file("ro") + "/db.sqlite";
    const auto before = rel::slurp(ro_db);
    const auto r = try_boot(base_options(ro_db));
    auto ro = base_options(ro_db);
    ro.read_only = true;
    ro.apply_migrations = false;
    std::int64_t rows = -1;
    std::string r2_message;
    try {
        auto db = dbactor::database::open(std::move(ro));
        rows = db.read(
            [](dbactor::connection& c) { return *c.query_one<std::int64_t>("SELECT count(*) FROM acks"); });
        db.close();
    }
    catch (const std::exception& e) {
        r2_message = e.what();
    }
    rel::report("read_only_mount",
                {rel::str("errc", errc_name(r.code)),
                 rel::str("read_only_option", r2_message.empty() ? "booted" : r2_message),
                 rel::num("read_only_rows", rows),
                 rel::flag("main_file_unchanged", rel::slurp(ro_db) == before),
                 rel::num("seconds", r.seconds)});
    INFO(r.message << " / read_only boot: " << r2_message);
    CHECK((r.code && *r.code == dbactor::errc::open_failed));
    CHECK(r.seconds < 10);
    CHECK(rel::slurp(ro_db) == before);
    CHECK(r2_message.empty());
    CHECK(rows == 20 * rel::rows_per_request);
}

TEST_CASE("a database locked by another process fails with busy in bounded time, or boots once released",
          "[boot][lock]")
{
    test::temp_dir dir;
    make_database(dir.db(), 10);
    // A pending migration: boot needs the write lock.
    auto with_v3 = [&](std::chrono::milliseconds busy) {
        auto o = base_options(dir.db());
        auto files = std::vector<std::pair<std::string, std::string>>{};
        const auto set = rel::schema();
        for (const auto& m : set.items())
            files.emplace_back(fmt::format("{:04}_{}.sql", m.version, m.name), m.up_sql);
        files.emplace_back("0003_more.sql", "CREATE TABLE more(x);\n");
        o.migrations = dbactor::migration_set::from_files(files, "reliability");
        o.busy_timeout = busy;
        return o;
    };
    std::vector<rel::figure> figures;
    for (const char* mode : {"write", "exclusive"}) {
        rel::child holder(DBACTOR_RELIABILITY_LOCK_HOLDER, {dir.db(), mode}, true);
        auto l = holder.read_line(10s);
        REQUIRE((l && *l == "L"));
        const auto r = try_boot(with_v3(500ms));
        INFO(mode << ": " << r.message);
        CHECK((r.code && *r.code == dbactor::errc::busy));
        CHECK(r.seconds < 3.0);
        figures.push_back(rel::num(std::string(mode) + "_lock_busy_seconds", r.seconds));
        figures.push_back(rel::str(std::string(mode) + "_lock_errc", errc_name(r.code)));
        holder.close_stdin();
        REQUIRE(holder.wait(5s));
    }
    {
        // Released 300 ms (by the test's clock) into a 5 s busy_timeout: boot waits, then succeeds.
        rel::child holder(DBACTOR_RELIABILITY_LOCK_HOLDER, {dir.db(), "write"}, true);
        auto l = holder.read_line(10s);
        REQUIRE((l && *l == "L"));
        auto booting = std::async(std::launch::async, [&] { return try_boot(with_v3(5000ms)); });
        const auto until = std::chrono::steady_clock::now() + 300ms;
        while (std::chrono::steady_clock::now() < until && booting.wait_for(0s) != std::future_status::ready)
            std::this_thread::yield();
        holder.close_stdin();
        REQUIRE(booting.wait_for(10s) == std::future_status::ready);
        const auto r = booting.get();
        INFO(r.message);
        CHECK(!r.code);
        CHECK(r.seconds >= 0.25); // it really waited for the lock (released 300 ms in)
        figures.push_back(rel::num("released_in_time_boot_seconds", r.seconds));
        figures.push_back(rel::str("released_in_time_errc", errc_name(r.code)));
    }
    rel::report("locked_at_boot", figures);
}

// ---- 7. bad migrations ------------------------------------------------------------------------------------

TEST_CASE("a bad migration is rolled back: version and schema unchanged, file:line:column in the message",
          "[boot][migrations]")
{
    struct bad
    {
        std::string name;
        std::string file; // 0003_<file>.sql, or an edited 0001
        std::string text;
        std::vector<dbactor::errc> expected;
        int line; // expected line in the message, 0 = not checked
    };
    const std::vector<bad> cases = {
        {"syntax_error",
         "0003_bad.sql",
         "CREATE TABLE ok1(x);\nCREATE TABLE bad(x INTEGER,, y);\n",
         {dbactor::errc::migration_failed},
         2},
        {"runtime_error",
         "0003_bad.sql",
         "CREATE TABLE ok1(x);\nINSERT INTO acks VALUES (999, 0, 'a');\n  INSERT INTO acks VALUES (999, 0, "
         "'b');\n",
         {dbactor::errc::migration_failed},
         3},
        {"foreign_key_violation",
         "0003_bad.sql",
         "CREATE TABLE p(id INTEGER PRIMARY KEY);\nCREATE TABLE c(p INTEGER REFERENCES p(id));\nINSERT INTO "
         "c VALUES (5);\n",
         {dbactor::errc::migration_failed, dbactor::errc::foreign_key_violation},
         3},
        {"foreign_key_violation_fk_off",
         "0003_bad.sql",
         "-- dbactor: foreign-keys=off\nCREATE TABLE p(id INTEGER PRIMARY KEY);\nCREATE TABLE c(p INTEGER "
         "REFERENCES p(id));\n"
         "INSERT INTO c VALUES (5);\n",
         {dbactor::errc::foreign_key_violation},
         0},
        {"edited_applied_file",
         "0001_acks.sql",
         "CREATE TABLE acks(req INTEGER, part INTEGER, payload TEXT);\n",
         {dbactor::errc::migration_modified},
         0},
    };
    for (const auto& c : cases) {
        test::temp_dir dir;
        make_database(dir.db(), 10);
        const auto schema_before = schema_of(dir.db());
        std::int64_t version_before, ledger_before, rows_before;
        {
            rel::raw_db raw(dir.db(), SQLITE_OPEN_READONLY);
            version_before = raw.scalar("PRAGMA user_version");
            ledger_before = raw.scalar("SELECT count(*) FROM dbactor_migrations");
            rows_before = raw.scalar("SELECT count(*) FROM acks");
        }
        std::vector<std::pair<std::string, std::string>> files;
        const auto set = rel::schema();
        for (const auto& m : set.items()) {
            const auto name = fmt::format("{:04}_{}.sql", m.version, m.name);
            files.emplace_back(name, name == c.file ? c.text : m.up_sql);
        }
        if (c.file.rfind("0003_", 0) == 0)
            files.emplace_back(c.file, c.text);
        auto o = base_options(dir.db());
        o.migrations = dbactor::migration_set::from_files(files, "reliability");
        const auto r = try_boot(std::move(o));
        rel::raw_db raw(dir.db(), SQLITE_OPEN_READONLY);
        const bool version_same = raw.scalar("PRAGMA user_version") == version_before &&
                                  raw.scalar("SELECT count(*) FROM dbactor_migrations") == ledger_before;
        const bool schema_same = schema_of(dir.db()) == schema_before;
        const bool rows_same = raw.scalar("SELECT count(*) FROM acks") == rows_before;
        const bool right =
            r.code && std::find(c.expected.begin(), c.expected.end(), *r.code) != c.expected.end();
        std::smatch m;
        const std::regex where(
            fmt::format(R"(reliability/{}:([0-9]+):([0-9]+))", c.file.substr(0, 4) + "_[a-z]+\\.sql"));
        const bool located =
            std::regex_search(r.message, m, where) && (c.line == 0 || std::stoi(m[1]) == c.line);
        rel::report("bad_migration_" + c.name,
                    {rel::str("errc", errc_name(r.code)),
                     rel::flag("right_errc", right),
                     rel::flag("version_unchanged", version_same),
                     rel::flag("schema_identical", schema_same),
                     rel::flag("rows_unchanged", rows_same),
                     rel::flag("file_line_column", located)});
        INFO(c.name << ": " << errc_name(r.code) << ": " << r.message);
        CHECK(right);
        CHECK(version_same);
        CHECK(schema_same);
        CHECK(rows_same);
        if (c.line > 0)
            CHECK(located);
    }
}

// Found by fuzz_migration_source (fixed in 81eb1b6): std::stoll on the version digits threw
// std::out_of_range.
TEST_CASE("a migration file whose version does not fit in 64 bits is refused with migration_source_invalid",
          "[boot][migrations]")
{
    const auto code = test::errc_of([] {
        try {
            dbactor::migration_set::from_files({{"99999999999999999999_huge.sql", "SELECT 1;\n"}});
        }
        catch (const std::out_of_range& e) {
            FAIL("std::out_of_range escaped from_files: " << e.what());
        }
    });
    CHECK(code == dbactor::errc::migration_source_invalid);
}

// Found by fuzz_migration_run (fixed in 81eb1b6): sqlite3_prepare stops at a NUL byte without advancing, and
// run_script looped forever. Now the source is refused before boot, naming file:line:column of the NUL.
TEST_CASE("a migration containing a NUL byte fails to boot with migration_source_invalid instead of hanging",
          "[boot][migrations]")
{
    test::temp_dir dir;
    fs::create_directory(dir.file("m"));
    rel::spit(dir.file("m") + "/0001_nul.sql", std::string("CREATE TABLE t(x);\n\0garbage\n", 28));
    rel::child w(DBACTOR_RELIABILITY_WRITER, {dir.db(), "normal", "1", "boot", "1", dir.file("m")});
    auto line = w.read_line(10s);
    INFO("boot with a NUL byte in a migration did not finish within 10 s (it hangs in run_script)");
    REQUIRE(line);
    INFO("the writer said: " << *line);
    REQUIRE(line->rfind("E ", 0) == 0);
    CHECK(std::stoi(line->substr(2)) == static_cast<int>(dbactor::errc::migration_source_invalid));
    CHECK(line->find("0001_nul.sql:2:1") != std::string::npos);
    CHECK(w.wait(10s));
}

// ---- 12. a long reader next to the writer -----------------------------------------------------------------

TEST_CASE("a long reader next to the writer causes no busy errors, and the WAL shrinks after it leaves with "
          "no further writes",
          "[boot][reader]")
{
    const auto t0 = std::chrono::steady_clock::now();
    constexpr std::int64_t limit = 256 * 1024;
    test::temp_dir dir;
    auto o = base_options(dir.db());
    o.journal_size_limit = limit;
    o.idle_checkpoint =
        1000ms; // the default: the writer checkpoints once it has been idle this long after a write
    auto db = dbactor::database::open(std::move(o));
    std::int64_t busy = 0, requests = 0;
    auto write_some = [&](int from, int n) {
        for (int i = from; i < from + n; ++i) {
            try {
                db.write([i](dbactor::connection& c) {
                    for (int part = 0; part < rel::rows_per_request; ++part)
                        c.execute("INSERT INTO acks VALUES (?, ?, ?)", i, part, std::string(2000, 'r'));
                });
                ++requests;
            }
            catch (const std::exception& e) {
                ++busy;
                UNSCOPED_INFO("write " << i << " failed next to the reader: " << e.what());
            }
        }
    };
    auto wal_size = [&] {
        std::error_code ec;
        const auto n = fs::file_size(dir.db() + "-wal", ec);
        return ec ? std::int64_t(0) : static_cast<std::int64_t>(n);
    };
    write_some(0, 50);

    std::int64_t wal_max = 0;
    std::uint64_t checkpoints_before = 0;
    int tool_exit = -1;
    double tool_seconds = 0;
    std::chrono::steady_clock::time_point last_write;
    {
        // The reader: a snapshot held open (what `dbtool check --full` does on a large file).
        rel::raw_db reader(dir.db(), SQLITE_OPEN_READONLY);
        REQUIRE(reader.exec("BEGIN") == SQLITE_OK);
        const auto seen = reader.scalar("SELECT count(*) FROM acks");
#ifdef DBACTOR_DBTOOL
        // And dbtool check --full, a second reader, while the writer writes next to both.
        fs::create_directory(dir.file("m"));
        const auto schema = rel::schema();
        for (const auto& m : schema.items())
            rel::spit(dir.file("m") + fmt::format("/{:04}_{}.sql", m.version, m.name), m.up_sql);
        const auto tool_t0 = std::chrono::steady_clock::now();
        std::optional<rel::child> tool;
        tool.emplace(
            DBACTOR_DBTOOL,
            std::vector<std::string>{"--db", dir.db(), "--migrations", dir.file("m"), "check", "--full"});
        std::vector<std::string> tool_output;
#endif
        for (int round = 0; round < 10; ++round) {
            write_some(1000 + round * 100, 100);
            wal_max = std::max(wal_max, wal_size());
        }
#ifdef DBACTOR_DBTOOL
        // Keep writing (10 requests a round) until dbtool has finished, for at most 12 s (the whole test
        // stays within one 25 s budget, under ctest's 30 s timeout, so that a failure is reported with a
        // message).
        for (int round = 0;; ++round) {
            if (auto st = tool->wait(0ms)) {
                tool_exit = WIFEXITED(*st) ? WEXITSTATUS(*st) : 128 + WTERMSIG(*st);
                break;
            }
            INFO("dbtool check --full did not finish within 12 s next to the writer");
            REQUIRE(since(tool_t0) < 12);
            write_some(50000 + round * 10, 10);
            wal_max = std::max(wal_max, wal_size());
        }
        tool_seconds = since(tool_t0);
        tool_output = tool->drain(3s);
        {
            std::string out;
            for (const auto& l : tool_output)
                out += l + "\n";
            INFO("dbtool check --full said:\n" << out);
            CHECK(tool_exit == 0);
        }
        write_some(90000,
                   1); // so that the reader leaves right after the last write, before the idle checkpoint
#endif
        last_write = std::chrono::steady_clock::now();
        CHECK(reader.scalar("SELECT count(*) FROM acks") == seen); // its snapshot held
        checkpoints_before = db.stats().idle_checkpoints; // none can empty the WAL while the reader holds it
        reader.exec("COMMIT");
    }
    const auto reader_left = std::chrono::steady_clock::now();
    const auto wal_when_left = wal_size();

    // No further writes: the idle checkpoint must bring the WAL back under journal_size_limit on its own.
    // Wait for that checkpoint itself (stats count the ones that emptied the WAL), then look at the file.
    const auto budget =
        std::chrono::duration_cast<std::chrono::seconds>(std::min(reader_left + 8s, t0 + 25s) - reader_left);
    const bool checkpointed = test::eventually(
        [&] { return db.stats().idle_checkpoints > checkpoints_before; }, std::max(budget, 1s));
    const auto wal_after = wal_size();
    const double shrink_seconds = since(reader_left);
    const auto rows = db.read(
        [](dbactor::connection& c) { return *c.query_one<std::int64_t>("SELECT count(*) FROM acks"); });
    db.close();
    rel::report("long_reader",
                {rel::num("busy_errors", busy),
                 rel::num("requests", requests),
                 rel::num("wal_max_during_reader_kib", wal_max / 1024),
                 rel::num("wal_when_reader_left_kib", wal_when_left / 1024),
                 rel::num("wal_after_kib", wal_after / 1024),
                 rel::num("journal_size_limit_kib", limit / 1024),
                 rel::num("reader_left_after_last_write_ms",
                          std::chrono::duration<double, std::milli>(reader_left - last_write).count()),
                 rel::num("seconds_until_under_limit", shrink_seconds),
                 rel::num("dbtool_check_exit", std::int64_t(tool_exit)),
                 rel::num("dbtool_check_seconds", tool_seconds),
                 rel::num("seconds", since(t0))});
    CHECK(busy == 0);
    CHECK(rows == requests * rel::rows_per_request);
    CHECK(wal_max > limit); // the reader really pinned the WAL
    INFO("the WAL stayed at " << wal_after / 1024 << " KiB for " << shrink_seconds
                              << " s after the reader left, with no further writes "
                                 "(options::idle_checkpoint should have checkpointed and truncated it)");
    CHECK(checkpointed);
    CHECK(wal_after <= limit);
    CHECK(rel::integrity(dir.db()) == "ok");
}

// ---- 4. disk full -----------------------------------------------------------------------------------------

namespace {

struct full_figures
{
    std::int64_t acked = 0, partial = 0, lost = 0;
    std::string error;
    bool read_while_full = false, write_after_free = false;
};

full_figures check_rows(const std::string& path, std::int64_t acked_max)
{
    full_figures f;
    rel::raw_db raw(path, SQLITE_OPEN_READONLY);
    f.partial = raw.scalar(
        fmt::format("SELECT count(*) FROM (SELECT req FROM acks GROUP BY req HAVING count(*) != {})",
                    rel::rows_per_request));
    f.lost = acked_max - raw.scalar("SELECT count(DISTINCT req) FROM acks WHERE req BETWEEN 1 AND " +
                                    std::to_string(acked_max));
    return f;
}

} // namespace

TEST_CASE(
    "disk full on a small tmpfs: clear error, no partial rows, reads work, writes resume after freeing space",
    "[.][tmpfs]")
{
    test::temp_dir dir;
    const auto mnt = dir.file("tmpfs");
    fs::create_directory(mnt);
    if (geteuid() != 0 || mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=4m") != 0) {
        std::printf("SKIPPED: mounting a tmpfs needs root (CAP_SYS_ADMIN)\n");
        rel::report("disk_full_tmpfs", {rel::flag("skipped", true)});
        std::fflush(stdout);
        std::error_code ignored;
        fs::remove_all(dir.path(), ignored); // _Exit skips the destructors
        std::_Exit(77);                      // ctest SKIP_RETURN_CODE
    }
    struct unmount
    {
        std::string p;
        ~unmount() { umount2(p.c_str(), MNT_DETACH); }
    } guard{mnt};
    const auto path = mnt + "/db.sqlite";
    const auto filler = mnt + "/filler";
    rel::spit(filler, std::string(1024 * 1024, 'f')); // freed later to make room

    auto o = base_options(path);
    o.journal_size_limit = 4 * 1024 * 1024;
    auto db = dbactor::database::open(std::move(o));
    full_figures f;
    std::int64_t req = 1;
    for (;; ++req) {
        try {
            db.write([req](dbactor::connection& c) {
                for (int part = 0; part < rel::rows_per_request; ++part)
                    c.execute("INSERT INTO acks VALUES (?, ?, ?)", req, part, std::string(8000, 'd'));
            });
            f.acked = req;
        }
        catch (const SQLite::Exception& e) {
            f.error = fmt::format("SQLite::Exception({}) {}", e.getExtendedErrorCode(), e.what());
            CHECK((e.getErrorCode() == SQLITE_FULL || e.getErrorCode() == SQLITE_IOERR));
            break;
        }
        catch (const dbactor::error& e) {
            f.error = fmt::format("dbactor::error {}", e.what());
            break;
        }
        REQUIRE(req < 100000);
    }
    try {
        f.read_while_full = db.read([](dbactor::connection& c) {
            return *c.query_one<std::int64_t>("SELECT count(*) FROM acks");
        }) == f.acked * rel::rows_per_request;
    }
    catch (const std::exception& e) {
        UNSCOPED_INFO("read while full: " << e.what());
    }
    fs::remove(filler);
    try {
        db.write([](dbactor::connection& c) {
            c.execute("INSERT INTO acks VALUES (-1, 0, 'after'), (-1, 1, 'after'), (-1, 2, 'after')");
        });
        f.write_after_free = true;
    }
    catch (const std::exception& e) {
        UNSCOPED_INFO("write after freeing space: " << e.what());
    }
    // The final checkpoint copies the WAL into the main file, which needs room the nearly full tmpfs may
    // not have: then close() says so (close_failed) and the -wal keeps every acknowledged write.
    std::string close_error;
    try {
        db.close();
    }
    catch (const dbactor::error& e) {
        close_error = e.what();
        CHECK(e.value() == dbactor::errc::close_failed);
        CHECK(rel::exists(path + "-wal"));
    }
    auto rows = check_rows(path, f.acked);
    rel::report("disk_full_tmpfs",
                {rel::num("acked_writes", f.acked),
                 rel::str("error", f.error),
                 rel::flag("read_while_full", f.read_while_full),
                 rel::flag("write_after_free", f.write_after_free),
                 rel::num("partial_requests", rows.partial),
                 rel::num("lost_acked", rows.lost),
                 rel::str("close_error", close_error),
                 rel::str("integrity", rel::integrity(path))});
    INFO(f.error);
    CHECK(!f.error.empty());
    CHECK(f.read_while_full);
    CHECK(f.write_after_free);
    CHECK(rows.partial == 0);
    CHECK(rows.lost == 0);
    CHECK(rel::integrity(path) == "ok");
}

TEST_CASE(
    "a file size limit (RLIMIT_FSIZE) fails writes clearly, reads keep working, writes resume when lifted",
    "[disk_full]")
{
    test::temp_dir dir;
    rel::child w(DBACTOR_RELIABILITY_WRITER, {dir.db(), "normal", "1", "fsize", "1"});
    std::vector<std::string> lines;
    while (auto l = w.read_line(20s)) {
        lines.push_back(*l);
        if (*l == "C")
            break;
    }
    w.wait(10s);
    std::int64_t acked = 0;
    std::string error, read, write;
    for (const auto& l : lines) {
        if (l.rfind("A ", 0) == 0)
            acked = std::max<std::int64_t>(acked, std::stoll(l.substr(2)));
        else if (l.rfind("F ", 0) == 0)
            error = l.substr(2);
        else if (l.rfind("READ", 0) == 0)
            read = l;
        else if (l.rfind("W", 0) == 0)
            write = l;
    }
    auto rows = check_rows(dir.db(), acked);
    rel::report("disk_full_rlimit_fsize",
                {rel::num("acked_writes", acked),
                 rel::str("error", error),
                 rel::str("read_while_full", read),
                 rel::str("write_after_lift", write),
                 rel::num("partial_requests", rows.partial),
                 rel::num("lost_acked", rows.lost),
                 rel::str("integrity", rel::integrity(dir.db()))});
    INFO(error);
    CHECK(!error.empty());
    CHECK(error != "never failed");
    CHECK(read == fmt::format("READ {}", acked * rel::rows_per_request));
    CHECK(write == "W ok");
    CHECK(rows.partial == 0);
    CHECK(rows.lost == 0);
    CHECK(rel::integrity(dir.db()) == "ok");
}
