// The reader lane: options::readers read-only connections, each on its own thread, serving reads.
#include "support.hpp"

#include <boost/asio/use_future.hpp>

#include <set>
#include <thread>

namespace asio = boost::asio;
using namespace std::chrono_literals;
using dbactor::connection;
using dbactor::errc;

namespace {

dbactor::database open_with_readers(const test::temp_dir& d, unsigned readers = 2)
{
    auto o = test::options_for(d);
    o.readers = readers;
    auto db = dbactor::database::open(o);
    db.write([](connection& c) { c.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v INTEGER)"); });
    return db;
}

} // namespace

TEST_CASE("with readers, reads run on reader threads and writes on the writer thread", "[readers]")
{
    test::temp_dir d;
    auto db = open_with_readers(d);
    auto writer = db.write([](connection&) { return std::this_thread::get_id(); });
    std::set<std::thread::id> readers;
    std::vector<std::future<std::thread::id>> replies;
    for (int i = 0; i < 200; ++i)
        replies.push_back(
            db.async_read([](connection&) { return std::this_thread::get_id(); }, asio::use_future));
    for (auto& r : replies)
        readers.insert(test::get_within(r, "a read on the reader lane"));
    CHECK(readers.count(writer) == 0);
    CHECK(readers.size() >= 1);
    CHECK(readers.size() <= 2);
}

TEST_CASE("a read submitted after a write's reply sees that write", "[readers]")
{
    test::temp_dir d;
    auto db = open_with_readers(d);
    for (int i = 1; i <= 300; ++i) {
        db.write([i](connection& c) { c.execute("INSERT INTO t VALUES (?, ?)", i, i * 10); });
        auto seen = db.read([](connection& c) { return *c.query_one<int>("SELECT max(id) FROM t"); });
        REQUIRE(seen == i);
    }
}

TEST_CASE("a write inside a read on a reader connection fails with read_only_violation", "[readers]")
{
    test::temp_dir d;
    auto db = open_with_readers(d, 1);
    CHECK(test::errc_of([&] { db.read([](connection& c) { c.execute("INSERT INTO t VALUES (1, 1)"); }); }) ==
          errc::read_only_violation);
    CHECK(db.read([](connection& c) { return *c.query_one<int>("SELECT count(*) FROM t"); }) == 0);
}

TEST_CASE("a read on a reader past its deadline is interrupted", "[readers]")
{
    test::temp_dir d;
    auto db = open_with_readers(d, 1);
    auto spin = [](connection& c) {
        return *c.query_one<std::int64_t>(
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c");
    };
    CHECK(test::errc_of([&] { db.read(spin, {.timeout = 50ms}); }) == errc::timed_out);
    CHECK(db.read([](connection& c) { return *c.query_one<int>("SELECT 1"); }) == 1);
}

TEST_CASE("readers are refused for an in-memory database", "[readers]")
{
    dbactor::options o;
    o.path = ":memory:";
    o.readers = 1;
    o.on_log = [](dbactor::log_level, std::string_view) {};
    CHECK(test::errc_of([&] { dbactor::database::open(o); }) == errc::open_failed);
}

TEST_CASE("closing with readers drains both lanes and removes the WAL", "[readers][close]")
{
    test::temp_dir d;
    auto db = open_with_readers(d);
    std::vector<std::future<int>> reads;
    for (int i = 0; i < 100; ++i)
        reads.push_back(db.async_read(
            [](connection& c) { return *c.query_one<int>("SELECT count(*) FROM t"); }, asio::use_future));
    db.close();
    for (auto& r : reads)
        CHECK(test::get_within(r, "a queued read completes before close returns") == 0);
    CHECK_FALSE(std::filesystem::exists(d.db() + "-wal"));
}
