// dbtool as a user runs it: each exit code, its output and JSON, and the multi-process contracts (two
// migrators, check and backup next to a live writer, busy, SIGINT).
#include "dbtool_support.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

using Catch::Matchers::Contains;

namespace {

/// A database migrated to version 3 whose `numbers` table has a page with an invalid page type.
void damaged(const test::temp_dir& dir)
{
    migrated(dir, DBTOOL_FIXTURE_MIGRATIONS);
    auto bytes = slurp(dir.db());
    bytes[4096 * 5] = '\x07';
    std::ofstream(dir.db(), std::ios::binary | std::ios::trunc) << bytes;
}

/// Waits (bounded) until the process `pid` has `path` open.
bool has_open(pid_t pid, const std::string& path)
{
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < until) {
        std::error_code ec;
        for (const auto& fd : fs::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec)) {
            std::error_code lec;
            if (fs::read_symlink(fd.path(), lec) == fs::path(path))
                return true;
        }
        std::this_thread::yield();
    }
    return false;
}

} // namespace

TEST_CASE("the option --help documents every command and the exit codes with their severity order",
          "[dbtool]")
{
    const auto r = dbtool({"--help"});
    CHECK(r.code == 0);
    for (const char* cmd : {"migrate", "check", "status", "new", "backup", "optimize"})
        CHECK_THAT(r.out, Contains(cmd));
    for (const char* code : {"  3 ", "  4 ", "  5 ", "  6 ", "  7 ", "  8 ", "  9 ", "  10 ", "  130 "})
        CHECK_THAT(r.out, Contains(code));
    CHECK_THAT(r.out, Contains("8, 10, 6, 4, 5, 9, 7, 3"));
}

TEST_CASE("a usage mistake exits 2", "[dbtool]")
{
    test::temp_dir dir;
    CHECK(dbtool({"frobnicate"}).code == 2);
    CHECK(dbtool({"--db", dir.db(), "migrate", "--to", "x"}).code == 2);
    const auto r = dbtool({"--db", dir.db(), "migrate"});
    CHECK(r.code == 2);
    CHECK_THAT(r.err, Contains("--migrations"));
}

TEST_CASE("migrate applies every migration, prints one JSON document, and check then exits 0", "[dbtool]")
{
    test::temp_dir dir;
    const auto r = dbtool({"--db", dir.db(), "--migrations", DBTOOL_FIXTURE_MIGRATIONS, "--json", "migrate"});
    REQUIRE(r.code == 0);
    const auto j = parse_json(r);
    CHECK(j["version"] == 3);
    REQUIRE(j["steps"].size() == 3);
    CHECK(j["steps"][2]["name"] == "numbers");
    CHECK(j["steps"][2]["done"] == true);

    const auto again = dbtool({"--db", dir.db(), "--migrations", DBTOOL_FIXTURE_MIGRATIONS, "migrate"});
    CHECK(again.code == 0);
    CHECK_THAT(again.out, Contains("up to date at version 3"));

    const auto check =
        dbtool({"--db", dir.db(), "--migrations", DBTOOL_FIXTURE_MIGRATIONS, "--json", "check", "--full"});
    CHECK(check.code == 0);
    const auto c = parse_json(check);
    CHECK(c["integrity"] == "ok");
    CHECK(c["findings"].empty());
}

TEST_CASE("check exits 3 with pending migrations and status lists them", "[dbtool]")
{
    test::temp_dir dir;
    migrated(dir, DBTOOL_FIXTURE_MIGRATIONS, 1);
    const auto r = dbtool({"--db", dir.db(), "--migrations", DBTOOL_FIXTURE_MIGRATIONS, "check"});
    CHECK(r.code == 3);
    CHECK_THAT(r.out, Contains("0002_warnings.sql is not applied yet") && Contains("0003_numbers.sql"));

    const auto s = dbtool({"--db", dir.db(), "--migrations", DBTOOL_FIXTURE_MIGRATIONS, "--json", "status"});
    CHECK(s.code == 0);
    const auto j = parse_json(s);
    CHECK(j["version"] == 1);
    CHECK(j["journal_mode"] == "wal");
    CHECK(j["page_count"].get<int>() > 0);
    REQUIRE(j["migrations"].size() == 3);
    CHECK(j["migrations"][0]["state"] == "applied");
    CHECK(j["migrations"][0].contains("applied_at"));
    CHECK(j["migrations"][1]["state"] == "pending");
}

TEST_CASE("check and status change nothing and never create a database", "[dbtool]")
{
    test::temp_dir dir;
    migrated(dir, DBTOOL_FIXTURE_MIGRATIONS, 2);
    const auto before = slurp(dir.db());
    CHECK(dbtool({"--db", dir.db(), "--migrations", DBTOOL_FIXTURE_MIGRATIONS, "check", "--full"}).code == 3);
    CHECK(dbtool({"--db", dir.db(), "status"}).code == 0);
    CHECK(slurp(dir.db()) == before);
    CHECK_FALSE(fs::exists(dir.db() + "-wal"));
    CHECK_FALSE(fs::exists(dir.db() + "-shm"));

    const auto missing = dir.file("missing.db");
    for (const char* cmd : {"check", "status"}) {
        const auto r = dbtool({"--db", missing, cmd});
        CHECK(r.code == 1);
        CHECK_THAT(r.err, Contains("does not exist"));
        CHECK_FALSE(fs::exists(missing));
    }
}

TEST_CASE("a modified migration or an invalid migration directory exits 4", "[dbtool]")
{
    test::temp_dir dir;
    const auto mig = copy_migrations(dir);
    migrated(dir, mig);
    std::ofstream(fs::path(mig) / "0002_warnings.sql", std::ios::app)
        << "CREATE INDEX w ON warnings (member_id);\n";
    const auto r = dbtool({"--db", dir.db(), "--migrations", mig, "check"});
    CHECK(r.code == 4);
    CHECK_THAT(r.out, Contains("0002_warnings.sql was changed"));
    CHECK(dbtool({"--db", dir.db(), "--migrations", mig, "migrate"}).code == 4);

    std::ofstream(fs::path(mig) / "0005_gap.sql") << "SELECT 1;\n";
    const auto gap = dbtool({"--db", dir.db(), "--migrations", mig, "check"});
    CHECK(gap.code == 4);
    CHECK_THAT(gap.out, Contains("[4] migration_source_invalid") && Contains("0005_gap.sql"));
    const auto gap_migrate = dbtool({"--db", dir.db(), "--migrations", mig, "migrate"});
    CHECK(gap_migrate.code == 4);
    CHECK_THAT(gap_migrate.err, Contains("0005_gap.sql"));
}

TEST_CASE("a database ahead of the migrations exits 5", "[dbtool]")
{
    test::temp_dir dir;
    migrated(dir, DBTOOL_FIXTURE_MIGRATIONS);
    const auto two = copy_migrations(dir, 2);
    const auto r = dbtool({"--db", dir.db(), "--migrations", two, "--json", "check"});
    CHECK(r.code == 5);
    const auto j = parse_json(r);
    CHECK(j["findings"][0]["kind"] == "database_ahead");
    CHECK(dbtool({"--db", dir.db(), "--migrations", two, "migrate"}).code == 5);
}

TEST_CASE("a failing migration exits 6 with file:line:column, and earlier ones stay applied", "[dbtool]")
{
    test::temp_dir dir;
    const auto mig = copy_migrations(dir);
    std::ofstream(fs::path(mig) / "0004_bans.sql")
        << "-- bans\nCREATE TABLE bans (x);\n\n    CREATE TABLOID b (x);\n";
    const auto r = dbtool({"--db", dir.db(), "--migrations", mig, "migrate"});
    CHECK(r.code == 6);
    CHECK_THAT(r.err, Contains("0004_bans.sql:4:12: near \"TABLOID\": syntax error"));
    const auto s = parse_json(dbtool({"--db", dir.db(), "--json", "status"}));
    CHECK(s["version"] == 3);
}

TEST_CASE("migrate --to goes down with down files, an irreversible migration exits 6 and changes nothing",
          "[dbtool]")
{
    test::temp_dir dir;
    const auto mig = copy_migrations(dir);
    migrated(dir, mig);
    auto r = dbtool({"--db", dir.db(), "--migrations", mig, "migrate", "--to", "1"});
    CHECK(r.code == 6);
    CHECK_THAT(r.err, Contains("irreversible") && Contains("0003_numbers.down.sql"));
    std::ofstream(fs::path(mig) / "0003_numbers.down.sql") << "DROP TABLE numbers;\n";
    r = dbtool({"--db", dir.db(), "--migrations", mig, "migrate", "--to", "1", "--dry-run"});
    CHECK(r.code == 0);
    CHECK_THAT(r.out,
               Contains("would revert 0003_numbers.down.sql") &&
                   Contains("would revert 0002_warnings.down.sql"));
    r = dbtool({"--db", dir.db(), "--migrations", mig, "migrate", "--to", "1"});
    CHECK(r.code == 0);
    CHECK_THAT(r.out, Contains("reverted 0003_numbers.down.sql") && Contains("now at version 1"));
    CHECK(dbtool({"--db", dir.db(), "--migrations", mig, "check"}).code == 3);
}

TEST_CASE("a database locked by another process exits 7 after about --busy-timeout", "[dbtool]")
{
    test::temp_dir dir;
    test::process holder({DBACTOR_TEST_HELPER_EXE, "hold-lock", dir.db()});
    REQUIRE(holder.read_line() == "ready");
    const auto t0 = std::chrono::steady_clock::now();
    const auto r = dbtool(
        {"--db", dir.db(), "--migrations", DBTOOL_FIXTURE_MIGRATIONS, "--busy-timeout", "300", "migrate"});
    const auto took = std::chrono::steady_clock::now() - t0;
    CHECK(r.code == 7);
    CHECK_THAT(r.err, Contains("busy_timeout"));
    CHECK(took >= std::chrono::milliseconds(250));
    CHECK(took < std::chrono::seconds(10));
    CHECK(holder.finish() == 0);
}

TEST_CASE("a damaged file or a non-database exits 8 and is not modified", "[dbtool]")
{
    test::temp_dir dir;
    std::ofstream(dir.db()) << "this is a text file, not a database\n";
    const auto before = slurp(dir.db());
    auto r = dbtool({"--db", dir.db(), "--json", "check"});
    CHECK(r.code == 8);
    CHECK(parse_json(r)["findings"][0]["message"].get<std::string>().find("not a database") !=
          std::string::npos);
    CHECK(dbtool({"--db", dir.db(), "--migrations", DBTOOL_FIXTURE_MIGRATIONS, "migrate"}).code == 8);
    CHECK(slurp(dir.db()) == before);

    test::temp_dir dir2;
    migrated(dir2, DBTOOL_FIXTURE_MIGRATIONS);
    auto bytes = slurp(dir2.db());
    bytes[4096 * 5] = '\x07'; // a b-tree page of `numbers` with an invalid page type
    std::ofstream(dir2.db(), std::ios::binary | std::ios::trunc) << bytes;
    r = dbtool({"--db", dir2.db(), "check"});
    CHECK(r.code == 8);
    CHECK(slurp(dir2.db()) == bytes);
}

TEST_CASE("foreign-key violations exit 9", "[dbtool]")
{
    test::temp_dir dir;
    migrated(dir, DBTOOL_FIXTURE_MIGRATIONS, 2);
    raw_exec(dir.db(), "INSERT INTO warnings (member_id, reason) VALUES (77, 'orphan');");
    const auto r = dbtool({"--db", dir.db(), "--migrations", DBTOOL_FIXTURE_MIGRATIONS, "--json", "check"});
    CHECK(r.code == 9); // pending (3) is listed too, but 9 is more severe
    const auto j = parse_json(r);
    CHECK(j["foreign_key_violations"] == 1);
    std::vector<int> codes;
    for (const auto& f : j["findings"])
        codes.push_back(f["code"]);
    CHECK(std::find(codes.begin(), codes.end(), 3) != codes.end());
}

TEST_CASE("a database of another application exits 10", "[dbtool]")
{
    test::temp_dir dir;
    raw_exec(dir.db(), "PRAGMA application_id = 12345; CREATE TABLE t(x);");
    const auto r = dbtool({"--db", dir.db(), "--application-id", "777", "check"});
    CHECK(r.code == 10);
    CHECK_THAT(r.out, Contains("another application"));
}

TEST_CASE("new writes the next numbered migration file", "[dbtool]")
{
    test::temp_dir dir;
    const auto mig = copy_migrations(dir);
    const auto r = dbtool({"--migrations", mig, "--json", "new", "add_bans"});
    CHECK(r.code == 0);
    CHECK(parse_json(r)["version"] == 4);
    CHECK(fs::exists(fs::path(mig) / "0004_add_bans.sql"));
    CHECK(dbtool({"--migrations", mig, "new", "bad name"}).code == 2);
}

TEST_CASE("backup copies the database and checks the copy, an existing target is refused", "[dbtool]")
{
    test::temp_dir dir;
    migrated(dir, DBTOOL_FIXTURE_MIGRATIONS);
    const auto to = dir.file("copy.db");
    const auto r = dbtool({"--db", dir.db(), "--json", "backup", to, "--pages-per-step", "64"});
    CHECK(r.code == 0);
    const auto j = parse_json(r);
    CHECK(j["quick_check"] == nlohmann::json::array({"ok"}));
    CHECK(j["pages"].get<int>() > 64);
    const auto s =
        parse_json(dbtool({"--db", to, "--migrations", DBTOOL_FIXTURE_MIGRATIONS, "--json", "check"}));
    CHECK(s["exit_code"] == 0);
    const auto again = dbtool({"--db", dir.db(), "backup", to});
    CHECK(again.code == 1);
    CHECK_THAT(again.err, Contains("already exists"));
}

TEST_CASE("optimize checkpoints and vacuums", "[dbtool]")
{
    test::temp_dir dir;
    migrated(dir, DBTOOL_FIXTURE_MIGRATIONS);
    raw_exec(dir.db(), "DELETE FROM numbers;");
    const auto j = parse_json(dbtool({"--db", dir.db(), "--json", "optimize", "--vacuum"}));
    CHECK(j["exit_code"] == 0);
    CHECK(j["bytes_after"].get<std::int64_t>() < j["bytes_before"].get<std::int64_t>());
    CHECK(dbtool({"--db", dir.file("missing.db"), "optimize"}).code == 1);
    CHECK_FALSE(fs::exists(dir.file("missing.db")));
}

TEST_CASE("check and backup next to a live writer process succeed and the writer sees no busy errors",
          "[dbtool][migration]")
{
    test::temp_dir dir;
    migrated(dir, DBTOOL_FIXTURE_MIGRATIONS);
    test::process writer({DBACTOR_TEST_HELPER_EXE, "writer", dir.db()});
    REQUIRE(writer.read_line() == "ready");
    const auto check =
        dbtool({"--db", dir.db(), "--migrations", DBTOOL_FIXTURE_MIGRATIONS, "check", "--full"});
    CHECK(check.code == 0);
    const auto backup = dbtool({"--db", dir.db(), "backup", dir.file("live.db"), "--pages-per-step", "16"});
    CHECK(backup.code == 0);
    const auto status = dbtool({"--db", dir.db(), "status"});
    CHECK(status.code == 0);
    CHECK(writer.finish() == 0);
    INFO(writer.out() << writer.err());
    CHECK_THAT(writer.out(), Contains(" errors=0"));
    CHECK(dbtool({"--db", dir.file("live.db"), "check"}).code == 0);
}

TEST_CASE("two processes booting at once never both apply a migration", "[migration][dbtool]")
{
    test::temp_dir dir;
    test::process a({DBACTOR_TEST_HELPER_EXE, "boot", dir.db()});
    test::process b({DBACTOR_TEST_HELPER_EXE, "boot", dir.db()});
    a.write_line("go");
    b.write_line("go");
    const auto la = a.read_line(std::chrono::seconds(20));
    const auto lb = b.read_line(std::chrono::seconds(20));
    CHECK(a.finish() == 0);
    CHECK(b.finish() == 0);
    INFO(la << " / " << lb << " / " << a.err() << b.err());
    REQUIRE(la.starts_with("applied="));
    REQUIRE(lb.starts_with("applied="));
    CHECK(std::stoi(la.substr(8)) + std::stoi(lb.substr(8)) == 3);
    const auto j =
        parse_json(dbtool({"--db", dir.db(), "--migrations", DBTOOL_FIXTURE_MIGRATIONS, "--json", "check"}));
    CHECK(j["exit_code"] == 0);
    CHECK(j["migrations"].size() == 3);
}

TEST_CASE("dbactor_embed_migrations compiles in the same files and checksums as from_directory",
          "[migration][dbtool]")
{
    test::process p({DBACTOR_TEST_HELPER_EXE, "embedded", DBTOOL_FIXTURE_MIGRATIONS});
    CHECK(p.finish() == 0);
    CHECK(p.out() == "equal 3\n");
}

TEST_CASE("SIGINT ends dbtool with exit code 130", "[dbtool]")
{
    test::temp_dir dir;
    test::process holder({DBACTOR_TEST_HELPER_EXE, "hold-lock", dir.db()});
    REQUIRE(holder.read_line() == "ready");
    // dbtool waits on the lock for up to 20 s; it is interrupted long before.
    test::process tool({DBTOOL_EXE,
                        "--db",
                        dir.db(),
                        "--migrations",
                        DBTOOL_FIXTURE_MIGRATIONS,
                        "--busy-timeout",
                        "20000",
                        "migrate"});
    // Interrupt only once it has the database open (so its handler is surely installed): bounded wait.
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    bool open = false;
    while (!open && std::chrono::steady_clock::now() < until) {
        for (const auto& fd : fs::directory_iterator("/proc/" + std::to_string(tool.pid()) + "/fd")) {
            std::error_code ec;
            if (fs::read_symlink(fd.path(), ec) == fs::path(dir.db()))
                open = true;
        }
        if (!open)
            std::this_thread::yield();
    }
    REQUIRE(open);
    const auto t0 = std::chrono::steady_clock::now();
    ::kill(tool.pid(), SIGINT);
    CHECK(tool.finish() == 130);
    CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5));
    CHECK(holder.finish() == 0);
}

TEST_CASE("json output stays one valid document even when a message is not UTF-8", "[dbtool]")
{
    test::temp_dir dir;
    const auto mig = copy_migrations(dir);
    // A Latin-1 file: SQLite quotes the 0xE9 bytes in its syntax error.
    std::ofstream(fs::path(mig) / "0004_caf.sql", std::ios::binary)
        << "-- Latin-1\nCREATE TABLE caf\xe9 (x);\n\xe9t\xe9 x;\n";
    const auto r = dbtool({"--db", dir.db(), "--migrations", mig, "--json", "migrate"});
    CHECK(r.code == 6);
    const auto j = parse_json(r);
    CHECK(j["exit_code"] == 6);
    CHECK(j["error"]["kind"] == "migration_failed");
    CHECK_THAT(j["error"]["message"].get<std::string>(), Contains("0004_caf.sql:3:1"));

    const auto latin1_path = dir.file("caf\xe9.db"); // a file name that is not UTF-8
    const auto s = dbtool({"--db", latin1_path, "--json", "status"});
    CHECK(s.code == 1);
    CHECK(parse_json(s)["exit_code"] == 1);
}

TEST_CASE("json output is one document for a usage mistake, a missing database and help", "[dbtool]")
{
    test::temp_dir dir;
    const auto usage = dbtool({"--json", "frobnicate"});
    CHECK(usage.code == 2);
    const auto u = parse_json(usage);
    CHECK(u["exit_code"] == 2);
    CHECK(u["error"]["kind"] == "usage");
    CHECK_THAT(usage.err, Contains("frobnicate"));

    const auto missing = dbtool({"--db", dir.file("missing.db"), "--json", "status"});
    CHECK(missing.code == 1);
    const auto m = parse_json(missing);
    CHECK(m["exit_code"] == 1);
    CHECK(m["error"]["kind"] == "open_failed");
    CHECK_FALSE(fs::exists(dir.file("missing.db")));

    const auto help = dbtool({"--json", "--help"});
    CHECK(help.code == 0);
    CHECK_THAT(parse_json(help)["help"].get<std::string>(), Contains("8, 10, 6, 4, 5, 9, 7, 3"));
}

TEST_CASE(
    "a boot refusal's JSON kind is a stable identifier, and a failed check never reports an empty integrity",
    "[dbtool]")
{
    test::temp_dir dir;
    std::ofstream(dir.db()) << "this is a text file, not a database\n";
    const auto c = parse_json(dbtool({"--db", dir.db(), "--json", "check"}));
    CHECK(kinds(c) == std::set<std::string>{"not_a_database"});
    CHECK(c["integrity"] == "failed");
    const auto m = parse_json(
        dbtool({"--db", dir.db(), "--migrations", DBTOOL_FIXTURE_MIGRATIONS, "--json", "migrate"}));
    CHECK(m["exit_code"] == 8);
    CHECK(m["error"]["kind"] == "not_a_database");
}

TEST_CASE("check on a damaged database with an invalid migration directory exits 8 and lists both",
          "[dbtool]")
{
    test::temp_dir dir;
    damaged(dir);
    const auto mig = copy_migrations(dir);
    std::ofstream(fs::path(mig) / "0005_gap.sql") << "SELECT 1;\n";
    const auto r = dbtool({"--db", dir.db(), "--migrations", mig, "--json", "check"});
    CHECK(r.code == 8);
    const auto j = parse_json(r);
    CHECK(kinds(j) == std::set<std::string>{"integrity_check_failed", "migration_source_invalid"});
    CHECK(j["integrity"] == "failed");
    const auto text = dbtool({"--db", dir.db(), "--migrations", mig, "check"});
    CHECK(text.code == 8);
    CHECK_THAT(text.out, Contains("[8] integrity_check_failed") && Contains("[4] migration_source_invalid"));
}

TEST_CASE("check on a database of another application still checks it and lists every finding", "[dbtool]")
{
    test::temp_dir dir;
    migrated(dir, DBTOOL_FIXTURE_MIGRATIONS, 2);
    raw_exec(
        dir.db(),
        "PRAGMA application_id = 12345; INSERT INTO warnings (member_id, reason) VALUES (77, 'orphan');");
    const auto r = dbtool({"--db",
                           dir.db(),
                           "--migrations",
                           DBTOOL_FIXTURE_MIGRATIONS,
                           "--application-id",
                           "777",
                           "--json",
                           "check"});
    CHECK(r.code == 10);
    const auto j = parse_json(r);
    CHECK(kinds(j) == std::set<std::string>{"wrong_application", "foreign_key_violation", "pending"});
    CHECK(j["integrity"] == "ok");
}

TEST_CASE("check with a modified migration and a database ahead exits 4 and lists both", "[dbtool]")
{
    test::temp_dir dir;
    migrated(dir, DBTOOL_FIXTURE_MIGRATIONS);
    const auto two = copy_migrations(dir, 2);
    std::ofstream(fs::path(two) / "0002_warnings.sql", std::ios::app)
        << "CREATE INDEX w ON warnings (member_id);\n";
    const auto r = dbtool({"--db", dir.db(), "--migrations", two, "--json", "check"});
    CHECK(r.code == 4);
    CHECK(kinds(parse_json(r)) == std::set<std::string>{"migration_modified", "database_ahead"});
}

TEST_CASE("check with a database ahead and a foreign-key violation exits 5 and lists both", "[dbtool]")
{
    test::temp_dir dir;
    migrated(dir, DBTOOL_FIXTURE_MIGRATIONS);
    raw_exec(dir.db(), "INSERT INTO warnings (member_id, reason) VALUES (77, 'orphan');");
    const auto r = dbtool({"--db", dir.db(), "--migrations", copy_migrations(dir, 2), "--json", "check"});
    CHECK(r.code == 5);
    const auto j = parse_json(r);
    CHECK(kinds(j) == std::set<std::string>{"database_ahead", "foreign_key_violation"});
    CHECK(j["foreign_key_violations"] == 1);
}

TEST_CASE(
    "migrate applies a migration that repairs a foreign-key violation, and exits 9 when violations remain",
    "[dbtool]")
{
    test::temp_dir dir;
    const auto mig = copy_migrations(dir, 2);
    migrated(dir, mig, 2);
    raw_exec(dir.db(), "INSERT INTO warnings (member_id, reason) VALUES (77, 'orphan');");
    // Nothing to apply, but the violation is reported after migrating.
    const auto before = dbtool({"--db", dir.db(), "--migrations", mig, "--json", "migrate"});
    CHECK(before.code == 9);
    const auto b = parse_json(before);
    CHECK(b["foreign_key_violations"] == 1);
    CHECK(kinds(b) == std::set<std::string>{"foreign_key_violation"});

    std::ofstream(fs::path(mig) / "0003_drop_orphans.sql")
        << "DELETE FROM warnings WHERE member_id NOT IN (SELECT id FROM members);\n";
    const auto r = dbtool({"--db", dir.db(), "--migrations", mig, "migrate"});
    INFO(r.out << r.err);
    CHECK(r.code == 0);
    CHECK_THAT(r.out, Contains("applied 0003_drop_orphans.sql") && Contains("now at version 3"));
}

TEST_CASE("a foreign-keys=off migration that would leave violations exits 6 and lists both findings",
          "[dbtool]")
{
    test::temp_dir dir;
    const auto mig = copy_migrations(dir, 2);
    std::ofstream(fs::path(mig) / "0003_seed.sql")
        << "INSERT INTO members VALUES (1, 'a');\nINSERT INTO warnings VALUES (1, 1, 'spam');\n";
    std::ofstream(fs::path(mig) / "0004_rebuild.sql")
        << "-- dbactor: foreign-keys=off\n"
           "CREATE TABLE members_new (id INTEGER PRIMARY KEY, name TEXT);\n"
           "DROP TABLE members;\n"
           "ALTER TABLE members_new RENAME TO members;\n";
    const auto r = dbtool({"--db", dir.db(), "--migrations", mig, "--json", "migrate"});
    CHECK(r.code == 6);
    const auto j = parse_json(r);
    CHECK(kinds(j) == std::set<std::string>{"migration_failed", "foreign_key_violation"});
    CHECK(j["version"] == 3);
    CHECK(j["foreign_key_violations"] == 0); // rolled back: the database itself is sound
}

TEST_CASE("migrate prints the steps applied before a failing one, with the error", "[dbtool]")
{
    test::temp_dir dir;
    const auto mig = copy_migrations(dir);
    std::ofstream(fs::path(mig) / "0004_bans.sql") << "CREATE TABLOID b (x);\n";
    const auto r = dbtool({"--db", dir.db(), "--migrations", mig, "--json", "migrate"});
    CHECK(r.code == 6);
    const auto j = parse_json(r);
    REQUIRE(j["steps"].size() == 4);
    for (int i = 0; i < 3; ++i)
        CHECK(j["steps"][i]["done"] == true);
    CHECK(j["steps"][3]["done"] == false);
    CHECK(j["steps"][3]["failed"] == true);
    CHECK(j["version"] == 3);
    CHECK(j["error"]["kind"] == "migration_failed");
    CHECK_THAT(j["error"]["message"].get<std::string>(), Contains("0004_bans.sql:1:8"));

    test::temp_dir dir2;
    const auto text = dbtool({"--db", dir2.db(), "--migrations", mig, "migrate"});
    CHECK(text.code == 6);
    CHECK_THAT(text.out,
               Contains("applied 0001_members.sql") && Contains("applied 0003_numbers.sql") &&
                   Contains("failed to apply 0004_bans.sql") && Contains("now at version 3"));
    CHECK_THAT(text.err, Contains("0004_bans.sql:1:8"));
}

TEST_CASE("migrate --to outside 0 to the newest version is a usage error naming the range", "[dbtool]")
{
    test::temp_dir dir;
    for (const char* to : {"99", "-5"}) {
        for (const bool dry : {false, true}) {
            std::vector<std::string> args = {
                "--db", dir.db(), "--migrations", DBTOOL_FIXTURE_MIGRATIONS, "migrate", "--to", to};
            if (dry)
                args.push_back("--dry-run");
            const auto r = dbtool(args);
            INFO(to << (dry ? " --dry-run" : ""));
            CHECK(r.code == 2);
            CHECK_THAT(r.err, Contains(std::string("--to ") + to) && Contains("from 0") && Contains("to 3"));
        }
    }
    CHECK_FALSE(fs::exists(dir.db()));
    CHECK(
        dbtool({"--db", dir.db(), "--migrations", DBTOOL_FIXTURE_MIGRATIONS, "migrate", "--to", "0"}).code ==
        0);
}

TEST_CASE("optimize on a locked database exits 7 and on a damaged one 8", "[dbtool]")
{
    test::temp_dir dir;
    migrated(dir, DBTOOL_FIXTURE_MIGRATIONS); // WAL: boot does not need the lock, VACUUM does
    {
        test::process holder({DBACTOR_TEST_HELPER_EXE, "hold-lock", dir.db()});
        REQUIRE(holder.read_line() == "ready");
        const auto r = dbtool({"--db", dir.db(), "--busy-timeout", "300", "--json", "optimize", "--vacuum"});
        CHECK(r.code == 7);
        const auto j = parse_json(r);
        CHECK(j["error"]["kind"] == "busy");
        CHECK(j["command"] == "optimize"); // a failure's document names the command and the file too
        CHECK(j["path"] == dir.db());
        CHECK_THAT(r.err, Contains("--busy-timeout"));
        CHECK(holder.finish() == 0);
    }
    test::temp_dir dir2;
    damaged(dir2);
    const auto r = dbtool({"--db", dir2.db(), "--json", "optimize", "--vacuum"});
    CHECK(r.code == 8);
    CHECK(parse_json(r)["error"]["kind"] == "integrity_check_failed");
}

TEST_CASE("backup never publishes a copy that fails quick_check", "[dbtool]")
{
    test::temp_dir dir;
    damaged(dir);
    const auto to = dir.file("copy.db");
    const auto r = dbtool({"--db", dir.db(), "--json", "backup", to});
    CHECK(r.code == 8);
    const auto j = parse_json(r);
    CHECK(j["error"]["kind"] == "integrity_check_failed");
    CHECK_THAT(r.err, Contains("quick_check") && Contains("was not created"));
    for (const char* suffix : {"", ".partial", ".partial-journal", ".partial-wal", ".partial-shm"})
        CHECK_FALSE(fs::exists(to + suffix));
}

TEST_CASE("SIGINT while migrate waits for a lock exits 130 promptly and reports the steps", "[dbtool]")
{
    test::temp_dir dir;
    const auto mig = copy_migrations(dir);
    migrated(dir, mig, 2); // WAL: dbtool boots next to the lock holder and then waits in BEGIN IMMEDIATE
    test::process holder({DBACTOR_TEST_HELPER_EXE, "hold-lock", dir.db()});
    REQUIRE(holder.read_line() == "ready");
    test::process tool(
        {DBTOOL_EXE, "--db", dir.db(), "--migrations", mig, "--busy-timeout", "20000", "--json", "migrate"});
    REQUIRE(tool.wait_for_stderr("is locked by another connection"));
    const auto t0 = std::chrono::steady_clock::now();
    ::kill(tool.pid(), SIGINT);
    CHECK(tool.finish() == 130);
    CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5));
    INFO(tool.out() << tool.err());
    nlohmann::json j;
    REQUIRE_NOTHROW(j = nlohmann::json::parse(tool.out()));
    CHECK(j["interrupted"] == true);
    CHECK(j["exit_code"] == 130);
    CHECK(j["version"] == 2);
    REQUIRE(j["steps"].size() == 1);
    CHECK(j["steps"][0]["done"] == false);
    CHECK(holder.finish() == 0);
}

TEST_CASE("SIGINT outside a safe point still prints one JSON document", "[dbtool]")
{
    test::temp_dir dir;
    test::process holder({DBACTOR_TEST_HELPER_EXE, "hold-lock", dir.db()});
    REQUIRE(holder.read_line() == "ready");
    // Rollback-journal lock: dbtool waits inside boot (journal_mode=WAL needs the lock), where SIGINT exits
    // at once.
    test::process tool({DBTOOL_EXE,
                        "--db",
                        dir.db(),
                        "--migrations",
                        DBTOOL_FIXTURE_MIGRATIONS,
                        "--busy-timeout",
                        "20000",
                        "--json",
                        "migrate"});
    REQUIRE(has_open(tool.pid(), dir.db()));
    ::kill(tool.pid(), SIGINT);
    CHECK(tool.finish() == 130);
    INFO(tool.out() << tool.err());
    nlohmann::json j;
    REQUIRE_NOTHROW(j = nlohmann::json::parse(tool.out()));
    CHECK(j["exit_code"] == 130);
    CHECK(j["error"]["kind"] == "interrupted");
    CHECK(j["command"] == "migrate");
    CHECK(holder.finish() == 0);
}
