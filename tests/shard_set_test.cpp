// shard_set: routing by snowflake, the dbactor_shard record (mismatch, swapped files), a shard that fails to
// boot, async_for_each with a failing shard, parallel boot and the summed stats.
#include "support.hpp"

#include <dbactor/shard_set.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>

#include <sqlite3.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <future>
#include <iterator>
#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

using namespace std::chrono_literals;
using dbactor::connection;
using dbactor::errc;

namespace {

const dbactor::migration_set& guild_schema()
{
    static const auto set = dbactor::migration_set::from_files(
        {{"0001_guilds.sql", "CREATE TABLE guilds(id INTEGER PRIMARY KEY, name TEXT NOT NULL);"}},
        "shard-test");
    return set;
}

dbactor::options shard_options(const test::temp_dir& dir)
{
    auto o = test::options_for(dir);
    o.path = dir.file("bot-{shard}.db");
    o.migrations = guild_schema();
    return o;
}

std::string file_bytes(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

/// One integer from a file through the C API (no actor), or -1 when the query returns no row.
std::int64_t raw_int(const std::string& path, const std::string& sql)
{
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
    sqlite3_stmt* st = nullptr;
    REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK);
    const std::int64_t v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

struct add_guild
{
    std::uint64_t id;
    void operator()(connection& c) const
    {
        c.execute("INSERT INTO guilds(id, name) VALUES (?, 'g')", static_cast<std::int64_t>(id));
    }
};

// Snowflakes: (milliseconds since 2015 << 22) | worker << 17 | process << 12 | increment. The first is the
// example id of Discord's documentation (timestamp bits 41944705796).
constexpr std::uint64_t docs_example = 175928847299117063ULL;
constexpr std::uint64_t same_ms_other_worker = 175928847303180287ULL; // worker 31, process 31, increment 4095
constexpr std::uint64_t next_ms = 175928847303180288ULL;              // 41944705797 << 22
constexpr std::uint64_t old_guild = 80351110224678912ULL;             // timestamp bits 19157197529

} // namespace

TEST_CASE("shard_of routes snowflakes by their timestamp bits", "[shards]")
{
    STATIC_REQUIRE(dbactor::shard_of(docs_example, 8) == 4);
    CHECK(dbactor::shard_of(docs_example, 3) == 2);
    CHECK(dbactor::shard_of(docs_example, 1) == 0);
    // The same millisecond from another worker, process and increment: the same shard for every count.
    for (std::size_t n : {1u, 2u, 3u, 4u, 8u, 16u})
        CHECK(dbactor::shard_of(same_ms_other_worker, n) == dbactor::shard_of(docs_example, n));
    // One millisecond later: the next shard.
    CHECK(dbactor::shard_of(next_ms, 8) == 5);
    CHECK(dbactor::shard_of(old_guild, 4) == 1);
    CHECK(dbactor::shard_of(old_guild, 3) == 2);
    CHECK(dbactor::shard_path("var/bot-{shard}.db", 3) == "var/bot-3.db");
    CHECK(dbactor::shard_path("{shard}/db-{shard}", 12) == "12/db-12");
    CHECK(dbactor::shard_path("plain.db", 5) == "plain.db");
}

TEST_CASE("a shard set boots N files, routes writes by key and records each file's place", "[shards]")
{
    test::temp_dir dir;
    const std::vector<std::uint64_t> guilds{docs_example, same_ms_other_worker, next_ms, old_guild};
    {
        auto set = dbactor::shard_set::open(shard_options(dir), 4);
        REQUIRE(set.size() == 4);
        for (auto g : guilds)
            set.for_key(g).write(add_guild{g});
        CHECK(&set.for_key(docs_example) == &set[0]);
        CHECK(&set.for_key(next_ms) == &set[1]);
        CHECK(set.path(2) == dir.file("bot-2.db"));
        set.close();
    }
    for (std::size_t i = 0; i < 4; ++i) {
        const auto path = dir.file("bot-" + std::to_string(i) + ".db");
        INFO(path);
        CHECK(raw_int(path, "SELECT shard FROM dbactor_shard") == static_cast<std::int64_t>(i));
        CHECK(raw_int(path, "SELECT shards FROM dbactor_shard") == 4);
        CHECK(raw_int(path, "SELECT count(*) FROM dbactor_shard") == 1);
        for (auto g : guilds)
            CHECK(raw_int(path, "SELECT count(*) FROM guilds WHERE id = " + std::to_string(g)) ==
                  (dbactor::shard_of(g, 4) == i ? 1 : 0));
    }
    // Shards 0 and 1 hold two guilds each (same millisecond; next millisecond and an old guild), 2 and 3
    // none.
    CHECK(raw_int(dir.file("bot-0.db"), "SELECT count(*) FROM guilds") == 2);
    CHECK(raw_int(dir.file("bot-1.db"), "SELECT count(*) FROM guilds") == 2);

    // The set opens again with the same count, and one shard opens alone at its place.
    auto again = dbactor::shard_set::open(shard_options(dir), 4);
    CHECK(again.for_key(old_guild).read(
              [](connection& c) { return c.query_one<std::int64_t>("SELECT count(*) FROM guilds"); }) == 2);
    again.close();
    auto one = shard_options(dir);
    one.path = dir.file("bot-3.db");
    one.shard = dbactor::shard_identity{3, 4};
    dbactor::database::open(one).close();
}

TEST_CASE("a shard file opened with another count or at another index is refused before anything is written",
          "[shards]")
{
    test::temp_dir dir;
    dbactor::shard_set::open(shard_options(dir), 4).close();
    const auto before0 = file_bytes(dir.file("bot-0.db"));
    const auto before1 = file_bytes(dir.file("bot-1.db"));
    REQUIRE_FALSE(before0.empty());

    SECTION("another count")
    {
        try {
            dbactor::shard_set::open(shard_options(dir), 2);
            FAIL("a set of 4 opened as 2");
        }
        catch (const dbactor::error& e) {
            CHECK(e.value() == errc::shard_mismatch);
            const std::string m = e.what();
            CHECK_THAT(m, Catch::Contains("Shard 0 of 2") && Catch::Contains(dir.file("bot-0.db")));
            CHECK_THAT(m, Catch::Contains("shard 0 of a set of 4, opened as shard 0 of 2"));
            CHECK_THAT(m, Catch::Contains("Nothing was written") && Catch::Contains("Open the set with 4"));
        }
    }
    SECTION("swapped files")
    {
        std::filesystem::rename(dir.file("bot-0.db"), dir.file("tmp.db"));
        std::filesystem::rename(dir.file("bot-1.db"), dir.file("bot-0.db"));
        std::filesystem::rename(dir.file("tmp.db"), dir.file("bot-1.db"));
        try {
            dbactor::shard_set::open(shard_options(dir), 4);
            FAIL("swapped shard files opened");
        }
        catch (const dbactor::error& e) {
            CHECK(e.value() == errc::shard_mismatch);
            const std::string m = e.what();
            CHECK_THAT(m, Catch::Contains("it is shard 1 of 4, opened as shard 0"));
            CHECK_THAT(m, Catch::Contains("put each file back"));
        }
        std::filesystem::rename(dir.file("bot-0.db"), dir.file("tmp.db"));
        std::filesystem::rename(dir.file("bot-1.db"), dir.file("bot-0.db"));
        std::filesystem::rename(dir.file("tmp.db"), dir.file("bot-1.db"));
    }
    SECTION("a single database at another index")
    {
        auto o = shard_options(dir);
        o.path = dir.file("bot-1.db");
        o.shard = dbactor::shard_identity{2, 4};
        CHECK(test::open_error(o).value() == errc::shard_mismatch);
    }
    CHECK(file_bytes(dir.file("bot-0.db")) == before0);
    CHECK(file_bytes(dir.file("bot-1.db")) == before1);
    // A refused boot closes without a checkpoint (it writes nothing): a WAL file may stay, empty.
    const auto wal = dir.file("bot-0.db-wal");
    CHECK((!std::filesystem::exists(wal) || std::filesystem::file_size(wal) == 0));
    // Put back (or never moved), the set opens as before.
    dbactor::shard_set::open(shard_options(dir), 4).close();
}

TEST_CASE("a database made before sharding takes its place on its first boot as a shard", "[shards]")
{
    test::temp_dir dir;
    auto plain = shard_options(dir);
    plain.path = dir.file("bot-0.db");
    dbactor::database::open(plain).write(add_guild{docs_example});
    auto set = dbactor::shard_set::open(shard_options(dir), 2);
    set.close();
    CHECK(raw_int(dir.file("bot-0.db"), "SELECT shard FROM dbactor_shard") == 0);
    CHECK(raw_int(dir.file("bot-0.db"), "SELECT shards FROM dbactor_shard") == 2);
    CHECK(raw_int(dir.file("bot-0.db"), "SELECT count(*) FROM guilds") == 1);
}

TEST_CASE("when one shard fails to boot, the error names its file and the others are closed", "[shards]")
{
    test::temp_dir dir;
    dbactor::shard_set::open(shard_options(dir), 4).close();
    {
        std::ofstream out(dir.file("bot-2.db"), std::ios::binary | std::ios::trunc);
        out << std::string(8192, 'x');
    }
    try {
        dbactor::shard_set::open(shard_options(dir), 4);
        FAIL("a set with a corrupt shard opened");
    }
    catch (const dbactor::error& e) {
        CHECK(e.value() == errc::not_a_database);
        CHECK_THAT(std::string(e.what()),
                   Catch::StartsWith("Shard 2 of 4 ('" + dir.file("bot-2.db") + "'): "));
    }
    // The shards that booted were closed: their last connection is gone, so SQLite removed their WAL files,
    // and the corrupt file is as it was.
    for (int i : {0, 1, 3})
        CHECK_FALSE(std::filesystem::exists(dir.file("bot-" + std::to_string(i) + ".db-wal")));
    CHECK(file_bytes(dir.file("bot-2.db")) == std::string(8192, 'x'));
}

TEST_CASE("a shard set needs at least one shard and a {shard} pattern", "[shards]")
{
    test::temp_dir dir;
    auto o = shard_options(dir);
    CHECK(test::errc_of([&] { dbactor::shard_set::open(o, 0); }) == errc::open_failed);
    o.path = dir.db();
    CHECK(test::errc_of([&] { dbactor::shard_set::open(o, 3); }) == errc::open_failed);
    CHECK_FALSE(std::filesystem::exists(dir.db()));
    auto one = dbactor::shard_set::open(o, 1); // one shard needs no pattern
    CHECK(one.path(0) == dir.db());
}

TEST_CASE("async_for_each runs on every shard, one failing shard fails it and the others commit", "[shards]")
{
    test::temp_dir dir;
    auto set = dbactor::shard_set::open(shard_options(dir), 4);
    using result = std::pair<std::exception_ptr, std::vector<std::int64_t>>;

    auto insert_and_count = [](connection& c) {
        c.execute("INSERT INTO guilds(id, name) VALUES (NULL, 'sweep')");
        const auto shard = c.query_one<std::int64_t>("SELECT shard FROM dbactor_shard").value();
        if (shard == 2)
            throw std::runtime_error("shard 2 refuses");
        return shard * 10 + c.query_one<std::int64_t>("SELECT count(*) FROM guilds").value();
    };
    std::promise<result> done;
    auto f = done.get_future();
    set.async_for_each(insert_and_count, [&](std::exception_ptr e, std::vector<std::int64_t> v) {
        done.set_value({std::move(e), std::move(v)});
    });
    auto [e, values] = test::get_within(f, "async_for_each completes");
    REQUIRE(e);
    CHECK_THROWS_WITH(std::rethrow_exception(e), "shard 2 refuses");
    CHECK(values == std::vector<std::int64_t>{1, 11, 0, 31});

    // The others committed; the failing shard rolled its own insert back.
    std::promise<result> counted;
    auto g = counted.get_future();
    set.async_for_each(
        [](connection& c) { return c.query_one<std::int64_t>("SELECT count(*) FROM guilds").value(); },
        [&](std::exception_ptr x, std::vector<std::int64_t> v) {
            counted.set_value({std::move(x), std::move(v)});
        });
    auto [e2, counts] = test::get_within(g, "the count completes");
    CHECK_FALSE(e2);
    CHECK(counts == std::vector<std::int64_t>{1, 1, 0, 1});

    // A void fn completes with the exception only; use_future turns it into a future<void>.
    auto swept =
        set.async_for_each([](connection& c) { c.execute("DELETE FROM guilds"); }, boost::asio::use_future);
    test::get_within(swept, "the void sweep completes");
    for (std::size_t i = 0; i < set.size(); ++i)
        CHECK(set[i].read([](connection& c) {
            return c.query_one<std::int64_t>("SELECT count(*) FROM guilds");
        }) == 0);

    const auto total = set.stats_total();
    std::uint64_t completed = 0, failed = 0;
    for (const auto& s : set.stats()) {
        completed += s.write.completed;
        failed += s.write.failed;
    }
    CHECK(total.write.completed == completed);
    CHECK(total.write.failed == failed);
    CHECK(failed == 1);
    CHECK(completed == 12); // 4 + 4 + 4 writes ran, one of them failed
}

TEST_CASE("the shards of a set boot at the same time", "[shards]")
{
    // Each shard's boot blocks (in on_log, on its actor thread, after its migration) until all 8 got there:
    // booted one after another, the first would wait alone and the test fail after the bound.
    test::temp_dir dir;
    constexpr std::size_t n = 8;
    std::mutex m;
    std::condition_variable cv;
    std::size_t arrived = 0;
    std::atomic<bool> timed_out{false};
    auto o = shard_options(dir);
    o.on_log = [&](dbactor::log_level, std::string_view message) {
        if (message.find("Applied migration") == std::string_view::npos)
            return;
        std::unique_lock lock(m);
        ++arrived;
        cv.notify_all();
        if (!cv.wait_for(lock, 10s, [&] { return arrived >= n; }))
            timed_out = true;
    };
    auto set = dbactor::shard_set::open(o, n);
    CHECK_FALSE(timed_out);
    CHECK(arrived == n);
    CHECK(set.size() == n);
}

TEST_CASE("async_for_each with use_awaitable gives the vector, or throws the failing shard's exception",
          "[shards]")
{
    test::temp_dir dir;
    auto set = dbactor::shard_set::open(shard_options(dir), 3);
    boost::asio::io_context io;
    std::vector<std::int64_t> shards;
    std::string failure;
    boost::asio::co_spawn(
        io,
        [&]() -> boost::asio::awaitable<void> {
            shards = co_await set.async_for_each(
                [](connection& c) {
                    return c.query_one<std::int64_t>("SELECT shard FROM dbactor_shard").value();
                },
                boost::asio::use_awaitable);
            try {
                co_await set.async_for_each(
                    [](connection& c) {
                        if (c.query_one<std::int64_t>("SELECT shard FROM dbactor_shard").value() > 0)
                            throw std::runtime_error("shards 1 and 2 refuse");
                    },
                    boost::asio::use_awaitable);
            }
            catch (const std::runtime_error& e) {
                failure = e.what();
            }
        },
        boost::asio::detached);
    CHECK(io.run_for(10s) > 0);
    CHECK(io.stopped());
    CHECK(shards == std::vector<std::int64_t>{0, 1, 2});
    CHECK(failure == "shards 1 and 2 refuse");
}
