// In-process reliability: I/O error sweep (fault VFS), throwing requests, overload, shutdown in flight.
#include "common.hpp"
#include "vfs.hpp"

#include <SQLiteCpp/Exception.h>
#include <boost/asio/use_future.hpp>
#include <fmt/format.h>

#include <atomic>
#include <condition_variable>
#include <fstream>
#include <map>
#include <mutex>
#include <thread>

#include <signal.h>

using namespace std::chrono_literals;

namespace {

using rel::since;

/// Waits until `n` callbacks have run, for at most `limit`.
class countdown
{
public:
    explicit countdown(std::int64_t n) : left_(n) {}
    void done()
    {
        std::lock_guard lock(m_);
        if (--left_ <= 0)
            cv_.notify_all();
    }
    bool wait(std::chrono::milliseconds limit)
    {
        std::unique_lock lock(m_);
        return cv_.wait_for(lock, limit, [&] { return left_ <= 0; });
    }
    std::int64_t left()
    {
        std::lock_guard lock(m_);
        return left_;
    }

private:
    std::mutex m_;
    std::condition_variable cv_;
    std::int64_t left_;
};

/// Holds the actor thread inside a call until released: everything sent meanwhile queues behind it.
class actor_pause
{
public:
    explicit actor_pause(dbactor::database& db)
    {
        auto go = release_.get_future().share();
        std::promise<void> started;
        auto running = started.get_future();
        done_ = db.async_call(
            [go, s = std::make_shared<std::promise<void>>(std::move(started))](dbactor::connection&) {
                s->set_value();
                go.wait();
            },
            boost::asio::use_future);
        REQUIRE(running.wait_for(10s) == std::future_status::ready);
    }
    void release()
    {
        release_.set_value();
        test::get_within(done_, "the pausing call finished");
    }

private:
    std::promise<void> release_;
    std::future<void> done_;
};

void insert_request(dbactor::connection& c, std::int64_t req, int rows, std::size_t payload)
{
    for (int part = 0; part < rows; ++part)
        c.execute(
            "INSERT INTO acks(req, part, payload) VALUES (?, ?, ?)", req, part, std::string(payload, 'f'));
}

// ---- I/O error sweep --------------------------------------------------------------------------------------

enum class scenario
{
    single, ///< one write request of 3 rows
    multi,  ///< one write request of 40 rows of 600 bytes (many pages, several statements)
    batch,  ///< 12 write requests queued behind a paused actor: one group-committed transaction
};

const char* scenario_name(scenario s)
{
    switch (s) {
    case scenario::single: return "single_write";
    case scenario::multi: return "multi_statement_write";
    case scenario::batch: return "group_commit_batch";
    }
    return "?";
}

using rel::fault_vfs::kind_name;

struct outcome
{
    std::int64_t req;
    int rows;
    std::exception_ptr error;
};

/// Runs the scenario's requests; each outcome says what its caller got.
std::vector<outcome> run_scenario(dbactor::database& db, scenario s, std::int64_t base)
{
    std::vector<outcome> out;
    auto one = [&](std::int64_t req, int rows, std::size_t payload) {
        return db.async_write(
            [req, rows, payload](dbactor::connection& c) { insert_request(c, req, rows, payload); },
            boost::asio::use_future);
    };
    switch (s) {
    case scenario::single:
    case scenario::multi: {
        const int rows = s == scenario::single ? 3 : 40;
        auto f = one(base, rows, s == scenario::single ? 50 : 600);
        REQUIRE(f.wait_for(10s) == std::future_status::ready);
        try {
            f.get();
            out.push_back({base, rows, nullptr});
        }
        catch (...) {
            out.push_back({base, rows, std::current_exception()});
        }
        break;
    }
    case scenario::batch: {
        std::vector<std::future<void>> fs;
        {
            actor_pause p(db);
            for (int i = 0; i < 12; ++i)
                fs.push_back(one(base + i, 3, 200));
            p.release();
        }
        for (int i = 0; i < 12; ++i) {
            REQUIRE(fs[i].wait_for(10s) == std::future_status::ready);
            try {
                fs[i].get();
                out.push_back({base + i, 3, nullptr});
            }
            catch (...) {
                out.push_back({base + i, 3, std::current_exception()});
            }
        }
        break;
    }
    }
    return out;
}

/// "typed": a dbactor::error or an SQLite::Exception carrying an SQLite result code. Returns its text.
std::string typed_error(const std::exception_ptr& e, bool& typed)
{
    typed = false;
    try {
        std::rethrow_exception(e);
    }
    catch (const dbactor::error& x) {
        typed = true;
        return fmt::format("dbactor::error({}) {}", static_cast<int>(x.value()), x.what());
    }
    catch (const SQLite::Exception& x) {
        typed = x.getErrorCode() != 0;
        return fmt::format("SQLite::Exception({}) {}", x.getExtendedErrorCode(), x.what());
    }
    catch (const std::exception& x) {
        return std::string("untyped std::exception: ") + x.what();
    }
    catch (...) {
        return "unknown exception";
    }
}

struct sweep_totals
{
    long points = 0, injected = 0, failed_requests = 0, ok_requests = 0, untyped = 0, ambiguous = 0,
         partial = 0, lost_acked = 0, not_serving = 0, reopen_failed = 0, close_errors = 0;
    std::string first_problem;
};

dbactor::options fault_options(const test::temp_dir& dir)
{
    dbactor::options o;
    o.path = dir.db();
    o.vfs = rel::fault_vfs::name;
    o.synchronous = dbactor::synchronous_mode::full;
    o.migrations = rel::schema();
    o.on_log = [](dbactor::log_level, std::string_view) {};
    return o;
}

void sweep_point(rel::fault_vfs::kind k, scenario s, long n, sweep_totals& t)
{
    test::temp_dir dir;
    auto db = dbactor::database::open(fault_options(dir));
    // Some committed state first, so that a broken transaction has something to damage.
    db.write([](dbactor::connection& c) { insert_request(c, 1, 3, 100); });

    // The disk stays full until space is freed; an I/O error is transient.
    rel::fault_vfs::arm(k, n, k == rel::fault_vfs::kind::full);
    auto outcomes = run_scenario(db, s, 1000);
    t.injected += rel::fault_vfs::injected() > 0;
    rel::fault_vfs::disarm();
    ++t.points;
    auto problem = [&](std::string what) {
        if (t.first_problem.empty())
            t.first_problem = fmt::format("{} {} at point {}: {}", kind_name(k), scenario_name(s), n, what);
    };
    for (const auto& o : outcomes) {
        if (!o.error) {
            ++t.ok_requests;
            continue;
        }
        ++t.failed_requests;
        bool typed;
        auto text = typed_error(o.error, typed);
        if (!typed) {
            ++t.untyped;
            problem(text);
        }
    }

    // The same actor serves a read and a write once the fault is gone.
    try {
        auto rows = db.read(
            [](dbactor::connection& c) { return c.query_one<std::int64_t>("SELECT count(*) FROM acks"); });
        REQUIRE(rows);
        db.write([](dbactor::connection& c) { insert_request(c, 2, 3, 100); });
    }
    catch (const std::exception& e) {
        ++t.not_serving;
        problem(std::string("actor not serving after the fault: ") + e.what());
    }
    try {
        db.close();
    }
    catch (const std::exception& e) {
        ++t.close_errors;
        problem(std::string("close failed: ") + e.what());
    }

    // The file reopens (default VFS) healthy; no request is partly there; every acknowledged one is.
    try {
        const auto ok = rel::integrity(dir.db());
        if (ok != "ok") {
            ++t.reopen_failed;
            problem("integrity_check: " + ok);
        }
        rel::raw_db raw(dir.db());
        std::map<std::int64_t, std::int64_t> counts;
        for (auto& row : raw.column("SELECT req || ' ' || count(*) FROM acks GROUP BY req")) {
            auto sp = row.find(' ');
            counts[std::stoll(row.substr(0, sp))] = std::stoll(row.substr(sp + 1));
        }
        if (counts[2] != 3) {
            ++t.not_serving;
            problem("the write after the fault is missing");
        }
        for (const auto& o : outcomes) {
            const auto got = counts.contains(o.req) ? counts[o.req] : 0;
            if (got != 0 && got != o.rows) {
                ++t.partial;
                problem(fmt::format("request {} partly applied: {} of {} rows", o.req, got, o.rows));
            }
            if (!o.error && got != o.rows) {
                ++t.lost_acked;
                problem(fmt::format("acknowledged request {} lost", o.req));
            }
            if (o.error && got == o.rows)
                ++t.ambiguous; // failed fsync after the frames were written: the caller was told it failed
        }
    }
    catch (const std::exception& e) {
        ++t.reopen_failed;
        problem(std::string("reopen failed: ") + e.what());
    }
}

/// How many operations of `k` the scenario performs when nothing fails.
long calibrate(rel::fault_vfs::kind k, scenario s)
{
    test::temp_dir dir;
    auto db = dbactor::database::open(fault_options(dir));
    db.write([](dbactor::connection& c) { insert_request(c, 1, 3, 100); });
    rel::fault_vfs::count_from_now();
    run_scenario(db, s, 1000);
    const long n = rel::fault_vfs::seen(k);
    db.close();
    return n;
}

void sweep(rel::fault_vfs::kind k)
{
    rel::fault_vfs::install();
    for (scenario s : {scenario::single, scenario::multi, scenario::batch}) {
        const auto t0 = std::chrono::steady_clock::now();
        const long ops = calibrate(k, s);
        REQUIRE(ops > 0);
        sweep_totals t;
        // Every point of the scenario, plus one past the end (nothing fails: the control).
        const long stride = std::max(1L, static_cast<long>(1.0 / std::min(1.0, rel::scale())));
        for (long n = 1; n <= ops + 1; n += (n < 8 ? 1 : stride))
            sweep_point(k, s, n, t);
        rel::report(fmt::format("io_error_sweep_{}_{}", kind_name(k), scenario_name(s)),
                    {rel::num("operations", std::int64_t(ops)),
                     rel::num("points", std::int64_t(t.points)),
                     rel::num("points_injected", std::int64_t(t.injected)),
                     rel::num("failed_requests", std::int64_t(t.failed_requests)),
                     rel::num("ok_requests", std::int64_t(t.ok_requests)),
                     rel::num("untyped_errors", std::int64_t(t.untyped)),
                     rel::num("failed_but_committed", std::int64_t(t.ambiguous)),
                     rel::num("partial_requests", std::int64_t(t.partial)),
                     rel::num("lost_acked", std::int64_t(t.lost_acked)),
                     rel::num("not_serving_after", std::int64_t(t.not_serving)),
                     rel::num("reopen_failures", std::int64_t(t.reopen_failed)),
                     rel::num("close_errors", std::int64_t(t.close_errors)),
                     rel::num("seconds", since(t0))});
        INFO(t.first_problem);
        CHECK(t.untyped == 0);
        CHECK(t.partial == 0);
        CHECK(t.lost_acked == 0);
        CHECK(t.not_serving == 0);
        CHECK(t.reopen_failed == 0);
        CHECK(t.failed_requests > 0);
    }
}

} // namespace

TEST_CASE("a write error at any point fails the caller with a typed error and leaves the actor serving",
          "[faults]")
{
    sweep(rel::fault_vfs::kind::write);
}

TEST_CASE("an fsync error at any point fails the caller with a typed error and leaves the actor serving",
          "[faults]")
{
    sweep(rel::fault_vfs::kind::sync);
}

TEST_CASE("a full disk at any point fails the caller with a typed error and leaves the actor serving",
          "[faults]")
{
    sweep(rel::fault_vfs::kind::full);
}

// ---- throwing requests ------------------------------------------------------------------------------------

namespace {

struct own_error
{
    std::int64_t id;
};

enum class throw_kind
{
    none,
    std_error,    ///< std::runtime_error naming the request
    int_42,       ///< throw 42 (and the id in a second request kind: throw id)
    sqlite_error, ///< a statement on a table that does not exist, named after the request
    after_begin,  ///< in a call: BEGIN, insert, then throw (a transaction left open)
    after_insert, ///< in a write: insert, then throw (rolled back)
};

} // namespace

TEST_CASE("10% of requests throw: exactly those callers get their exception and the actor stays alive",
          "[throws]")
{
    const auto t0 = std::chrono::steady_clock::now();
    test::temp_dir dir;
    auto o = test::options_for(dir);
    o.migrations = rel::schema();
    auto db = dbactor::database::open(std::move(o));

    const int n = rel::scaled(10000, 200);
    std::vector<throw_kind> kinds(static_cast<std::size_t>(n), throw_kind::none);
    std::uniform_int_distribution<int> pick(0, 9), which(1, 5);
    for (auto& k : kinds)
        if (pick(rel::rng()) == 0)
            k = static_cast<throw_kind>(which(rel::rng()));

    std::atomic<std::int64_t> right{0}, wrong{0}, throwers{0};
    std::mutex m;
    std::string first_wrong;
    countdown all(n);
    auto verdict = [&](std::int64_t id, throw_kind k, std::exception_ptr e, std::int64_t value) {
        bool ok = false;
        std::string got;
        if (!e) {
            ok = k == throw_kind::none && value == id;
            got = fmt::format("value {}", value);
        }
        else {
            try {
                std::rethrow_exception(e);
            }
            catch (const own_error& x) {
                ok = k == throw_kind::after_insert && x.id == id;
                got = fmt::format("own_error {}", x.id);
            }
            catch (const SQLite::Exception& x) {
                ok = k == throw_kind::sqlite_error &&
                     std::string(x.what()).find(fmt::format("t{}x", id)) != std::string::npos;
                got = x.what();
            }
            catch (const std::runtime_error& x) {
                ok = (k == throw_kind::std_error && x.what() == fmt::format("request {}", id)) ||
                     (k == throw_kind::after_begin && x.what() == fmt::format("after begin {}", id));
                got = x.what();
            }
            catch (int x) {
                ok = k == throw_kind::int_42 && x == 42;
                got = fmt::format("int {}", x);
            }
            catch (...) {
                got = "something else";
            }
        }
        (ok ? right : wrong).fetch_add(1);
        if (!ok) {
            std::lock_guard lock(m);
            if (first_wrong.empty())
                first_wrong = fmt::format("request {} (kind {}) got {}", id, static_cast<int>(k), got);
        }
        all.done();
    };

    for (int i = 0; i < n; ++i) {
        const std::int64_t id = i + 1;
        const throw_kind k = kinds[static_cast<std::size_t>(i)];
        throwers += k != throw_kind::none;
        auto handler = [&verdict, id, k](std::exception_ptr e, std::int64_t v) { verdict(id, k, e, v); };
        switch (i % 3) {
        case 0: { // a write
            auto fn = [id, k](dbactor::connection& c) -> std::int64_t {
                if (k == throw_kind::sqlite_error)
                    c.execute(fmt::format("INSERT INTO t{}x VALUES (1)", id));
                insert_request(c, id, rel::rows_per_request, 10);
                if (k == throw_kind::std_error)
                    throw std::runtime_error(fmt::format("request {}", id));
                if (k == throw_kind::int_42)
                    throw 42;
                if (k == throw_kind::after_insert || k == throw_kind::after_begin)
                    throw own_error{id};
                return id;
            };
            if (kinds[static_cast<std::size_t>(i)] == throw_kind::after_begin)
                kinds[static_cast<std::size_t>(i)] =
                    throw_kind::after_insert; // a write's BEGIN is the actor's
            db.async_write(fn,
                           [&verdict, id, k = kinds[static_cast<std::size_t>(i)]](
                               std::exception_ptr e, std::int64_t v) { verdict(id, k, e, v); });
            break;
        }
        case 1: { // a read
            const throw_kind rk =
                k == throw_kind::after_begin || k == throw_kind::after_insert ? throw_kind::std_error : k;
            kinds[static_cast<std::size_t>(i)] = rk;
            auto fn = [id, rk](dbactor::connection& c) -> std::int64_t {
                if (rk == throw_kind::sqlite_error)
                    c.query_one<std::int64_t>(fmt::format("SELECT * FROM t{}x", id));
                c.query_one<std::int64_t>("SELECT count(*) FROM acks");
                if (rk == throw_kind::std_error)
                    throw std::runtime_error(fmt::format("request {}", id));
                if (rk == throw_kind::int_42)
                    throw 42;
                return id;
            };
            db.async_read(
                fn, [&verdict, id, rk](std::exception_ptr e, std::int64_t v) { verdict(id, rk, e, v); });
            break;
        }
        default: { // a call, with its own transaction
            const throw_kind ck = k == throw_kind::after_insert ? throw_kind::after_begin : k;
            kinds[static_cast<std::size_t>(i)] = ck;
            auto fn = [id, ck](dbactor::connection& c) -> std::int64_t {
                c.execute("BEGIN IMMEDIATE");
                if (ck == throw_kind::sqlite_error)
                    c.execute(fmt::format("DELETE FROM t{}x", id));
                insert_request(c, id, rel::rows_per_request, 10);
                if (ck == throw_kind::std_error)
                    throw std::runtime_error(fmt::format("request {}", id));
                if (ck == throw_kind::int_42)
                    throw 42;
                if (ck == throw_kind::after_begin)
                    throw std::runtime_error(fmt::format("after begin {}", id));
                c.execute("COMMIT");
                return id;
            };
            db.async_call(
                fn, [&verdict, id, ck](std::exception_ptr e, std::int64_t v) { verdict(id, ck, e, v); });
            break;
        }
        }
        (void)handler;
    }
    INFO("replies still missing after 20 s");
    REQUIRE(all.wait(20s));

    // No transaction left open, the actor alive, and only the requests that succeeded left rows.
    const bool autocommit =
        db.call([](dbactor::connection& c) { return sqlite3_get_autocommit(c.sqlite().getHandle()) != 0; });
    std::int64_t expected_rows = 0;
    for (int i = 0; i < n; ++i)
        if (i % 3 != 1 && kinds[static_cast<std::size_t>(i)] == throw_kind::none)
            expected_rows += rel::rows_per_request;
    const auto rows = db.read(
        [](dbactor::connection& c) { return *c.query_one<std::int64_t>("SELECT count(*) FROM acks"); });
    db.write([](dbactor::connection& c) { insert_request(c, -1, 1, 1); });
    const auto st = db.stats();
    rel::report("throwing_requests",
                {rel::num("requests", std::int64_t(n)),
                 rel::num("throwing", throwers.load()),
                 rel::num("right_reply", right.load()),
                 rel::num("wrong_reply", wrong.load()),
                 rel::num("rows", rows),
                 rel::num("expected_rows", expected_rows),
                 rel::flag("transaction_open_after", !autocommit),
                 rel::num("write_batch_mean", st.write_batch_mean),
                 rel::num("seconds", since(t0))});
    INFO(first_wrong);
    CHECK(wrong == 0);
    CHECK(right == n);
    CHECK(autocommit);
    CHECK(rows == expected_rows);
}

// ---- overload ---------------------------------------------------------------------------------------------

TEST_CASE("overload: fail-fast callers get queue_full, waiting callers wait, all complete after release",
          "[overload]")
{
    const auto t0 = std::chrono::steady_clock::now();
    test::temp_dir dir;
    auto o = test::options_for(dir);
    o.migrations = rel::schema();
    o.queue_capacity = 1024;
    auto db = dbactor::database::open(std::move(o));

    const int n = rel::scaled(100000, 4000) / 2 * 2;
    std::atomic<std::int64_t> full{0}, fast_ok{0}, wait_ok{0}, other{0};
    countdown fail_fast_done(n / 2), all(n);
    // Peak memory: reset VmHWM to the current RSS (Linux: "5" to clear_refs), then read the peak at the end.
    {
        std::ofstream("/proc/self/clear_refs") << "5";
    }
    const auto rss_before = rel::memory_kib().second;
    std::chrono::duration<double> submit_time{};
    {
        actor_pause p(db);
        const auto s0 = std::chrono::steady_clock::now();
        for (int i = 0; i < n; ++i) {
            const bool wait = i % 2 == 0;
            const std::int64_t req = i + 1;
            auto fn = [req](dbactor::connection& c) {
                c.execute("INSERT INTO acks VALUES (?, 0, 'o')", req);
            };
            db.async_write(
                fn, dbactor::request_options{.wait_if_full = wait}, [&, wait](std::exception_ptr e) {
                    if (!e)
                        (wait ? wait_ok : fast_ok).fetch_add(1);
                    else if (test::errc_of([&] { std::rethrow_exception(e); }) == dbactor::errc::queue_full)
                        full.fetch_add(1);
                    else
                        other.fetch_add(1);
                    if (!wait)
                        fail_fast_done.done();
                    all.done();
                });
        }
        submit_time = std::chrono::steady_clock::now() - s0;
        // The first 1024 sent were admitted (512 of them fail-fast); every later fail-fast one is refused.
        INFO("fail-fast requests not answered while the actor is paused");
        const std::int64_t admitted_fast = 512;
        const auto until = std::chrono::steady_clock::now() + 5s; // with the 15 s below: under ctest's 30 s
        while (full.load() < n / 2 - admitted_fast && std::chrono::steady_clock::now() < until)
            std::this_thread::yield();
        CHECK(full.load() == n / 2 - admitted_fast);
        CHECK(wait_ok.load() == 0); // the waiting ones wait
        const auto st = db.stats();
        CHECK(st.queue_depth == 1024); // admitted: the queue is full
        CHECK(st.queue_waiting ==
              static_cast<std::uint64_t>(n / 2 - admitted_fast)); // the rest wait behind it
        p.release();
    }
    INFO("not every request completed within 15 s of the release");
    REQUIRE(all.wait(15s));
    const auto rss_peak = rel::memory_kib().first; // VmHWM: the peak, reached while everything was queued
    const auto rows = db.read(
        [](dbactor::connection& c) { return *c.query_one<std::int64_t>("SELECT count(*) FROM acks"); });
    const auto growth_kib = std::max<std::int64_t>(0, rss_peak - rss_before);
    rel::report("overload",
                {rel::num("requests", std::int64_t(n)),
                 rel::num("queue_capacity", std::int64_t(1024)),
                 rel::num("queue_full", full.load()),
                 rel::num("fail_fast_ran", fast_ok.load()),
                 rel::num("waiting_ran", wait_ok.load()),
                 rel::num("other_errors", other.load()),
                 rel::num("submit_seconds", submit_time.count()),
                 rel::num("peak_rss_growth_kib", growth_kib),
                 rel::num("bytes_per_queued_request", double(growth_kib) * 1024.0 / double(n / 2 + 512)),
                 rel::num("seconds", since(t0))});
    CHECK(wait_ok == n / 2);
    CHECK(fast_ok == 512);
    CHECK(other == 0);
    CHECK(rows == n / 2 + 512);
    // Bounded: the queued requests themselves, well under 2 KiB each (no copy per waiter, no leak). Sanitizer
    // builds add redzones and quarantine to every allocation: reported, not checked.
#ifndef DBACTOR_RELIABILITY_SANITIZED
    CHECK(growth_kib * 1024 < std::int64_t(n / 2 + 512) * 2048);
#endif
}

// ---- shutdown with requests in flight ---------------------------------------------------------------------

namespace {

enum class close_from
{
    caller,          ///< close() on the test thread at a random point
    completion,      ///< close() inside a completion handler (on the actor thread)
    long_request,    ///< close() while a request runs past shutdown_grace
    last_handle_drop ///< the last handle dropped inside a completion
};

struct shutdown_totals
{
    int runs = 0, replies_missing = 0, wrong_replies = 0, lock_not_free = 0, wal_left = 0;
    std::int64_t values = 0, closed = 0;
    double max_close_ms = 0, max_detached_release_ms = 0;
    // The long request: runs, runs in which it outlived shutdown_grace after close() began, runs in which the
    // requests queued behind it got errc::closed, runs in which it was interrupted (errc::closed) rather
    // than finished, and how long after close() began its reply came.
    int long_runs = 0, long_outlived_grace = 0, long_runs_with_closed = 0, long_interrupted = 0,
        long_wrong = 0;
    double min_long_past_close_ms = 1e9, max_long_past_close_ms = 0;
};

void shutdown_run(close_from how, shutdown_totals& t)
{
    test::temp_dir dir;
    auto o = test::options_for(dir);
    o.migrations = rel::schema();
    o.shutdown_grace = 20ms;
    auto db = std::make_optional(dbactor::database::open(std::move(o)));

    std::uniform_int_distribution<int> count(how == close_from::long_request ? 10 : 0, 300),
        delay_us(0, 3000);
    const int n = count(rel::rng());
    std::atomic<std::int64_t> values{0}, closed{0}, wrong{0};
    countdown replies(n + (how == close_from::long_request ? 1 : 0));
    auto reply = [&](std::exception_ptr e) {
        if (!e)
            values.fetch_add(1);
        else {
            try {
                std::rethrow_exception(e);
            }
            catch (const dbactor::error& x) {
                (x.value() == dbactor::errc::closed ? closed : wrong).fetch_add(1);
            }
            catch (...) {
                wrong.fetch_add(1);
            }
        }
        replies.done();
    };
    // The long request would run 3 x shutdown_grace (60 ms) by its own clock, so it is still running when the
    // grace that close() starts (0-3 ms after sending) runs out: it is interrupted (errc::closed) or, should
    // the library let it finish, replies with its value; what is queued behind it is answered errc::closed.
    std::atomic<std::int64_t> long_start_ns{0}, long_reply_ns{0};
    std::atomic<int> long_outcome{0}; // 1 value, 2 closed, 3 something else
    if (how == close_from::long_request) {
        db->async_call(
            [&long_start_ns](dbactor::connection& c) {
                long_start_ns = std::chrono::steady_clock::now().time_since_epoch().count();
                const auto until = std::chrono::steady_clock::now() + 60ms;
                while (std::chrono::steady_clock::now() < until)
                    c.query_one<std::int64_t>(
                        "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < 2000) "
                        "SELECT count(*) FROM r");
            },
            [&reply, &long_reply_ns, &long_outcome](std::exception_ptr e) {
                long_reply_ns = std::chrono::steady_clock::now().time_since_epoch().count();
                int outcome = 1;
                if (e) {
                    try {
                        std::rethrow_exception(e);
                    }
                    catch (const dbactor::error& x) {
                        outcome = x.value() == dbactor::errc::closed ? 2 : 3;
                    }
                    catch (...) {
                        outcome = 3;
                    }
                }
                long_outcome = outcome;
                reply(e);
            });
    }
    const int closer = n / 2;
    for (int i = 0; i < n; ++i) {
        const std::int64_t req = i + 1;
        if ((how == close_from::completion || how == close_from::last_handle_drop) && i == closer) {
            auto fn = [req](dbactor::connection& c) { insert_request(c, req, 2, 10); };
            if (how == close_from::completion)
                db->async_write(fn, [&reply, copy = *db](std::exception_ptr e) mutable {
                    copy.close(); // on the actor thread: starts closing, never blocks
                    reply(e);
                });
            else
                db->async_write(
                    fn,
                    [&reply, copy = std::make_shared<dbactor::database>(*db)](std::exception_ptr e) mutable {
                        reply(e);
                        copy.reset(); // may be the last handle: the actor thread finishes on its own
                    });
            continue;
        }
        auto fn = [req](dbactor::connection& c) { insert_request(c, req, 2, 10); };
        if (i % 4 == 3)
            db->async_read(
                [](dbactor::connection& c) { c.query_one<std::int64_t>("SELECT count(*) FROM acks"); },
                reply);
        else
            db->async_write(fn, reply);
    }
    if (how == close_from::long_request) {
        // close() must begin while the long request runs: wait (bounded) until the actor started it, which a
        // loaded machine may take longer than the random delay below to do.
        const auto started_by = std::chrono::steady_clock::now() + 5s;
        while (long_start_ns.load() == 0 && std::chrono::steady_clock::now() < started_by)
            std::this_thread::yield();
    }
    const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(delay_us(rel::rng()));
    while (std::chrono::steady_clock::now() < until)
        std::this_thread::yield();
    const auto c0 = std::chrono::steady_clock::now();
    if (how == close_from::last_handle_drop)
        db.reset(); // not necessarily the last: the completion may still hold a copy
    else
        db->close();
    t.max_close_ms = std::max(t.max_close_ms, since(c0) * 1000);
    ++t.runs;
    if (!replies.wait(5s)) {
        ++t.replies_missing;
        return;
    }
    t.values += values;
    t.closed += closed;
    t.wrong_replies += static_cast<int>(wrong.load());
    if (how == close_from::long_request) {
        ++t.long_runs;
        // It was running when close() began, and still when its grace ran out: its reply came after that.
        const double reply_past_close_ms = (long_reply_ns.load() - c0.time_since_epoch().count()) / 1e6;
        t.min_long_past_close_ms = std::min(t.min_long_past_close_ms, reply_past_close_ms);
        t.max_long_past_close_ms = std::max(t.max_long_past_close_ms, reply_past_close_ms);
        t.long_outlived_grace += long_start_ns.load() != 0 &&
                                 long_start_ns.load() < c0.time_since_epoch().count() &&
                                 reply_past_close_ms >= 20;
        t.long_runs_with_closed += closed.load() - (long_outcome.load() == 2) > 0;
        t.long_interrupted += long_outcome.load() == 2;
        t.long_wrong += long_outcome.load() == 3;
    }
    db.reset();

    // The file is closed: after a joined close() the WAL is gone at once. When the last handle went away on
    // the actor thread, that thread finishes on its own a moment later: a bounded wait.
    if (how == close_from::last_handle_drop) {
        const auto limit = std::chrono::steady_clock::now() + 5s;
        while (rel::exists(dir.db() + "-wal") && std::chrono::steady_clock::now() < limit)
            std::this_thread::yield();
    }
    t.wal_left += rel::exists(dir.db() + "-wal");
    rel::raw_db raw(dir.db());
    sqlite3_busy_timeout(raw.get(), 0);
    // After a close() (joined) the lock is free at once. When the last handle went away on the actor thread,
    // that thread finishes on its own a moment later: a bounded wait.
    const auto lock_limit =
        std::chrono::steady_clock::now() + (how == close_from::last_handle_drop ? 5s : 0s);
    const auto l0 = std::chrono::steady_clock::now();
    bool locked = false;
    do {
        locked = raw.exec("BEGIN IMMEDIATE") == SQLITE_OK;
    } while (!locked && std::chrono::steady_clock::now() < lock_limit);
    if (how == close_from::last_handle_drop)
        t.max_detached_release_ms = std::max(t.max_detached_release_ms, since(l0) * 1000);
    if (!locked)
        ++t.lock_not_free;
    raw.exec("ROLLBACK");
}

void shutdown_suite(const std::string& name, std::initializer_list<close_from> hows, int runs)
{
    const auto t0 = std::chrono::steady_clock::now();
    shutdown_totals t;
    for (int i = 0; i < runs; ++i)
        for (auto how : hows)
            shutdown_run(how, t);

    // And once with another process taking the write lock right after close().
    {
        test::temp_dir dir;
        auto o = test::options_for(dir);
        o.migrations = rel::schema();
        auto db = dbactor::database::open(std::move(o));
        for (int i = 0; i < 50; ++i)
            db.async_write([i](dbactor::connection& c) { insert_request(c, i, 2, 10); },
                           [](std::exception_ptr) {});
        db.close();
        rel::child holder(DBACTOR_RELIABILITY_LOCK_HOLDER, {dir.db(), "write", "0"}, true);
        auto l = holder.read_line(5s);
        t.lock_not_free += !(l && *l == "L");
        holder.close_stdin();
        holder.wait(5s);
    }
    rel::report(
        name,
        {rel::num("shutdowns", std::int64_t(t.runs)),
         rel::num("replies_missing", std::int64_t(t.replies_missing)),
         rel::num("wrong_replies", std::int64_t(t.wrong_replies)),
         rel::num("replied_value", t.values),
         rel::num("replied_closed", t.closed),
         rel::num("max_close_ms", t.max_close_ms),
         rel::num("max_detached_release_ms", t.max_detached_release_ms),
         rel::num("wal_left", std::int64_t(t.wal_left)),
         rel::num("lock_not_free", std::int64_t(t.lock_not_free)),
         rel::num("long_request_runs", std::int64_t(t.long_runs)),
         rel::num("long_request_outlived_grace", std::int64_t(t.long_outlived_grace)),
         rel::num("long_request_interrupted", std::int64_t(t.long_interrupted)),
         rel::num("long_request_reply_min_ms_after_close", t.long_runs ? t.min_long_past_close_ms : 0.0),
         rel::num("long_request_reply_max_ms_after_close", t.max_long_past_close_ms),
         rel::num("long_request_runs_with_closed_replies", std::int64_t(t.long_runs_with_closed)),
         rel::num("seconds", since(t0))});
    CHECK(t.replies_missing == 0);
    CHECK(t.wrong_replies == 0);
    CHECK(t.wal_left == 0);
    CHECK(t.lock_not_free == 0);
    CHECK(t.values > 0);
    if (t.long_runs > 0) {
        // Every long request was running when close() began and outlived the grace; it was answered (a
        // value, or closed when interrupted) and each time the requests queued behind it were answered
        // closed.
        CHECK(t.long_outlived_grace == t.long_runs);
        CHECK(t.long_wrong == 0);
        CHECK(t.long_runs_with_closed == t.long_runs);
    }
    if (std::find(hows.begin(), hows.end(), close_from::caller) != hows.end())
        CHECK(t.closed > 0);
}

} // namespace

TEST_CASE("close with requests in flight answers every request and frees the file", "[shutdown]")
{
    shutdown_suite(
        "shutdown_in_flight_caller", {close_from::caller, close_from::long_request}, rel::scaled(50, 5));
}

TEST_CASE("close from a completion or by dropping the last handle there answers every request", "[shutdown]")
{
    shutdown_suite("shutdown_in_flight_completion",
                   {close_from::completion, close_from::last_handle_drop},
                   rel::scaled(50, 5));
}
