// The bot example's core: configuration, snowflake ids, the sliding-window rate limiter, and run().
#pragma once

#include <dbactor/options.hpp>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <iosfwd>
#include <mutex>
#include <string>
#include <unordered_map>

namespace bot {

/// How one run of the bot is set up (the command line of dbactor-bot maps onto this).
struct config
{
    std::string db_path = "var/bot.db";
    unsigned guilds = 1000;
    double events_per_sec = 1000;
    /// Seconds to run; 0 runs until SIGINT or SIGTERM.
    double duration_s = 10;
    /// Threads running the io_context; 0 = one per core.
    unsigned threads = 0;
    /// Seeds the simulated gateway; the same seed gives the same guild ids on every run.
    std::uint64_t seed = 42;
    /// After closing, reopen the database and check that it holds exactly what the handlers wrote.
    bool self_check = false;
    /// Fault injection for the tests: every N-th iteration of the tempban sweep throws inside its request.
    unsigned fault_every = 0;
    /// Read-only connections serving async_read (dbactor::options::readers); 0 = reads share the writer.
    unsigned readers = 0;
    dbactor::synchronous_mode synchronous = dbactor::synchronous_mode::full;
};

/// Runs the bot until the duration elapses or a signal arrives; prints the summary to `out` and
/// diagnostics to stderr. Returns the process exit code (0 also after SIGINT/SIGTERM; 1 when the database
/// cannot be opened, a handler failed or the self-check found a difference).
int run(const config& cfg, std::ostream& out);

/// The bot's schema (migrations/bot), compiled in.
dbactor::migration_set schema();

/// Discord's epoch (2015-01-01T00:00:00Z) in Unix milliseconds.
inline constexpr std::uint64_t discord_epoch_ms = 1420070400000;

/// Snowflake ids: (ms since the Discord epoch) << 22 | worker << 17 | process << 12 | sequence.
/// Strictly increasing per generator; not thread-safe (one generator per producer).
class snowflake_generator
{
public:
    snowflake_generator(unsigned worker, unsigned process) noexcept
        : worker_(worker & 0x1f), process_(process & 0x1f)
    {
    }
    /// The next id at `unix_ms`; more than 4096 ids in one millisecond borrow from the next one.
    std::uint64_t next(std::uint64_t unix_ms) noexcept
    {
        std::uint64_t ms = unix_ms > discord_epoch_ms ? unix_ms - discord_epoch_ms : 0;
        if (ms <= last_ms_) {
            ms = last_ms_;
            if (++sequence_ == 0x1000) {
                sequence_ = 0;
                ++ms;
            }
        }
        else {
            sequence_ = 0;
        }
        last_ms_ = ms;
        return ms << 22 | std::uint64_t(worker_) << 17 | std::uint64_t(process_) << 12 | sequence_;
    }
    static std::uint64_t unix_ms_of(std::uint64_t id) noexcept { return (id >> 22) + discord_epoch_ms; }

private:
    unsigned worker_;
    unsigned process_;
    std::uint64_t last_ms_ = 0;
    std::uint32_t sequence_ = 0;
};

/// A sliding-window rate limiter keyed by user: at most `max_requests` in any `window`.
/// Thread safety: any thread; the key space is split over shards, each with its own mutex held only for
/// the check itself (never across an await).
class sliding_window_limiter
{
public:
    using clock = std::chrono::steady_clock;

    sliding_window_limiter(std::string name, std::size_t max_requests, clock::duration window)
        : name_(std::move(name)), max_(max_requests), window_(window)
    {
    }

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
