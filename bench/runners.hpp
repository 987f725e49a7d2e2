// The runners: RAW runs the requests one after another; MUTEX and DBACTOR from `tasks` coroutines.
#pragma once

#include "raw.hpp"
#include "requests.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <chrono>
#include <cstdint>
#include <exception>
#include <vector>

namespace dbactor_bench {

// Drivers: RAW runs the requests one after another on this thread; MUTEX and DBACTOR run `tasks`
// coroutines on one io_context (this thread), each taking the next request and awaiting it.

template <class Op>
struct run_state
{
    const std::vector<Op>* ops;
    bool tx = false;     ///< RAW/MUTEX: a write request runs inside BEGIN IMMEDIATE … COMMIT (W4, W5)
    bool record = false; ///< record each request's latency
    std::size_t next = 0;
    std::size_t done = 0;     ///< ops (events) completed
    std::size_t requests = 0; ///< requests completed
    std::int64_t acc = 0;
    std::vector<std::int64_t> lat_ns;
};

template <class Op>
double run_raw(raw_conn& c, run_state<Op>& st)
{
    if (st.record)
        st.lat_ns.assign(st.ops->size(), 0);
    const auto start = clock_type::now();
    for (std::size_t i = 0; i < st.ops->size(); ++i) {
        const Op& op = (*st.ops)[i];
        const auto t0 = st.record ? clock_type::now() : start;
        for (std::size_t k = 0; k < op.count(); ++k) {
            const auto& rq = op.step(k);
            const bool tx = st.tx && rq.writes();
            if (tx)
                c.exec("BEGIN IMMEDIATE");
            st.acc += tally(rq(c));
            if (tx)
                c.exec("COMMIT");
            ++st.requests;
        }
        if (st.record)
            st.lat_ns[i] =
                std::chrono::duration_cast<std::chrono::nanoseconds>(clock_type::now() - t0).count();
        ++st.done;
    }
    return std::chrono::duration<double>(clock_type::now() - start).count();
}

template <class System, class Op>
asio::awaitable<void> task_loop(System* sys, run_state<Op>* st)
{
    while (st->next < st->ops->size()) {
        const std::size_t i = st->next++;
        const Op& op = (*st->ops)[i];
        const auto t0 = clock_type::now();
        for (std::size_t k = 0; k < op.count(); ++k) {
            const auto rq = op.step(k); // named before co_await (STYLE.md: GCC 12.2 and temporaries)
            if (!rq.writes())
                st->acc += tally(co_await sys->read(rq));
            else if (st->tx)
                st->acc += tally(co_await sys->write_tx(rq));
            else
                st->acc += tally(co_await sys->write(rq));
            ++st->requests;
        }
        if (st->record)
            st->lat_ns[i] =
                std::chrono::duration_cast<std::chrono::nanoseconds>(clock_type::now() - t0).count();
        ++st->done;
    }
}

template <class System, class Op>
double run_async(System& sys, run_state<Op>& st, std::size_t tasks)
{
    if (st.record)
        st.lat_ns.assign(st.ops->size(), 0);
    asio::io_context io(1);
    for (std::size_t t = 0; t < tasks; ++t)
        asio::co_spawn(io, task_loop(&sys, &st), [](std::exception_ptr e) {
            if (e)
                std::rethrow_exception(e);
        });
    const auto start = clock_type::now();
    io.run();
    return std::chrono::duration<double>(clock_type::now() - start).count();
}

} // namespace dbactor_bench
