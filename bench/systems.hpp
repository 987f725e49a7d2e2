// The systems under test, one run of a workload through each: a new baseline gets its case in execute().
#pragma once

#include "bot_requests.hpp"
#include "mutex.hpp"
#include "raw.hpp"
#include "runners.hpp"
#include "workloads.hpp"

#include <dbactor/dbactor.hpp>

#include <bot_migrations.hpp> // generated: migrations/bot, embedded (bench/CMakeLists.txt)

#include <boost/asio/use_awaitable.hpp>

#include <cstddef>
#include <string>
#include <type_traits>

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
        d.close();
        return secs;
    }
    }
    return 0;
}

} // namespace dbactor_bench
