// The systems under test, one run of a workload through each: a new baseline gets its case in execute().
#pragma once

#include "bot_requests.hpp"
#include "mutex.hpp"
#include "raw.hpp"
#include "runners.hpp"
#include "workloads.hpp"

#include <dbactor/dbactor.hpp>

#include <bot_migrations.hpp> // generated: migrations/bot, embedded (bench/CMakeLists.txt)

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

namespace dbactor_bench {

/// DBACTOR: requests sent with co_await db.async_read/async_write(request, asio::use_awaitable).
struct actor_system
{
    dbactor::database* db;
    template <class Fn>
    auto read(const Fn& fn)
    {
        return db->async_read(fn, asio::use_awaitable);
    }
    template <class Fn>
    auto write(const Fn& fn)
    {
        return db->async_write(fn, asio::use_awaitable);
    }
    template <class Fn>
    auto write_tx(const Fn& fn)
    {
        return db->async_write(fn, asio::use_awaitable);
    }
};

/// --subscribers N: N change feeds on DBACTOR's database (every table), each read by an async_next loop on
/// one io_context thread of their own, as a cache that follows the database would.
class feed_drain
{
public:
    feed_drain(dbactor::database& db, std::size_t n)
    {
        if (n == 0)
            return;
        for (std::size_t i = 0; i < n; ++i)
            feeds_.push_back(db.subscribe({.capacity = 1024}));
        for (std::size_t i = 0; i < n; ++i)
            arm(i);
        thread_ = std::thread([this] { io_.run(); });
    }
    feed_drain(const feed_drain&) = delete;
    feed_drain& operator=(const feed_drain&) = delete;
    /// After the database closed every loop has ended with errc::closed; before (an exception), the
    /// feeds are unsubscribed on their own thread. Either way io_.run() returns.
    ~feed_drain()
    {
        if (!thread_.joinable())
            return;
        asio::post(io_, [this] {
            for (auto& f : feeds_)
                f.unsubscribe();
        });
        thread_.join();
    }
    std::uint64_t events() const { return events_.load(); }

private:
    void arm(std::size_t i)
    {
        feeds_[i].async_next(asio::bind_executor(io_, [this, i](std::exception_ptr e, dbactor::commit_event) {
            if (e)
                return;
            ++events_;
            arm(i);
        }));
    }

    asio::io_context io_;
    std::vector<dbactor::change_feed> feeds_;
    std::atomic<std::uint64_t> events_{0};
    std::thread thread_;
};

/// Opens `db` through system `s`, runs the requests, closes it (open and close are not timed).
template <class Op>
double
execute(run_context& cx, system_id s, const fs::path& db, bool full, run_state<Op>& st, std::size_t tasks)
{
    constexpr bool bot = std::is_same_v<Op, w5_op>;
    switch (s) {
    case system_id::raw: {
        raw_conn c(db, full);
        return run_raw(c, st);
    }
    case system_id::mutex: {
        mutex_db m(db, full, cx.cfg.pool_threads);
        mutex_system sys{&m};
        return run_async(sys, st, tasks);
    }
    case system_id::actor: {
        dbactor::options o;
        o.path = db.string();
        o.synchronous = full ? dbactor::synchronous_mode::full : dbactor::synchronous_mode::normal;
        o.integrity_check = dbactor::check_level::none; // boot is not measured; the copy is known good
        if (bot)
            o.migrations = bot_migrations(); // as the bot opens it (all applied already)
        o.readers = cx.cfg.readers;
        if (!cache_pragma_value.empty())
            o.pragmas.emplace_back("cache_size", cache_pragma_value);
        if (cx.cfg.max_batch)
            o.max_batch = *cx.cfg.max_batch;
        auto d = dbactor::database::open(std::move(o));
        feed_drain feeds(d, cx.cfg.subscribers);
        actor_system sys{&d};
        const double secs = run_async(sys, st, tasks);
        const auto x = d.stats();
        cx.actor_note =
            fmt::format("DBACTOR stats: write_batches={} write_batch_mean={:.1f} write_batch_max={} "
                        "read_batches={} read_batch_mean={:.1f} queue_depth_max={}",
                        x.write_batches,
                        x.write_batch_mean,
                        x.write_batch_max,
                        x.read_batches,
                        x.read_batch_mean,
                        x.queue_depth_max);
        if (cx.cfg.subscribers > 0)
            cx.actor_note += fmt::format(" feed_events={}", feeds.events());
        d.close(); // the feeds end with errc::closed
        return secs;
    }
    }
    return 0;
}

} // namespace dbactor_bench
