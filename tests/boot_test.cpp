// The boot gate: every refusal, its message, and that a refused file is left byte-for-byte unchanged.
#include "support.hpp"

#include <sqlite3.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <sstream>
#include <string>

using Catch::Matchers::Contains;
using dbactor::errc;

using test::open_error;

namespace {

std::string slurp(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

void spit(const std::string& path, const std::string& bytes)
{
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << bytes;
}

/// Runs SQL on a plain connection (rollback journal, foreign keys off): how a fixture is made.
void raw_exec(const std::string& path, const std::string& sql)
{
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
    char* msg = nullptr;
    const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &msg);
    INFO((msg ? msg : ""));
    sqlite3_free(msg);
    sqlite3_close(db);
    REQUIRE(rc == SQLITE_OK);
}

/// A rollback-journal database of several hundred pages.
void make_big(const std::string& path)
{
    raw_exec(path,
             "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);"
             "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000) "
             "INSERT INTO t SELECT i, printf('%.60c', 'x') FROM n;"
             "CREATE INDEX t_v ON t(v);");
}

dbactor::migration_set one_table()
{
    return dbactor::migration_set::from_files(
        {{"0001_t.sql", "CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT);"}}, "mig");
}

} // namespace

TEST_CASE("a text file fails with not_a_database and is left byte-for-byte unchanged", "[boot]")
{
    test::temp_dir dir;
    const std::string text = "name,score\nalice,3\nbob,5\n" + std::string(5000, 'z');
    spit(dir.db(), text);
    auto o = test::options_for(dir);
    o.migrations = one_table();
    const auto e = open_error(o);
    CHECK(e.value() == errc::not_a_database);
    CHECK(e.sqlite_code() == SQLITE_NOTADB);
    CHECK_THAT(e.what(), Contains(dir.db()) && Contains("read schema") && Contains("not a database"));
    CHECK(slurp(dir.db()) == text);
    CHECK_FALSE(std::filesystem::exists(dir.db() + "-wal"));
}

TEST_CASE("a truncated database fails with integrity_check_failed and is left unchanged", "[boot]")
{
    test::temp_dir dir;
    make_big(dir.db());
    auto bytes = slurp(dir.db());
    bytes.resize(bytes.size() / 2);
    spit(dir.db(), bytes);
    for (auto level : {dbactor::check_level::none, dbactor::check_level::quick}) {
        auto o = test::options_for(dir);
        o.integrity_check = level;
        const auto e = open_error(o);
        CHECK(e.value() == errc::integrity_check_failed);
        CHECK_THAT(e.what(), Contains("truncated") && Contains(dir.db()) && Contains(".recover"));
        CHECK(slurp(dir.db()) == bytes);
    }
}

TEST_CASE("a damaged interior page fails the integrity check, names the problem, and is left unchanged",
          "[boot]")
{
    test::temp_dir dir;
    make_big(dir.db());
    auto bytes = slurp(dir.db());
    const std::size_t page = 4096;
    REQUIRE(bytes.size() > 20 * page);
    // The root page of table t (page 2) is an interior b-tree page; give it an invalid page type.
    bytes[page] = '\x07';
    spit(dir.db(), bytes);
    for (auto level : {dbactor::check_level::quick, dbactor::check_level::full}) {
        auto o = test::options_for(dir);
        o.integrity_check = level;
        const auto e = open_error(o);
        CHECK(e.value() == errc::integrity_check_failed);
        CHECK_THAT(e.what(),
                   Contains(dir.db()) && Contains("integrity check") &&
                       Contains(level == dbactor::check_level::full ? "integrity_check" : "quick_check"));
        CHECK_THAT(e.what(), Contains("Page 2: btreeInitPage() returns error code 11"));
        CHECK_THAT(e.what(), Contains("the first five"));
        CHECK(slurp(dir.db()) == bytes);
    }
}

TEST_CASE("a zero-length file is a new, empty database", "[boot]")
{
    test::temp_dir dir;
    spit(dir.db(), "");
    auto o = test::options_for(dir);
    o.migrations = one_table();
    auto db = dbactor::database::open(o);
    const auto& r = db.boot_report();
    CHECK(r.created);
    CHECK(r.schema_version == 1);
    CHECK(r.integrity == "ok");
}

TEST_CASE("boot reports every pragma read back and every step with its duration, in order", "[boot]")
{
    test::temp_dir dir;
    auto o = test::options_for(dir);
    o.pragmas = {{"cache_size", "-4000"}};
    o.migrations = one_table();
    auto db = dbactor::database::open(o);
    const auto& r = db.boot_report();
    REQUIRE(r.pragmas.size() == 6);
    CHECK(r.pragmas[0].name == "journal_mode");
    CHECK(r.pragmas[0].actual == "wal");
    CHECK(r.pragmas[1].actual == "1"); // synchronous NORMAL
    CHECK(r.pragmas[5].actual == "-4000");
    std::vector<std::string> steps;
    for (const auto& [name, d] : r.steps) {
        steps.push_back(name);
        CHECK(d.count() >= 0);
    }
    CHECK(steps == std::vector<std::string>{"open",
                                            "read schema",
                                            "integrity check",
                                            "application_id",
                                            "pragmas",
                                            "migrations",
                                            "foreign_key_check"});
    CHECK(r.total.count() > 0);
    CHECK(r.sqlite_version == sqlite3_libversion());
}

TEST_CASE("a pragma that does not read back as set fails with pragma_mismatch", "[boot]")
{
    test::temp_dir dir;
    auto o = test::options_for(dir);
    o.pragmas = {{"no_such_pragma", "5"}};
    const auto e = open_error(o);
    CHECK(e.value() == errc::pragma_mismatch);
    CHECK_THAT(e.what(), Contains("no_such_pragma") && Contains(dir.db()) && Contains("pragmas"));
}

TEST_CASE("a new database gets the application_id, one with another id is refused and left unchanged",
          "[boot]")
{
    test::temp_dir dir;
    auto o = test::options_for(dir);
    o.application_id = 0x44425431;
    o.migrations = one_table();
    dbactor::database::open(o).close();
    dbactor::database::open(o).close(); // the same id boots again

    test::temp_dir other;
    raw_exec(other.db(), "PRAGMA application_id = 7; CREATE TABLE x(y);");
    const auto before = slurp(other.db());
    auto o2 = o;
    o2.path = other.db();
    const auto e = open_error(o2);
    CHECK(e.value() == errc::wrong_application);
    CHECK_THAT(e.what(), Contains("application_id is 7") && Contains(other.db()));
    CHECK(slurp(other.db()) == before); // not even journal_mode=WAL was written
}

TEST_CASE("foreign-key violations found after the migrations fail with foreign_key_violation", "[boot]")
{
    test::temp_dir dir;
    raw_exec(dir.db(),
             "CREATE TABLE parent(id INTEGER PRIMARY KEY);"
             "CREATE TABLE child(id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES parent(id));"
             "INSERT INTO child VALUES (1, 42);");
    const auto e = open_error(test::options_for(dir));
    CHECK(e.value() == errc::foreign_key_violation);
    CHECK_THAT(e.what(),
               Contains("child rowid 1 refers to a missing row of parent") && Contains("foreign_key_check"));
}

TEST_CASE("a database locked by another connection fails with busy after about busy_timeout", "[boot]")
{
    test::temp_dir dir;
    raw_exec(dir.db(), "CREATE TABLE x(y);");
    sqlite3* holder = nullptr;
    REQUIRE(sqlite3_open(dir.db().c_str(), &holder) == SQLITE_OK);
    REQUIRE(sqlite3_exec(holder, "BEGIN IMMEDIATE; INSERT INTO x VALUES (1);", nullptr, nullptr, nullptr) ==
            SQLITE_OK);
    auto o = test::options_for(dir);
    o.busy_timeout = std::chrono::milliseconds(300);
    o.migrations = one_table();
    const auto t0 = std::chrono::steady_clock::now();
    auto f = std::async(std::launch::async, [&] { return open_error(o); });
    const auto e = test::get_within(f, "boot of a locked database must not hang");
    const auto took = std::chrono::steady_clock::now() - t0;
    sqlite3_exec(holder, "ROLLBACK", nullptr, nullptr, nullptr);
    sqlite3_close(holder);
    INFO(e.what());
    CHECK(e.value() == errc::busy);
    CHECK((e.sqlite_code() & 0xff) == SQLITE_BUSY);
    CHECK_THAT(e.what(), Contains("busy_timeout") && Contains(dir.db()));
    CHECK(took >= std::chrono::milliseconds(250));
    CHECK(took < std::chrono::seconds(5));
}

TEST_CASE("a database in a directory that cannot be written fails fast with open_failed", "[boot]")
{
    dbactor::options o;
    o.path = "/sys/dbactor-boot-test.db"; // read-only even for root
    o.on_log = [](dbactor::log_level, std::string_view) {};
    const auto t0 = std::chrono::steady_clock::now();
    const auto e = open_error(o);
    CHECK(e.value() == errc::open_failed);
    CHECK_THAT(e.what(), Contains("/sys"));
    CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(1));
}

TEST_CASE("a read-only database file fails fast with open_failed", "[boot]")
{
    if (::geteuid() == 0) {
        WARN("running as root: file permissions do not apply, skipped");
        return;
    }
    test::temp_dir dir;
    raw_exec(dir.db(), "CREATE TABLE x(y);");
    std::filesystem::permissions(dir.db(), std::filesystem::perms::owner_read);
    const auto e = open_error(test::options_for(dir));
    CHECK(e.value() == errc::open_failed);
    CHECK_THAT(e.what(), Contains("read-only"));
}

TEST_CASE("options::vfs names the VFS the database is opened with", "[boot]")
{
    test::temp_dir dir;
    auto o = test::options_for(dir);
    o.vfs = "unix-dotfile"; // a built-in VFS other than the default
    o.pragmas = {};
    o.migrations = one_table();
    {
        // WAL needs shared memory, which unix-dotfile has not: proof that the VFS was really used.
        const auto e = open_error(o);
        CHECK(e.value() == errc::pragma_mismatch);
        CHECK_THAT(e.what(), Contains("journal_mode"));
    }
    o.vfs = "no-such-vfs";
    const auto e = open_error(o);
    CHECK(e.value() == errc::open_failed);
    CHECK_THAT(e.what(), Contains("no-such-vfs") && Contains("no such vfs"));
}

TEST_CASE("a read-only boot of a missing file fails and never creates it", "[boot]")
{
    test::temp_dir dir;
    auto o = test::options_for(dir);
    o.read_only = true;
    const auto e = open_error(o);
    CHECK(e.value() == errc::open_failed);
    CHECK_THAT(e.what(), Contains("does not exist"));
    CHECK_FALSE(std::filesystem::exists(dir.db()));
}

TEST_CASE("a read-only boot writes nothing, creates no file, and reports the migration state", "[boot]")
{
    test::temp_dir dir;
    auto o = test::options_for(dir);
    o.migrations = one_table();
    dbactor::database::open(o).close();
    REQUIRE_FALSE(std::filesystem::exists(dir.db() + "-wal"));
    const auto before = slurp(dir.db());

    auto ro = o;
    ro.read_only = true;
    ro.migrations = dbactor::migration_set::from_files(
        {{"0001_t.sql", "CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT);"},
         {"0002_u.sql", "CREATE TABLE u(x);"}},
        "mig");
    {
        auto db = dbactor::database::open(ro);
        const auto& r = db.boot_report();
        REQUIRE(r.migrations.size() == 2);
        CHECK(r.migrations[0].status == dbactor::migration_status::state::applied);
        CHECK(r.migrations[1].status == dbactor::migration_status::state::pending);
        CHECK(r.schema_version == 1);
        CHECK(r.pragmas.front().actual == "wal");
        CHECK(db.read([](dbactor::connection& c) {
            return c.query_one<std::int64_t>("SELECT count(*) FROM notes");
        }) == 0);
    }
    CHECK(slurp(dir.db()) == before);
    CHECK_FALSE(std::filesystem::exists(dir.db() + "-wal"));
    CHECK_FALSE(std::filesystem::exists(dir.db() + "-shm"));
}

TEST_CASE("check_foreign_keys = false skips the foreign-key check and reports the step as skipped", "[boot]")
{
    test::temp_dir dir;
    raw_exec(dir.db(),
             "CREATE TABLE parent(id INTEGER PRIMARY KEY);"
             "CREATE TABLE child(id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES parent(id));"
             "INSERT INTO child VALUES (1, 42);");
    auto o = test::options_for(dir);
    o.check_foreign_keys = false;
    auto db = dbactor::database::open(o);
    const auto& r = db.boot_report();
    CHECK(r.foreign_key_violations == 0);
    REQUIRE_FALSE(r.steps.empty());
    CHECK(r.steps.back().first == "foreign_key_check (skipped)");
}

namespace {

/// The default VFS, with one twist: the first read of the main file at `garble_offset` returns garbage and
/// then creates `appear`, as if a service had started and checkpointed while the file was read without locks.
namespace changing_file {
sqlite3_vfs* real = nullptr;
sqlite3_vfs vfs;
const sqlite3_io_methods* real_methods = nullptr;
sqlite3_io_methods methods;
std::atomic<sqlite3_int64> garble_offset{-1};
std::string appear;

int x_read(sqlite3_file* f, void* buf, int n, sqlite3_int64 off)
{
    const int rc = real_methods->xRead(f, buf, n, off);
    sqlite3_int64 expected = off;
    if (rc == SQLITE_OK && garble_offset.compare_exchange_strong(expected, -1)) {
        std::memset(buf, 0xee, static_cast<std::size_t>(n));
        if (!appear.empty())
            std::ofstream(appear, std::ios::binary);
    }
    return rc;
}

int x_open(sqlite3_vfs*, sqlite3_filename name, sqlite3_file* f, int flags, int* out)
{
    const int rc = real->xOpen(real, name, f, flags, out);
    if (rc == SQLITE_OK && f->pMethods && (flags & SQLITE_OPEN_MAIN_DB)) {
        if (!real_methods) {
            real_methods = f->pMethods;
            methods = *real_methods;
            methods.xRead = x_read;
        }
        if (f->pMethods == real_methods)
            f->pMethods = &methods;
    }
    return rc;
}

/// Installed as the default VFS (so that options::vfs stays empty and boot may open the file immutable).
struct installed
{
    installed()
    {
        real = sqlite3_vfs_find(nullptr);
        vfs = *real;
        vfs.zName = "changing_file";
        vfs.pNext = nullptr;
        vfs.xOpen = x_open;
        sqlite3_vfs_register(&vfs, 1);
    }
    ~installed()
    {
        sqlite3_vfs_unregister(&vfs);
        sqlite3_vfs_register(real, 1);
        garble_offset = -1;
    }
};
} // namespace changing_file

} // namespace

TEST_CASE("a read-only boot whose unlocked integrity check saw the file change checks it again with locks",
          "[boot]")
{
    test::temp_dir dir;
    auto o = test::options_for(dir);
    {
        auto db = dbactor::database::open(o);
        db.write([](dbactor::connection& c) {
            c.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);"
                   "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000) "
                   "INSERT INTO t SELECT i, printf('%.60c', 'x') FROM n;");
        });
    }
    REQUIRE_FALSE(std::filesystem::exists(dir.db() + "-wal")); // so a read-only boot opens it immutable
    auto ro = o;
    ro.read_only = true;
    const changing_file::installed shim;
    const sqlite3_int64 leaf_page = 4096 * 2; // page 3: a leaf of t, read by quick_check only

    // Unchanged file: a page that reads as damaged is damage, reported without a second try.
    changing_file::appear.clear();
    changing_file::garble_offset = leaf_page;
    const auto e = open_error(ro);
    CHECK(changing_file::garble_offset == -1); // the shim did garble the read
    CHECK(e.value() == errc::integrity_check_failed);

    // A -wal appeared meanwhile (a service started): checked again with a normal read-only open, which is
    // sound.
    changing_file::appear = dir.db() + "-wal";
    changing_file::garble_offset = leaf_page;
    auto db = dbactor::database::open(ro);
    CHECK(changing_file::garble_offset == -1);
    CHECK(db.boot_report().integrity == "ok");
    CHECK(db.read([](dbactor::connection& c) {
        return *c.query_one<std::int64_t>("SELECT count(*) FROM t");
    }) == 2000);
}
