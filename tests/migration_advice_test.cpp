// What the runner says about statements converted from other tools: shell dot commands, PRAGMA foreign_keys
// in either direction, a table rebuild without the directive; and the dry run that finds all of it at once.
#include "support.hpp"

#include <dbactor/admin.hpp>

using Catch::Matchers::Contains;
using dbactor::errc;
using dbactor::migration_set;

namespace {

using files = std::vector<std::pair<std::string, std::string>>;

const files parent_child = {
    {"0001_parent.sql",
     "CREATE TABLE parent (id INTEGER PRIMARY KEY, name TEXT);\n"
     "CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES parent(id) ON DELETE "
     "CASCADE);\n"
     "INSERT INTO parent VALUES (1, 'a'), (2, 'b');\nINSERT INTO child VALUES (10, 1), (11, 2);\n"},
};

/// diesel's table rebuild: create the new table, copy, drop the old one, rename.
const char* rebuild = "CREATE TABLE parent_new (id INTEGER PRIMARY KEY, name TEXT NOT NULL DEFAULT '');\n"
                      "INSERT INTO parent_new SELECT id, coalesce(name, '') FROM parent;\n"
                      "DROP TABLE parent;\n"
                      "ALTER TABLE parent_new RENAME TO parent;\n";

dbactor::error boot_error(const test::temp_dir& d, files f)
{
    auto o = test::options_for(d);
    o.migrations = migration_set::from_files(std::move(f), "m");
    return test::open_error(std::move(o));
}

std::int64_t children(const test::temp_dir& d)
{
    auto o = test::options_for(d);
    o.apply_migrations = false;
    auto db = dbactor::database::open(std::move(o));
    return db.read(
        [](dbactor::connection& c) { return *c.query_one<std::int64_t>("SELECT count(*) FROM child"); });
}

} // namespace

TEST_CASE("a table rebuild without the directive is refused before DROP TABLE cascades, with the directive's "
          "advice",
          "[migration][advice]")
{
    test::temp_dir d;
    auto f = parent_child;
    f.push_back({"0002_rebuild.sql", rebuild});
    const auto e = boot_error(d, f);
    CHECK(e.value() == errc::migration_failed);
    CHECK_THAT(e.what(),
               Contains("m/0002_rebuild.sql:3:1") && Contains("DROP TABLE parent") && Contains("child") &&
                   Contains("-- dbactor: foreign-keys=off"));
    CHECK(children(d) == 2); // rolled back: no row of child was deleted

    f.back().second = std::string("-- dbactor: foreign-keys=off\n") + rebuild;
    auto o = test::options_for(d);
    o.migrations = migration_set::from_files(f, "m");
    dbactor::database::open(std::move(o)).close();
    CHECK(children(d) == 2); // the rebuild with the directive keeps every child row
}

TEST_CASE("PRAGMA foreign_keys = ON gets its own advice, not the one meant for OFF", "[migration][advice]")
{
    test::temp_dir d;
    const auto on = boot_error(d, {{"0001_a.sql", "PRAGMA FOREIGN_KEYS=ON;\nCREATE TABLE a (id INTEGER);"}});
    CHECK_THAT(on.what(), Contains("m/0001_a.sql:1:1") && Contains("already on"));
    CHECK_THAT(on.what(), !Contains("no effect inside a transaction"));
    const auto off =
        boot_error(d, {{"0001_a.sql", "PRAGMA foreign_keys = off;\nCREATE TABLE a (id INTEGER);"}});
    CHECK_THAT(off.what(), Contains("-- dbactor: foreign-keys=off"));
}

TEST_CASE("a sqlite3 shell dot command is named as one, not as a syntax error", "[migration][advice]")
{
    test::temp_dir d;
    const auto e = boot_error(
        d, {{"0001_a.sql", "CREATE TABLE a (id INTEGER);\n.timeout 1000\nCREATE TABLE b (id INTEGER);"}});
    CHECK(e.value() == errc::migration_failed);
    CHECK_THAT(e.what(), Contains("m/0001_a.sql:2:1") && Contains("'.timeout'") && Contains("sqlite3 shell"));
}

TEST_CASE("a foreign-key failure in a migration without the directive suggests it", "[migration][advice]")
{
    test::temp_dir d;
    auto f = parent_child;
    f.push_back({"0002_orphan.sql", "UPDATE child SET parent_id = 99 WHERE id = 10;"});
    f[0].second =
        "CREATE TABLE parent (id INTEGER PRIMARY KEY);\nCREATE TABLE child (id INTEGER PRIMARY KEY, "
        "parent_id INTEGER REFERENCES parent(id));\nINSERT INTO parent VALUES (1), (2);\nINSERT INTO "
        "child VALUES (10, 1), (11, 2);\n";
    const auto e = boot_error(d, f);
    CHECK_THAT(e.what(),
               Contains("m/0002_orphan.sql:1:1") && Contains("FOREIGN KEY constraint failed") &&
                   Contains("-- dbactor: foreign-keys=off"));
}

TEST_CASE(
    "a dry run checks every pending migration on a scratch copy of the schema and reports every problem",
    "[migration][advice]")
{
    test::temp_dir d;
    auto f = parent_child;
    {
        auto o = test::options_for(d);
        o.migrations = migration_set::from_files(f, "m");
        dbactor::database::open(std::move(o)).close();
    }
    f.push_back({"0002_begin.sql", "BEGIN;\nCREATE TABLE x (id INTEGER);\nCOMMIT;\n"});
    f.push_back({"0003_fine.sql", "CREATE TABLE y (id INTEGER REFERENCES parent(id));\n"});
    f.push_back({"0004_pragma.sql", "PRAGMA foreign_keys = OFF;\n"});
    f.push_back({"0005_typo.sql", "CREATE TABEL z (id INTEGER);\n"});
    const auto set = migration_set::from_files(f, "m");
    auto o = test::options_for(d);
    o.read_only = true;
    auto db = dbactor::database::open(std::move(o));
    std::vector<dbactor::admin::migration_problem> problems;
    const auto steps = db.call(
        [&](dbactor::connection& c) { return dbactor::admin::dry_run_migration(c, set, -1, problems); });
    REQUIRE(steps.size() == 4);
    CHECK(steps[0].failed);
    CHECK_FALSE(steps[1].failed);
    CHECK(steps[2].failed);
    CHECK(steps[3].failed);
    REQUIRE(problems.size() == 3);
    CHECK(problems[0].version == 2);
    CHECK_THAT(problems[0].message, Contains("m/0002_begin.sql:1:1") && Contains("must not begin, commit"));
    CHECK(problems[1].version == 4);
    CHECK_THAT(problems[1].message, Contains("m/0004_pragma.sql:1:1"));
    CHECK(problems[2].version == 5);
    CHECK_THAT(problems[2].message, Contains("m/0005_typo.sql:1:8") && Contains("syntax error"));
    for (const auto& s : steps)
        CHECK_FALSE(s.done);
    CHECK(db.read([](dbactor::connection& c) {
        return *c.query_one<std::int64_t>("SELECT count(*) FROM dbactor_migrations");
    }) == 1); // the database was not touched
}
