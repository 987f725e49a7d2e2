// No state leaks out of a migration: per-connection settings it changes fail it, and boot's pragmas are read
// back once more after the migrations (DESIGN.md "Migrations from the real world").
#include "support.hpp"

using Catch::Matchers::Contains;
using dbactor::errc;
using dbactor::migration_set;

using test::open_error;

namespace {

using files = std::vector<std::pair<std::string, std::string>>;

dbactor::options with(const test::temp_dir& d, files f)
{
    auto o = test::options_for(d);
    o.migrations = migration_set::from_files(std::move(f), "mig");
    return o;
}

std::int64_t user_version(const test::temp_dir& d)
{
    auto o = test::options_for(d);
    o.read_only = true;
    auto db = dbactor::database::open(std::move(o));
    return db.boot_report().schema_version;
}

const std::pair<std::string, std::string> first = {
    "0001_tables.sql",
    "CREATE TABLE parent(id INTEGER PRIMARY KEY);\n"
    "CREATE TABLE child(id INTEGER PRIMARY KEY, parent INTEGER "
    "REFERENCES parent(id) ON DELETE CASCADE);\n"};

} // namespace

TEST_CASE("PRAGMA foreign_keys in a no-transaction migration is refused with the advice to use the directive",
          "[migration][state]")
{
    test::temp_dir d;
    const auto e = open_error(with(
        d,
        {first,
         {"0002_fk.sql", "-- dbactor: no-transaction\nPRAGMA FOREIGN_KEYS=OFF;\nDELETE FROM parent;\n"}}));
    CHECK(e.value() == errc::migration_failed);
    CHECK_THAT(e.what(), Contains("mig/0002_fk.sql:2:1") && Contains("-- dbactor: foreign-keys=off"));
    CHECK(user_version(d) == 1); // the first migration stays applied
}

TEST_CASE(
    "a migration that leaves legacy_alter_table on is rolled back, naming the pragma and its line, and the "
    "next migrations and the service do not inherit it",
    "[migration][state]")
{
    test::temp_dir d;
    const auto e = open_error(
        with(d, {first, {"0002_legacy.sql", "CREATE TABLE extra(x);\nPRAGMA legacy_alter_table = ON;\n"}}));
    CHECK(e.value() == errc::migration_failed);
    CHECK_THAT(e.what(),
               Contains("mig/0002_legacy.sql:2:1") && Contains("legacy_alter_table") &&
                   Contains("rolled back"));
    CHECK(user_version(d) == 1);
    auto db = dbactor::database::open(with(d, {first}));
    CHECK(db.read([](dbactor::connection& c) {
        return *c.query_one<std::int64_t>("SELECT count(*) FROM sqlite_schema WHERE name = 'extra'");
    }) == 0);
    CHECK(db.call([](dbactor::connection& c) { return *c.query_one<int>("PRAGMA legacy_alter_table"); }) ==
          0);
}

TEST_CASE("a no-transaction migration that leaves case_sensitive_like on fails and the setting is put back",
          "[migration][state]")
{
    test::temp_dir d;
    const auto e = open_error(
        with(d, {first, {"0002_like.sql", "-- dbactor: no-transaction\nPRAGMA case_sensitive_like = 1;\n"}}));
    CHECK(e.value() == errc::migration_failed);
    CHECK_THAT(e.what(), Contains("case_sensitive_like") && Contains("not recorded"));
}

TEST_CASE("a migration that changes a setting and sets it back is accepted", "[migration][state]")
{
    test::temp_dir d;
    auto db = dbactor::database::open(with(
        d,
        {first,
         {"0002_rt.sql",
          "PRAGMA recursive_triggers = ON;\nCREATE TABLE log(x);\nPRAGMA recursive_triggers = OFF;\n"}}));
    CHECK(db.boot_report().schema_version == 2);
    CHECK(db.call([](dbactor::connection& c) { return *c.query_one<int>("PRAGMA foreign_keys"); }) == 1);
}

TEST_CASE("after a table rebuild with foreign-keys=off, the next migration's DELETE still cascades",
          "[migration][state]")
{
    test::temp_dir d;
    auto db = dbactor::database::open(
        with(d,
             {first,
              {"0002_seed.sql", "INSERT INTO parent VALUES (1);\nINSERT INTO child VALUES (10, 1);\n"},
              {"0003_rebuild.sql",
               "-- dbactor: foreign-keys=off\nCREATE TABLE parent_new(id INTEGER PRIMARY KEY, name TEXT);\n"
               "INSERT INTO parent_new(id) SELECT id FROM parent;\nDROP TABLE parent;\n"
               "ALTER TABLE parent_new RENAME TO parent;\n"},
              {"0004_purge.sql", "DELETE FROM parent WHERE id = 1;\n"}}));
    CHECK(db.read([](dbactor::connection& c) {
        return *c.query_one<std::int64_t>("SELECT count(*) FROM child");
    }) == 0);
    CHECK(db.call([](dbactor::connection& c) { return *c.query_one<int>("PRAGMA foreign_keys"); }) == 1);
}

TEST_CASE("a pragma boot set that a migration changed is found when boot reads the pragmas back once more",
          "[migration][state]")
{
    test::temp_dir d;
    const auto e = open_error(
        with(d, {first, {"0002_sync.sql", "-- dbactor: no-transaction\nPRAGMA synchronous = OFF;\n"}}));
    CHECK(e.value() == errc::pragma_mismatch);
    CHECK_THAT(e.what(), Contains("after the migrations") && Contains("synchronous"));
}
