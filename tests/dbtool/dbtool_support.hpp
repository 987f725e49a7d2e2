// What dbtool's test files share: running dbtool, reading its output and JSON, fixture databases.
#pragma once

#include "../support.hpp"
#include "process.hpp"

#include <sqlite3.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

namespace {

namespace fs = std::filesystem;

struct result
{
    int code;
    std::string out, err;
};

inline result dbtool(std::vector<std::string> args)
{
    args.insert(args.begin(), DBTOOL_EXE);
    test::process p(std::move(args));
    const int code = p.finish();
    INFO("stdout: " << p.out() << "\nstderr: " << p.err());
    REQUIRE(code != -1);
    return {code, p.out(), p.err()};
}

inline std::string slurp(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

inline void raw_exec(const std::string& path, const std::string& sql)
{
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
    char* msg = nullptr;
    const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &msg);
    INFO((msg ? msg : ""));
    sqlite3_free(msg);
    sqlite3_close(db);
    REQUIRE(rc == SQLITE_OK);
}

/// A copy of the fixture migrations that a test may change.
inline std::string copy_migrations(const test::temp_dir& dir, int upto = 3)
{
    const auto to = dir.file("migrations");
    fs::create_directories(to);
    for (const auto& e : fs::directory_iterator(DBTOOL_FIXTURE_MIGRATIONS))
        if (std::stoi(e.path().filename().string().substr(0, 4)) <= upto)
            fs::copy_file(e.path(), fs::path(to) / e.path().filename());
    return to;
}

inline nlohmann::json parse_json(const result& r)
{
    INFO("stdout: " << r.out);
    nlohmann::json j;
    REQUIRE_NOTHROW(j = nlohmann::json::parse(r.out)); // exactly one document: parse() refuses trailing text
    return j;
}

/// A database migrated to `version` by dbtool.
inline void migrated(const test::temp_dir& dir, const std::string& migrations, int version = 3)
{
    const auto r =
        dbtool({"--db", dir.db(), "--migrations", migrations, "migrate", "--to", std::to_string(version)});
    INFO(r.err);
    REQUIRE(r.code == 0);
}

/// The `kind`s of a document's findings.
inline std::set<std::string> kinds(const nlohmann::json& j)
{
    std::set<std::string> k;
    for (const auto& f : j["findings"])
        k.insert(f["kind"].get<std::string>());
    return k;
}

} // namespace
