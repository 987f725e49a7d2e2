// dbtool's global options turned into what the library boots with.
#include "options.hpp"

#include <sqlite3.h>

#include <fmt/format.h>

#include <cctype>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <iostream>

namespace dbtool {

dbactor::options base_options(const global_options& g)
{
    if (g.db.empty())
        throw usage_error("--db PATH is required: the database file to work on.");
    dbactor::options o;
    o.path = g.db;
    o.busy_timeout = std::chrono::milliseconds(g.busy_timeout_ms);
    o.application_id = g.application_id;
    o.shard = g.shard;
    if (!replicator_tables(g.db).empty())
        o.checkpoints = dbactor::checkpoint_mode::external;
    o.on_log = [](dbactor::log_level level, std::string_view m) {
        if (level >= dbactor::log_level::warning)
            std::cerr << "dbtool: " << m << '\n';
    };
    return o;
}

std::vector<std::string> replicator_tables(const std::string& path)
{
    std::vector<std::string> out;
    sqlite3* db = nullptr;
    // Read-only, and no file is created: a missing database is boot's to report. Without a -wal file the
    // main file is all there is, and an immutable open reads it without creating -wal and -shm files.
    std::error_code ec;
    std::string uri = "file:";
    for (const unsigned char ch : path)
        uri += std::isalnum(ch) || std::strchr("/._-~", ch) ? std::string(1, static_cast<char>(ch))
                                                            : fmt::format("%{:02X}", ch);
    uri += "?immutable=1";
    const bool wal = std::filesystem::exists(path + "-wal", ec);
    if (sqlite3_open_v2(
            wal ? path.c_str() : uri.c_str(), &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, nullptr) ==
        SQLITE_OK) {
        sqlite3_busy_timeout(db, 1000);
        sqlite3_stmt* st = nullptr;
        if (sqlite3_prepare_v2(
                db,
                "SELECT name FROM sqlite_schema WHERE type = 'table' AND name IN ('_litestream_seq', "
                "'_litestream_lock') ORDER BY name",
                -1,
                &st,
                nullptr) == SQLITE_OK)
            while (sqlite3_step(st) == SQLITE_ROW)
                out.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)));
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return out;
}

std::optional<dbactor::migration_set> load_migrations(const global_options& g)
{
    if (g.migrations.empty())
        return std::nullopt;
    return dbactor::migration_set::from_directory(g.migrations);
}

} // namespace dbtool
