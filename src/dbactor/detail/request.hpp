// detail::request_op: one request's callable, completion handler and reply, in one allocation.
#pragma once

#include <dbactor/connection.hpp>
#include <dbactor/detail/delivery_arena.hpp>
#include <dbactor/detail/reply_spinner.hpp>
#include <dbactor/detail/request_base.hpp>
#include <dbactor/detail/sync_waiter.hpp>
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

template <class R>
struct result_storage
{
    std::optional<R> value;
};
template <>
struct result_storage<void>
{};

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
                boost::asio::post(
                    *io, reply_spinner<request_op>(this, *io, std::chrono::steady_clock::now() + spin_for));
            }
            catch (...) {
                spin_.store(not_spinning, std::memory_order_relaxed);
            }
        }
    }

private:
    friend class reply_spinner<request_op>;
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

    void destroy() noexcept override { delete this; }

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
