// detail::change_hub: a database's subscribers, and the publishing of each committed unit to them.
#pragma once

#include <dbactor/change_feed.hpp>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

namespace dbactor::detail {

struct change_set;

/// The feeds of one database. The writer publishes after each committed batch or call (before the replies),
/// and an `external` event when PRAGMA data_version moved; each feed filters and buffers on its own, so the
/// writer never waits for a subscriber.
/// Thread safety: subscribe, unsubscribe and active from any thread; publish and close from the writer.
class change_hub
{
public:
    /// Errors: dbactor::error(errc::closed) once the database closed.
    std::shared_ptr<feed_state> subscribe(change_filter f);
    void unsubscribe(const feed_state* s) noexcept;

    /// Someone subscribed (the writer records changes and polls data_version only then).
    bool active() const noexcept { return count_.load(std::memory_order_acquire) > 0; }
    /// True once after the first subscriber of an idle hub arrived: the writer re-reads data_version
    /// without reporting what changed while nobody listened.
    bool take_resync() noexcept { return resync_.exchange(false, std::memory_order_acq_rel); }
    /// The rowid bound the writer records with: the largest of the feeds'.
    std::size_t max_rowids() const noexcept { return max_rowids_.load(std::memory_order_relaxed); }

    void publish(const change_set& changes, bool external) noexcept;
    /// Every feed is closed: after its buffered events, async_next completes with errc::closed.
    void close() noexcept;

    /// Events published so far (the last commit_seq).
    std::uint64_t published() const noexcept { return seq_; }

private:
    std::mutex m_;
    std::vector<std::shared_ptr<feed_state>> feeds_;
    std::atomic<std::size_t> count_{0};
    std::atomic<bool> resync_{false};
    std::atomic<std::size_t> max_rowids_{0};
    bool closed_ = false;
    std::uint64_t seq_ = 0; // the writer's
};

} // namespace dbactor::detail
