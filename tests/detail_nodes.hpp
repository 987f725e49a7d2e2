// Test helpers for the actor's units without threads: request nodes answered through a sync_waiter.
#pragma once

#include <dbactor/detail/request.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <functional>
#include <string>

namespace test {

/// One request node of lane `l` running `fn`, with our own reference: a test queues it, pops it, runs or
/// answers it, and reads the reply from `w`. One still pending at the end is answered errc::closed.
struct node
{
    using clock = std::chrono::steady_clock;
    using fn_type = std::function<int(dbactor::connection&)>;
    using op_type = dbactor::detail::request_op<fn_type, dbactor::detail::sync_handler<int>, int>;

    dbactor::detail::sync_waiter<int> w;
    dbactor::detail::request_base* r;

    explicit node(
        dbactor::detail::lane l,
        fn_type fn = [](dbactor::connection&) { return 7; },
        clock::time_point deadline = clock::time_point::max())
        : r(new op_type(l, std::move(fn), dbactor::detail::sync_handler<int>{&w}))
    {
        r->add_ref();
        r->deadline_ = deadline;
    }
    node(const node&) = delete;
    node& operator=(const node&) = delete;
    ~node()
    {
        if (r->pending()) {
            r->abandon(dbactor::errc::closed, true);
            r->release(); // the queue's (or its popper's) reference
        }
        r->release();
    }

    /// What the actor does after running it: delivers the reply and drops the queue's reference.
    void finish()
    {
        r->complete(true);
        r->release();
    }

    /// The reply: its value, or the errc / message of its exception.
    std::string reply()
    {
        try {
            return std::to_string(w.get());
        }
        catch (const dbactor::error& e) {
            return std::string("errc:") + dbactor::errc_name(e.value());
        }
        catch (const std::exception& e) {
            return std::string("exception:") + e.what();
        }
    }
};

} // namespace test
