// Timestamped versions (sqlx, goose, dbmate, golang-migrate), `.up.sql` pairs, down files without statements,
// every problem of a directory at once, and the advice for names dbactor does not read.
#include "support.hpp"

#include <dbactor/admin.hpp>

#include <fmt/format.h>
#include <sqlite3.h>

#include <chrono>
#include <fstream>
#include <future>
#include <thread>

using Catch::Matchers::Contains;
using dbactor::errc;
using dbactor::migration_set;

namespace {

using files = std::vector<std::pair<std::string, std::string>>;

dbactor::error source_error(files f)
{
    try {
        migration_set::from_files(std::move(f), "m");
    }
    catch (const dbactor::error& e) {
        return e;
    }
    FAIL("from_files accepted a source it should refuse");
    throw std::logic_error("unreachable");
}

dbactor::options with(const test::temp_dir& d, files f)
{
    auto o = test::options_for(d);
    o.migrations = migration_set::from_files(std::move(f), "m");
    return o;
}

std::vector<std::int64_t> ledger_versions(dbactor::database& db)
{
    return db.read([](dbactor::connection& c) {
        return c.query<std::int64_t>("SELECT version FROM dbactor_migrations ORDER BY version");
    });
}

const files sqlx_history = {
    {"20210422143411_create_history.sql",
     "CREATE TABLE history (id INTEGER PRIMARY KEY, command TEXT NOT NULL, note TEXT DEFAULT 'a;b');\n"
     "CREATE TRIGGER history_note AFTER INSERT ON history BEGIN\n"
     "  UPDATE history SET note = 'x; y' WHERE id = new.id;\n"
     "END;\n"},
    {"20210510090000_add_index.sql", "CREATE INDEX history_command ON history(command);\n"},
    {"20230101120000_add_cwd.up.sql", "ALTER TABLE history ADD COLUMN cwd TEXT;\r\n"},
    {"20230101120000_add_cwd.down.sql", "ALTER TABLE history DROP COLUMN cwd;\r\n"},
};

} // namespace

TEST_CASE("timestamped versions run in order with gaps, and schema_version is the newest one",
          "[migration][schemes]")
{
    const auto set = migration_set::from_files(sqlx_history, "m");
    CHECK(set.scheme() == dbactor::version_scheme::timestamped);
    REQUIRE(set.items().size() == 3);
    CHECK(set.items()[2].name == "add_cwd");
    CHECK(set.items()[2].down_sql.has_value()); // the .up.sql file's .down.sql
    CHECK(set.find(20210510090000) == &set.items()[1]);
    CHECK(set.find(20210510090001) == nullptr);

    test::temp_dir d;
    auto db = dbactor::database::open(with(d, sqlx_history));
    CHECK(db.boot_report().schema_version == 20230101120000);
    CHECK(ledger_versions(db) == std::vector<std::int64_t>{20210422143411, 20210510090000, 20230101120000});
    // user_version counts the applied migrations: a timestamp does not fit its 32 bits.
    CHECK(db.read([](dbactor::connection& c) { return *c.query_one<std::int64_t>("PRAGMA user_version"); }) ==
          3);
    db.write([](dbactor::connection& c) { c.exec("INSERT INTO history (command) VALUES ('ls')"); });
    CHECK(db.read([](dbactor::connection& c) {
        return *c.query_one<std::string>("SELECT note FROM history");
    }) == "x; y");
    // Down through the .down.sql of the .up.sql pair.
    const auto steps = db.call([&](dbactor::connection& c) {
        return dbactor::admin::migrate_to(c, migration_set::from_files(sqlx_history, "m"), 20210510090000);
    });
    REQUIRE(steps.size() == 1);
    CHECK_FALSE(steps[0].up);
    CHECK(db.read([](dbactor::connection& c) {
                return c.query<std::string>(
                    "SELECT name FROM pragma_table_info('history') WHERE name = 'cwd'");
            }).empty());
}

TEST_CASE("a pending timestamped migration older than the newest applied one is refused unless allowed",
          "[migration][schemes]")
{
    test::temp_dir d;
    files f = {{"20240101000000_a.sql", "CREATE TABLE a (id INTEGER PRIMARY KEY);"},
               {"20240301000000_c.sql", "CREATE TABLE c (id INTEGER PRIMARY KEY);"}};
    dbactor::database::open(with(d, f)).close();
    f.push_back({"20240201000000_b.sql", "CREATE TABLE b (id INTEGER PRIMARY KEY);"}); // merged late
    const auto e = test::open_error(with(d, f));
    CHECK(e.value() == errc::migration_source_invalid);
    CHECK_THAT(e.what(),
               Contains("m/20240201000000_b.sql") && Contains("m/20240301000000_c.sql") &&
                   Contains("out of order") && Contains("--allow-out-of-order") &&
                   Contains("Nothing was changed"));
    auto o = with(d, f);
    o.allow_out_of_order = true;
    auto db = dbactor::database::open(std::move(o));
    CHECK(ledger_versions(db) == std::vector<std::int64_t>{20240101000000, 20240201000000, 20240301000000});
    CHECK(db.boot_report().schema_version == 20240301000000);
}

TEST_CASE("a directory that mixes sequential and timestamped versions is refused, naming a file of each",
          "[migration][schemes]")
{
    const auto e = source_error({{"0001_a.sql", "SELECT 1;"}, {"20240101000000_b.sql", "SELECT 1;"}});
    CHECK(e.value() == errc::migration_source_invalid);
    CHECK_THAT(e.what(),
               Contains("m/0001_a.sql") && Contains("m/20240101000000_b.sql") &&
                   Contains("one per directory"));
}

TEST_CASE("names dbactor does not read get the name to rename them to", "[migration][schemes]")
{
    CHECK_THAT(source_error({{"V1__init.sql", "SELECT 1;"}}).what(),
               Contains("'0001_init.sql'") && Contains("Flyway"));
    CHECK_THAT(source_error({{"1_init.sql", "SELECT 1;"}}).what(), Contains("'0001_init.sql'"));
    // A Flyway version longer than any integer is advised from its digits (it once threw out_of_range).
    CHECK_THAT(source_error({{"V0088888888888888888888888__init.sql", "SELECT 1;"}}).what(),
               Contains("'88888888888888888888888_init.sql'"));
    CHECK_THAT(source_error({{"V007__init.sql", "SELECT 1;"}}).what(), Contains("'0007_init.sql'"));
    CHECK_THAT(source_error({{"2021-04-22-143411_create.sql", "SELECT 1;"}}).what(),
               Contains("'20210422143411_create.sql'"));
    const std::string table = source_error({{"init.sql", "SELECT 1;"}}).what();
    CHECK_THAT(table,
               Contains("20210422143411_create_users.sql") && Contains(".up.sql") &&
                   Contains("0001_create_users.sql"));
}

TEST_CASE("diesel's directories are refused with the moves that make them dbactor files",
          "[migration][schemes]")
{
    test::temp_dir d;
    const auto dir = d.path() / "migrations";
    std::filesystem::create_directories(dir / "2021-04-22-143411_create_history");
    std::ofstream(dir / "2021-04-22-143411_create_history" / "up.sql") << "CREATE TABLE h (id INTEGER);";
    std::ofstream(dir / "2021-04-22-143411_create_history" / "down.sql") << "DROP TABLE h;";
    try {
        migration_set::from_directory(dir);
        FAIL("a diesel layout was read as an empty set");
    }
    catch (const dbactor::error& e) {
        CHECK(e.value() == errc::migration_source_invalid);
        CHECK_THAT(e.what(),
                   Contains("diesel") && Contains("20210422143411_create_history.sql") &&
                       Contains("20210422143411_create_history.down.sql"));
    }
}

TEST_CASE("every problem of a directory is reported at once, sorted by version", "[migration][schemes]")
{
    const std::string what = source_error({
                                              {"0004_d.sql", "SELECT 1;"},
                                              {"0002_b.sql", "-- DBACTOR: no-transaction\nSELECT 1;"},
                                              {"0001_a.sql", "SELECT 1;"},
                                              {"0009_x.down.sql", "SELECT 1;"},
                                          })
                                 .what();
    CHECK_THAT(what, Contains("3 problems"));
    const auto directive = what.find("m/0002_b.sql:1");
    const auto gap = what.find("version 3 is missing");
    const auto down = what.find("m/0009_x.down.sql");
    REQUIRE(directive != std::string::npos);
    REQUIRE(gap != std::string::npos);
    REQUIRE(down != std::string::npos);
    CHECK(directive < gap);
    CHECK(gap < down);
}

TEST_CASE("a down file without a statement is not a down migration: reverting past it is refused, naming it",
          "[migration][schemes]")
{
    test::temp_dir d;
    const files f = {{"0001_a.sql", "CREATE TABLE a (id INTEGER PRIMARY KEY);"},
                     {"0001_a.down.sql", "-- nothing to undo\n;\n"},
                     {"0002_b.sql",
                      "-- +goose Up\nCREATE TABLE b (id INTEGER);\n-- +goose Down\n-- +goose "
                      "StatementBegin\n-- +goose StatementEnd\n"}};
    const auto set = migration_set::from_files(f, "m");
    CHECK_FALSE(set.items()[0].down_sql.has_value());
    CHECK(set.items()[0].empty_down == "m/0001_a.down.sql");
    CHECK_THAT(set.items()[1].empty_down, Contains("m/0002_b.sql"));
    auto db = dbactor::database::open(with(d, f));
    for (std::int64_t target : {1, 0}) {
        try {
            db.call([&](dbactor::connection& c) { dbactor::admin::migrate_to(c, set, target); });
            FAIL("migrate_to reverted past a down file without statements");
        }
        catch (const dbactor::error& e) {
            CHECK(e.value() == errc::migration_failed);
            CHECK_THAT(e.what(),
                       Contains(target == 1 ? "m/0002_b.sql" : "m/0002_b.sql") &&
                           Contains("holds no statement"));
        }
    }
    CHECK(ledger_versions(db) == std::vector<std::int64_t>{1, 2}); // nothing reverted
}

TEST_CASE("a failed revert of several steps says the steps before it stay reverted", "[migration][schemes]")
{
    test::temp_dir d;
    const files f = {{"0001_a.sql", "CREATE TABLE a (id INTEGER);"},
                     {"0001_a.down.sql", "DROP TABLE no_such_table;"},
                     {"0002_b.sql", "CREATE TABLE b (id INTEGER);"},
                     {"0002_b.down.sql", "DROP TABLE b;"}};
    auto db = dbactor::database::open(with(d, f));
    try {
        db.call([&](dbactor::connection& c) {
            dbactor::admin::migrate_to(c, migration_set::from_files(f, "m"), 0);
        });
        FAIL("the broken down file ran");
    }
    catch (const dbactor::error& e) {
        CHECK_THAT(e.what(), Contains("0001_a.down.sql") && Contains("reverted before it stay reverted"));
        CHECK_THAT(e.what(), !Contains("stay applied"));
    }
    CHECK(ledger_versions(db) == std::vector<std::int64_t>{1});
}

TEST_CASE("a migration renamed after it was applied is reported with the name it was applied under",
          "[migration][schemes]")
{
    test::temp_dir d;
    dbactor::database::open(with(d, {{"0001_first_name.sql", "CREATE TABLE a (id INTEGER);"}})).close();
    auto db = dbactor::database::open(with(d, {{"0001_better_name.sql", "CREATE TABLE a (id INTEGER);"}}));
    REQUIRE(db.boot_report().migrations.size() == 1);
    CHECK(db.boot_report().migrations[0].status == dbactor::migration_status::state::applied);
    CHECK(db.boot_report().migrations[0].ledger_name == "first_name");
}

TEST_CASE("a 100-file timestamped set with triggers migrates, and how long it takes is printed",
          "[migration][schemes]")
{
    files f;
    for (int i = 0; i < 100; ++i)
        f.push_back(
            {fmt::format("{}_t{}.sql", 20240101000000LL + i * 100, i),
             fmt::format("CREATE TABLE t{0} (id INTEGER PRIMARY KEY, v TEXT DEFAULT ';');\n"
                         "CREATE TRIGGER t{0}_v AFTER INSERT ON t{0} BEGIN UPDATE t{0} SET v = 'a;' WHERE "
                         "id = new.id; END;\nINSERT INTO t{0} (id) VALUES (1);\n",
                         i)});
    test::temp_dir d;
    const auto t0 = std::chrono::steady_clock::now();
    auto db = dbactor::database::open(with(d, f));
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
    WARN("100 timestamped migrations booted in " << ms.count() << " ms (synchronous=NORMAL)");
    CHECK(ledger_versions(db).size() == 100);
    CHECK(db.read([](dbactor::connection& c) { return *c.query_one<std::string>("SELECT v FROM t99"); }) ==
          "a;");
}

TEST_CASE("the ledger's duration_ms is the migration's own time, not the wait for another connection's lock",
          "[migration][schemes]")
{
    test::temp_dir d;
    dbactor::database::open(test::options_for(d)).close(); // a WAL database without migrations
    std::promise<void> locked;
    std::thread holder([&] {
        sqlite3* other = nullptr;
        sqlite3_open(d.db().c_str(), &other);
        sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr);
        locked.set_value();
        std::this_thread::sleep_for(std::chrono::milliseconds(1000)); // how long the lock is held
        sqlite3_exec(other, "COMMIT", nullptr, nullptr, nullptr);
        sqlite3_close(other);
    });
    locked.get_future().wait();
    const auto t0 = std::chrono::steady_clock::now();
    auto db = dbactor::database::open(with(d, {{"0001_a.sql", "CREATE TABLE a (id INTEGER);"}}));
    const auto waited =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
    holder.join();
    const auto recorded = db.read([](dbactor::connection& c) {
        return *c.query_one<std::int64_t>("SELECT duration_ms FROM dbactor_migrations WHERE version = 1");
    });
    INFO("boot took " << waited << " ms, the ledger says " << recorded << " ms");
    REQUIRE(waited >= 500); // it did wait for the lock
    CHECK(recorded < waited - 400);
}
