// Migration files as other tools write them: a UTF-8 BOM, near-miss directives, goose and dbmate sections.
#include "support.hpp"

#include <dbactor/admin.hpp>

#include <algorithm>

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

/// Boots an in-memory database with `set`; returns the names of its tables (not sqlite_ or dbactor_).
std::vector<std::string> tables_after_boot(migration_set set)
{
    dbactor::options o;
    o.path = ":memory:";
    o.migrations = std::move(set);
    o.on_log = [](dbactor::log_level, std::string_view) {};
    auto db = dbactor::database::open(std::move(o));
    return db.read([](dbactor::connection& c) {
        return c.query<std::string>(
            "SELECT name FROM sqlite_schema WHERE type IN ('table', 'view') AND name NOT "
            "LIKE 'sqlite_%' AND name NOT LIKE 'dbactor_%' ORDER BY name");
    });
}

} // namespace

TEST_CASE("a UTF-8 BOM at the start of a file is ignored: its directive applies and the checksum is the same",
          "[migration][formats]")
{
    const std::string body = "-- dbactor: no-transaction\nVACUUM;\n";
    const auto set = migration_set::from_files({{"0001_vacuum.sql", "\xEF\xBB\xBF" + body}});
    REQUIRE(set.items().size() == 1);
    CHECK(set.items()[0].no_transaction);
    CHECK(set.items()[0].up_sql == body);
    CHECK(dbactor::migration_checksum("\xEF\xBB\xBF" + body) == dbactor::migration_checksum(body));
    CHECK(tables_after_boot(set).empty()); // VACUUM ran outside a transaction: boot succeeded
}

TEST_CASE("a comment that looks like a directive but is not one is refused with the list of directives",
          "[migration][formats]")
{
    for (const char* near_miss :
         {"-- dbactor no-transaction", "-- DBACTOR: no-transaction", "-- Dbactor : foreign-keys=off"}) {
        INFO(near_miss);
        const auto e = source_error({{"0001_a.sql", std::string(near_miss) + "\nCREATE TABLE a(x);\n"}});
        CHECK(e.value() == errc::migration_source_invalid);
        CHECK_THAT(e.what(),
                   Contains("m/0001_a.sql:1") && Contains("'-- dbactor: no-transaction'") &&
                       Contains("'-- dbactor: foreign-keys=off'"));
    }
    // Prose that merely mentions dbactor stays a comment.
    CHECK_NOTHROW(
        migration_set::from_files({{"0001_a.sql", "-- dbactor_migrations is the ledger\nSELECT 1;\n"}}));
}

TEST_CASE("a goose file runs its Up section and keeps its Down section as the down migration",
          "[migration][formats]")
{
    const std::string goose = "-- +goose Up\n"
                              "CREATE TABLE history (id INTEGER PRIMARY KEY, cmd TEXT NOT NULL);\n"
                              "-- +goose StatementBegin\n"
                              "CREATE TRIGGER history_trim AFTER INSERT ON history BEGIN\n"
                              "  DELETE FROM history WHERE id < new.id - 1000; SELECT ';';\n"
                              "END;\n"
                              "-- +goose StatementEnd\n"
                              "\n"
                              "-- +goose Down\n"
                              "DROP TRIGGER history_trim;\n"
                              "DROP TABLE history;\n";
    const auto set = migration_set::from_files({{"0001_create_history.sql", goose}});
    const auto& m = set.items().at(0);
    CHECK_THAT(m.up_sql, !Contains("DROP TABLE"));
    REQUIRE(m.down_sql);
    CHECK_THAT(*m.down_sql, Contains("DROP TABLE history"));
    CHECK(std::count(m.down_sql->begin(), m.down_sql->end(), '\n') == 11); // padded: line numbers of the file
    CHECK(tables_after_boot(set) == std::vector<std::string>{"history"});  // the Down section did not run
}

TEST_CASE("goose NO TRANSACTION and dbmate transaction:false make a no-transaction migration",
          "[migration][formats]")
{
    const auto goose =
        migration_set::from_files({{"0001_v.sql", "-- +goose NO TRANSACTION\n-- +goose Up\nVACUUM;\n"}});
    CHECK(goose.items().at(0).no_transaction);
    const auto dbmate = migration_set::from_files(
        {{"0001_v.sql", "-- migrate:up transaction:false\nVACUUM;\n\n-- migrate:down\nSELECT 1;\n"}});
    CHECK(dbmate.items().at(0).no_transaction);
    CHECK(dbmate.items().at(0).down_sql.has_value());
}

TEST_CASE("a dbmate file runs its up section only", "[migration][formats]")
{
    const auto set = migration_set::from_files({{"0001_users.sql",
                                                 "-- migrate:up\nCREATE TABLE users (id INTEGER PRIMARY KEY, "
                                                 "name TEXT);\n\n-- migrate:down\nDROP TABLE "
                                                 "users;\n"}});
    CHECK(tables_after_boot(set) == std::vector<std::string>{"users"});
}

TEST_CASE("section markers out of order, mixed, unknown, or a Down section beside a down file are refused",
          "[migration][formats]")
{
    CHECK_THAT(
        source_error({{"0001_a.sql", "-- +goose Down\nDROP TABLE a;\n-- +goose Up\nCREATE TABLE a(x);\n"}})
            .what(),
        Contains("m/0001_a.sql:3"));
    CHECK_THAT(
        source_error({{"0001_a.sql", "-- +goose Up\nCREATE TABLE a(x);\n-- migrate:down\nDROP TABLE a;\n"}})
            .what(),
        Contains("mixes goose"));
    CHECK_THAT(
        source_error({{"0001_a.sql", "-- +goose Up\n-- +goose ENVSUB ON\nCREATE TABLE a(x);\n"}}).what(),
        Contains("m/0001_a.sql:2") && Contains("unknown goose annotation"));
    CHECK_THAT(
        source_error({{"0001_a.sql", "-- +goose Up\nCREATE TABLE a(x);\n-- +goose Down\nDROP TABLE a;\n"},
                      {"0001_a.down.sql", "DROP TABLE a;\n"}})
            .what(),
        Contains("Down section of its own") && Contains("0001_a.down.sql"));
}
