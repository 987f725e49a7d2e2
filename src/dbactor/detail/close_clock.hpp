// detail::close_clock and expiry_reason: when close() started, and the one rule for a request that has run
// out of time (its deadline, the shutdown grace, or both).
#pragma once

#include <dbactor/detail/request_base.hpp>
#include <dbactor/error.hpp>

#include <atomic>
#include <chrono>

namespace dbactor::detail {

/// When close() started and how long queued and running requests may still take (shared by the sessions).
struct close_clock
{
    std::atomic<bool> requested{false};
    std::chrono::steady_clock::time_point deadline{}; // written before `requested` is set, read after

    bool past_grace(std::chrono::steady_clock::time_point now) const noexcept
    {
        return requested.load(std::memory_order_acquire) && now >= deadline;
    }
};

/// Why `r` must not start, or must stop, at `now`: errc::timed_out when its deadline passed, errc::closed
/// when close()'s shutdown_grace is over, errc{} (0) when it may run. When both have passed, the one that
/// passed first decides (a deadline at or before the end of the grace: timed_out), wherever the actor
/// looks: when it claims a request, before it runs it, and while it runs (the progress handler).
inline errc
expiry_reason(const request_base& r, const close_clock& c, std::chrono::steady_clock::time_point now) noexcept
{
    const bool deadline_passed = r.has_deadline() && now >= r.deadline_;
    if (c.past_grace(now)) // `c.deadline` is readable once `requested` was seen set
        return deadline_passed && r.deadline_ <= c.deadline ? errc::timed_out : errc::closed;
    return deadline_passed ? errc::timed_out : errc{};
}

} // namespace dbactor::detail
