// The type-erased request node: a request's callable, its completion handler and its reply, in one allocation.
#pragma once

#include <dbactor/connection.hpp>
#include <dbactor/error.hpp>

#include <boost/asio/associated_allocator.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/system_executor.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

namespace dbactor::detail {

enum class lane : std::uint8_t
{
    write,
    read,
    call,
    close, ///< a close waiter: completed when shutdown is done
};

enum class request_state : std::uint8_t
{
    pending,  ///< waiting for space or queued
    running,  ///< claimed by the actor
    finished, ///< answered without running (timed out, cancelled, rejected, closed)
};

/// What a request returns, decayed; the reply's second argument.
template <class Fn>
using result_t = std::decay_t<std::invoke_result_t<std::decay_t<Fn>&, connection&>>;

template <class R>
struct signature
{
    using type = void(std::exception_ptr, R);
};
template <>
struct signature<void>
{
    using type = void(std::exception_ptr);
};
template <class R>
using signature_t = typename signature<R>::type;

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
        auto s = request_state::pending;
        if (state_.compare_exchange_strong(s, request_state::finished, std::memory_order_acq_rel)) {
            interrupt_.store(static_cast<std::uint8_t>(code), std::memory_order_relaxed);
            error_ = make_error_ptr(code, name_);
            complete(inline_ok);
            return true;
        }
        if (s == request_state::running)
            interrupt_.store(static_cast<std::uint8_t>(code), std::memory_order_relaxed);
        return false;
    }

    /// Why the request was (or is being) interrupted: 0, or an errc value.
    errc interrupt_reason() const noexcept
    {
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

    void set_error(std::exception_ptr e) noexcept { error_ = std::move(e); }
    const std::exception_ptr& error() const noexcept { return error_; }

    request_base* next_ = nullptr; // intrusive queue link
    const lane lane_;
    std::chrono::steady_clock::time_point submitted_{};
    std::chrono::steady_clock::time_point started_{};
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
};

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
        const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(20);
        for (int i = 0; !done_.load(std::memory_order_acquire); ++i) {
#if defined(__x86_64__) || defined(__i386__)
            __builtin_ia32_pause();
#endif
            if ((i & 15) == 15 && std::chrono::steady_clock::now() >= until)
                return;
        }
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
{
};
template <class R>
struct is_sync_handler<sync_handler<R>> : std::true_type
{
};

template <class R>
struct result_storage
{
    std::optional<R> value;
};
template <>
struct result_storage<void>
{
};

/// A request with its callable and its handler. The handler's associated executor is kept busy (a work
/// guard) until the reply is delivered there.
template <class Fn, class Handler, class R>
class request_op final : public request_base
{
    static_assert(std::is_void_v<R> || std::is_default_constructible_v<R>,
                  "dbactor: a request's result type must be default-constructible (it is passed, "
                  "value-initialised, alongside an exception)");

public:
    template <class F, class H>
    request_op(lane l, F&& fn, H&& handler)
        : request_base(l), fn_(std::forward<F>(fn)), handler_(std::forward<H>(handler)),
          work_(boost::asio::make_work_guard(handler_))
    {
        auto slot = boost::asio::get_associated_cancellation_slot(handler_);
        if (slot.is_connected()) {
            slot.template emplace<cancel_fn>(this);
            cancellable_ = true;
        }
    }

    void run(connection& c) noexcept override
    {
        try {
            if constexpr (std::is_void_v<R>)
                fn_(c);
            else
                result_.value.emplace(fn_(c));
        }
        catch (...) {
            error_ = std::current_exception();
        }
    }

    void complete(bool inline_ok) noexcept override
    {
        if constexpr (is_sync_handler<Handler>::value) {
            deliver(); // the waiter takes no lock the producer holds; no executor to honour
        }
        else {
            auto ex = work_.get_executor();
            // Held until post/dispatch has returned on this thread: otherwise the handler could run, its
            // io_context run out of work and be destroyed while this thread is still inside post (which
            // signals the scheduler after unlocking it).
            auto posting = boost::asio::make_work_guard(ex);
            if (inline_ok)
                boost::asio::dispatch(ex, [this] { deliver(); });
            else
                boost::asio::post(ex, [this] { deliver(); });
        }
    }

private:
    struct cancel_fn
    {
        explicit cancel_fn(request_op* s) noexcept : self(s) {} // emplace() needs one before C++20's P0960 in clang
        request_op* self;
        void operator()(boost::asio::cancellation_type_t type) const
        {
            using ct = boost::asio::cancellation_type;
            if ((type & (ct::terminal | ct::partial | ct::total)) != ct::none)
                self->abandon(errc::cancelled, false); // post: we are inside the slot's own handler
        }
    };

    void deliver() noexcept
    {
        if (cancellable_)
            boost::asio::get_associated_cancellation_slot(handler_).clear();
        Handler h(std::move(handler_));
        auto work(std::move(work_));
        std::exception_ptr e = std::move(error_);
        if constexpr (std::is_void_v<R>) {
            release();
            std::move(h)(std::move(e));
        }
        else {
            R r = (e || !result_.value) ? R{} : std::move(*result_.value);
            release();
            std::move(h)(std::move(e), std::move(r));
        }
    }

    void destroy() noexcept override { delete this; }

    Fn fn_;
    Handler handler_;
    boost::asio::executor_work_guard<
        boost::asio::associated_executor_t<Handler, boost::asio::system_executor>>
        work_;
    result_storage<R> result_;
};

/// A callable that does nothing: the payload of a close waiter.
struct no_op
{
    void operator()(connection&) const noexcept {}
};

} // namespace dbactor::detail
