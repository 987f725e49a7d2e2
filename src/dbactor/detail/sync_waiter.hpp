// detail::sync_waiter and sync_handler: how a blocking call (write/read/call) waits for its reply.
#pragma once

#include <dbactor/detail/spin.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <optional>
#include <type_traits>

namespace dbactor::detail {

/// The reply of a blocking call: filled by sync_handler on the delivering thread, awaited by the caller.
/// The caller spins briefly before parking: most requests are answered within microseconds, and waking a
/// parked thread costs about 10 µs.
template <class R>
class sync_waiter
{
public:
    void set(std::exception_ptr e, std::optional<R> v)
    {
        std::lock_guard lock(m_);
        error_ = std::move(e);
        value_ = std::move(v);
        done_.store(true, std::memory_order_release);
        cv_.notify_one(); // under the lock: the waiter destroys *this only after taking the lock itself
    }
    /// Waits until the reply arrives or `deadline` passes; true when it arrived.
    bool wait_until(std::chrono::steady_clock::time_point deadline)
    {
        spin();
        std::unique_lock lock(m_);
        return cv_.wait_until(lock, deadline, [&] { return done_.load(std::memory_order_relaxed); });
    }
    void wait()
    {
        spin();
        std::unique_lock lock(m_);
        cv_.wait(lock, [&] { return done_.load(std::memory_order_relaxed); });
    }
    R get()
    {
        if (error_)
            std::rethrow_exception(error_);
        return std::move(*value_);
    }

private:
    void spin() const noexcept
    {
        spin_until([this] { return done_.load(std::memory_order_acquire); }, std::chrono::microseconds(20));
    }

    std::mutex m_;
    std::condition_variable cv_;
    std::atomic<bool> done_{false};
    std::exception_ptr error_;
    std::optional<R> value_;
};

template <>
class sync_waiter<void> : public sync_waiter<char>
{
public:
    void set(std::exception_ptr e) { sync_waiter<char>::set(std::move(e), char{}); }
    void get() { sync_waiter<char>::get(); }
};

/// The completion handler of a blocking call; no associated executor, so the reply is handed over on the
/// thread that produced it (the actor thread, or the caller's own thread for a rejection).
template <class R>
struct sync_handler
{
    sync_waiter<R>* w;
    void operator()(std::exception_ptr e, R v) { w->set(std::move(e), std::move(v)); }
};
template <>
struct sync_handler<void>
{
    sync_waiter<void>* w;
    void operator()(std::exception_ptr e) { w->set(std::move(e)); }
};

template <class T>
struct is_sync_handler : std::false_type
{};
template <class R>
struct is_sync_handler<sync_handler<R>> : std::true_type
{};

} // namespace dbactor::detail
