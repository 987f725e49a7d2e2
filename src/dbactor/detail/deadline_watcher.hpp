// detail::deadline_watcher: answers queued requests at their deadline, even while the actor is busy.
#pragma once

#include <dbactor/options.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace dbactor::detail {

class request_queue;
struct actor_stats;

/// A thread started with the first request that has a timeout. It sleeps until the earliest deadline of a
/// queued request, answers the requests past it (errc::timed_out) and takes them out of the line, so that
/// an async caller hears of its timeout at the deadline even while the actor runs something else.
/// Thread safety: arm() from any thread; scan() is what the thread runs, callable directly by tests (then
/// no thread is started); stop() once, from the actor's thread at close.
class deadline_watcher
{
public:
    using clock = std::chrono::steady_clock;

    deadline_watcher(const options& o,
                     request_queue& writer,
                     request_queue& readers,
                     actor_stats& stats) noexcept
        : opts_(o), writer_(writer), readers_(readers), stats_(stats)
    {}
    deadline_watcher(const deadline_watcher&) = delete;
    deadline_watcher& operator=(const deadline_watcher&) = delete;
    ~deadline_watcher() { stop(); }

    /// A request with this deadline was queued: wakes the watcher earlier if needed (starting it the first
    /// time; when the thread cannot start, the failure is logged and deadlines are met by the actor alone).
    void arm(clock::time_point deadline) noexcept;

    /// Answers every queued request past its deadline at `now` (and releases those answered while queued),
    /// counting them; returns the earliest deadline still queued.
    clock::time_point scan(clock::time_point now) noexcept;

    /// Stops and joins the thread. Idempotent.
    void stop() noexcept;

private:
    void main() noexcept;

    const options& opts_;
    request_queue& writer_;
    request_queue& readers_;
    actor_stats& stats_;
    std::mutex m_;
    std::condition_variable cv_;
    std::thread thread_;
    bool stop_ = false;
    std::atomic<clock::rep> next_{clock::time_point::max().time_since_epoch().count()};
};

} // namespace dbactor::detail
