#include <dbactor/change_feed.hpp>

#include <dbactor/detail/change_hub.hpp>
#include <dbactor/detail/change_log.hpp>
#include <dbactor/error.hpp>

#include <boost/asio/cancellation_type.hpp>

#include <algorithm>
#include <deque>
#include <mutex>
#include <stdexcept>
#include <utility>

namespace dbactor {
namespace detail {
namespace {

void answer(std::unique_ptr<feed_waiter> w, std::exception_ptr e, commit_event ev) noexcept
{
    feed_waiter& target = *w;
    target.complete(std::move(w), std::move(e), std::move(ev));
}

std::exception_ptr closed_error()
{
    return std::make_exception_ptr(
        error(errc::closed,
              "change_feed::async_next: the feed was unsubscribed or its database closed, and every event it "
              "buffered was taken; no more will come. Subscribe again on an open database."));
}

} // namespace

struct feed_state::impl
{
    std::mutex m;
    std::deque<commit_event> events;
    std::unique_ptr<feed_waiter> waiting;
    bool closed = false;
};

namespace {
change_filter normalized(change_filter f)
{
    f.capacity = std::max<std::size_t>(f.capacity, 1);
    return f;
}
} // namespace

feed_state::feed_state(change_filter f) : filter(normalized(std::move(f))), impl_(std::make_unique<impl>()) {}

feed_state::~feed_state() = default;

void feed_state::start_wait(std::unique_ptr<feed_waiter> w) noexcept
{
    std::exception_ptr e;
    commit_event ev;
    try {
        std::lock_guard lock(impl_->m);
        if (impl_->waiting)
            e = std::make_exception_ptr(std::logic_error(
                "change_feed::async_next: another async_next is still waiting on this feed; wait for one "
                "event at a time per feed (or subscribe twice)"));
        else if (!impl_->events.empty()) {
            ev = std::move(impl_->events.front());
            impl_->events.pop_front();
        }
        else if (impl_->closed)
            e = closed_error();
        else {
            impl_->waiting = std::move(w);
            return;
        }
    }
    catch (...) {
        e = std::current_exception();
    }
    answer(std::move(w), std::move(e), std::move(ev)); // posted: never inside the initiating function
}

void feed_state::cancel(boost::asio::cancellation_type_t type) noexcept
{
    using ct = boost::asio::cancellation_type;
    if ((type & (ct::terminal | ct::partial | ct::total)) == ct::none)
        return;
    std::unique_ptr<feed_waiter> gone;
    {
        std::lock_guard lock(impl_->m);
        gone = std::move(impl_->waiting);
    }
    if (gone) // buffered events stay for the next async_next: nothing is lost
        answer(std::move(gone),
               std::make_exception_ptr(error(errc::cancelled,
                                             "change_feed::async_next was cancelled (per-operation "
                                             "cancellation); no event was taken from the feed.")),
               {});
}

std::optional<commit_event> feed_state::try_take()
{
    std::lock_guard lock(impl_->m);
    if (impl_->events.empty())
        return std::nullopt;
    commit_event ev = std::move(impl_->events.front());
    impl_->events.pop_front();
    return ev;
}

void feed_state::offer(const commit_event& e) noexcept
{
    try {
        commit_event mine;
        mine.commit_seq = e.commit_seq;
        mine.external = e.external;
        for (const auto& t : e.changes) {
            if (!filter.tables.empty() &&
                std::find(filter.tables.begin(), filter.tables.end(), t.table) == filter.tables.end())
                continue;
            mine.changes.push_back(t);
            auto& c = mine.changes.back();
            if (c.rowids.size() > filter.max_rowids) {
                c.rowids.resize(filter.max_rowids);
                c.rowids_complete = false;
            }
        }
        if (!e.external && mine.changes.empty())
            return; // none of its tables
        std::unique_ptr<feed_waiter> w;
        {
            std::lock_guard lock(impl_->m);
            if (impl_->closed)
                return;
            if (impl_->waiting && impl_->events.empty())
                w = std::move(impl_->waiting);
            else if (impl_->events.size() < filter.capacity)
                impl_->events.push_back(std::move(mine));
            else { // full: the newest event absorbs this one
                commit_event& last = impl_->events.back();
                last.commit_seq = mine.commit_seq;
                last.lagged = true;
                last.external = last.external || mine.external;
                for (const auto& t : mine.changes) {
                    auto it = std::find_if(last.changes.begin(),
                                           last.changes.end(),
                                           [&](const table_change& c) { return c.table == t.table; });
                    if (it == last.changes.end())
                        last.changes.push_back(t);
                    else
                        merge_change(*it, t, filter.max_rowids);
                }
            }
        }
        if (w)
            answer(std::move(w), nullptr, std::move(mine));
    }
    catch (...) { // out of memory: this feed misses the event; the writer goes on
    }
}

void feed_state::close() noexcept
{
    std::unique_ptr<feed_waiter> w;
    {
        std::lock_guard lock(impl_->m);
        impl_->closed = true;
        if (impl_->events.empty())
            w = std::move(impl_->waiting);
    }
    if (w)
        answer(std::move(w), closed_error(), {});
}

} // namespace detail

change_feed& change_feed::operator=(change_feed&& other) noexcept
{
    if (this != &other) {
        unsubscribe();
        state_ = std::move(other.state_);
        hub_ = std::move(other.hub_);
    }
    return *this;
}

std::optional<commit_event> change_feed::try_next()
{
    return state_ ? state_->try_take() : std::nullopt;
}

void change_feed::unsubscribe() noexcept
{
    if (!state_)
        return;
    if (auto hub = hub_.lock())
        hub->unsubscribe(state_.get());
    state_->close();
    state_.reset();
    hub_.reset();
}

void change_feed::start_next(const std::shared_ptr<detail::feed_state>& s,
                             std::unique_ptr<detail::feed_waiter> w) noexcept
{
    if (s) {
        s->start_wait(std::move(w));
        return;
    }
    detail::answer(std::move(w), detail::closed_error(), {});
}

} // namespace dbactor
