// The bounded queue, timeouts and cancellation, shown with a paused actor (a request blocked on a latch).
#include "support.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
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

/// Pauses the actor: a call that signals it started and then waits for release().
class actor_pause
{
public:
    explicit actor_pause(dbactor::database& db) : release_future_(release_.get_future().share())
    {
        auto wait = [started = &started_, r = release_future_](connection&) {
            started->set_value();
            r.wait();
        };
        done_ = db.async_call(wait, asio::use_future);
        auto s = started_.get_future();
        test::get_within(s, "the pausing request starts");
    }
    actor_pause(const actor_pause&) = delete;
    ~actor_pause()
    {
        // No REQUIRE here: a destructor that throws while a failing test unwinds would end the whole run.
        if (!released_) {
            released_ = true;
            release_.set_value();
            done_.wait_for(std::chrono::seconds(10));
        }
    }
    void release()
    {
        if (!released_) {
            released_ = true;
            release_.set_value();
            test::get_within(done_, "the pausing request ends");
        }
    }

private:
    std::promise<void> started_;
    std::promise<void> release_;
    std::shared_future<void> release_future_;
    std::future<void> done_;
    bool released_ = false;
};

/// An endless query: runs until the progress handler interrupts it.
constexpr const char* endless =
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c";

dbactor::errc errc_of_future(std::future<int>& f, const char* what)
{
    return test::errc_of([&] { test::get_within(f, what); });
}

} // namespace

TEST_CASE("a full queue refuses fail-fast requests with queue_full", "[backpressure]")
{
    test::temp_dir d;
    auto o = test::options_for(d);
    o.queue_capacity = 4;
    auto db = dbactor::database::open(o);
    std::atomic<int> ran{0};
    auto count = [&ran](connection&) { return ++ran; };
    actor_pause p(db);
    std::vector<std::future<int>> admitted;
    for (int i = 0; i < 4; ++i)
        admitted.push_back(db.async_read(count, {.wait_if_full = false}, asio::use_future));
    auto refused = db.async_read(count, {.wait_if_full = false}, asio::use_future);
    CHECK(errc_of_future(refused, "the fifth request is refused") == errc::queue_full);
    CHECK(db.stats().rejected == 1);
    CHECK(db.stats().queue_depth == 4);
    p.release();
    for (auto& f : admitted)
        test::get_within(f, "an admitted request completes");
    CHECK(ran == 4);
}

TEST_CASE("a waiting async sender does not block its io_context while the queue is full", "[backpressure]")
{
    test::temp_dir d;
    auto o = test::options_for(d);
    o.queue_capacity = 2;
    auto db = dbactor::database::open(o);
    auto one = [](connection&) { return 1; };
    actor_pause p(db);
    std::vector<std::future<int>> admitted;
    for (int i = 0; i < 2; ++i)
        admitted.push_back(db.async_read(one, asio::use_future));

    asio::io_context io;
    std::atomic<bool> db_replied{false};
    std::promise<bool> io_ran_while_waiting;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            co_await db.async_read(one, {.wait_if_full = true}, asio::use_awaitable);
            db_replied = true;
        },
        asio::detached);
    // Queued behind the waiting sender on the same io_context: it runs although the sender still waits.
    asio::post(io, [&] { io_ran_while_waiting.set_value(!db_replied.load()); });
    std::thread runner([&] { io.run_for(10s); });
    auto ran = io_ran_while_waiting.get_future();
    CHECK(test::get_within(ran, "the io_context runs other work while the sender waits"));
    const auto st = db.stats();
    CHECK(st.queue_depth == 2);   // the capacity: two admitted ...
    CHECK(st.queue_waiting == 1); // ... and one waiting for space behind them
    CHECK(test::errc_of([&] { db.read(one, {.wait_if_full = false}); }) == errc::queue_full);
    p.release();
    runner.join();
    CHECK(db_replied);
}

TEST_CASE("a blocking sender blocks only its own thread until there is space", "[backpressure]")
{
    test::temp_dir d;
    auto o = test::options_for(d);
    o.queue_capacity = 1;
    auto db = dbactor::database::open(o);
    auto one = [](connection&) { return 1; };
    actor_pause p(db);
    auto admitted = db.async_read(one, asio::use_future);
    auto blocked = std::async(std::launch::async, [db, one]() mutable { return db.read(one); });
    // This thread is free: it sees the blocked sender waiting in line for space, without a reply.
    REQUIRE(test::eventually([&] { return db.stats().queue_waiting == 1; }));
    CHECK(db.stats().queue_depth == 1);
    CHECK(blocked.wait_for(0s) == std::future_status::timeout);
    CHECK(test::errc_of([&] { db.read(one, {.wait_if_full = false}); }) == errc::queue_full);
    p.release();
    CHECK(test::get_within(blocked, "the blocked sender gets its reply") == 1);
    CHECK(test::get_within(admitted, "the admitted request completes") == 1);
}

TEST_CASE("a queued request past its deadline is dropped unexecuted with timed_out", "[timeout]")
{
    test::temp_dir d;
    auto db = dbactor::database::open(test::options_for(d));
    std::atomic<int> ran{0};
    auto count = [&ran](connection&) { return ++ran; };
    actor_pause p(db);
    // 1 ns: the deadline has passed by the time the actor reaches the request, whatever the machine.
    auto late = db.async_write(count, {.timeout = 1ns}, asio::use_future);
    auto on_time = db.async_write(count, asio::use_future);
    p.release();
    CHECK(errc_of_future(late, "the late request is answered") == errc::timed_out);
    CHECK(test::get_within(on_time, "the next request runs") == 1);
    CHECK(ran == 1);
    CHECK(db.stats().timed_out == 1);
}

TEST_CASE(
    "an async request queued past its deadline is answered timed_out at the deadline while the actor is busy",
    "[timeout]")
{
    test::temp_dir d;
    auto db = dbactor::database::open(test::options_for(d));
    std::atomic<int> ran{0};
    auto count = [&ran](connection&) { return ++ran; };
    actor_pause p(db);
    const auto t0 = std::chrono::steady_clock::now();
    auto patient = db.async_write(count, {.timeout = 60s}, asio::use_future);
    // Sent after a request with a later deadline: the watcher must wake earlier for it.
    auto late_write = db.async_write(count, {.timeout = 100ms}, asio::use_future);
    auto late_read = db.async_read(count, {.timeout = 150ms}, asio::use_future);
    auto untimed = db.async_write(count, asio::use_future);
    // The actor is still paused: these answers come from the deadlines, not from the actor.
    CHECK(errc_of_future(late_write, "the write is answered at its deadline") == errc::timed_out);
    CHECK(errc_of_future(late_read, "the read is answered at its deadline") == errc::timed_out);
    CHECK(std::chrono::steady_clock::now() - t0 >= 100ms);
    CHECK(patient.wait_for(0s) == std::future_status::timeout);
    CHECK(untimed.wait_for(0s) == std::future_status::timeout);
    const auto st = db.stats();
    CHECK(st.timed_out == 2);
    CHECK(st.queue_depth == 2); // the answered ones left the line
    p.release();
    CHECK(test::get_within(patient, "the request with a later deadline runs") == 1);
    CHECK(test::get_within(untimed, "the request without a deadline runs") == 2);
    CHECK(ran == 2); // the timed-out ones never ran
}

TEST_CASE("a blocking request times out at its deadline even while the actor is busy", "[timeout]")
{
    test::temp_dir d;
    auto db = dbactor::database::open(test::options_for(d));
    std::atomic<int> ran{0};
    auto count = [&ran](connection&) { return ++ran; };
    actor_pause p(db);
    auto blocked = std::async(std::launch::async, [db, count]() mutable {
        return test::errc_of([&] { db.write(count, {.timeout = 50ms}); });
    });
    // Answered while the actor is still paused: the caller's own wait ends at the deadline.
    CHECK(test::get_within(blocked, "the blocking caller gives up at its deadline") == errc::timed_out);
    p.release();
    CHECK(db.read(count) == 1); // the timed-out request never ran
}

TEST_CASE("a running request past its deadline is interrupted and rolled back", "[timeout]")
{
    test::temp_dir d;
    auto db = dbactor::database::open(test::options_for(d));
    db.call([](connection& c) { c.exec("CREATE TABLE t(x)"); });
    auto insert_then_spin = [](connection& c) {
        c.execute("INSERT INTO t VALUES (1)");
        return *c.query_one<std::int64_t>(endless);
    };
    const auto t0 = std::chrono::steady_clock::now();
    CHECK(test::errc_of([&] { db.write(insert_then_spin, {.timeout = 100ms}); }) == errc::timed_out);
    CHECK(std::chrono::steady_clock::now() - t0 < 10s);
    CHECK(db.read([](connection& c) { return *c.query_one<int>("SELECT count(*) FROM t"); }) == 0);

    auto spin = [](connection& c) { return *c.query_one<std::int64_t>(endless); };
    auto f = db.async_read(spin, {.timeout = 50ms}, asio::use_future);
    CHECK(test::errc_of([&] { test::get_within(f, "the endless read is interrupted"); }) == errc::timed_out);
    CHECK(db.read([](connection& c) { return *c.query_one<int>("SELECT 7"); }) == 7);
}

TEST_CASE("a queued request cancelled through its slot is answered cancelled and never runs", "[cancel]")
{
    test::temp_dir d;
    auto db = dbactor::database::open(test::options_for(d));
    std::atomic<int> ran{0};
    auto count = [&ran](connection&) { return ++ran; };
    actor_pause p(db);
    asio::io_context io;
    asio::cancellation_signal signal;
    std::promise<errc> outcome;
    db.async_write(count, asio::bind_cancellation_slot(signal.slot(), [&](std::exception_ptr e, int) {
                       outcome.set_value(test::errc_of([&] {
                           if (e)
                               std::rethrow_exception(e);
                       }));
                   }));
    asio::post(io, [&] { signal.emit(asio::cancellation_type::terminal); });
    io.run_for(5s);
    auto f = outcome.get_future();
    // Answered while the actor is still paused.
    CHECK(test::get_within(f, "the cancelled request is answered") == errc::cancelled);
    p.release();
    CHECK(db.read(count) == 1);
    CHECK(db.stats().cancelled == 1);
}

TEST_CASE("a running request cancelled by the || operator is interrupted and the actor keeps serving",
          "[cancel]")
{
    using namespace asio::experimental::awaitable_operators;
    test::temp_dir d;
    auto db = dbactor::database::open(test::options_for(d));
    db.call([](connection& c) { c.exec("CREATE TABLE t(x)"); });
    auto insert_then_spin = [](connection& c) {
        c.execute("INSERT INTO t VALUES (1)");
        return *c.query_one<std::int64_t>(endless);
    };
    asio::io_context io;
    auto f = asio::co_spawn(
        io,
        [&]() -> asio::awaitable<std::size_t> {
            asio::steady_timer timer(co_await asio::this_coro::executor, 50ms);
            auto result = co_await (db.async_write(insert_then_spin, asio::use_awaitable) ||
                                    timer.async_wait(asio::use_awaitable));
            co_return result.index();
        },
        asio::use_future);
    io.run_for(10s);
    CHECK(test::get_within(f, "the race finishes", std::chrono::seconds(1)) == 1); // the timer won
    CHECK(db.read([](connection& c) { return *c.query_one<int>("SELECT count(*) FROM t"); }) == 0);
    CHECK(db.stats().cancelled == 1);
}

TEST_CASE(
    "a request cancelled while queued whose io_context is destroyed before the reply runs is dropped cleanly",
    "[cancel]")
{
    test::temp_dir d;
    auto db = dbactor::database::open(test::options_for(d));
    std::atomic<int> ran{0};
    std::atomic<bool> delivered{false};
    auto count = [&ran](connection&) { return ++ran; };
    actor_pause p(db);
    asio::cancellation_signal cancel; // outlives the operation, as Asio requires
    {
        asio::io_context io;
        db.async_write(
            count,
            asio::bind_cancellation_slot(
                cancel.slot(), asio::bind_executor(io, [&](std::exception_ptr, int) { delivered = true; })));
        cancel.emit(
            asio::cancellation_type::terminal); // answered at once: the reply is posted to io, never run
    }            // io goes away with the reply queued; the request itself is still in the actor's queue
    p.release(); // the actor reaches it and drops it: its handler and work guard must already be gone (ASan)
    CHECK(db.write(count) == 1);
    CHECK_FALSE(delivered);
    CHECK(ran == 1);
    CHECK(db.stats().cancelled == 1);
}
