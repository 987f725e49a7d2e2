// dbtool on other tools' files and databases: timestamped sets, adoption, dry runs that report every
// problem, status exit codes, `new` per scheme, and check on a missing database.
#include "dbtool_support.hpp"

using Catch::Matchers::Contains;

namespace {

/// Writes `files` (name, text) into DIR/migrations and returns that directory.
std::string write_migrations(const test::temp_dir& dir,
                             const std::vector<std::pair<std::string, std::string>>& files)
{
    const auto to = dir.file("migrations");
    fs::create_directories(to);
    for (const auto& [name, text] : files)
        std::ofstream(fs::path(to) / name, std::ios::binary) << text;
    return to;
}

const std::vector<std::pair<std::string, std::string>> sqlx_files = {
    {"20210422143411_create_history.sql",
     "CREATE TABLE history (id INTEGER PRIMARY KEY, command TEXT NOT NULL);\r\n"
     "CREATE TRIGGER history_trim AFTER INSERT ON history BEGIN\r\n  DELETE FROM history WHERE command = "
     "';';\r\nEND;\r\n"},
    {"20210510090000_add_cwd.sql",
     "\xEF\xBB\xBF-- dbactor: no-transaction\nALTER TABLE history ADD COLUMN cwd TEXT;\n"},
};

} // namespace

TEST_CASE("migrate applies timestamped files (CRLF, BOM, triggers) and reports the newest version",
          "[dbtool][real-world]")
{
    test::temp_dir dir;
    const auto m = write_migrations(dir, sqlx_files);
    const auto r = dbtool({"--db", dir.db(), "--migrations", m, "migrate", "--json"});
    CHECK(r.code == 0);
    const auto j = parse_json(r);
    CHECK(j["version"] == 20210510090000);
    CHECK(j["steps"].size() == 2);
    // A late file with an older timestamp: refused (exit 4) unless --allow-out-of-order.
    std::ofstream(fs::path(m) / "20210501000000_late.sql") << "CREATE TABLE late (id INTEGER);\n";
    const auto late = dbtool({"--db", dir.db(), "--migrations", m, "migrate"});
    CHECK(late.code == 4);
    CHECK_THAT(late.err, Contains("out of order") && Contains("--allow-out-of-order"));
    CHECK(dbtool({"--db", dir.db(), "--migrations", m, "migrate", "--allow-out-of-order"}).code == 0);
    // `new` follows the directory's scheme: a UTC timestamp.
    const auto n = dbtool({"--migrations", m, "new", "add_tags", "--json"});
    CHECK(n.code == 0);
    CHECK(parse_json(n)["version"].get<std::int64_t>() > 20240000000000);
}

TEST_CASE("adopt takes over a database sqlx built: checks first, records, and migrate goes on",
          "[dbtool][real-world]")
{
    test::temp_dir dir;
    auto files = sqlx_files;
    const auto m = write_migrations(dir, files);
    raw_exec(
        dir.db(),
        "CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT, installed_on TEXT, "
        "success BOOLEAN NOT NULL, checksum BLOB, execution_time BIGINT);"
        "CREATE TABLE history (id INTEGER PRIMARY KEY, command TEXT NOT NULL);"
        "CREATE TRIGGER history_trim AFTER INSERT ON history BEGIN\n  DELETE FROM history WHERE command = "
        "';';\nEND;"
        "INSERT INTO _sqlx_migrations VALUES (20210422143411, 'create history', '', 1, x'00', 1);"
        "INSERT INTO history (command) VALUES ('ls'); PRAGMA user_version = 12;");
    const auto before = slurp(dir.db());
    const auto refused = dbtool({"--db", dir.db(), "--migrations", m, "migrate"});
    CHECK(refused.code == 10);
    CHECK_THAT(refused.err, Contains("adopt"));
    CHECK(slurp(dir.db()) == before);

    const auto dry = dbtool({"--db", dir.db(), "--migrations", m, "adopt", "--dry-run"});
    CHECK(dry.code == 0);
    CHECK_THAT(dry.out, Contains("would record 1 migration(s)") && Contains("20210422143411_create_history"));
    CHECK(slurp(dir.db()) == before); // a dry run writes nothing

    const auto r = dbtool({"--db", dir.db(), "--migrations", m, "adopt", "--json"});
    CHECK(r.code == 0);
    const auto j = parse_json(r);
    CHECK(j["tool"] == "sqlx");
    CHECK(j["versions"] == nlohmann::json::array({20210422143411}));
    CHECK(dbtool({"--db", dir.db(), "--migrations", m, "migrate"}).code == 0);
    const auto status = dbtool({"--db", dir.db(), "--migrations", m, "status", "--json"});
    CHECK(status.code == 0);
    CHECK(parse_json(status)["version"] == 20210510090000);
    CHECK(dbtool({"--db", dir.db(), "--migrations", m, "check"}).code == 0);
}

TEST_CASE("adopt refuses a schema the migrations do not build with exit 4 and the difference",
          "[dbtool][real-world]")
{
    test::temp_dir dir;
    const auto m = write_migrations(dir, sqlx_files);
    raw_exec(dir.db(),
             "CREATE TABLE history (id INTEGER PRIMARY KEY, command TEXT);" // not NULL-checked: differs
             "PRAGMA user_version = 3;");
    const auto before = slurp(dir.db());
    const auto r = dbtool({"--db", dir.db(), "--migrations", m, "adopt", "--version", "20210422143411"});
    CHECK(r.code == 4);
    CHECK_THAT(r.err, Contains("table history differs") && Contains("Nothing was written"));
    CHECK(slurp(dir.db()) == before);
}

TEST_CASE("migrate --dry-run reports every problem the real run would meet, sorted, and changes nothing",
          "[dbtool][real-world]")
{
    test::temp_dir dir;
    const auto m = write_migrations(dir,
                                    {{"0001_a.sql", "CREATE TABLE a (id INTEGER PRIMARY KEY);\n"},
                                     {"0002_begin.sql", "BEGIN;\nCREATE TABLE b (id INTEGER);\nCOMMIT;\n"},
                                     {"0003_fk.sql", "PRAGMA foreign_keys = OFF;\n"},
                                     {"0004_ok.sql", "CREATE TABLE d (id INTEGER);\n"}});
    const auto r = dbtool({"--db", dir.db(), "--migrations", m, "migrate", "--dry-run"});
    CHECK(r.code == 6);
    CHECK_THAT(r.out,
               Contains("would apply 0001_a.sql") && Contains("would fail to apply 0002_begin.sql") &&
                   Contains("would fail to apply 0003_fk.sql") && Contains("would apply 0004_ok.sql"));
    const auto begin = r.err.find("0002_begin.sql:1:1");
    const auto fk = r.err.find("0003_fk.sql:1:1");
    REQUIRE(begin != std::string::npos);
    REQUIRE(fk != std::string::npos);
    CHECK(begin < fk);
    CHECK_FALSE(fs::exists(dir.db())); // a dry run on a new database creates nothing
}

TEST_CASE("a directory with several problems is reported in one run, sorted by version (exit 4)",
          "[dbtool][real-world]")
{
    test::temp_dir dir;
    const auto m = write_migrations(dir,
                                    {{"0001_a.sql", "SELECT 1;\n"},
                                     {"0003_c.sql", "SELECT 1;\n"},
                                     {"0004_d.sql", "-- dbactor no-transaction\nSELECT 1;\n"},
                                     {"V5__e.sql", "SELECT 1;\n"}});
    const auto r = dbtool({"--db", dir.db(), "--migrations", m, "migrate"});
    CHECK(r.code == 4);
    CHECK_THAT(r.err,
               Contains("3 problems") && Contains("'0005_e.sql'") && Contains("version 2 is missing") &&
                   Contains("0004_d.sql:1"));
    // check on the missing database keeps the directory's finding beside the open failure.
    const auto c = dbtool({"--db", dir.file("missing.db"), "--migrations", m, "check", "--json"});
    CHECK(c.code == 1); // an I/O error comes right after corruption in severity (docs/DBTOOL.md)
    const auto k = kinds(parse_json(c));
    CHECK(k.count("migration_source_invalid") == 1);
    CHECK(k.size() == 2);
}

TEST_CASE("status exits 4 for a modified migration, aligns long names, and names a renamed one",
          "[dbtool][real-world]")
{
    test::temp_dir dir;
    const std::string long_name = "0001_a_migration_with_a_name_of_more_than_forty_characters";
    const auto m = write_migrations(
        dir, {{long_name + ".sql", "CREATE TABLE a (id INTEGER);\n"}, {"0002_b.sql", "SELECT 1;\n"}});
    REQUIRE(dbtool({"--db", dir.db(), "--migrations", m, "migrate"}).code == 0);
    const auto ok = dbtool({"--db", dir.db(), "--migrations", m, "status"});
    CHECK(ok.code == 0);
    CHECK_THAT(ok.out,
               Contains("  " + long_name + " applied") &&
                   Contains("  0002_b" + std::string(long_name.size() - 6, ' ') + " applied"));
    fs::rename(fs::path(m) / "0002_b.sql", fs::path(m) / "0002_bee.sql");
    CHECK_THAT(dbtool({"--db", dir.db(), "--migrations", m, "status"}).out,
               Contains("renamed: applied as 0002_b"));
    std::ofstream(fs::path(m) / "0002_bee.sql") << "SELECT 2;\n";
    const auto modified = dbtool({"--db", dir.db(), "--migrations", m, "status"});
    CHECK(modified.code == 4);
    CHECK_THAT(modified.err, Contains("modified"));
}

TEST_CASE("new states the naming rule", "[dbtool][real-world]")
{
    test::temp_dir dir;
    const auto r = dbtool({"--migrations", dir.file("m"), "new", "_x"});
    CHECK(r.code == 2);
    CHECK_THAT(r.err, Contains("start with a letter or a digit"));
}

TEST_CASE(
    "migrate refuses a migration that leaves legacy_alter_table on (exit 6) and the next one runs clean",
    "[dbtool][real-world]")
{
    test::temp_dir dir;
    const auto m =
        write_migrations(dir,
                         {{"0001_a.sql", "CREATE TABLE a (id INTEGER);\nPRAGMA legacy_alter_table = ON;\n"},
                          {"0002_b.sql", "CREATE TABLE b (id INTEGER);\n"}});
    const auto r = dbtool({"--db", dir.db(), "--migrations", m, "migrate"});
    CHECK(r.code == 6);
    CHECK_THAT(r.err, Contains("0001_a.sql:2") && Contains("legacy_alter_table"));
    const auto s = dbtool({"--db", dir.db(), "--migrations", m, "status", "--json"});
    CHECK(parse_json(s)["version"] == 0); // rolled back: nothing applied
}

TEST_CASE("a goose file runs its Up section only, and --to 0 reverts with its Down section",
          "[dbtool][real-world]")
{
    test::temp_dir dir;
    const auto m =
        write_migrations(dir,
                         {{"20240101000000_users.sql",
                           "-- +goose Up\n-- +goose StatementBegin\nCREATE TABLE users (id INTEGER);\n"
                           "CREATE TRIGGER users_t AFTER INSERT ON users BEGIN SELECT 1; END;\n"
                           "-- +goose StatementEnd\n-- +goose Down\nDROP TABLE users;\n"}});
    REQUIRE(dbtool({"--db", dir.db(), "--migrations", m, "migrate"}).code == 0);
    raw_exec(dir.db(), "INSERT INTO users VALUES (1);"); // the table is there: the Down section did not run
    CHECK(dbtool({"--db", dir.db(), "--migrations", m, "migrate", "--to", "0"}).code == 0);
    CHECK(dbtool({"--db", dir.db(), "--migrations", m, "check"}).code == 3); // pending again
}

TEST_CASE("migrate --to below a down file without statements exits 6 naming it, and nothing is reverted",
          "[dbtool][real-world]")
{
    test::temp_dir dir;
    const auto m = write_migrations(
        dir, {{"0001_a.sql", "CREATE TABLE a (id INTEGER);\n"}, {"0001_a.down.sql", "-- TODO\n"}});
    REQUIRE(dbtool({"--db", dir.db(), "--migrations", m, "migrate"}).code == 0);
    const auto r = dbtool({"--db", dir.db(), "--migrations", m, "migrate", "--to", "0"});
    CHECK(r.code == 6);
    CHECK_THAT(r.err, Contains("0001_a.down.sql") && Contains("holds no statement"));
    CHECK_THAT(r.out, !Contains("now at version 0"));
    raw_exec(dir.db(), "INSERT INTO a VALUES (1);"); // still there
}

TEST_CASE("a table rebuild converted without the directive exits 6 and keeps every child row",
          "[dbtool][real-world]")
{
    test::temp_dir dir;
    const auto m =
        write_migrations(dir,
                         {{"0001_schema.sql",
                           "CREATE TABLE parent (id INTEGER PRIMARY KEY);\nCREATE TABLE child (id INTEGER "
                           "PRIMARY KEY, p INTEGER "
                           "REFERENCES parent(id) ON DELETE CASCADE);\nINSERT INTO parent VALUES "
                           "(1);\nINSERT INTO child VALUES (1, 1);\n"},
                          {"0002_rebuild.sql",
                           "CREATE TABLE parent_new (id INTEGER PRIMARY KEY, x TEXT);\nINSERT INTO "
                           "parent_new (id) SELECT id FROM "
                           "parent;\nDROP TABLE parent;\nALTER TABLE parent_new RENAME TO parent;\n"}});
    const auto r = dbtool({"--db", dir.db(), "--migrations", m, "migrate"});
    CHECK(r.code == 6);
    CHECK_THAT(r.err, Contains("0002_rebuild.sql:3:1") && Contains("-- dbactor: foreign-keys=off"));
    const auto c = dbtool({"--db", dir.db(), "status", "--json"});
    CHECK(parse_json(c)["version"] == 1);
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(dir.db().c_str(), &db) == SQLITE_OK);
    sqlite3_stmt* st = nullptr;
    REQUIRE(sqlite3_prepare_v2(db, "SELECT count(*) FROM child", -1, &st, nullptr) == SQLITE_OK);
    REQUIRE(sqlite3_step(st) == SQLITE_ROW);
    CHECK(sqlite3_column_int(st, 0) == 1);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

TEST_CASE("a database under Litestream: its tables are a replicator's, and dbtool never checkpoints it "
          "unless forced",
          "[dbtool][real-world]")
{
    test::temp_dir dir;
    const auto m =
        write_migrations(dir, {{"0001_a.sql", "CREATE TABLE a (id INTEGER PRIMARY KEY, v TEXT);\n"}});
    REQUIRE(dbtool({"--db", dir.db(), "--migrations", m, "migrate"}).code == 0);
    // What `litestream replicate` creates in the database it replicates.
    raw_exec(dir.db(),
             "CREATE TABLE _litestream_seq (id INTEGER PRIMARY KEY, seq INTEGER);"
             "CREATE TABLE _litestream_lock (id INTEGER);");
    const auto status = dbtool({"--db", dir.db(), "--migrations", m, "status", "--json"});
    CHECK(status.code == 0);
    const auto j = parse_json(status);
    CHECK(j["checkpoints"] == "external");
    CHECK(j["replicator_tables"] == nlohmann::json::array({"_litestream_lock", "_litestream_seq"}));
    const auto check = dbtool({"--db", dir.db(), "--migrations", m, "check", "--json"});
    CHECK(check.code == 0); // not unknown schema, not a problem
    CHECK(parse_json(check)["replicator_tables"].size() == 2);

    // A write through dbtool leaves the WAL to the replicator: no checkpoint at close.
    std::ofstream(fs::path(m) / "0002_b.sql") << "INSERT INTO a (v) VALUES ('x');\n";
    REQUIRE(dbtool({"--db", dir.db(), "--migrations", m, "migrate"}).code == 0);
    CHECK(fs::file_size(dir.db() + "-wal") > 0);

    const auto soft = dbtool({"--db", dir.db(), "optimize", "--json"});
    CHECK(soft.code == 0);
    CHECK(parse_json(soft)["checkpointed"] == false);
    CHECK_THAT(soft.err, Contains("--force") && Contains("_litestream_seq"));
    CHECK(fs::file_size(dir.db() + "-wal") > 0);
    const auto forced = dbtool({"--db", dir.db(), "optimize", "--force", "--json"});
    CHECK(forced.code == 0);
    CHECK(parse_json(forced)["checkpointed"] == true);
}
