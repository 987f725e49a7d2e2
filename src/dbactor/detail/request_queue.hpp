// detail::request_queue: the bounded FIFO between submitters and the threads serving them.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

namespace dbactor::detail {

class request_base;
enum class lane : std::uint8_t;

/// A bounded queue between submitters and the threads serving it: an intrusive FIFO under one mutex.
/// The first `capacity` requests that have not started are admitted; requests sent with wait_if_full stand
/// in the same line behind them, waiting for space, so order is kept and no sender blocks. Consumers take
/// one group at a time (a run of requests of one lane), so everything not being run stays here, where a
/// deadline can still answer it. A consumer that finds the queue empty spins briefly before parking (a
/// wake-up costs 10-20 µs).
/// Thread safety: every member may be called from any thread. It starts no thread: tests drive it directly.
class request_queue
{
public:
    using clock = std::chrono::steady_clock;

    enum class push_result
    {
        ok,
        full,
        closed,
    };

    explicit request_queue(std::size_t capacity) : capacity_(capacity == 0 ? 1 : capacity) {}

    /// Appends `r` (taking the queue's reference); `wait_if_full = false` refuses it when `capacity` are
    /// admitted already.
    push_result push(request_base* r, bool wait_if_full) noexcept;

    enum class pop_result
    {
        group,  ///< `out` holds the next group
        idle,   ///< nothing arrived before `idle_until`
        closed, ///< closed and empty
    };

    /// Takes the next group into `out`, waiting while the queue is empty (until `idle_until` at most): the
    /// run of requests of one lane at the head, up to `max_batch` (a call, or a request with a deadline or a
    /// cancellation slot, is a group of its own).
    pop_result pop_group(std::vector<request_base*>& out,
                         std::size_t max_batch,
                         clock::time_point idle_until = clock::time_point::max()) noexcept;

    /// Appends to `out` the requests of lane `l` at the head of the queue that can join a running batch (none
    /// with a deadline or a cancellation slot), up to `max_batch` in `out` in all; never waits.
    void pop_more(std::vector<request_base*>& out, lane l, std::size_t max_batch) noexcept;

    /// What expire() took out of the line.
    struct expired
    {
        request_base* to_answer = nullptr; ///< past their deadline, finished as timed_out, not delivered yet
        request_base* answered = nullptr;  ///< answered already while queued (cancelled)
        request_base* to_answer_tail = nullptr; // both lists keep queue order: replies go out in that order
        request_base* answered_tail = nullptr;
        std::uint64_t timed_out = 0, cancelled = 0;
        clock::time_point next = clock::time_point::max(); ///< the earliest deadline still queued
    };

    /// Takes out of the line every queued request whose deadline is at or before `now` (finishing it as
    /// errc::timed_out) and every one answered already. The caller counts them, then delivers and releases
    /// them (deliver_expired), outside the lock: a reply then comes after the statistics that include it.
    void expire(clock::time_point now, expired& out) noexcept;
    static void deliver_expired(expired& e) noexcept;

    /// A popped request has started (or was answered): it no longer counts against the capacity.
    void done_one() noexcept { depth_.fetch_sub(1, std::memory_order_relaxed); }

    void close() noexcept;
    bool closed() const noexcept;
    /// A consumer waiting in pop_group (or the next one to wait) returns `idle` once, as if its time passed.
    void wake() noexcept;

    /// Requests not started yet, split into the admitted ones (at most the capacity) and those waiting for
    /// space behind them; now, and the most seen.
    std::uint64_t depth() const noexcept { return admitted(depth_); }
    std::uint64_t waiting() const noexcept { return beyond_capacity(depth_); }
    std::uint64_t depth_max() const noexcept { return admitted(depth_max_); }
    std::uint64_t waiting_max() const noexcept { return beyond_capacity(depth_max_); }

private:
    std::uint64_t admitted(const std::atomic<std::uint64_t>& d) const noexcept
    {
        return std::min<std::uint64_t>(d.load(std::memory_order_relaxed), capacity_);
    }
    std::uint64_t beyond_capacity(const std::atomic<std::uint64_t>& d) const noexcept
    {
        const auto n = d.load(std::memory_order_relaxed);
        return n > capacity_ ? n - capacity_ : 0;
    }

    /// A batch never takes more than max_batch, nor more than are admitted.
    std::size_t batch_limit(std::size_t max_batch) const noexcept
    {
        return std::min(std::max<std::size_t>(max_batch, 1), capacity_);
    }

    void take_run(std::vector<request_base*>& out, std::size_t limit, lane l, bool alone_first) noexcept;
    void unlink(request_base* prev, request_base* r) noexcept;
    void spin() const noexcept;

    mutable std::mutex m_;
    std::condition_variable cv_;
    request_base* head_ = nullptr;
    request_base* tail_ = nullptr;
    bool closed_ = false;
    bool woken_ = false;
    int sleeping_ = 0;
    const std::size_t capacity_;
    std::atomic<bool> nonempty_{false};
    std::atomic<std::uint64_t> depth_{0}, depth_max_{0};
};

} // namespace dbactor::detail
