// detail::actor: one database actor — its threads, queues and sessions, from boot to close.
#pragma once

#include <dbactor/detail/change_hub.hpp>
#include <dbactor/detail/close_clock.hpp>
#include <dbactor/detail/deadline_watcher.hpp>
#include <dbactor/detail/reader_lane.hpp>
#include <dbactor/detail/request_queue.hpp>
#include <dbactor/detail/serve.hpp>
#include <dbactor/detail/session.hpp>
#include <dbactor/detail/stats.hpp>
#include <dbactor/options.hpp>
#include <dbactor/report.hpp>

#include <chrono>
#include <future>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace dbactor {
struct request_options;
}

namespace dbactor::detail {

class request_base;

/// The writer thread owns the booted connection and serves the main queue (writes, calls, and reads when
/// there is no reader lane); the reader lane and the deadline watcher are its helpers. See
/// docs/ARCHITECTURE.md for the rooms and the path of one request.
/// Thread safety: submit, submit_close, begin_close, stats and reply_spin from any thread.
/// Lifetime: shared by every database handle (through detail::handle); the last handle closes it.
class actor
{
public:
    explicit actor(options o);
    ~actor();
    actor(const actor&) = delete;
    actor& operator=(const actor&) = delete;

    /// Starts the writer thread and waits until boot succeeded. Errors: boot's; no thread is left running.
    static std::shared_ptr<actor> start(options o);

    /// Sets the request's times and name, then queues it or answers it at once (closed, queue full).
    void submit(request_base* r, const request_options& ro) noexcept;
    /// Answers a request that never entered a queue with `code`.
    static void reject(request_base* r, errc code) noexcept;
    /// Registers a close waiter (completed when shutdown is done) and starts closing.
    void submit_close(request_base* waiter) noexcept;
    /// New requests fail with errc::closed from now on; the grace starts.
    void begin_close() noexcept;
    /// Joins the writer thread (not from the writer thread itself).
    void join() noexcept;

    bool is_open() const noexcept { return !queue_.closed(); }
    bool on_own_thread() const noexcept;
    std::chrono::nanoseconds reply_spin(lane l) const noexcept;
    const boot_summary& boot() const noexcept { return boot_; }
    stats_snapshot stats() const noexcept;
    /// A change feed (database::subscribe); wakes an idle writer so that it starts polling data_version.
    /// Errors: dbactor::error(errc::closed).
    change_feed subscribe(change_filter f);

private:
    void writer_main(std::promise<void>& booted);
    void serve() noexcept;
    void shutdown() noexcept;
    request_queue& queue_of(lane l) noexcept;
    /// Before a group and when idle, while someone subscribed: another connection's commit (PRAGMA
    /// data_version moved) is published as an external event.
    void check_external() noexcept;

    options opts_;
    boot_summary boot_;
    request_queue queue_;        // writes, calls, and reads when there is no reader lane
    request_queue reader_queue_; // reads, when options::readers > 0
    bool reader_lane_ = false;   // set before open returns, constant afterwards: submitters read it
    actor_stats stats_;
    close_clock closing_;
    group_server server_;
    session writer_; // the writer thread's own
    reader_lane readers_;
    deadline_watcher watcher_;
    std::thread thread_; // the writer's
    std::mutex join_m_;

    std::shared_ptr<change_hub> hub_ = std::make_shared<change_hub>();
    std::int64_t data_version_ = 0; // the writer's

    std::mutex close_m_;
    bool finished_ = false;
    std::vector<request_base*> close_waiters_;
};

} // namespace dbactor::detail
