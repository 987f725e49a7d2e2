// Every Asio completion token works with every request kind, and completions run where they belong.
#include "support.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>

#include <atomic>
#include <thread>

namespace asio = boost::asio;
using namespace std::chrono_literals;
using dbactor::connection;
using dbactor::errc;

namespace {

/// Runs `coro` on a fresh io_context in this thread until it finishes (bounded), returning its result.
template <class T>
T run_coro(asio::awaitable<T> coro)
{
    asio::io_context io;
    auto f = asio::co_spawn(io, std::move(coro), asio::use_future);
    io.run_for(10s);
    return test::get_within(f, "the coroutine finishes", std::chrono::seconds(1));
}

auto answer = [](connection& c) { return *c.query_one<int>("SELECT 42"); };

} // namespace

TEST_CASE("use_future delivers the result, and the exception through get()", "[tokens]")
{
    test::temp_dir d;
    auto db = dbactor::database::open(test::options_for(d));
    auto f = db.async_read(answer, asio::use_future);
    CHECK(test::get_within(f, "use_future read") == 42);
    auto g = db.async_write([](connection&) -> int { throw std::logic_error("no"); }, asio::use_future);
    CHECK_THROWS_AS(test::get_within(g, "use_future write"), std::logic_error);
    auto h = db.async_call([](connection&) {}, asio::use_future);
    CHECK_NOTHROW(test::get_within(h, "use_future void call"));
}

TEST_CASE("a plain callback gets (exception_ptr, result)", "[tokens]")
{
    test::temp_dir d;
    auto db = dbactor::database::open(test::options_for(d));
    std::promise<std::pair<bool, int>> p;
    db.async_read(answer, [&](std::exception_ptr e, int v) { p.set_value({e == nullptr, v}); });
    auto f = p.get_future();
    auto [ok, v] = test::get_within(f, "callback read");
    CHECK(ok);
    CHECK(v == 42);

    std::promise<bool> q;
    db.async_call([](connection&) { throw 5; }, [&](std::exception_ptr e) { q.set_value(e != nullptr); });
    auto g = q.get_future();
    CHECK(test::get_within(g, "callback void call with exception"));
}

TEST_CASE("use_awaitable resumes the coroutine on its own executor, never on the actor thread", "[tokens]")
{
    test::temp_dir d;
    auto db = dbactor::database::open(test::options_for(d));
    asio::io_context io;
    std::thread::id io_thread, resumed_on, actor_thread;
    auto where = [&actor_thread](connection&) {
        actor_thread = std::this_thread::get_id();
        return 1;
    };
    auto f = asio::co_spawn(
        io,
        [&]() -> asio::awaitable<int> {
            io_thread = std::this_thread::get_id();
            int v = co_await db.async_read(where, asio::use_awaitable);
            resumed_on = std::this_thread::get_id();
            co_return v;
        },
        asio::use_future);
    std::thread runner([&] { io.run_for(10s); });
    CHECK(test::get_within(f, "the coroutine finishes") == 1);
    runner.join();
    CHECK(resumed_on == io_thread);
    CHECK(actor_thread != io_thread);
}

TEST_CASE("use_awaitable rethrows the request's exception in the coroutine", "[tokens]")
{
    test::temp_dir d;
    auto db = dbactor::database::open(test::options_for(d));
    auto throws = [](connection&) -> int { throw std::out_of_range("x"); };
    auto caught = run_coro([&]() -> asio::awaitable<bool> {
        try {
            co_await db.async_write(throws, asio::use_awaitable);
        }
        catch (const std::out_of_range&) {
            co_return true;
        }
        co_return false;
    }());
    CHECK(caught);
}

TEST_CASE("as_tuple hands the exception over as a value", "[tokens]")
{
    test::temp_dir d;
    auto db = dbactor::database::open(test::options_for(d));
    auto throws = [](connection&) -> int { throw 3; };
    auto [ok, failed] = run_coro([&]() -> asio::awaitable<std::pair<int, bool>> {
        auto [e1, v] = co_await db.async_read(answer, asio::as_tuple(asio::use_awaitable));
        auto [e2, w] = co_await db.async_read(throws, asio::as_tuple(asio::use_awaitable));
        co_return std::pair{e1 ? -1 : v, e2 != nullptr && w == 0};
    }());
    CHECK(ok == 42);
    CHECK(failed);
}

TEST_CASE("deferred does not run the request until the operation is launched", "[tokens]")
{
    test::temp_dir d;
    auto db = dbactor::database::open(test::options_for(d));
    db.call([](connection& c) { c.exec("CREATE TABLE t(x)"); });
    auto insert = [](connection& c) { return c.execute("INSERT INTO t VALUES (1)"); };
    auto op = db.async_write(insert, asio::deferred);
    auto rows = db.read([](connection& c) { return *c.query_one<int>("SELECT count(*) FROM t"); });
    CHECK(rows == 0);
    auto changed = run_coro(
        [&]() -> asio::awaitable<std::int64_t> { co_return co_await std::move(op)(asio::use_awaitable); }());
    CHECK(changed == 1);
}

TEST_CASE("a completion bound to an executor runs on that executor", "[tokens]")
{
    test::temp_dir d;
    auto db = dbactor::database::open(test::options_for(d));
    asio::io_context io;
    auto guard = asio::make_work_guard(io);
    std::thread runner([&] { io.run_for(10s); });
    std::promise<bool> p;
    db.async_read(answer, asio::bind_executor(io, [&](std::exception_ptr, int) {
                      p.set_value(io.get_executor().running_in_this_thread());
                  }));
    auto f = p.get_future();
    CHECK(test::get_within(f, "bound callback"));
    // No io.stop(): the actor may still be inside post() (its own work guard keeps run() going until then);
    // stopping and destroying the io_context under it would be a use-after-free (TSan saw it).
    guard.reset();
    runner.join();
}

TEST_CASE(
    "the actor never waits on a caller's executor: a reply to an io_context that never runs holds up nothing",
    "[tokens]")
{
    test::temp_dir d;
    auto db = dbactor::database::open(test::options_for(d));
    std::atomic<bool> delivered{false};
    {
        asio::io_context never_run;
        db.async_read(answer,
                      asio::bind_executor(never_run, [&](std::exception_ptr, int) { delivered = true; }));
        // FIFO: once these blocking reads are answered, the first request ran and its reply waits in
        // never_run.
        for (int i = 0; i < 100; ++i)
            CHECK(db.read(answer) == 42);
        CHECK_FALSE(delivered);
    } // never_run goes away with the reply undelivered: the request is dropped, not leaked (ASan checks)
    CHECK_FALSE(delivered);
    CHECK(db.read(answer) == 42);
}

TEST_CASE("a coroutine awaiting one request at a time gets each reply on its own thread, within reply_spin "
          "or after it",
          "[tokens]")
{
    test::temp_dir d;
    auto o = test::options_for(d);
    o.reply_spin = std::chrono::microseconds(200);
    auto db = dbactor::database::open(o);
    // A few milliseconds of SQLite work: longer than the spin, so the reply is posted the usual way.
    auto slow = [](connection& c) {
        return *c.query_one<std::int64_t>("WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r "
                                          "WHERE i < 300000) SELECT count(*) FROM r");
    };
    asio::io_context io;
    std::thread::id io_thread;
    bool all_on_io_thread = true;
    auto f = asio::co_spawn(
        io,
        [&]() -> asio::awaitable<std::int64_t> {
            io_thread = std::this_thread::get_id();
            std::int64_t sum = 0;
            for (int i = 0; i < 200; ++i) { // fast: each reply comes while the caller spins for it
                sum += co_await db.async_read(answer, asio::use_awaitable);
                all_on_io_thread = all_on_io_thread && std::this_thread::get_id() == io_thread;
            }
            for (int i = 0; i < 3; ++i) { // slow: the spin gives up first
                sum += co_await db.async_read(slow, asio::use_awaitable);
                all_on_io_thread = all_on_io_thread && std::this_thread::get_id() == io_thread;
            }
            co_return sum;
        },
        asio::use_future);
    io.run_for(20s);
    CHECK(test::get_within(f, "the coroutine finishes", std::chrono::seconds(1)) == 200 * 42 + 3 * 300000);
    CHECK(all_on_io_thread);

    auto off = test::options_for(d);
    off.path = d.file("off.db");
    off.reply_spin = std::chrono::nanoseconds(0); // the same without spinning
    auto quiet = dbactor::database::open(off);
    CHECK(run_coro([&]() -> asio::awaitable<int> {
              co_return co_await quiet.async_read(answer, asio::use_awaitable);
          }()) == 42);
}
