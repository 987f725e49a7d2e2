#include <dbactor/detail/request_queue.hpp>

#include <dbactor/detail/request_base.hpp>
#include <dbactor/detail/request_errors.hpp>
#include <dbactor/detail/spin.hpp>

#include <algorithm>
#include <utility>

namespace dbactor::detail {
namespace {

/// Appends `r` to the list `head`…`tail`.
void append(request_base*& head, request_base*& tail, request_base* r) noexcept
{
    r->next_ = nullptr;
    if (tail)
        tail->next_ = r;
    else
        head = r;
    tail = r;
}

} // namespace

request_queue::push_result request_queue::push(request_base* r, bool wait_if_full) noexcept
{
    bool wake = false;
    {
        std::lock_guard lock(m_);
        if (closed_)
            return push_result::closed;
        if (!wait_if_full && depth_.load(std::memory_order_relaxed) >= capacity_)
            return push_result::full;
        append(head_, tail_, r);
        const auto depth = depth_.fetch_add(1, std::memory_order_relaxed) + 1;
        if (depth > depth_max_.load(std::memory_order_relaxed))
            depth_max_.store(depth, std::memory_order_relaxed);
        nonempty_.store(true, std::memory_order_release);
        wake = sleeping_ > 0;
    }
    if (wake)
        cv_.notify_one();
    return push_result::ok;
}

request_queue::pop_result request_queue::pop_group(std::vector<request_base*>& out,
                                                   std::size_t max_batch,
                                                   clock::time_point idle_until) noexcept
{
    out.clear();
    if (!nonempty_.load(std::memory_order_acquire))
        spin();
    std::unique_lock lock(m_);
    while (!head_ && !closed_) {
        if (std::exchange(woken_, false))
            return pop_result::idle;
        ++sleeping_;
        const bool timed_out = idle_until == clock::time_point::max()
                                   ? (cv_.wait(lock), false)
                                   : cv_.wait_until(lock, idle_until) == std::cv_status::timeout;
        --sleeping_;
        if (timed_out && !head_ && !closed_)
            return pop_result::idle;
    }
    if (!head_)
        return pop_result::closed;
    const lane l = head_->lane_;
    if (l == lane::call || head_->alone())
        take_run(out, 1, l, true);
    else
        take_run(out, batch_limit(max_batch), l, false);
    if (head_ && sleeping_ > 0)
        cv_.notify_one(); // more than this consumer takes: wake another
    return pop_result::group;
}

void request_queue::pop_more(std::vector<request_base*>& out, lane l, std::size_t max_batch) noexcept
{
    const std::size_t limit = batch_limit(max_batch);
    if (out.size() >= limit || !nonempty_.load(std::memory_order_acquire))
        return;
    std::lock_guard lock(m_);
    take_run(out, limit, l, false);
}

void request_queue::expire(clock::time_point now, expired& out) noexcept
{
    std::lock_guard lock(m_);
    request_base* prev = nullptr;
    for (request_base* r = head_; r;) {
        request_base* const after = r->next_;
        if (!r->pending()) {
            unlink(prev, r);
            append(out.answered, out.answered_tail, r);
            ++(r->interrupt_reason() == errc::timed_out ? out.timed_out : out.cancelled);
        }
        // The error is made outside the lock (deliver_expired): formatting takes time and may throw.
        else if (r->has_deadline() && r->deadline_ <= now && r->finish(errc::timed_out, false)) {
            unlink(prev, r);
            append(out.to_answer, out.to_answer_tail, r);
            ++out.timed_out;
        }
        else {
            if (r->has_deadline())
                out.next = std::min(out.next, r->deadline_);
            prev = r;
        }
        r = after;
    }
    nonempty_.store(head_ != nullptr, std::memory_order_relaxed);
}

/// Under the lock: takes `r` (whose predecessor is `prev`) out of the line.
void request_queue::unlink(request_base* prev, request_base* r) noexcept
{
    if (prev)
        prev->next_ = r->next_;
    else
        head_ = r->next_;
    if (tail_ == r)
        tail_ = prev;
    depth_.fetch_sub(1, std::memory_order_relaxed);
    r->next_ = nullptr;
}

void request_queue::deliver_expired(expired& e) noexcept
{
    for (request_base* r = e.to_answer; r;) {
        request_base* const after = r->next_;
        r->set_error(make_error_ptr(errc::timed_out, r->name_));
        r->complete(false);
        r->release(); // the queue's reference
        r = after;
    }
    for (request_base* r = e.answered; r;) {
        request_base* const after = r->next_;
        r->release();
        r = after;
    }
    e.to_answer = e.answered = e.to_answer_tail = e.answered_tail = nullptr;
}

void request_queue::close() noexcept
{
    {
        std::lock_guard lock(m_);
        closed_ = true;
    }
    cv_.notify_all();
}

void request_queue::wake() noexcept
{
    {
        std::lock_guard lock(m_);
        woken_ = true;
    }
    cv_.notify_all();
}

bool request_queue::closed() const noexcept
{
    std::lock_guard lock(m_);
    return closed_;
}

/// Under the lock: moves requests of lane `l` from the head into `out` while it holds fewer than
/// `limit`. One with a deadline or a cancellation slot is taken only as the first of `out`, and only when
/// `alone_first` (it then makes a group of one: limit 1).
void request_queue::take_run(std::vector<request_base*>& out,
                             std::size_t limit,
                             lane l,
                             bool alone_first) noexcept
{
    while (head_ && out.size() < limit && head_->lane_ == l &&
           (!head_->alone() || (alone_first && out.empty()))) {
        request_base* r = head_;
        head_ = r->next_;
        r->next_ = nullptr;
        out.push_back(r); // within the capacity the session reserved for max_batch: no allocation
    }
    if (!head_)
        tail_ = nullptr;
    nonempty_.store(head_ != nullptr, std::memory_order_relaxed);
}

void request_queue::spin() const noexcept
{
    // 20 µs: about one round trip of a caller that answers at once (resume a coroutine, send the next
    // request). Measured on the 2-core VM: 2 µs gave W1 p50 ≈ 38 µs, 20 µs ≈ 21 µs (docs/PERFORMANCE.md).
    spin_until([this] { return nonempty_.load(std::memory_order_acquire); }, std::chrono::microseconds(20));
}

} // namespace dbactor::detail
