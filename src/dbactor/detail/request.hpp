// The type-erased request node: a request's callable, its completion handler and its reply, in one
// allocation.
#pragma once

#include <dbactor/connection.hpp>
#include <dbactor/error.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_allocator.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/system_executor.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <new>
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

/// A request's state: pending, running, or answered without running; the last carries its errc, so that
/// whoever sees a request finished also sees why, in one atomic load.
enum class request_state : std::uint8_t
{
    pending,  ///< waiting for space or queued
    running,  ///< claimed by the actor
    finished, ///< answered without running: finished + errc (timed out, cancelled, rejected, closed)
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
{};
template <class R>
struct is_sync_handler<sync_handler<R>> : std::true_type
{};

template <class R>
struct result_storage
{
    std::optional<R> value;
};
template <>
struct result_storage<void>
{};

/// Memory inside a request node for the one operation Asio allocates to deliver the reply to an executor,
/// so that a request costs one allocation in all. Asio frees the operation before it calls the delivery
/// (which may destroy the node), and only one delivery is ever in flight per node.
class delivery_arena
{
public:
    void* allocate(std::size_t n, std::size_t align)
    {
        if (!used_ && n <= sizeof(buf_) && align <= alignof(std::max_align_t)) {
            used_ = true;
            return buf_;
        }
        return ::operator new(n, std::align_val_t(align));
    }
    void deallocate(void* p, std::size_t, std::size_t align) noexcept
    {
        if (p == buf_)
            used_ = false;
        else
            ::operator delete(
                p, std::align_val_t(align)); // unsized: clang 14 has no sized aligned delete by default
    }

private:
    alignas(std::max_align_t) unsigned char buf_[96];
    bool used_ = false;
};

template <class T>
struct arena_allocator
{
    using value_type = T;
    delivery_arena* arena;
    explicit arena_allocator(delivery_arena* a) noexcept : arena(a) {}
    template <class U>
    arena_allocator(const arena_allocator<U>& other) noexcept : arena(other.arena)
    {}
    T* allocate(std::size_t n) { return static_cast<T*>(arena->allocate(n * sizeof(T), alignof(T))); }
    void deallocate(T* p, std::size_t n) noexcept { arena->deallocate(p, n * sizeof(T), alignof(T)); }
    template <class U>
    bool operator==(const arena_allocator<U>& other) const noexcept
    {
        return arena == other.arena;
    }
};

/// Hands `f` to `ex`: dispatch (may run it here) or post.
template <class Executor, class F>
void send_to(const Executor& ex, F&& f, bool inline_ok)
{
    if (inline_ok)
        boost::asio::dispatch(ex, std::forward<F>(f));
    else
        boost::asio::post(ex, std::forward<F>(f));
}

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
            if (spin_.load(std::memory_order_acquire) == spinning) {
                std::uint8_t s = spinning;
                if (spin_.compare_exchange_strong(s, ready, std::memory_order_acq_rel))
                    return; // the spinner on the caller's thread delivers it: no wake-up needed
            }
            auto ex = work_.get_executor();
            // Held until post/dispatch has returned on this thread: otherwise the handler could run, its
            // io_context run out of work and be destroyed while this thread is still inside post (which
            // signals the scheduler after unlocking it).
            auto posting = boost::asio::make_work_guard(ex);
            // The usual case (use_awaitable, co_spawn on an io_context): hand the delivery to the io_context
            // itself, which honours its allocator; through an any_io_executor Asio would allocate twice more.
            if (const auto io = io_executor())
                send_to(*io, delivery(this), inline_ok);
            else
                send_to(ex, delivery(this), inline_ok);
        }
    }

    /// Called on the initiating thread before the request is queued, when the actor is idle: if that thread
    /// runs the handler's io_context, it keeps it busy for a short while looking for the reply (a job that
    /// re-posts itself, so other handlers still run in between) instead of letting it park. A reply that
    /// arrives meanwhile is delivered right there; waking a parked thread costs about 10 µs on the VMs we
    /// measured, most of a short request's round trip. After `spin_for` without a reply it stops, and the
    /// reply is posted as usual.
    void spin_for_reply(std::chrono::nanoseconds spin_for) noexcept
    {
        if constexpr (!is_sync_handler<Handler>::value) {
            const auto io = io_executor();
            if (!io || !io->running_in_this_thread())
                return;
            spin_.store(spinning, std::memory_order_relaxed); // published to the actor by the queue's mutex
            try {
                boost::asio::post(*io, spinner(this, *io, std::chrono::steady_clock::now() + spin_for));
            }
            catch (...) {
                spin_.store(not_spinning, std::memory_order_relaxed);
            }
        }
    }

private:
    using io_executor_type = boost::asio::io_context::executor_type;

    /// The io_context executor the handler runs on, when it is one (directly, or inside an any_io_executor).
    std::optional<io_executor_type> io_executor() const noexcept
    {
        auto ex = work_.get_executor();
        if constexpr (std::is_same_v<decltype(ex), io_executor_type>)
            return ex;
        else if constexpr (std::is_same_v<decltype(ex), boost::asio::any_io_executor>) {
            if (const io_executor_type* io = ex.template target<io_executor_type>())
                return *io;
        }
        return std::nullopt;
    }

    /// The job of spin_for_reply, on the handler's io_context.
    class spinner
    {
    public:
        spinner(request_op* op, io_executor_type io, std::chrono::steady_clock::time_point until) noexcept
            : op_(op), io_(io), until_(until)
        {}
        spinner(spinner&& other) noexcept
            : op_(std::exchange(other.op_, nullptr)), io_(other.io_), until_(other.until_)
        {}
        spinner(const spinner&) = delete;
        spinner& operator=(const spinner&) = delete;
        spinner& operator=(spinner&&) = delete;
        ~spinner()
        {
            if (op_) // destroyed unrun: its io_context is shutting down
                op_->stop_spinning(false);
        }
        void operator()()
        {
            request_op* op = std::exchange(op_, nullptr);
            // Spin in place for up to ~2 µs (a short request's whole round trip), then give the io_context
            // back to its other handlers by re-posting.
            const auto slice_end = std::chrono::steady_clock::now() + std::chrono::microseconds(2);
            for (unsigned i = 1;; ++i) {
                if (op->spin_.load(std::memory_order_acquire) == ready) {
                    op->deliver();
                    return;
                }
#if defined(__x86_64__) || defined(__i386__)
                __builtin_ia32_pause();
#endif
                if ((i & 15) == 0 && std::chrono::steady_clock::now() >= slice_end)
                    break;
            }
            if (std::chrono::steady_clock::now() < until_) {
                op_ = op;
                try {
                    boost::asio::post(io_, std::move(*this));
                    return;
                }
                catch (...) {
                    op_ = nullptr;
                }
            }
            op->stop_spinning(true);
        }

    private:
        request_op* op_;
        io_executor_type io_;
        std::chrono::steady_clock::time_point until_;
    };

    /// The spinner stops: from now on complete() posts the reply. If the reply became ready meanwhile,
    /// nobody else will deliver it: deliver it here (or drop it, when the io_context is going away).
    void stop_spinning(bool can_deliver) noexcept
    {
        std::uint8_t s = spinning;
        if (spin_.compare_exchange_strong(s, gave_up, std::memory_order_acq_rel))
            return;
        if (can_deliver)
            deliver();
        else
            discard();
    }

    /// What goes to the handler's executor: delivers the reply when run; destroyed unrun (its execution
    /// context was shut down first), it drops the request without calling the handler, so nothing leaks.
    class delivery
    {
    public:
        using allocator_type = arena_allocator<void>;
        allocator_type get_allocator() const noexcept { return allocator_type(&op_->arena_); }

        explicit delivery(request_op* op) noexcept : op_(op) {}
        delivery(delivery&& other) noexcept : op_(std::exchange(other.op_, nullptr)) {}
        delivery(const delivery&) = delete;
        delivery& operator=(const delivery&) = delete;
        delivery& operator=(delivery&&) = delete;
        ~delivery()
        {
            if (op_)
                op_->discard();
        }
        void operator()() { std::exchange(op_, nullptr)->deliver(); }

    private:
        request_op* op_;
    };

    void discard() noexcept
    {
        if (cancellable_)
            boost::asio::get_associated_cancellation_slot(handler_).clear();
        // Destroyed now, while their execution context still exists (it is shutting down): the node itself
        // may outlive it, on the queue's reference, when it was answered while queued.
        Handler h(std::move(handler_));
        auto work(std::move(work_));
        release();
    }

    struct cancel_fn
    {
        explicit cancel_fn(request_op* s) noexcept
            : self(s) {} // emplace() needs one before C++20's P0960 in clang
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

    void destroy() noexcept override
    {
        delete this;
    }

    Fn fn_;
    Handler handler_;
    boost::asio::executor_work_guard<
        boost::asio::associated_executor_t<Handler, boost::asio::system_executor>>
        work_;
    result_storage<R> result_;
    delivery_arena arena_;
};

/// A callable that does nothing: the payload of a close waiter.
struct no_op
{
    void operator()(connection&) const noexcept {}
};

} // namespace dbactor::detail
