// detail::reply_spinner: the job that keeps a caller's io_context looking for its reply for a short while.
#pragma once

#include <dbactor/detail/spin.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <atomic>
#include <chrono>
#include <utility>

namespace dbactor::detail {

/// The job of request_op::spin_for_reply, on the handler's io_context: spins in place for up to ~2 µs (a
/// short request's whole round trip), then gives the io_context back to its other handlers by re-posting
/// itself, until `until`. `Op` is the request_op (this is its friend).
template <class Op>
class reply_spinner
{
public:
    using io_executor_type = boost::asio::io_context::executor_type;

    reply_spinner(Op* op, io_executor_type io, std::chrono::steady_clock::time_point until) noexcept
        : op_(op), io_(io), until_(until)
    {}
    reply_spinner(reply_spinner&& other) noexcept
        : op_(std::exchange(other.op_, nullptr)), io_(other.io_), until_(other.until_)
    {}
    reply_spinner(const reply_spinner&) = delete;
    reply_spinner& operator=(const reply_spinner&) = delete;
    reply_spinner& operator=(reply_spinner&&) = delete;
    ~reply_spinner()
    {
        if (op_) // destroyed unrun: its io_context is shutting down
            op_->stop_spinning(false);
    }

    void operator()()
    {
        Op* op = std::exchange(op_, nullptr);
        const bool ready = spin_until([op] { return op->spin_.load(std::memory_order_acquire) == Op::ready; },
                                      std::chrono::microseconds(2));
        if (ready) {
            op->deliver();
            return;
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
    Op* op_;
    io_executor_type io_;
    std::chrono::steady_clock::time_point until_;
};

} // namespace dbactor::detail
