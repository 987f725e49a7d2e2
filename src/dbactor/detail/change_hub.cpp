#include <dbactor/detail/change_hub.hpp>

#include <dbactor/detail/change_log.hpp>
#include <dbactor/error.hpp>

#include <algorithm>

namespace dbactor::detail {

std::shared_ptr<feed_state> change_hub::subscribe(change_filter f)
{
    auto s = std::make_shared<feed_state>(std::move(f));
    std::lock_guard lock(m_);
    if (closed_)
        throw error(errc::closed,
                    "subscribe: the database is closed; subscribe before close(), on a handle of an open "
                    "database.");
    feeds_.push_back(s);
    if (feeds_.size() == 1)
        resync_.store(true, std::memory_order_release);
    max_rowids_.store(std::max(max_rowids_.load(std::memory_order_relaxed), s->filter.max_rowids),
                      std::memory_order_relaxed);
    count_.store(feeds_.size(), std::memory_order_release);
    return s;
}

void change_hub::unsubscribe(const feed_state* s) noexcept
{
    std::shared_ptr<feed_state> gone; // destroyed outside the lock
    std::lock_guard lock(m_);
    const auto it = std::find_if(feeds_.begin(), feeds_.end(), [s](const auto& p) { return p.get() == s; });
    if (it == feeds_.end())
        return;
    gone = std::move(*it);
    feeds_.erase(it);
    count_.store(feeds_.size(), std::memory_order_release);
}

void change_hub::publish(const change_set& changes, bool external) noexcept
{
    try {
        commit_event e;
        e.commit_seq = ++seq_;
        e.external = external;
        e.changes = changes.tables;
        // Offered outside the lock: a handler destroyed by a failed post may unsubscribe its feed.
        std::vector<std::shared_ptr<feed_state>> feeds;
        {
            std::lock_guard lock(m_);
            feeds = feeds_;
        }
        for (const auto& f : feeds)
            f->offer(e);
    }
    catch (...) { // out of memory copying the event: the feeds miss it, the commit stands
    }
}

void change_hub::close() noexcept
{
    std::vector<std::shared_ptr<feed_state>> feeds;
    {
        std::lock_guard lock(m_);
        closed_ = true;
        feeds.swap(feeds_);
        count_.store(0, std::memory_order_release);
    }
    for (const auto& f : feeds)
        f->close();
}

} // namespace dbactor::detail
