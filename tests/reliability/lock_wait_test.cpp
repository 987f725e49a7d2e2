// Waiting for another process's lock honours the request: its deadline, its cancellation and the shutdown
// grace end the wait (DESIGN.md "Other processes on the same file"), measured against a real second process.
#include "common.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_future.hpp>

#include <fmt/format.h>

#include <future>
#include <thread>

using namespace std::chrono_literals;
using rel::since;

namespace {

// How late an answer may come after its moment: the busy handler sleeps at most 5 ms a step, and the reply
// crosses two threads; the rest is slack for a loaded CI machine (and the sanitizer builds).
constexpr double slack_ms = 250;

/// A database booted with a table, then a second process holding its write lock (BEGIN IMMEDIATE).
struct locked_database
{
    test::temp_dir dir;
    dbactor::database db;
    std::unique_ptr<rel::child> holder;

    explicit locked_database(dbactor::options o)
    {
        o.path = dir.db();
        db = dbactor::database::open(std::move(o));
        db.call([](dbactor::connection& c) { c.exec("CREATE TABLE t(x)"); });
        holder = std::make_unique<rel::child>(
            DBACTOR_RELIABILITY_LOCK_HOLDER, std::vector<std::string>{dir.db(), "write", "0"}, true);
        const auto l = holder->read_line(10s);
        INFO("the lock holder process did not report the lock within 10 s");
        REQUIRE((l && *l == "L"));
    }
    ~locked_database()
    {
        if (holder) {
            holder->close_stdin();
            holder->wait(10s);
        }
    }
    void release()
    {
        holder->close_stdin();
        REQUIRE(holder->read_line(10s) == std::optional<std::string>("U"));
    }
    std::int64_t rows()
    {
        return db.read(
            [](dbactor::connection& c) { return *c.query_one<std::int64_t>("SELECT count(*) FROM t"); });
    }
};

dbactor::options base()
{
    dbactor::options o;
    o.synchronous = dbactor::synchronous_mode::normal;
    o.busy_timeout = 5000ms;
    o.on_log = [](dbactor::log_level, std::string_view) {};
    return o;
}

auto insert_one = [](dbactor::connection& c) { c.execute("INSERT INTO t VALUES (1)"); };

} // namespace

TEST_CASE(
    "a write waiting for another process's lock is answered timed_out at its deadline and has no effect",
    "[lock_wait]")
{
    locked_database l(base());
    const auto t0 = std::chrono::steady_clock::now();
    auto f = l.db.async_write(insert_one, {.timeout = 200ms, .name = "blocked"}, boost::asio::use_future);
    INFO("the write was not answered within 5 s");
    REQUIRE(f.wait_for(5s) == std::future_status::ready);
    const double ms = since(t0) * 1000;
    CHECK(test::errc_of([&] { f.get(); }) == dbactor::errc::timed_out);
    CHECK(ms >= 199);
    CHECK(ms < 200 + slack_ms);
    rel::report("lock wait: timeout 200 ms while another process holds the write lock",
                {rel::num("answered_after_ms", ms)});
    l.release();
    CHECK(l.rows() == 0);
    const auto st = l.db.stats();
    CHECK(st.lock_waits >= 1);
    CHECK(st.lock_wait.max_ns >= 150'000'000);
    CHECK(st.timed_out == 1);
}

TEST_CASE("a write waiting for another process's lock is answered cancelled when its Asio operation is "
          "cancelled",
          "[lock_wait]")
{
    locked_database l(base());
    boost::asio::io_context io;
    auto guard = boost::asio::make_work_guard(io);
    std::thread runner([&] { io.run(); });
    boost::asio::cancellation_signal cancel;
    boost::asio::steady_timer timer(io);
    std::promise<std::exception_ptr> reply;
    const auto t0 = std::chrono::steady_clock::now();
    boost::asio::post(io, [&] {
        l.db.async_write(insert_one,
                         boost::asio::bind_cancellation_slot(
                             cancel.slot(), boost::asio::bind_executor(io, [&](std::exception_ptr e) {
                                 reply.set_value(e);
                             })));
        timer.expires_after(100ms); // the scenario: the caller gives up after 100 ms of waiting
        timer.async_wait(
            [&](boost::system::error_code) { cancel.emit(boost::asio::cancellation_type::terminal); });
    });
    auto f = reply.get_future();
    const bool answered = f.wait_for(5s) == std::future_status::ready;
    const double ms = since(t0) * 1000;
    guard.reset();
    runner.join();
    INFO("the cancelled write was not answered within 5 s");
    REQUIRE(answered);
    CHECK(test::errc_of([&] { std::rethrow_exception(f.get()); }) == dbactor::errc::cancelled);
    CHECK(ms < 100 + slack_ms);
    rel::report("lock wait: Asio cancellation after 100 ms while another process holds the write lock",
                {rel::num("answered_after_ms", ms)});
    l.release();
    CHECK(l.rows() == 0);
}

TEST_CASE("close() ends a write's wait for another process's lock at the end of shutdown_grace",
          "[lock_wait]")
{
    auto o = base();
    o.shutdown_grace = 300ms;
    locked_database l(std::move(o));
    auto f = l.db.async_write(insert_one, {.name = "blocked"}, boost::asio::use_future);
    const auto t0 = std::chrono::steady_clock::now();
    auto closed = std::async(std::launch::async, [&] { l.db.close(); });
    INFO("close() did not return within 5 s");
    REQUIRE(closed.wait_for(5s) == std::future_status::ready);
    const double ms = since(t0) * 1000;
    closed.get();
    REQUIRE(f.wait_for(1s) == std::future_status::ready);
    CHECK(test::errc_of([&] { f.get(); }) == dbactor::errc::closed);
    CHECK(ms < 300 + slack_ms);
    rel::report(
        "lock wait: close() with shutdown_grace 300 ms while a write waits for another process's lock",
        {rel::num("close_returned_after_ms", ms)});
    l.release();
    rel::raw_db raw(l.dir.db());
    CHECK(raw.scalar("SELECT count(*) FROM t") == 0);
}

TEST_CASE("a write without a deadline waits for another process's lock and succeeds once it is released",
          "[lock_wait]")
{
    std::atomic<std::int64_t> slow_lock_wait_ns{0};
    auto o = base();
    o.slow_request = 50ms;
    o.on_slow_request = [&](const dbactor::slow_request_info& i) { slow_lock_wait_ns = i.lock_wait.count(); };
    locked_database l(std::move(o));
    auto f = l.db.async_write(insert_one, {.name = "patient"}, boost::asio::use_future);
    INFO("the write finished while another process held the write lock");
    CHECK(f.wait_for(150ms) == std::future_status::timeout); // the scenario: the lock is held 150 ms or more
    l.release();
    REQUIRE(f.wait_for(5s) == std::future_status::ready);
    f.get();
    CHECK(l.rows() == 1);
    CHECK(slow_lock_wait_ns.load() >= 100'000'000); // the slow-request report says where the time went
}

namespace {

/// rel::schema() and one more migration: a boot of a database at rel::schema() needs the write lock.
dbactor::migration_set schema_and_one_more()
{
    std::vector<std::pair<std::string, std::string>> files;
    const auto set = rel::schema();
    for (const auto& m : set.items())
        files.emplace_back(fmt::format("{:04}_{}.sql", m.version, m.name), m.up_sql);
    files.emplace_back(fmt::format("{:04}_more.sql", files.size() + 1), "CREATE TABLE more(x);\n");
    return dbactor::migration_set::from_files(files, "lock_wait");
}

/// A database at rel::schema(), closed, then a second process holding its write lock.
struct locked_file
{
    test::temp_dir dir;
    std::unique_ptr<rel::child> holder;

    locked_file()
    {
        auto o = base();
        o.path = dir.db();
        o.migrations = rel::schema();
        dbactor::database::open(std::move(o)).close();
        holder = std::make_unique<rel::child>(
            DBACTOR_RELIABILITY_LOCK_HOLDER, std::vector<std::string>{dir.db(), "write", "0"}, true);
        const auto l = holder->read_line(10s);
        INFO("the lock holder process did not report the lock within 10 s");
        REQUIRE((l && *l == "L"));
    }
    ~locked_file()
    {
        holder->close_stdin();
        holder->wait(10s);
    }
    dbactor::options booting(std::chrono::milliseconds busy) const
    {
        auto o = base();
        o.path = dir.db();
        o.migrations = schema_and_one_more();
        o.busy_timeout = busy;
        return o;
    }
};

} // namespace

TEST_CASE("boot waits for another process's lock in short steps: it goes on within milliseconds of the "
          "release, and boot_report() counts the wait",
          "[lock_wait][boot]")
{
    locked_file l;
    auto booting = std::async(std::launch::async, [&] { return dbactor::database::open(l.booting(5000ms)); });
    INFO("boot finished while another process held the write lock");
    CHECK(booting.wait_for(200ms) == std::future_status::timeout); // the scenario: held 200 ms or more
    l.holder->close_stdin();
    REQUIRE(l.holder->read_line(10s) == std::optional<std::string>("U"));
    const auto released = std::chrono::steady_clock::now();
    INFO("boot did not finish within 5 s of the release");
    REQUIRE(booting.wait_for(5s) == std::future_status::ready);
    const double ms = since(released) * 1000;
    auto db = booting.get();
    const auto& r = db.boot_report();
    CHECK(r.schema_version == static_cast<std::int64_t>(rel::schema().items().size()) + 1);
    CHECK(r.lock_waits >= 1);
    CHECK(r.lock_wait >= 150ms);
    CHECK(r.lock_wait <= r.total);
    CHECK(ms < slack_ms);
    rel::report("lock wait: boot with a pending migration while another process holds the write lock",
                {rel::num("boot_done_after_release_ms", ms),
                 rel::num("boot_lock_wait_ms", static_cast<double>(r.lock_wait.count()) / 1000)});
}

TEST_CASE("boot gives up on another process's lock at busy_timeout, changing nothing", "[lock_wait][boot]")
{
    locked_file l;
    const auto before = rel::slurp(l.dir.db());
    const auto t0 = std::chrono::steady_clock::now();
    std::string message;
    CHECK(test::errc_of([&] {
              try {
                  dbactor::database::open(l.booting(300ms));
              }
              catch (const std::exception& e) {
                  message = e.what();
                  throw;
              }
          }) == dbactor::errc::busy);
    const double ms = since(t0) * 1000;
    INFO(message);
    CHECK(ms >= 299);
    CHECK(ms < 300 + slack_ms);
    CHECK(message.find(l.dir.db()) != std::string::npos);
    CHECK(message.find("busy_timeout") != std::string::npos);
    rel::report("lock wait: boot with busy_timeout 300 ms while another process holds the write lock",
                {rel::num("boot_failed_after_ms", ms)});
    l.holder->close_stdin();
    REQUIRE(l.holder->wait(10s));
    CHECK(rel::slurp(l.dir.db()) == before);
}
