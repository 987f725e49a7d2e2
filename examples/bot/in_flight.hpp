// bot::in_flight_tracker: counts what still runs (handlers, gateway, loops) so shutdown can wait for it.
#pragma once

#include "common.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <cstdint>

namespace bot {

/// Counts the handlers, the gateway and the loops still running; the shutdown waits until none is left
/// (a counter, no polling).
/// Thread safety: acquire(), release() and count() from any thread; wait_drained() on the control strand.
class in_flight_tracker
{
public:
    explicit in_flight_tracker(const io_strand& control) : control_(control), drained_timer_(control) {}

    void acquire() noexcept { count_.fetch_add(1); }
    /// Called from any thread when a handler, the gateway or a loop is done.
    void release()
    {
        if (count_.fetch_sub(1) == 1)
            asio::post(control_, [this] {
                drained_ = true;
                drained_timer_.cancel();
            });
    }
    std::int64_t count() const noexcept { return count_.load(); }

    /// Completes once the count has dropped to zero.
    asio::awaitable<void> wait_drained()
    {
        if (!drained_) {
            drained_timer_.expires_at(steady::time_point::max());
            co_await drained_timer_.async_wait(asio::as_tuple(asio::use_awaitable));
        }
    }

private:
    io_strand control_;
    asio::steady_timer drained_timer_;
    std::atomic<std::int64_t> count_{0};
    bool drained_ = false; // touched on control_ only
};

} // namespace bot
