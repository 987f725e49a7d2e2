#include <dbactor/detail/shard_record.hpp>

#include <dbactor/detail/lock_waiter.hpp>
#include <dbactor/detail/statement.hpp>
#include <dbactor/error.hpp>

#include <SQLiteCpp/Exception.h>
#include <fmt/format.h>
#include <sqlite3.h>

#include <optional>

namespace dbactor::detail {
namespace {

std::optional<shard_identity> recorded(sqlite3* db)
{
    if (text_rows(db, "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'dbactor_shard'", 1)
            .empty())
        return std::nullopt;
    statement st(db, "SELECT shard, shards FROM dbactor_shard LIMIT 1");
    if (st.step() != SQLITE_ROW)
        return std::nullopt;
    return shard_identity{static_cast<std::size_t>(st.column_int64(0)),
                          static_cast<std::size_t>(st.column_int64(1))};
}

} // namespace

void check_shard_record(sqlite3* db, const options& o)
{
    if (!o.shard)
        return;
    const auto r = recorded(db);
    if (!r || *r == *o.shard)
        return;
    const std::string what =
        r->shards != o.shard->shards
            ? fmt::format("it is shard {} of a set of {}, opened as shard {} of {}",
                          r->shard,
                          r->shards,
                          o.shard->shard,
                          o.shard->shards)
            : fmt::format("it is shard {} of {}, opened as shard {}", r->shard, r->shards, o.shard->shard);
    throw error(
        errc::shard_mismatch,
        fmt::format("Boot of '{}' refused: {} (table dbactor_shard). Nothing was written. {}",
                    o.path,
                    what,
                    r->shards != o.shard->shards
                        ? fmt::format("Open the set with {} shards. Its rows are placed by "
                                      "(key >> 22) % {}: a set of {} shards needs every row copied to "
                                      "the file of its new shard, into new files.",
                                      r->shards,
                                      r->shards,
                                      o.shard->shards)
                        : "Files of the set were swapped or renamed: put each file back at the path of "
                          "its index (the {shard} pattern)."));
}

void write_shard_record(sqlite3* db, const options& o, lock_waiter& waits)
{
    if (!o.shard || o.read_only || recorded(db))
        return;
    const std::string sql = fmt::format(
        "BEGIN IMMEDIATE; CREATE TABLE IF NOT EXISTS dbactor_shard(shard INTEGER NOT NULL, "
        "shards INTEGER NOT NULL); INSERT INTO dbactor_shard(shard, shards) VALUES ({}, {}); COMMIT",
        o.shard->shard,
        o.shard->shards);
    if (waits.exec(db, sql) != SQLITE_OK) {
        const SQLite::Exception e(db, sqlite3_extended_errcode(db));
        if (!sqlite3_get_autocommit(db))
            sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
        throw e;
    }
}

} // namespace dbactor::detail
