// Migrations: sources, checksums, directives, the ledger, refusals with file:line:col, and going down.
#include "support.hpp"

#include <dbactor/admin.hpp>

#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <tuple>

using dbactor::errc;
using dbactor::migration_set;
using state = dbactor::migration_status::state;
using Catch::Matchers::Contains;

using test::open_error;

namespace {

using files = std::vector<std::pair<std::string, std::string>>;

dbactor::error error_of(const std::function<void()>& fn)
{
    try {
        fn();
    }
    catch (const dbactor::error& e) {
        return e;
    }
    FAIL("expected a dbactor::error");
    throw std::logic_error("unreachable");
}

const files base = {
    {"0001_members.sql", "CREATE TABLE members (id INTEGER PRIMARY KEY, name TEXT NOT NULL);\n"},
    {"0001_members.down.sql", "DROP TABLE members;\n"},
    {"0002_warnings.sql",
     "-- Warnings refer to members.\n"
     "CREATE TABLE warnings (id INTEGER PRIMARY KEY, member_id INTEGER NOT NULL REFERENCES members (id),\n"
     "                       reason TEXT NOT NULL);\n"},
    {"0002_warnings.down.sql", "DROP TABLE warnings;\n"},
};

files with(files f, std::string name, std::string text)
{
    f.emplace_back(std::move(name), std::move(text));
    return f;
}

std::vector<std::tuple<std::int64_t, std::string, std::string>> ledger(dbactor::database& db)
{
    return db.read([](dbactor::connection& c) {
        return c.query<std::tuple<std::int64_t, std::string, std::string>>(
            "SELECT version, name, checksum FROM dbactor_migrations ORDER BY version");
    });
}

bool has_table(dbactor::database& db, const std::string& name)
{
    return db.read([name](dbactor::connection& c) {
        return *c.query_one<std::int64_t>("SELECT count(*) FROM sqlite_schema WHERE name = ?", name) == 1;
    });
}

} // namespace

TEST_CASE("each migration is applied with its ledger row, and user_version mirrors the highest",
          "[migration]")
{
    test::temp_dir dir;
    auto o = test::options_for(dir);
    o.migrations = migration_set::from_files(base, "mig");
    auto db = dbactor::database::open(o);
    const auto rows = ledger(db);
    REQUIRE(rows.size() == 2);
    CHECK(std::get<1>(rows[1]) == "warnings");
    CHECK(std::get<2>(rows[1]) == dbactor::migration_checksum(base[2].second));
    CHECK(db.boot_report().schema_version == 2);
    CHECK(db.read([](dbactor::connection& c) { return *c.query_one<std::int64_t>("PRAGMA user_version"); }) ==
          2);
    const auto when = db.read([](dbactor::connection& c) {
        return *c.query_one<std::tuple<std::string, std::int64_t>>(
            "SELECT applied_at, duration_ms FROM dbactor_migrations WHERE version = 1");
    });
    CHECK(std::get<0>(when).size() == 24); // 2024-01-01T00:00:00.000Z
    CHECK(std::get<1>(when) >= 0);
    for (const auto& m : db.boot_report().migrations) {
        CHECK(m.status == state::applied);
        CHECK(m.applied_now);
        CHECK(m.reversible);
    }
    db.close();
    auto again = dbactor::database::open(o); // nothing to do the second time
    for (const auto& m : again.boot_report().migrations)
        CHECK_FALSE(m.applied_now);
}

TEST_CASE("a syntax error reports file:line:column and SQLite's text, rolls back, and keeps earlier ones",
          "[migration]")
{
    test::temp_dir dir;
    auto o = test::options_for(dir);
    o.migrations = migration_set::from_files(
        with(base, "0003_bans.sql", "CREATE TABLE early (x);\n-- bans\n\n    CREATE TABLOID bans (x);\n"),
        "mig");
    const auto e = open_error(o);
    CHECK(e.value() == errc::migration_failed);
    CHECK_THAT(e.what(), Contains("mig/0003_bans.sql:4:12: near \"TABLOID\": syntax error"));
    CHECK_THAT(e.what(), Contains("rolled back") && Contains(dir.db()));
    CHECK(e.sqlite_code() == SQLITE_ERROR);

    o.migrations = migration_set::from_files(base, "mig");
    auto db = dbactor::database::open(o);
    CHECK(ledger(db).size() == 2);
    CHECK_FALSE(has_table(db, "early")); // the failing migration's first statement was rolled back with it
}

TEST_CASE("a statement failing while it runs is reported at its own line", "[migration]")
{
    test::temp_dir dir;
    auto o = test::options_for(dir);
    o.migrations = migration_set::from_files(with(base,
                                                  "0003_seed.sql",
                                                  "INSERT INTO members (id, name) VALUES (1, 'a');\n"
                                                  "INSERT INTO members (id, name) VALUES (2, 'b');\n"
                                                  "  INSERT INTO members (id, name) VALUES (3, NULL);\n"),
                                             "mig");
    const auto e = open_error(o);
    CHECK(e.value() == errc::migration_failed);
    CHECK_THAT(e.what(), Contains("mig/0003_seed.sql:3:3: NOT NULL constraint failed: members.name"));
    CHECK(e.sqlite_code() == SQLITE_CONSTRAINT_NOTNULL);
}

TEST_CASE("PRAGMA foreign_keys inside a transactional migration is rejected, naming the directive",
          "[migration]")
{
    test::temp_dir dir;
    auto o = test::options_for(dir);
    o.migrations = migration_set::from_files(
        with(base, "0003_rebuild.sql", "SELECT 1;\nPRAGMA foreign_keys = OFF;\n"), "mig");
    const auto e = open_error(o);
    CHECK(e.value() == errc::migration_failed);
    CHECK_THAT(e.what(), Contains("mig/0003_rebuild.sql:2:1:") && Contains("-- dbactor: foreign-keys=off"));
}

TEST_CASE("a migration that ends its own transaction is rejected before it runs", "[migration]")
{
    test::temp_dir dir;
    auto o = test::options_for(dir);
    o.migrations =
        migration_set::from_files(with(base, "0003_x.sql", "CREATE TABLE x(y);\nCOMMIT;\n"), "mig");
    const auto e = open_error(o);
    CHECK(e.value() == errc::migration_failed);
    CHECK_THAT(e.what(), Contains("mig/0003_x.sql:2:1:") && Contains("no-transaction"));
}

TEST_CASE("foreign-keys=off rebuilds a referenced table and checks foreign keys before COMMIT", "[migration]")
{
    test::temp_dir dir;
    auto o = test::options_for(dir);
    const std::string rebuild = "-- dbactor: foreign-keys=off\n"
                                "-- Adds a NOT NULL column with a default: SQLite's 12-step rebuild.\n"
                                "CREATE TABLE members_new (id INTEGER PRIMARY KEY, name TEXT NOT NULL,\n"
                                "                          xp INTEGER NOT NULL DEFAULT 0);\n"
                                "INSERT INTO members_new (id, name) SELECT id, name FROM members;\n"
                                "DROP TABLE members;\n"
                                "ALTER TABLE members_new RENAME TO members;\n";
    o.migrations = migration_set::from_files(
        with(with(base,
                  "0003_seed.sql",
                  "INSERT INTO members VALUES (1, 'a');\nINSERT INTO warnings VALUES (1, 1, 'spam');\n"),
             "0004_rebuild.sql",
             rebuild),
        "mig");
    {
        auto db = dbactor::database::open(o);
        CHECK(db.boot_report().schema_version == 4);
        CHECK(db.read([](dbactor::connection& c) {
            return *c.query_one<std::int64_t>("PRAGMA foreign_keys");
        }) == 1);
        CHECK(db.read([](dbactor::connection& c) {
            return *c.query_one<std::int64_t>(
                "SELECT count(*) FROM warnings JOIN members ON members.id = member_id");
        }) == 1);
    }

    test::temp_dir dir2;
    auto o2 = test::options_for(dir2);
    o2.migrations = migration_set::from_files(
        with(with(base,
                  "0003_seed.sql",
                  "INSERT INTO members VALUES (1, 'a');\nINSERT INTO warnings VALUES (1, 1, 'spam');\n"),
             "0004_rebuild.sql",
             rebuild + "DELETE FROM members;\n"),
        "mig");
    const auto e = open_error(o2);
    CHECK(e.value() == errc::foreign_key_violation);
    CHECK_THAT(e.what(),
               Contains("0004_rebuild.sql") && Contains("warnings rowid 1") && Contains("rolled back"));
    o2.migrations = migration_set::from_files(
        with(base,
             "0003_seed.sql",
             "INSERT INTO members VALUES (1, 'a');\nINSERT INTO warnings VALUES (1, 1, 'spam');\n"),
        "mig");
    auto db = dbactor::database::open(o2);
    CHECK(db.boot_report().schema_version == 3);
    CHECK(db.read([](dbactor::connection& c) {
        return *c.query_one<std::int64_t>("SELECT count(*) FROM members");
    }) == 1);
    CHECK(db.read([](dbactor::connection& c) { return *c.query_one<std::int64_t>("PRAGMA foreign_keys"); }) ==
          1);
}

TEST_CASE("a no-transaction migration runs statements that cannot run in a transaction", "[migration]")
{
    test::temp_dir dir;
    auto o = test::options_for(dir);
    o.migrations = migration_set::from_files(
        with(base,
             "0003_vacuum.sql",
             "-- dbactor: no-transaction\nCREATE TABLE IF NOT EXISTS tmp(x);\nVACUUM;\n"),
        "mig");
    REQUIRE(o.migrations.items()[2].no_transaction);
    auto db = dbactor::database::open(o);
    CHECK(db.boot_report().schema_version == 3);
    CHECK(ledger(db).size() == 3);
}

TEST_CASE("an unknown directive is refused with its file and line", "[migration]")
{
    const auto e = error_of([] {
        migration_set::from_files(
            with(base, "0003_x.sql", "-- about x\n-- dbactor: no-transactions\nSELECT 1;"), "mig");
    });
    CHECK(e.value() == errc::migration_source_invalid);
    CHECK_THAT(e.what(), Contains("mig/0003_x.sql:2:") && Contains("no-transactions"));
}

TEST_CASE("gaps, duplicates, bad names and orphan down files are refused as migration_source_invalid",
          "[migration]")
{
    auto refused = [](const files& f, const char* needle) {
        const auto e = error_of([&] { migration_set::from_files(f, "mig"); });
        CHECK(e.value() == errc::migration_source_invalid);
        CHECK_THAT(e.what(), Contains(needle));
    };
    refused(with(base, "0004_gap.sql", "SELECT 1;"), "mig/0004_gap.sql");
    refused(with(base, "0002_again.sql", "SELECT 1;"), "0002_again.sql");
    refused(with(base, "3_short.sql", "SELECT 1;"), "mig/3_short.sql");
    refused(with(base, "0007_x.down.sql", "SELECT 1;"), "mig/0007_x.down.sql");
}

TEST_CASE("from_directory reads NNNN_name.sql files and ignores other files", "[migration]")
{
    test::temp_dir dir;
    for (const auto& [name, text] : base)
        std::ofstream(dir.file(name)) << text;
    std::ofstream(dir.file("README.md")) << "# not a migration";
    const auto set = migration_set::from_directory(dir.path());
    REQUIRE(set.items().size() == 2);
    CHECK(set.items()[1].source == dir.file("0002_warnings.sql"));
    CHECK(set.items()[0].down_sql.has_value());
    CHECK(error_of([&] { migration_set::from_directory(dir.file("nope")); }).value() ==
          errc::migration_source_invalid);
}

TEST_CASE("the checksum ignores CRLF line ends and trailing white space, nothing else", "[migration]")
{
    const auto a = dbactor::migration_checksum("CREATE TABLE t (x);\nSELECT 1;\n");
    CHECK(a.size() == 64);
    CHECK(dbactor::migration_checksum("CREATE TABLE t (x);  \r\nSELECT 1;\r\n\r\n") == a);
    CHECK(dbactor::migration_checksum("CREATE TABLE t (y);\nSELECT 1;\n") != a);
    CHECK(dbactor::migration_checksum("CREATE  TABLE t (x);\nSELECT 1;\n") != a);
}

TEST_CASE("an applied migration whose file changed is refused with migration_modified", "[migration]")
{
    test::temp_dir dir;
    auto o = test::options_for(dir);
    o.migrations = migration_set::from_files(base, "mig");
    dbactor::database::open(o).close();
    auto changed = base;
    changed[2].second += "CREATE INDEX w ON warnings (member_id);\n";
    o.migrations = migration_set::from_files(changed, "mig");
    const auto e = open_error(o);
    CHECK(e.value() == errc::migration_modified);
    CHECK_THAT(e.what(), Contains("mig/0002_warnings.sql") && Contains("new migration 0003"));
}

TEST_CASE("a database with versions this build does not know is refused with database_ahead", "[migration]")
{
    test::temp_dir dir;
    auto o = test::options_for(dir);
    o.migrations = migration_set::from_files(with(base, "0003_new.sql", "CREATE TABLE n(x);"), "mig");
    dbactor::database::open(o).close();
    o.migrations = migration_set::from_files(base, "mig");
    const auto e = open_error(o);
    CHECK(e.value() == errc::database_ahead);
    CHECK_THAT(e.what(), Contains("0003_new") && Contains("--to 2"));
}

TEST_CASE("a read-only boot reports modified and unknown migrations instead of refusing", "[migration]")
{
    test::temp_dir dir;
    auto o = test::options_for(dir);
    o.migrations = migration_set::from_files(with(base, "0003_new.sql", "CREATE TABLE n(x);"), "mig");
    dbactor::database::open(o).close();
    auto changed = base;
    changed[0].second += "-- edited\n";
    o.migrations = migration_set::from_files(changed, "mig");
    o.read_only = true;
    auto db = dbactor::database::open(o);
    const auto& m = db.boot_report().migrations;
    REQUIRE(m.size() == 3);
    CHECK(m[0].status == state::modified);
    CHECK(m[1].status == state::applied);
    CHECK(m[2].status == state::unknown);
    CHECK(m[2].name == "new");
}

TEST_CASE("migrate_to goes down with down files and refuses an irreversible migration", "[migration]")
{
    test::temp_dir dir;
    auto o = test::options_for(dir);
    const auto set =
        migration_set::from_files(with(base, "0003_irreversible.sql", "CREATE TABLE i(x);"), "mig");
    o.migrations = set;
    auto db = dbactor::database::open(o);
    const auto e = error_of(
        [&] { db.call([&](dbactor::connection& c) { return dbactor::admin::migrate_to(c, set, 1); }); });
    CHECK(e.value() == errc::migration_failed);
    CHECK_THAT(e.what(), Contains("irreversible") && Contains("0003_irreversible.down.sql"));
    CHECK(ledger(db).size() == 3); // nothing was changed

    const auto two = migration_set::from_files(base, "mig");
    db.close();
    o.migrations = two;
    o.apply_migrations = false;
    // Version 3 is unknown to `two`: revert it with the build that has it... which cannot, so drop it by
    // hand.
    db = dbactor::database::open(o);
    db.write([](dbactor::connection& c) {
        c.execute("DROP TABLE i");
        c.execute("DELETE FROM dbactor_migrations WHERE version = 3");
    });
    const auto steps = db.call([&](dbactor::connection& c) { return dbactor::admin::migrate_to(c, two, 0); });
    REQUIRE(steps.size() == 2);
    CHECK(steps[0].version == 2);
    CHECK_FALSE(steps[0].up);
    CHECK(steps[1].done);
    CHECK(ledger(db).empty());
    CHECK_FALSE(has_table(db, "members"));
    CHECK(db.read([](dbactor::connection& c) { return *c.query_one<std::int64_t>("PRAGMA user_version"); }) ==
          0);
    const auto up = db.call([&](dbactor::connection& c) { return dbactor::admin::migrate_to(c, two, 1); });
    REQUIRE(up.size() == 1);
    CHECK(up[0].up);
    CHECK(ledger(db).size() == 1);
}

TEST_CASE("a pending migration on a database another connection is writing fails with busy", "[migration]")
{
    test::temp_dir dir;
    auto o = test::options_for(dir);
    o.migrations = migration_set::from_files({base[0]}, "mig");
    dbactor::database::open(o).close();
    sqlite3* holder = nullptr;
    REQUIRE(sqlite3_open(dir.db().c_str(), &holder) == SQLITE_OK);
    REQUIRE(sqlite3_exec(
                holder, "BEGIN IMMEDIATE; INSERT INTO members VALUES (1, 'x');", nullptr, nullptr, nullptr) ==
            SQLITE_OK);
    o.migrations = migration_set::from_files(base, "mig");
    o.busy_timeout = std::chrono::milliseconds(200);
    auto f = std::async(std::launch::async, [&] { return open_error(o); });
    const auto e = test::get_within(f, "a locked migration must fail, not hang");
    sqlite3_exec(holder, "ROLLBACK", nullptr, nullptr, nullptr);
    sqlite3_close(holder);
    CHECK(e.value() == errc::busy);
    CHECK_THAT(e.what(), Contains("0002_warnings.sql") && Contains("locked"));
}

TEST_CASE("a migration directory or file that cannot be read fails with migration_source_invalid, saying "
          "what to do",
          "[migration]")
{
    test::temp_dir dir;
    for (const auto& [name, text] : base)
        std::ofstream(dir.file(name)) << text;
    std::filesystem::create_symlink("0003_loop.sql", dir.file("0003_loop.sql")); // a link to itself: ELOOP
    const auto e = error_of([&] { migration_set::from_directory(dir.path()); });
    CHECK(e.value() == errc::migration_source_invalid);
    CHECK_THAT(e.what(), Contains(dir.file("0003_loop.sql")) && Contains("Fix it or remove it"));
    std::filesystem::remove(dir.file("0003_loop.sql"));
    CHECK(migration_set::from_directory(dir.path()).items().size() == 2);

    if (::geteuid() != 0) { // root reads any directory, whatever its mode
        std::filesystem::permissions(dir.path(), std::filesystem::perms::none);
        const auto unreadable = error_of([&] { migration_set::from_directory(dir.path()); });
        std::filesystem::permissions(dir.path(), std::filesystem::perms::owner_all);
        CHECK(unreadable.value() == errc::migration_source_invalid);
        CHECK_THAT(unreadable.what(), Contains(dir.path().string()) && Contains("chmod u+rx"));
    }
}

TEST_CASE("migrate_to reports the steps done before the one that failed", "[migration]")
{
    test::temp_dir dir;
    auto o = test::options_for(dir);
    const auto set = migration_set::from_files(with(base, "0003_bad.sql", "CREATE TABLOID x (y);\n"), "mig");
    o.migrations = set;
    o.apply_migrations = false;
    auto db = dbactor::database::open(o);
    std::vector<dbactor::admin::migration_step> steps;
    const auto e = error_of(
        [&] { db.call([&](dbactor::connection& c) { dbactor::admin::migrate_to(c, set, -1, steps); }); });
    CHECK(e.value() == errc::migration_failed);
    REQUIRE(steps.size() == 3);
    CHECK(steps[0].done);
    CHECK(steps[1].done);
    CHECK_FALSE(steps[0].failed);
    CHECK_FALSE(steps[2].done);
    CHECK(steps[2].failed);
    CHECK(ledger(db).size() == 2);
}
