// The request kinds of dbactor::database: writes, reads, calls, and what reaches their callers.
#include "support.hpp"

#include <fstream>

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Exception.h>
#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <numeric>
#include <thread>

using namespace std::chrono_literals;
using dbactor::connection;
using dbactor::errc;

namespace {

dbactor::database open_with_table(const test::temp_dir& d, dbactor::options o = {})
{
    if (o.path.empty())
        o = test::options_for(d);
    auto db = dbactor::database::open(std::move(o));
    db.call([](connection& c) { c.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)"); });
    return db;
}

std::int64_t count_rows(dbactor::database& db)
{
    return db.read([](connection& c) { return *c.query_one<std::int64_t>("SELECT count(*) FROM t"); });
}

struct my_error
{
    int code;
};

/// Threads of this process now (/proc/self/task).
std::size_t thread_count()
{
    std::size_t n = 0;
    for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/task"))
        ++n;
    return n;
}

} // namespace

TEST_CASE("open applies the default pragmas and reads them back", "[database]")
{
    test::temp_dir d;
    dbactor::options o; // the defaults, but for the path and a quiet log
    o.path = d.db();
    o.on_log = [](dbactor::log_level, std::string_view) {};
    auto db = dbactor::database::open(o);
    auto pragma = [&](const char* sql) {
        return db.call([sql](connection& c) { return *c.query_one<std::string>(sql); });
    };
    CHECK(pragma("PRAGMA journal_mode") == "wal");
    CHECK(pragma("PRAGMA synchronous") == "2"); // FULL
    CHECK(pragma("PRAGMA foreign_keys") == "1");
    // busy_timeout is read back at boot; then the actor's own busy handler (which ends a wait at the
    // request's deadline) replaces SQLite's, and SQLite reports 0 for a connection with a handler of its own.
    CHECK(pragma("PRAGMA busy_timeout") == "0");
    CHECK(pragma("PRAGMA journal_size_limit") == std::to_string(64 * 1024 * 1024));
    const auto& report = db.boot_report();
    const auto busy = std::find_if(
        report.pragmas.begin(), report.pragmas.end(), [](const auto& p) { return p.name == "busy_timeout"; });
    REQUIRE(busy != report.pragmas.end());
    CHECK(busy->actual == "5000");
    REQUIRE(report.pragmas.size() >= 4);
    CHECK(report.pragmas[0].name == "journal_mode");
    CHECK(report.pragmas[0].actual == "wal");
}

TEST_CASE("open of an unopenable path throws open_failed and leaves no thread", "[database]")
{
    test::temp_dir d;
    auto o = test::options_for(d);
    { // one open and close first: sanitizer runtimes start helper threads of their own on first use
        auto warm = test::options_for(d);
        warm.path = d.file("warm.db");
        dbactor::database::open(warm).close();
    }
    o.path = d.file("missing-dir/sub/db.sqlite");
    const auto before = thread_count();
    CHECK(test::errc_of([&] { dbactor::database::open(o); }) == errc::open_failed);
    CHECK(thread_count() == before);
    // A file that fails later in boot (after the connection was opened) leaves none either.
    {
        std::ofstream text(d.file("text.db"));
        text << std::string(4096, 'x');
    }
    o.path = d.file("text.db");
    CHECK(test::errc_of([&] { dbactor::database::open(o); }) == errc::not_a_database);
    CHECK(thread_count() == before);
}

TEST_CASE("a write commits and its result reaches the caller", "[database]")
{
    test::temp_dir d;
    auto db = open_with_table(d);
    auto id = db.write([](connection& c) {
        c.execute("INSERT INTO t(v) VALUES (?)", "a");
        return c.last_insert_rowid();
    });
    CHECK(id == 1);
    CHECK(count_rows(db) == 1);
}

TEST_CASE("a write that throws is rolled back and its exception reaches the caller unchanged", "[database]")
{
    test::temp_dir d;
    auto db = open_with_table(d);
    auto add_then_throw = [](connection& c) {
        c.execute("INSERT INTO t(v) VALUES ('x')");
        throw my_error{7};
    };
    try {
        db.write(add_then_throw);
        FAIL("the write did not throw");
    }
    catch (const my_error& e) {
        CHECK(e.code == 7);
    }
    CHECK(count_rows(db) == 0);
}

TEST_CASE("an SQLite error reaches the caller as SQLite::Exception with its extended code", "[database]")
{
    test::temp_dir d;
    auto db = open_with_table(d);
    db.write([](connection& c) { c.execute("INSERT INTO t(id, v) VALUES (1, 'a')"); });
    try {
        db.write([](connection& c) { c.execute("INSERT INTO t(id, v) VALUES (1, 'b')"); });
        FAIL("the duplicate insert did not throw");
    }
    catch (const SQLite::Exception& e) {
        CHECK(e.getExtendedErrorCode() == SQLITE_CONSTRAINT_PRIMARYKEY);
    }
}

TEST_CASE("a request that throws leaves the actor serving", "[database]")
{
    test::temp_dir d;
    auto db = open_with_table(d);
    CHECK_THROWS_AS(db.call([](connection&) -> int { throw 42; }), int);
    CHECK_THROWS_AS(db.read([](connection&) -> int { throw std::runtime_error("boom"); }),
                    std::runtime_error);
    db.write([](connection& c) { c.execute("INSERT INTO t(v) VALUES ('after')"); });
    CHECK(count_rows(db) == 1);
}

TEST_CASE("a read cannot write: read_only_violation and nothing changes", "[database]")
{
    test::temp_dir d;
    auto db = open_with_table(d);
    auto sneaky = [](connection& c) { c.execute("INSERT INTO t(v) VALUES ('no')"); };
    CHECK(test::errc_of([&] { db.read(sneaky); }) == errc::read_only_violation);
    CHECK(count_rows(db) == 0);
    // Writes still work afterwards: the read-only switch is scoped to reads.
    db.write([](connection& c) { c.execute("INSERT INTO t(v) VALUES ('yes')"); });
    CHECK(count_rows(db) == 1);
}

TEST_CASE("a call that leaves a transaction open is rolled back with transaction_leaked", "[database]")
{
    test::temp_dir d;
    auto db = open_with_table(d);
    auto leaky = [](connection& c) {
        c.exec("BEGIN");
        c.execute("INSERT INTO t(v) VALUES ('leak')");
    };
    CHECK(test::errc_of([&] { db.call(leaky); }) == errc::transaction_leaked);
    CHECK(count_rows(db) == 0);
    db.write([](connection& c) { c.execute("INSERT INTO t(v) VALUES ('ok')"); });
    CHECK(count_rows(db) == 1);
}

TEST_CASE("a call runs without an implicit transaction", "[database]")
{
    test::temp_dir d;
    auto db = open_with_table(d);
    auto autocommit = db.call([](connection& c) { return sqlite3_get_autocommit(c.handle()) != 0; });
    CHECK(autocommit);
    auto in_write = db.write([](connection& c) { return sqlite3_get_autocommit(c.handle()) != 0; });
    CHECK_FALSE(in_write);
}

TEST_CASE("a read sees one snapshot for all of its queries", "[database]")
{
    test::temp_dir d;
    auto db = open_with_table(d);
    auto in_txn = db.read([](connection& c) { return sqlite3_get_autocommit(c.handle()) == 0; });
    CHECK(in_txn);
}

TEST_CASE("requests submitted from one thread complete in submission order", "[database]")
{
    test::temp_dir d;
    auto db = open_with_table(d);
    constexpr int n = 1000;
    std::vector<int> order;
    std::mutex m;
    std::promise<void> all_done;
    std::atomic<int> remaining{n};
    for (int i = 0; i < n; ++i) {
        auto record = [&, i](std::exception_ptr, int) {
            {
                std::lock_guard lock(m);
                order.push_back(i);
            }
            if (--remaining == 0)
                all_done.set_value();
        };
        auto fn = [i](connection& c) {
            c.execute("INSERT INTO t(v) VALUES (?)", std::to_string(i));
            return i;
        };
        if (i % 3 == 0)
            db.async_read([i](connection&) { return i; }, record);
        else
            db.async_write(fn, record);
    }
    auto f = all_done.get_future();
    test::get_within(f, "all 1000 replies arrive");
    std::vector<int> expected(n);
    std::iota(expected.begin(), expected.end(), 0);
    CHECK(order == expected);
}

TEST_CASE("8 threads x 500 writes lose nothing", "[database][concurrency]")
{
    test::temp_dir d;
    auto db = open_with_table(d);
    constexpr int threads = 8, per_thread = 500;
    std::vector<std::future<int>> workers;
    for (int t = 0; t < threads; ++t)
        workers.push_back(std::async(std::launch::async, [db, t]() mutable {
            int ok = 0;
            for (int i = 0; i < per_thread; ++i) {
                const int id = t * per_thread + i + 1;
                db.write([id](connection& c) { c.execute("INSERT INTO t(id, v) VALUES (?, 'w')", id); });
                ++ok;
            }
            return ok;
        }));
    int total = 0;
    for (auto& w : workers)
        total += test::get_within(w, "a writer thread finishes", std::chrono::seconds(25));
    CHECK(total == threads * per_thread);
    CHECK(count_rows(db) == threads * per_thread);
    auto distinct =
        db.read([](connection& c) { return *c.query_one<std::int64_t>("SELECT count(DISTINCT id) FROM t"); });
    CHECK(distinct == threads * per_thread);
}

TEST_CASE("a blocking call on the actor thread fails with would_deadlock", "[database]")
{
    test::temp_dir d;
    auto db = open_with_table(d);
    auto nested = [db](connection&) mutable { return db.read([](connection&) { return 1; }); };
    CHECK(test::errc_of([&] { db.call(nested); }) == errc::would_deadlock);
}

TEST_CASE("a default-constructed handle answers closed", "[database]")
{
    dbactor::database none;
    CHECK_FALSE(none.is_open());
    CHECK(test::errc_of([&] { none.read([](connection&) { return 1; }); }) == errc::closed);
    CHECK_NOTHROW(none.close());
}

TEST_CASE("stats count requests per lane and the slow-request hook names them", "[database][stats]")
{
    test::temp_dir d;
    auto o = test::options_for(d);
    std::mutex m;
    std::vector<std::string> slow;
    o.slow_request = 1ns;
    o.on_slow_request = [&](const dbactor::slow_request_info& info) {
        std::lock_guard lock(m);
        slow.emplace_back(info.name);
    };
    auto db = open_with_table(d, o);
    db.write([](connection& c) { c.execute("INSERT INTO t(v) VALUES ('s')"); }, {.name = "add_row"});
    db.read([](connection& c) { return c.query<std::string>("SELECT v FROM t"); }, {.name = "list_rows"});
    CHECK_THROWS(db.read([](connection&) -> int { throw 1; }));
    auto s = db.stats();
    CHECK(s.write.completed == 1);
    CHECK(s.read.completed == 2);
    CHECK(s.read.failed == 1);
    CHECK(s.call.completed == 1); // CREATE TABLE
    CHECK(s.write.execution.count == 1);
    CHECK(s.write.execution.p50_ns > 0);
    CHECK(s.queue_depth == 0);
    std::lock_guard lock(m);
    CHECK(std::find(slow.begin(), slow.end(), "add_row") != slow.end());
    CHECK(std::find(slow.begin(), slow.end(), "list_rows") != slow.end());
}

TEST_CASE("an idle writer checkpoints and empties the WAL, but not while a reader still uses it",
          "[database][checkpoint]")
{
    test::temp_dir d;
    auto o = test::options_for(d);
    o.idle_checkpoint = std::chrono::milliseconds(50);
    auto db = dbactor::database::open(o);
    auto wal_size = [&] {
        std::error_code ec;
        const auto n = std::filesystem::file_size(d.db() + "-wal", ec);
        return ec ? std::uintmax_t{0} : n;
    };
    db.write([](connection& c) { c.exec("CREATE TABLE t(x TEXT)"); });
    { // a reader holding an old snapshot: the checkpoint cannot reset the WAL under it
        SQLite::Database reader(d.db(), SQLite::OPEN_READONLY);
        reader.exec("BEGIN");
        reader.execAndGet("SELECT count(*) FROM t");
        db.write([](connection& c) {
            for (int i = 0; i < 200; ++i)
                c.execute("INSERT INTO t VALUES (?)", std::string(1000, 'x'));
        });
        REQUIRE(wal_size() > 0);
        // The writer is idle now: the idle checkpoint runs (and runs again) but cannot finish.
        CHECK_FALSE(
            test::eventually([&] { return db.stats().idle_checkpoints > 0; }, std::chrono::seconds(1)));
        CHECK(wal_size() > 0);
        reader.exec("COMMIT");
    }
    // The reader left: without any further write, the next idle checkpoint empties the WAL.
    CHECK(test::eventually([&] { return db.stats().idle_checkpoints > 0; }));
    CHECK(wal_size() == 0);
    CHECK(db.read([](connection& c) { return *c.query_one<int>("SELECT count(*) FROM t"); }) == 200);
}
