#include <dbactor/detail/actor.hpp>

#include <dbactor/detail/actor_thread.hpp>
#include <dbactor/detail/boot.hpp>
#include <dbactor/detail/change_log.hpp>
#include <dbactor/detail/checkpoint.hpp>
#include <dbactor/detail/request_base.hpp>
#include <dbactor/detail/request_errors.hpp>
#include <dbactor/options.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <utility>

namespace dbactor::detail {

using clock = std::chrono::steady_clock;

actor::actor(options o)
    : opts_(std::move(o)), queue_(opts_.queue_capacity), reader_queue_(opts_.queue_capacity),
      server_(opts_, closing_, stats_), readers_(opts_, closing_, reader_queue_, server_),
      watcher_(opts_, queue_, reader_queue_, stats_)
{
    server_.set_hub(hub_.get());
}

actor::~actor()
{
    if (thread_.joinable()) {
        if (thread_.get_id() == std::this_thread::get_id())
            thread_.detach(); // the last reference went away on the actor thread itself
        else
            thread_.join();
    }
}

std::shared_ptr<actor> actor::start(options o)
{
    auto a = std::make_shared<actor>(std::move(o));
    std::promise<void> booted;
    auto ready = booted.get_future();
    a->thread_ = std::thread([self = a, p = std::move(booted)]() mutable { self->writer_main(p); });
    try {
        ready.get();
    }
    catch (...) {
        a->thread_.join();
        throw;
    }
    return a;
}

request_queue& actor::queue_of(lane l) noexcept
{
    return l == lane::read && reader_lane_ ? reader_queue_ : queue_;
}

void actor::submit(request_base* r, const request_options& ro) noexcept
{
    r->submitted_ = clock::now();
    if (ro.timeout.count() > 0)
        r->deadline_ = r->submitted_ + std::chrono::duration_cast<clock::duration>(ro.timeout);
    r->name_ = ro.name;
    const auto deadline = r->deadline_; // r may be gone once pushed
    switch (queue_of(r->lane_).push(r, ro.wait_if_full)) {
    case request_queue::push_result::ok:
        if (deadline != clock::time_point::max())
            watcher_.arm(deadline);
        return;
    case request_queue::push_result::full:
        add(stats_.rejected);
        reject(r, errc::queue_full);
        return;
    case request_queue::push_result::closed:
        add(stats_.closed_unexecuted);
        reject(r, errc::closed);
        return;
    }
}

void actor::reject(request_base* r, errc code) noexcept
{
    r->abandon(code, false); // post: completing inside the initiating function is not allowed
    r->release();            // it never entered the queue
}

void actor::submit_close(request_base* waiter) noexcept
{
    {
        std::lock_guard lock(close_m_);
        if (!finished_) {
            close_waiters_.push_back(waiter);
            waiter = nullptr;
        }
    }
    begin_close();
    if (waiter) { // already closed: nothing to report any more
        waiter->complete(false);
        waiter->release();
    }
}

void actor::begin_close() noexcept
{
    std::lock_guard lock(close_m_);
    if (!closing_.requested.load(std::memory_order_relaxed)) {
        closing_.deadline = clock::now() + opts_.shutdown_grace;
        closing_.requested.store(true, std::memory_order_release);
        queue_.close();
        reader_queue_.close();
    }
}

void actor::join() noexcept
{
    std::lock_guard lock(join_m_);
    if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id())
        thread_.join();
}

bool actor::on_own_thread() const noexcept
{
    return current_actor() == this;
}

/// See detail::reply_spin: only when nothing is queued ahead (the one-request-at-a-time case); a caller
/// whose request waits behind others would spin in vain.
/// Not for a write under synchronous=FULL either: its COMMIT waits for an fsync, which takes longer than
/// any sensible spin, so the caller would only burn its thread.
std::chrono::nanoseconds actor::reply_spin(lane l) const noexcept
{
    if (l == lane::write && opts_.synchronous == synchronous_mode::full)
        return std::chrono::nanoseconds(0);
    const auto& q = l == lane::read && reader_lane_ ? reader_queue_ : queue_;
    return q.depth() == 0 ? opts_.reply_spin : std::chrono::nanoseconds(0);
}

change_feed actor::subscribe(change_filter f)
{
    change_feed feed(hub_->subscribe(std::move(f)), hub_);
    queue_.wake();
    return feed;
}

void actor::check_external() noexcept
{
    const bool resync = hub_->take_resync();
    std::int64_t v = 0;
    if (!writer_.read_data_version(v))
        return;
    if (std::exchange(data_version_, v) != v && !resync)
        hub_->publish(change_set{}, true);
}

stats_snapshot actor::stats() const noexcept
{
    stats_snapshot s = stats_.snapshot();
    s.queue_depth = queue_.depth() + reader_queue_.depth();
    s.queue_depth_max = std::max(queue_.depth_max(), reader_queue_.depth_max());
    s.queue_waiting = queue_.waiting() + reader_queue_.waiting();
    s.queue_waiting_max = std::max(queue_.waiting_max(), reader_queue_.waiting_max());
    return s;
}

void actor::writer_main(std::promise<void>& booted)
{
    enter_actor_thread(this, "dbactor-writer");
    try {
        writer_.stats = &stats_;
        writer_.start(detail::boot(opts_, boot_), closing_, queue_, opts_.max_batch);
        apply_checkpoint_mode(writer_, opts_, boot_);
        writer_.install_wal_hook(); // after wal_autocheckpoint was set, which replaces the hook
        readers_.start(this);
        reader_lane_ = opts_.readers > 0;
    }
    catch (...) {
        readers_.stop();
        writer_.close(opts_.path);
        booted.set_exception(std::current_exception());
        return;
    }
    booted.set_value();
    serve();
    readers_.stop(); // a reader's queue is closed with the writer's; they drain it and close first
    watcher_.stop();
    shutdown();
}

/// The writer loop: one group at a time until the queue is closed and empty. After a write, the first
/// moment the queue has been empty for options::idle_checkpoint, the WAL is checkpointed: a WAL that grew
/// behind a long reader then shrinks without waiting for more writes.
void actor::serve() noexcept
{
    bool checkpoints = opts_.idle_checkpoint.count() > 0 && !opts_.read_only && !is_memory(opts_.path) &&
                       opts_.checkpoints == checkpoint_mode::actor;
    auto idle_until = clock::time_point::max();
    for (;;) {
        // A subscriber: data_version is read every external_poll while idle.
        const bool watching = hub_->active();
        const auto wake_at = watching
                                 ? std::min(idle_until,
                                            clock::now() + std::clamp(opts_.external_poll,
                                                                      std::chrono::milliseconds(1),
                                                                      std::chrono::milliseconds(3600 * 1000)))
                                 : idle_until;
        const auto got = queue_.pop_group(writer_.group, opts_.max_batch, wake_at);
        if (got == request_queue::pop_result::closed)
            return;
        if (hub_->active())
            check_external();
        if (got == request_queue::pop_result::idle) {
            if (clock::now() < idle_until)
                continue; // a poll of data_version, or woken by subscribe
            const bool emptied = idle_checkpoint(writer_, checkpoints);
            if (emptied && checkpoints)
                add(stats_.idle_checkpoints);
            idle_until = emptied ? clock::time_point::max() : clock::now() + opts_.idle_checkpoint;
            continue;
        }
        writer_.record_changes(hub_->active(), hub_->max_rowids());
        const bool wrote = server_.process(writer_);
        // Armed by a write or a call; any request pushes it back: "idle" means no request at all.
        if (checkpoints && (wrote || idle_until != clock::time_point::max()))
            idle_until = clock::now() + opts_.idle_checkpoint;
    }
}

void actor::shutdown() noexcept
{
    writer_.record_changes(false, 0);
    hub_->close(); // every event was published before its reply; the feeds end with errc::closed
    try {
        if (auto e = writer_.set_query_only(false))
            std::rethrow_exception(e);
        writer_.conn->exec("PRAGMA optimize");
    }
    catch (const std::exception& e) {
        log(opts_,
            log_level::warning,
            fmt::format("PRAGMA optimize at close of '{}' failed: {}", opts_.path, e.what()));
    }
    std::exception_ptr checkpoint_failure = final_checkpoint(writer_, opts_);
    std::exception_ptr failure = writer_.close(opts_.path);
    if (checkpoint_failure) {
        if (failure)
            log(opts_, log_level::error, describe_exception(failure));
        failure = checkpoint_failure; // the one that matters more: the disk
    }
    std::vector<request_base*> waiters;
    {
        std::lock_guard lock(close_m_);
        finished_ = true;
        waiters.swap(close_waiters_);
    }
    if (failure)
        log(opts_, log_level::error, describe_exception(failure));
    for (request_base* w : waiters) {
        w->set_error(failure);
        w->complete(true);
        w->release();
    }
}

} // namespace dbactor::detail
