// detail::request_base: the part of a request the actor sees (lane, state, deadline, error, queue link).
#pragma once

#include <dbactor/error.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <string_view>

namespace dbactor {
class connection;
}

namespace dbactor::detail {

enum class lane : std::uint8_t
{
    write,
    read,
    call,
    close, ///< a close waiter: completed when shutdown is done
};

/// A request's state: pending, running, or answered without running; the last carries its errc, so that
/// whoever sees a request finished also sees why, in one atomic load.
enum class request_state : std::uint8_t
{
    pending,  ///< waiting for space or queued
    running,  ///< claimed by the actor
    finished, ///< answered without running: finished + errc (timed out, cancelled, rejected, closed)
};

std::exception_ptr make_error_ptr(errc code, std::string_view name);

/// The part of a request the actor sees. Lifetime: reference counted; one reference belongs to the queue
/// (the actor drops it after running or skipping the node), one to the completion (dropped when the reply
/// is delivered), and a blocking caller holds a third while it waits.
class request_base
{
public:
    explicit request_base(lane l) noexcept : lane_(l) {}
    request_base(const request_base&) = delete;
    request_base& operator=(const request_base&) = delete;

    /// Runs the callable on the actor thread; stores its result or its exception. Never throws.
    virtual void run(connection& c) noexcept = 0;

    /// Delivers the stored reply on the handler's associated executor. `inline_ok`: dispatch (may run the
    /// handler here) rather than post. Drops the completion reference once delivered.
    virtual void complete(bool inline_ok) noexcept = 0;

    void add_ref() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
    void release() noexcept
    {
        if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1)
            destroy();
    }

    /// pending → running; false when it was already answered (cancelled or timed out while queued).
    bool try_start() noexcept
    {
        auto s = request_state::pending;
        return state_.compare_exchange_strong(s, request_state::running, std::memory_order_acq_rel);
    }

    /// Answers a request that has not started with `code` (it never runs). Returns false if it already
    /// started or was answered; then a running request is flagged for interruption instead.
    bool abandon(errc code, bool inline_ok) noexcept
    {
        if (!finish(code))
            return false;
        complete(inline_ok);
        return true;
    }

    /// The first half of abandon: pending → finished with `code`, not delivered yet (the caller calls
    /// complete(), after set_error() when `with_error` is false). False if it already started or was
    /// answered; a running one is flagged instead.
    bool finish(errc code, bool with_error = true) noexcept
    {
        auto s = request_state::pending;
        const auto done = static_cast<request_state>(static_cast<std::uint8_t>(request_state::finished) +
                                                     static_cast<std::uint8_t>(code));
        if (state_.compare_exchange_strong(s, done, std::memory_order_acq_rel)) {
            interrupt_.store(static_cast<std::uint8_t>(code), std::memory_order_relaxed);
            if (with_error)
                error_ = make_error_ptr(code, name_);
            return true;
        }
        if (s == request_state::running)
            interrupt_.store(static_cast<std::uint8_t>(code), std::memory_order_relaxed);
        return false;
    }

    /// Why the request was answered without running (read from its state), or why it is being interrupted:
    /// 0, or an errc value.
    errc interrupt_reason() const noexcept
    {
        const auto s = static_cast<std::uint8_t>(state_.load(std::memory_order_acquire));
        if (s >= static_cast<std::uint8_t>(request_state::finished))
            return static_cast<errc>(s - static_cast<std::uint8_t>(request_state::finished));
        return static_cast<errc>(interrupt_.load(std::memory_order_relaxed));
    }
    bool interrupted() const noexcept { return interrupt_.load(std::memory_order_relaxed) != 0; }
    void set_interrupt(errc code) noexcept
    {
        interrupt_.store(static_cast<std::uint8_t>(code), std::memory_order_relaxed);
    }

    bool has_deadline() const noexcept { return deadline_ != std::chrono::steady_clock::time_point::max(); }
    /// Bound to an Asio cancellation slot.
    bool cancellable() const noexcept { return cancellable_; }
    /// Never batched with other requests: its deadline or cancellation must reach it, and only it.
    bool alone() const noexcept { return has_deadline() || cancellable_; }
    /// Neither started nor answered.
    bool pending() const noexcept { return state_.load(std::memory_order_acquire) == request_state::pending; }

    void set_error(std::exception_ptr e) noexcept { error_ = std::move(e); }
    const std::exception_ptr& error() const noexcept { return error_; }

    request_base* next_ = nullptr; // intrusive queue link
    const lane lane_;
    std::chrono::steady_clock::time_point submitted_{};
    std::chrono::steady_clock::time_point started_{};
    std::chrono::steady_clock::duration lock_wait_{}; ///< time spent in the busy handler while it ran
    std::chrono::steady_clock::time_point deadline_ = std::chrono::steady_clock::time_point::max();
    std::string_view name_;

protected:
    virtual void destroy() noexcept = 0;
    ~request_base() = default;

    std::exception_ptr error_;
    bool cancellable_ = false;

private:
    std::atomic<request_state> state_{request_state::pending};
    std::atomic<std::uint8_t> interrupt_{0};
    std::atomic<std::uint32_t> refs_{2};

protected:
    /// A caller spinning on its io_context for the reply (request_op::spin_for_reply).
    enum spin_state : std::uint8_t
    {
        not_spinning,
        spinning, ///< a spinner job is on the handler's io_context, looking for the reply
        ready,    ///< the reply is ready and the spinner delivers it (complete() posted nothing)
        gave_up,  ///< the spinner stopped; complete() posts the reply as usual
    };
    std::atomic<std::uint8_t> spin_{not_spinning};
};

} // namespace dbactor::detail
