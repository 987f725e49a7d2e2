// dbtool --shards N: every command over a {shard} pattern, one report per shard, the most severe exit code.
#include "dbtool_support.hpp"

#include <string>
#include <vector>

using Catch::Matchers::Contains;

namespace {

std::vector<std::string> over(const test::temp_dir& dir, int n, std::vector<std::string> args)
{
    std::vector<std::string> all{"--shards",
                                 std::to_string(n),
                                 "--db",
                                 dir.file("bot-{shard}.db"),
                                 "--migrations",
                                 DBTOOL_FIXTURE_MIGRATIONS};
    all.insert(all.end(), args.begin(), args.end());
    return all;
}

std::string shard_file(const test::temp_dir& dir, int i)
{
    return dir.file("bot-" + std::to_string(i) + ".db");
}

/// One integer through the C API, read-only (-1 without a row).
long long raw_int(const std::string& path, const std::string& sql)
{
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
    sqlite3_stmt* st = nullptr;
    REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK);
    const long long v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

} // namespace

TEST_CASE("migrate --shards 3 makes three files that record their place, check reports each in one document",
          "[dbtool][shards]")
{
    test::temp_dir dir;
    const auto m = dbtool(over(dir, 3, {"migrate"}));
    REQUIRE(m.code == 0);
    CHECK_THAT(m.out,
               Contains("shard 0 of 3: " + shard_file(dir, 0)) && Contains("shard 2 of 3: ") &&
                   Contains("3 shards: exit code 0 (all ok)"));
    for (int i = 0; i < 3; ++i) {
        CHECK(raw_int(shard_file(dir, i), "SELECT shard FROM dbactor_shard") == i);
        CHECK(raw_int(shard_file(dir, i), "SELECT shards FROM dbactor_shard") == 3);
        CHECK(raw_int(shard_file(dir, i), "SELECT max(version) FROM dbactor_migrations") == 3);
    }
    const auto c = dbtool(over(dir, 3, {"--json", "check"}));
    CHECK(c.code == 0);
    const auto j = parse_json(c);
    CHECK(j["command"] == "check");
    CHECK(j["shard_count"] == 3);
    CHECK(j["exit_code"] == 0);
    REQUIRE(j["shards"].size() == 3);
    for (int i = 0; i < 3; ++i) {
        CHECK(j["shards"][i]["shard"] == i);
        CHECK(j["shards"][i]["path"] == shard_file(dir, i));
        CHECK(j["shards"][i]["exit_code"] == 0);
    }
}

TEST_CASE("over shards the most severe shard decides the exit code", "[dbtool][shards]")
{
    test::temp_dir dir;
    REQUIRE(dbtool(over(dir, 3, {"migrate", "--to", "2"})).code == 0);
    // Shard 1 migrated on its own, as one file (no --shards: its record is not checked).
    REQUIRE(dbtool({"--db", shard_file(dir, 1), "--migrations", DBTOOL_FIXTURE_MIGRATIONS, "migrate"}).code ==
            0);
    auto j = parse_json(dbtool(over(dir, 3, {"--json", "check"})));
    CHECK(j["exit_code"] == 3); // pending on shards 0 and 2
    CHECK(j["shards"][0]["exit_code"] == 3);
    CHECK(j["shards"][1]["exit_code"] == 0);
    CHECK(j["shards"][2]["exit_code"] == 3);

    {
        std::ofstream out(shard_file(dir, 2), std::ios::binary | std::ios::trunc);
        out << std::string(4096, 'x');
    }
    const auto r = dbtool(over(dir, 3, {"--json", "check"}));
    CHECK(r.code == 8); // not a database beats pending
    j = parse_json(r);
    CHECK(j["exit_code"] == 8);
    CHECK(j["shards"][0]["exit_code"] == 3);
    CHECK(j["shards"][2]["exit_code"] == 8);
    // The finding that says so names the file it is about.
    CHECK_THAT(j["shards"][2].dump(), Contains("not a database") && Contains(shard_file(dir, 2)));
    const auto text = dbtool(over(dir, 3, {"check"}));
    CHECK(text.code == 8);
    CHECK_THAT(text.out,
               Contains("3 shards: exit code 8 (the most severe, first from shard 2: " + shard_file(dir, 2)));
}

TEST_CASE("a shard set opened with another count exits 10 and nothing is written", "[dbtool][shards]")
{
    test::temp_dir dir;
    REQUIRE(dbtool(over(dir, 3, {"migrate"})).code == 0);
    const auto before = slurp(shard_file(dir, 0));
    const auto r = dbtool(over(dir, 2, {"--json", "migrate"}));
    CHECK(r.code == 10);
    const auto j = parse_json(r);
    CHECK(j["shards"][0]["error"]["kind"] == "shard_mismatch");
    CHECK_THAT(j["shards"][1]["error"]["message"].get<std::string>(),
               Contains("shard 1 of a set of 3, opened as shard 1 of 2") && Contains("Nothing was written"));
    CHECK(slurp(shard_file(dir, 0)) == before);
    CHECK(dbtool(over(dir, 3, {"status"})).code == 0);
}

TEST_CASE("the option --shards needs {shard} in --db (and in backup's TO), and {shard} needs --shards",
          "[dbtool][shards]")
{
    test::temp_dir dir;
    auto r = dbtool({"--shards", "3", "--db", dir.db(), "status"});
    CHECK(r.code == 2);
    CHECK_THAT(r.err, Contains("{shard} pattern"));
    r = dbtool({"--db", dir.file("bot-{shard}.db"), "status"});
    CHECK(r.code == 2);
    CHECK_THAT(r.err, Contains("--shards N was not given"));
    REQUIRE(dbtool(over(dir, 2, {"migrate"})).code == 0);
    r = dbtool(over(dir, 2, {"backup", dir.file("copy.db")}));
    CHECK(r.code == 2);
    CHECK_THAT(r.err, Contains("TO needs a {shard} pattern"));
    CHECK_FALSE(fs::exists(dir.file("copy.db")));
}

TEST_CASE("backup --shards copies every shard to its own file, each keeping its place", "[dbtool][shards]")
{
    test::temp_dir dir;
    REQUIRE(dbtool(over(dir, 2, {"migrate"})).code == 0);
    const auto r = dbtool(over(dir, 2, {"--json", "backup", dir.file("copy-{shard}.db")}));
    REQUIRE(r.code == 0);
    const auto j = parse_json(r);
    CHECK(j["shards"][1]["to"] == dir.file("copy-1.db"));
    for (int i = 0; i < 2; ++i)
        CHECK(raw_int(dir.file("copy-" + std::to_string(i) + ".db"), "SELECT shard FROM dbactor_shard") == i);
    // The copies are a set of their own: dbtool checks them as one.
    CHECK(dbtool({"--shards",
                  "2",
                  "--db",
                  dir.file("copy-{shard}.db"),
                  "--migrations",
                  DBTOOL_FIXTURE_MIGRATIONS,
                  "check"})
              .code == 0);
}
