// close(), async_close() and the last handle: drain, optimize, close the connection, join the thread.
#include "support.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <sqlite3.h>

#include <mutex>
#include <optional>
#include <thread>
#include <vector>

namespace asio = boost::asio;
using namespace std::chrono_literals;
using dbactor::connection;
using dbactor::errc;

namespace {

bool exists(const std::string& p)
{
    return std::filesystem::exists(p);
}

/// Another connection can take the write lock at once (no busy wait).
bool write_lock_free(const std::string& path)
{
    sqlite3* h = nullptr;
    sqlite3_open_v2(path.c_str(), &h, SQLITE_OPEN_READWRITE, nullptr);
    const int rc = sqlite3_exec(h, "BEGIN IMMEDIATE; ROLLBACK;", nullptr, nullptr, nullptr);
    sqlite3_close(h);
    return rc == SQLITE_OK;
}

} // namespace

TEST_CASE("after a clean close the WAL file is gone and another connection can write", "[close]")
{
    test::temp_dir d;
    auto db = dbactor::database::open(test::options_for(d));
    db.write([](connection& c) { c.exec("CREATE TABLE t(x); INSERT INTO t VALUES (1);"); });
    CHECK(exists(d.db() + "-wal"));
    db.close();
    CHECK_FALSE(db.is_open());
    CHECK_FALSE(exists(d.db() + "-wal"));
    CHECK(write_lock_free(d.db()));
}

TEST_CASE("a request after close fails with closed", "[close]")
{
    test::temp_dir d;
    auto db = dbactor::database::open(test::options_for(d));
    auto copy = db;
    db.close();
    auto one = [](connection&) { return 1; };
    CHECK(test::errc_of([&] { copy.read(one); }) == errc::closed);
    auto f = copy.async_write(one, asio::use_future);
    CHECK(test::errc_of([&] { test::get_within(f, "a write after close is answered"); }) == errc::closed);
    CHECK(copy.stats().closed_unexecuted >= 2);
}

TEST_CASE("close is idempotent: a second close and the destructor after it do nothing", "[close]")
{
    test::temp_dir d;
    auto db = dbactor::database::open(test::options_for(d));
    auto copy = db;
    CHECK_NOTHROW(db.close());
    CHECK_NOTHROW(db.close());
    CHECK_NOTHROW(copy.close());
}

TEST_CASE("close drains queued requests: each completes normally within the grace period", "[close]")
{
    test::temp_dir d;
    auto db = dbactor::database::open(test::options_for(d));
    db.call([](connection& c) { c.exec("CREATE TABLE t(x)"); });
    std::promise<void> started, release;
    auto r = release.get_future().share();
    auto blocker = [&started, r](connection&) {
        started.set_value();
        r.wait();
    };
    auto b = db.async_call(blocker, asio::use_future);
    auto s = started.get_future();
    test::get_within(s, "the blocker starts");
    std::vector<std::future<std::int64_t>> queued;
    for (int i = 0; i < 10; ++i)
        queued.push_back(db.async_write(
            [i](connection& c) { return c.execute("INSERT INTO t VALUES (?)", i); }, asio::use_future));
    auto closing = std::async(std::launch::async, [db]() mutable { db.close(); });
    REQUIRE(test::eventually([&] { return !db.is_open(); }));
    release.set_value();
    test::get_within(closing, "close returns after the drain");
    for (auto& f : queued)
        CHECK(test::get_within(f, "a queued write completes") == 1);
    test::get_within(b, "the blocker completes");

    auto again = dbactor::database::open(test::options_for(d));
    CHECK(again.read([](connection& c) { return *c.query_one<int>("SELECT count(*) FROM t"); }) == 10);
}

TEST_CASE("requests still queued when shutdown_grace ends are answered closed without running", "[close]")
{
    test::temp_dir d;
    auto o = test::options_for(d);
    o.shutdown_grace = 0ms;
    auto db = dbactor::database::open(o);
    std::atomic<int> ran{0};
    std::promise<void> started, release;
    auto r = release.get_future().share();
    auto blocker = [&started, r](connection&) {
        started.set_value();
        r.wait();
    };
    auto b = db.async_call(blocker, asio::use_future);
    auto s = started.get_future();
    test::get_within(s, "the blocker starts");
    auto late = db.async_write([&ran](connection&) { return ++ran; }, asio::use_future);
    auto closing = std::async(std::launch::async, [db]() mutable { db.close(); });
    REQUIRE(test::eventually([&] { return !db.is_open(); }));
    release.set_value();
    test::get_within(closing, "close returns");
    CHECK(test::errc_of([&] { test::get_within(late, "the queued write is answered"); }) == errc::closed);
    CHECK(ran == 0);
}

TEST_CASE("async_close completes on the caller's executor after the connection is closed", "[close]")
{
    test::temp_dir d;
    auto db = dbactor::database::open(test::options_for(d));
    db.write([](connection& c) { c.exec("CREATE TABLE t(x)"); });
    asio::io_context io;
    auto f = asio::co_spawn(
        io,
        [&]() -> asio::awaitable<bool> {
            co_await db.async_close(asio::use_awaitable);
            co_return io.get_executor().running_in_this_thread();
        },
        asio::use_future);
    io.run_for(10s);
    CHECK(test::get_within(f, "async_close completes", std::chrono::seconds(1)));
    CHECK_FALSE(exists(d.db() + "-wal"));
}

TEST_CASE("dropping the last handle inside a completion running on the actor thread does not deadlock",
          "[close]")
{
    test::temp_dir d;
    auto* last = new dbactor::database(dbactor::database::open(test::options_for(d)));
    last->write([](connection& c) { c.exec("CREATE TABLE t(x)"); });
    std::promise<void> done;
    auto drop = [last](connection& c) {
        c.execute("INSERT INTO t VALUES (1)");
        delete last; // the only handle, destroyed on the actor thread
    };
    auto keep = *last; // a second handle, released from a callback on the actor thread below
    last->async_write(drop, [&done, keep = std::move(keep)](std::exception_ptr) mutable {
        keep = dbactor::database(); // the last handle goes away inside a completion on the actor thread
        done.set_value();
    });
    auto f = done.get_future();
    test::get_within(f, "the completion runs");
    // The actor finishes closing on its own: the WAL is checkpointed away and the lock is free.
    CHECK(test::eventually([&] { return !exists(d.db() + "-wal"); }));
    CHECK(test::eventually([&] { return write_lock_free(d.db()); }));
    auto again = dbactor::database::open(test::options_for(d));
    CHECK(again.read([](connection& c) { return *c.query_one<int>("SELECT count(*) FROM t"); }) == 1);
}

TEST_CASE("a close failure is reported to close's caller", "[close]")
{
    test::temp_dir d;
    auto db = dbactor::database::open(test::options_for(d));
    db.call([](connection& c) {
        sqlite3_stmt* leaked = nullptr; // kept beyond the request on purpose
        sqlite3_prepare_v2(c.handle(), "SELECT 1", -1, &leaked, nullptr);
    });
    CHECK_THROWS_AS(db.close(), dbactor::error);
    CHECK_NOTHROW(db.close()); // reported once
    CHECK_FALSE(exists(d.db() + "-wal"));
}

TEST_CASE("PRAGMA optimize runs at close", "[close]")
{
    test::temp_dir d;
    auto o = test::options_for(d);
    std::mutex m;
    std::vector<std::string> logged;
    o.on_log = [&](dbactor::log_level, std::string_view msg) {
        std::lock_guard lock(m);
        logged.emplace_back(msg);
    };
    auto db = dbactor::database::open(o);
    db.call([](connection& c) { sqlite3_trace_v2(c.handle(), 0, nullptr, nullptr); });
    std::atomic<bool> optimized{false};
    db.call([&optimized](connection& c) {
        sqlite3_trace_v2(
            c.handle(),
            SQLITE_TRACE_STMT,
            [](unsigned, void* flag, void* stmt, void*) {
                const char* sql = sqlite3_sql(static_cast<sqlite3_stmt*>(stmt));
                if (sql && std::string_view(sql).find("optimize") != std::string_view::npos)
                    static_cast<std::atomic<bool>*>(flag)->store(true);
                return 0;
            },
            &optimized);
    });
    db.close();
    CHECK(optimized);
    std::lock_guard lock(m);
    CHECK(logged.empty()); // no failures to report
}

TEST_CASE("dropping the last handle inside a request itself does not deadlock", "[close]")
{
    test::temp_dir d;
    auto holder =
        std::make_shared<std::optional<dbactor::database>>(dbactor::database::open(test::options_for(d)));
    (*holder)->write([](connection& c) { c.exec("CREATE TABLE t(x)"); });
    std::promise<void> sent;
    auto sent_f = sent.get_future().share();
    auto drop = [holder, sent_f](connection& c) {
        sent_f.wait(); // the caller is out of async_write: nothing of it still uses the handle
        c.execute("INSERT INTO t VALUES (1)");
        holder->reset(); // the only handle, destroyed on the actor thread inside the request
        return 1;
    };
    auto f = (*holder)->async_write(drop, asio::use_future);
    sent.set_value();
    CHECK(test::get_within(f, "the request that dropped the last handle is answered") == 1);
    CHECK(test::eventually([&] { return !exists(d.db() + "-wal"); }));
    CHECK(test::eventually([&] { return write_lock_free(d.db()); }));
    auto again = dbactor::database::open(test::options_for(d));
    CHECK(again.read([](connection& c) { return *c.query_one<int>("SELECT count(*) FROM t"); }) == 1);
}

TEST_CASE("a request still running when shutdown_grace ends is interrupted, rolled back and answered closed",
          "[close]")
{
    test::temp_dir d;
    auto o = test::options_for(d);
    o.shutdown_grace = 100ms;
    auto db = dbactor::database::open(o);
    db.write([](connection& c) { c.exec("CREATE TABLE t(x)"); });
    std::promise<void> started;
    auto endless_write = [&started](connection& c) {
        c.execute("INSERT INTO t VALUES (1)");
        started.set_value();
        return c
            .query_one<std::int64_t>(
                "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c")
            .value_or(0);
    };
    auto f = db.async_write(endless_write, asio::use_future);
    auto s = started.get_future();
    test::get_within(s, "the endless write starts");
    const auto t0 = std::chrono::steady_clock::now();
    db.close(); // returns once the running request was interrupted at the end of the grace
    const auto took = std::chrono::steady_clock::now() - t0;
    CHECK(took >= 100ms);
    CHECK(took < 5s);
    CHECK(test::errc_of([&] { test::get_within(f, "the interrupted write is answered"); }) ==
          dbactor::errc::closed);
    auto again = dbactor::database::open(test::options_for(d));
    CHECK(again.read([](connection& c) { return *c.query_one<int>("SELECT count(*) FROM t"); }) == 0);
}

TEST_CASE("the last handle's destructor reports a close failure to on_log and does not throw", "[close]")
{
    test::temp_dir d;
    auto o = test::options_for(d);
    std::mutex m;
    std::vector<std::string> errors;
    o.on_log = [&](dbactor::log_level level, std::string_view message) {
        if (level == dbactor::log_level::error) {
            std::lock_guard lock(m);
            errors.emplace_back(message);
        }
    };
    {
        auto db = dbactor::database::open(o);
        db.call([](connection& c) {
            sqlite3_stmt* leaked = nullptr; // kept beyond the request on purpose
            sqlite3_prepare_v2(c.handle(), "SELECT 1", -1, &leaked, nullptr);
        });
    } // the destructor closes: it must log, not throw
    std::lock_guard lock(m);
    REQUIRE(errors.size() == 1);
    CHECK_THAT(errors.front(), Catch::Contains("still open"));
    CHECK_FALSE(exists(d.db() + "-wal"));
}
