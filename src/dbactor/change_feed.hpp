// dbactor::change_feed: events of committed transactions, from database::subscribe (docs/CHANGE-FEED.md).
#pragma once

#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/system_executor.hpp>

#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace dbactor {

/// What a feed receives (database::subscribe).
struct change_filter
{
    /// The tables whose changes the feed receives; empty: every table. An event that changed none of them
    /// is not delivered to this feed (external events are always delivered: their tables are unknown).
    std::vector<std::string> tables;
    /// The most events the feed buffers; what comes beyond it is coalesced into the last one (`lagged`).
    std::size_t capacity = 256;
    /// The most rowids kept per table and event; beyond it `rowids_complete` is false (the counts stay
    /// exact).
    std::size_t max_rowids = 64;
};

/// What one committed transaction did to one table (rows changed through the update hook: INSERT, UPDATE,
/// DELETE on rowid tables, including those of triggers and foreign-key actions).
struct table_change
{
    std::string table;
    std::uint64_t inserts = 0, updates = 0, deletes = 0;
    std::vector<std::int64_t> rowids; ///< the rowids changed, in order, each once, up to max_rowids
    bool rowids_complete = true;      ///< false when more rows changed than `rowids` holds
};

/// One committed unit: a write batch (the group commit), a call's commits, or, with `external`, a change
/// made by another connection (seen through PRAGMA data_version; `changes` is then empty).
struct commit_event
{
    std::uint64_t commit_seq = 0; ///< increasing per database (a feed with a filter sees gaps)
    std::vector<table_change> changes;
    bool external = false; ///< another connection changed the file (tables unknown)
    bool lagged = false;   ///< the feed fell behind: this event coalesces several (counts summed)
};

namespace detail {

class change_hub;

/// A waiting async_next, type-erased: the feed keeps it until an event (or the end) comes.
class feed_waiter
{
public:
    virtual ~feed_waiter() = default;
    /// Posts the answer to the handler's executor; the waiter is gone afterwards (owned by the post).
    virtual void
    complete(std::unique_ptr<feed_waiter> self, std::exception_ptr e, commit_event ev) noexcept = 0;
};

/// A subscription's buffer and its one waiting async_next. Shared by the feed and the actor's hub.
/// Thread safety: every member from any thread (one mutex).
class feed_state : public std::enable_shared_from_this<feed_state>
{
public:
    explicit feed_state(change_filter f);
    feed_state(const feed_state&) = delete;
    feed_state& operator=(const feed_state&) = delete;
    ~feed_state();

    /// Completes `w` with the next event, or keeps it until one comes.
    void start_wait(std::unique_ptr<feed_waiter> w) noexcept;
    std::optional<commit_event> try_take();

    /// The actor side: offers an event (filtered here); closes the feed (waiter: errc::closed once the
    /// buffer is empty).
    void offer(const commit_event& e) noexcept;
    void close() noexcept;
    /// The cancellation slot's handler of a waiting async_next.
    void cancel(boost::asio::cancellation_type_t type) noexcept;

    const change_filter filter;

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

/// async_next's handler, and the work that keeps its executor running until it is answered.
template <class Handler>
class feed_wait_op final : public feed_waiter
{
public:
    feed_wait_op(Handler h, const std::shared_ptr<feed_state>& s)
        : handler_(std::move(h)), work_(boost::asio::make_work_guard(handler_))
    {
        auto slot = boost::asio::get_associated_cancellation_slot(handler_);
        if (slot.is_connected() && s)
            slot.template emplace<cancel_fn>(std::weak_ptr<feed_state>(s));
    }

    void complete(std::unique_ptr<feed_waiter> self, std::exception_ptr e, commit_event ev) noexcept override
    {
        try {
            auto ex = work_.get_executor();
            // Held until post has returned on this thread: otherwise the handler could run, its io_context
            // run out of work and be destroyed while this thread is still inside post.
            auto posting = boost::asio::make_work_guard(ex);
            boost::asio::post(ex, delivery{std::move(self), std::move(e), std::move(ev)});
        }
        catch (...) { // out of memory: the handler is destroyed unanswered, as when its io_context is gone
        }
    }

private:
    /// What goes to the handler's executor; destroyed unrun (its io_context gone), it drops the handler.
    struct delivery
    {
        std::unique_ptr<feed_waiter> op;
        std::exception_ptr e;
        commit_event ev;
        void operator()()
        {
            auto& self = static_cast<feed_wait_op&>(*op);
            boost::asio::get_associated_cancellation_slot(self.handler_).clear();
            Handler h(std::move(self.handler_));
            op.reset(); // the work goes with it
            std::move(h)(std::move(e), std::move(ev));
        }
    };

    struct cancel_fn
    {
        explicit cancel_fn(std::weak_ptr<feed_state> s) noexcept : state(std::move(s)) {}
        std::weak_ptr<feed_state> state; // the slot may fire after the feed is gone
        void operator()(boost::asio::cancellation_type_t type) const
        {
            if (auto s = state.lock())
                s->cancel(type);
        }
    };

    Handler handler_;
    boost::asio::executor_work_guard<
        boost::asio::associated_executor_t<Handler, boost::asio::system_executor>>
        work_;
};

} // namespace detail

/// A subscription to the commits of one database (database::subscribe). Move-only; destroying it (from any
/// thread, also inside its own handler) unsubscribes.
/// Thread safety: one async_next at a time per feed; distinct feeds are independent.
/// Events: one per committed write batch or call, in commit order, never for what rolled back, never for
/// migrations; the actor never waits for a feed (beyond `capacity`, events coalesce into one `lagged`).
class change_feed
{
public:
    /// A feed of nothing: async_next completes with errc::closed.
    change_feed() = default;
    change_feed(std::shared_ptr<detail::feed_state> s, std::weak_ptr<detail::change_hub> hub) noexcept
        : state_(std::move(s)), hub_(std::move(hub))
    {}
    change_feed(change_feed&&) noexcept = default;
    change_feed& operator=(change_feed&& other) noexcept;
    change_feed(const change_feed&) = delete;
    change_feed& operator=(const change_feed&) = delete;
    ~change_feed() { unsubscribe(); }

    /// Waits for the next event: `void(std::exception_ptr, commit_event)` on the handler's executor, any
    /// completion token. Errors: errc::closed once the database closed and the buffered events were taken
    /// (also for a default-constructed feed); errc::cancelled on per-operation cancellation (no event is
    /// lost); std::logic_error when another async_next is still waiting on this feed.
    template <class CompletionToken>
    auto async_next(CompletionToken&& token)
    {
        return boost::asio::async_initiate<CompletionToken, void(std::exception_ptr, commit_event)>(
            [](auto handler, std::shared_ptr<detail::feed_state> s) {
                using op = detail::feed_wait_op<std::decay_t<decltype(handler)>>;
                start_next(s, std::make_unique<op>(std::move(handler), s));
            },
            token,
            state_);
    }

    /// The next buffered event, if there is one; never waits.
    std::optional<commit_event> try_next();

    /// Stops the subscription now (the destructor does it too); a waiting async_next gets errc::closed.
    void unsubscribe() noexcept;

    explicit operator bool() const noexcept { return state_ != nullptr; }

private:
    static void start_next(const std::shared_ptr<detail::feed_state>& s,
                           std::unique_ptr<detail::feed_waiter> w) noexcept;

    std::shared_ptr<detail::feed_state> state_;
    std::weak_ptr<detail::change_hub> hub_;
};

} // namespace dbactor
