// Databases another migration tool manages are refused before anything is written (errc::not_managed).
#include "support.hpp"

#include <SQLiteCpp/Database.h>

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
