// Databases another migration tool manages are refused before anything is written (errc::not_managed).
#include "support.hpp"

#include <dbactor/admin.hpp>

#include <SQLiteCpp/Database.h>
#include <fmt/format.h>

#include <fstream>
#include <iterator>

using Catch::Matchers::Contains;
using dbactor::errc;

using test::open_error;

namespace {

std::string bytes_of(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

dbactor::options ours(const test::temp_dir& d)
{
    auto o = test::options_for(d);
    o.migrations = dbactor::migration_set::from_files(
        {{"0001_users.sql", "CREATE TABLE users(id INTEGER PRIMARY KEY);"}});
    return o;
}

} // namespace

TEST_CASE(
    "a database with another tool's ledger is refused with not_managed and left byte for byte unchanged",
    "[adoption]")
{
    test::temp_dir d;
    {
        SQLite::Database other(d.db(), SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
        other.exec("CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL);"
                   "INSERT INTO _sqlx_migrations VALUES (20210422143411, 'create history');"
                   "CREATE TABLE history (id INTEGER PRIMARY KEY); PRAGMA user_version = 12;");
    }
    const auto before = bytes_of(d.db());
    const auto e = open_error(ours(d));
    CHECK(e.value() == errc::not_managed);
    CHECK_THAT(e.what(),
               Contains("_sqlx_migrations") && Contains("sqlx") && Contains("adopt") &&
                   Contains("Nothing was written"));
    CHECK(bytes_of(d.db()) == before); // not switched to WAL, user_version still 12
    CHECK(std::string(dbactor::errc_name(e.value())) == "not_managed");
}

TEST_CASE("a database with a user_version and no ledger is refused with not_managed", "[adoption]")
{
    test::temp_dir d;
    {
        SQLite::Database other(d.db(), SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
        other.exec("CREATE TABLE settings (k TEXT PRIMARY KEY, v TEXT); PRAGMA user_version = 99;");
    }
    const auto before = bytes_of(d.db());
    const auto e = open_error(ours(d));
    CHECK(e.value() == errc::not_managed);
    CHECK_THAT(e.what(), Contains("user_version is 99"));
    CHECK(bytes_of(d.db()) == before);
}

TEST_CASE(
    "a database with tables but no ledger and user_version 0, or opened without migrations, is not refused",
    "[adoption]")
{
    test::temp_dir d;
    {
        SQLite::Database other(d.db(), SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
        other.exec("CREATE TABLE goose_db_version (id INTEGER PRIMARY KEY); PRAGMA user_version = 3;");
    }
    CHECK_NOTHROW(dbactor::database::open(test::options_for(d))); // no migrations: nothing to apply over it
    test::temp_dir plain;
    {
        SQLite::Database other(plain.db(), SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
        other.exec("CREATE TABLE notes (id INTEGER PRIMARY KEY);");
    }
    auto db = dbactor::database::open(ours(plain));
    CHECK(db.boot_report().schema_version == 1);
}

namespace {

/// The migrations a project kept for sqlx, as dbactor reads them (timestamped, one with a trigger).
const std::vector<std::pair<std::string, std::string>> history_files = {
    {"20210422143411_create_history.sql",
     "CREATE TABLE history (id INTEGER PRIMARY KEY, command TEXT NOT NULL);\n"
     "CREATE TRIGGER history_trim AFTER INSERT ON history BEGIN DELETE FROM history WHERE id < new.id - "
     "1000; "
     "END;\n"},
    {"20210510090000_add_cwd.sql", "ALTER TABLE history ADD COLUMN cwd TEXT;\n"},
    {"20230101120000_add_index.sql", "CREATE INDEX history_cwd ON history(cwd);\n"},
};

/// A database sqlx built with the first `applied` history files, its ledger, and user_version 12.
void built_by_sqlx(const test::temp_dir& d, std::size_t applied, const std::string& extra = "")
{
    SQLite::Database other(d.db(), SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    other.exec(
        "CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL, "
        "installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, success BOOLEAN NOT NULL, checksum "
        "BLOB NOT NULL, execution_time BIGINT NOT NULL)");
    for (std::size_t i = 0; i < applied; ++i) {
        other.exec(history_files[i].second);
        other.exec(fmt::format("INSERT INTO _sqlx_migrations (version, description, success, checksum, "
                               "execution_time) VALUES ({}, 'x', 1, x'00', 1)",
                               history_files[i].first.substr(0, 14)));
    }
    other.exec("INSERT INTO history (command) VALUES ('ls');" + extra + "PRAGMA user_version = 12;");
}

dbactor::options plain(const test::temp_dir& d)
{
    auto o = test::options_for(d);
    o.apply_migrations = false;
    return o;
}

std::int64_t count(const std::string& path, const std::string& sql)
{
    SQLite::Database db(path, SQLite::OPEN_READONLY);
    return db.execAndGet(sql).getInt64();
}

} // namespace

TEST_CASE(
    "adopt records what the other tool's ledger says is applied, leaves its ledger, then migrate goes on",
    "[adoption]")
{
    test::temp_dir d;
    built_by_sqlx(d, 2);
    const auto set = dbactor::migration_set::from_files(history_files, "m");
    {
        auto db = dbactor::database::open(plain(d));
        const auto r = db.call([&](dbactor::connection& c) { return dbactor::admin::adopt(c, set); });
        CHECK(r.tool == "sqlx");
        CHECK(r.table == "_sqlx_migrations");
        CHECK(r.user_version == 12);
        CHECK(r.versions == std::vector<std::int64_t>{20210422143411, 20210510090000});
    }
    CHECK(count(d.db(), "SELECT count(*) FROM _sqlx_migrations") == 2); // the other ledger as it was
    CHECK(count(d.db(), "PRAGMA user_version") == 12);
    auto o = test::options_for(d);
    o.migrations = set;
    auto db = dbactor::database::open(std::move(o)); // no longer not_managed: the third one is applied
    CHECK(db.boot_report().schema_version == 20230101120000);
    CHECK(count(d.db(), "SELECT count(*) FROM history") == 1);
    CHECK(count(d.db(), "SELECT count(*) FROM sqlite_schema WHERE name = 'history_cwd'") == 1);
}

TEST_CASE("adopt refuses a schema that differs from what the migrations build, lists it, and writes nothing",
          "[adoption]")
{
    test::temp_dir d;
    built_by_sqlx(d, 2, "CREATE TABLE hand_made (x);");
    auto db = dbactor::database::open(plain(d));
    try {
        db.call([&](dbactor::connection& c) {
            dbactor::admin::adopt(c, dbactor::migration_set::from_files(history_files, "m"));
        });
        FAIL("adopt recorded migrations over a schema they do not build");
    }
    catch (const dbactor::error& e) {
        CHECK(e.value() == errc::migration_modified);
        CHECK_THAT(e.what(),
                   Contains("table hand_made is in the database") && Contains("Nothing was written"));
    }
    CHECK(count(d.db(), "SELECT count(*) FROM sqlite_schema WHERE name = 'dbactor_migrations'") == 0);
}

TEST_CASE("adopt reads goose, golang-migrate and dbmate ledgers, and needs --version without a ledger",
          "[adoption]")
{
    const auto set = dbactor::migration_set::from_files(history_files, "m");
    auto adopt_with = [&](const std::string& ledger_sql, std::int64_t up_to = -1) {
        test::temp_dir d;
        {
            SQLite::Database other(d.db(), SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
            other.exec(history_files[0].second);
            other.exec(history_files[1].second);
            other.exec(ledger_sql);
        }
        auto db = dbactor::database::open(plain(d));
        return db.call([&](dbactor::connection& c) { return dbactor::admin::adopt(c, set, up_to); }).versions;
    };
    const std::vector<std::int64_t> two{20210422143411, 20210510090000};
    // goose: one row per apply and rollback; the third was applied and rolled back.
    CHECK(adopt_with(
              "CREATE TABLE goose_db_version (id INTEGER PRIMARY KEY AUTOINCREMENT, version_id INTEGER "
              "NOT NULL, is_applied INTEGER NOT NULL, tstamp TIMESTAMP DEFAULT (datetime('now')));"
              "INSERT INTO goose_db_version (version_id, is_applied) VALUES (0, 1), (20210422143411, 1), "
              "(20210510090000, 1), (20230101120000, 1), (20230101120000, 0);") == two);
    // golang-migrate: one row, the newest version.
    CHECK(adopt_with("CREATE TABLE schema_migrations (version uint64, dirty bool);"
                     "INSERT INTO schema_migrations VALUES (20210510090000, 0);") == two);
    // dbmate: versions as text.
    CHECK(adopt_with("CREATE TABLE schema_migrations (version VARCHAR(255) PRIMARY KEY);"
                     "INSERT INTO schema_migrations VALUES ('20210422143411'), ('20210510090000');") == two);
    // A hand-written upgrade script's user_version: the versions are the caller's to say.
    CHECK(adopt_with("PRAGMA user_version = 7;", 20210510090000) == two);
    CHECK_THROWS_WITH(adopt_with("PRAGMA user_version = 7;"), Contains("--version V"));
    CHECK_THROWS_WITH(adopt_with("CREATE TABLE schema_migrations (version uint64, dirty bool);"
                                 "INSERT INTO schema_migrations VALUES (20210510090000, 1);"),
                      Contains("dirty"));
}
