// bot::sliding_window_limiter: a sliding-window rate limiter keyed by user, sharded by key.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>

namespace bot {

/// A sliding-window rate limiter keyed by user: at most `max_requests` in any `window`.
/// Thread safety: any thread; the key space is split over shards, each with its own mutex held only for
/// the check itself (never across an await).
class sliding_window_limiter
{
public:
    using clock = std::chrono::steady_clock;

    sliding_window_limiter(std::string name, std::size_t max_requests, clock::duration window)
        : name_(std::move(name)), max_(max_requests), window_(window)
    {}

    /// Zero when the request is allowed (and recorded); otherwise how long until the oldest one leaves
    /// the window.
    clock::duration check(std::uint64_t key, clock::time_point now)
    {
        auto& s = shard_of(key);
        std::lock_guard lock(s.m);
        auto& times = s.buckets[key];
        prune(times, now);
        if (times.size() >= max_)
            return times.front() + window_ - now;
        times.push_back(now);
        return clock::duration::zero();
    }

    /// Prunes every bucket and drops the empty ones, so memory follows active users; returns how many
    /// buckets were dropped.
    std::size_t cleanup(clock::time_point now)
    {
        std::size_t removed = 0;
        for (auto& s : shards_) {
            std::lock_guard lock(s.m);
            for (auto it = s.buckets.begin(); it != s.buckets.end();) {
                prune(it->second, now);
                if (it->second.empty()) {
                    it = s.buckets.erase(it);
                    ++removed;
                }
                else {
                    ++it;
                }
            }
        }
        return removed;
    }

    /// Buckets held now (users seen within the window, plus empty ones not yet cleaned up).
    std::size_t buckets()
    {
        std::size_t n = 0;
        for (auto& s : shards_) {
            std::lock_guard lock(s.m);
            n += s.buckets.size();
        }
        return n;
    }

    const std::string& name() const noexcept { return name_; }

private:
    struct shard
    {
        std::mutex m;
        std::unordered_map<std::uint64_t, std::deque<clock::time_point>> buckets;
    };

    void prune(std::deque<clock::time_point>& times, clock::time_point now) const
    {
        while (!times.empty() && times.front() + window_ <= now)
            times.pop_front();
    }
    shard& shard_of(std::uint64_t key) noexcept { return shards_[(key ^ (key >> 22)) % shards_.size()]; }

    std::string name_;
    std::size_t max_;
    clock::duration window_;
    std::array<shard, 16> shards_;
};

} // namespace bot
