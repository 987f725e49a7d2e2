#include <dbactor/detail/deadline_watcher.hpp>

#include <dbactor/detail/actor_thread.hpp>
#include <dbactor/detail/boot.hpp>
#include <dbactor/detail/request_queue.hpp>
#include <dbactor/detail/stats.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <string>

namespace dbactor::detail {

void deadline_watcher::arm(clock::time_point deadline) noexcept
{
    const auto d = deadline.time_since_epoch().count();
    if (d >= next_.load(std::memory_order_acquire))
        return; // the watcher wakes earlier than that, and rescans the whole queue then
    std::string failure;
    {
        std::lock_guard lock(m_);
        if (stop_)
            return;
        if (!thread_.joinable()) {
            try {
                thread_ = std::thread([this] { main(); });
            }
            catch (const std::exception& e) {
                failure = e.what();
                stop_ = true;
                next_.store(0, std::memory_order_release); // later submitters return at once
            }
        }
        if (failure.empty() && d < next_.load(std::memory_order_relaxed)) {
            next_.store(d, std::memory_order_release);
            cv_.notify_one();
        }
    }
    if (!failure.empty()) // outside the lock: the hook may send requests
        log(opts_,
            log_level::error,
            fmt::format("Cannot start the deadline watcher of '{}' ({}): a queued request is now answered "
                        "timed_out only when the actor reaches it.",
                        opts_.path,
                        failure));
}

deadline_watcher::clock::time_point deadline_watcher::scan(clock::time_point now) noexcept
{
    request_queue::expired from_writer, from_readers;
    writer_.expire(now, from_writer);
    readers_.expire(now, from_readers);
    add(stats_.timed_out, from_writer.timed_out + from_readers.timed_out);
    add(stats_.cancelled, from_writer.cancelled + from_readers.cancelled);
    request_queue::deliver_expired(from_writer);
    request_queue::deliver_expired(from_readers);
    return std::min(from_writer.next, from_readers.next);
}

void deadline_watcher::main() noexcept
{
    name_this_thread("dbactor-watch");
    constexpr auto never = clock::time_point::max().time_since_epoch().count();
    std::unique_lock lock(m_);
    while (!stop_) {
        const auto next = next_.load(std::memory_order_relaxed);
        if (next == never) {
            cv_.wait(lock);
            continue;
        }
        const auto at = clock::time_point(clock::duration(next));
        if (clock::now() < at) {
            cv_.wait_until(lock, at);
            continue;
        }
        // From here a submitter with any deadline arms again; the scan below sees what it missed.
        next_.store(never, std::memory_order_release);
        lock.unlock();
        const auto e = scan(clock::now()).time_since_epoch().count();
        lock.lock();
        if (e < next_.load(std::memory_order_relaxed))
            next_.store(e, std::memory_order_release);
    }
}

void deadline_watcher::stop() noexcept
{
    {
        std::lock_guard lock(m_);
        stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable())
        thread_.join();
}

} // namespace dbactor::detail
