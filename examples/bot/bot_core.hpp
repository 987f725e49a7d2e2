// The bot example's core: configuration, snowflake ids, the sliding-window rate limiter, and run().
#pragma once

#include <dbactor/options.hpp>

#include <algorithm>
#include <array>
#include <bit>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <iosfwd>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

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
    /// What the injected fault throws: a std::runtime_error, or (false) a value of a type not derived from
    /// std::exception, which the loop's supervisor must catch too.
    bool fault_is_std = true;
    /// Seconds between the `[info] progress:` lines on stderr (0 = none).
    double progress_every_s = 5;
    /// Members the gateway remembers per guild (it picks authors among them); past it a new member replaces
    /// a quiet one, so a bot running for weeks does not grow with every join. The database keeps them all.
    std::size_t roster_cap = 512;
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

/// Handler latencies in a fixed-size log-linear histogram: exact below 16 us, then 16 buckets per power of
/// two (a percentile is off by at most 1/32 of its value). Memory does not grow with the number of samples,
/// so a bot that runs for weeks reports the same percentiles as a sorted vector would, in 3.7 KiB.
/// Thread safety: none (one per strand; merge() after the run).
class latency_histogram
{
public:
    static constexpr unsigned sub_bits = 4;
    static constexpr std::size_t sub_buckets = std::size_t{1} << sub_bits;
    static constexpr std::size_t bucket_count = sub_buckets + (32 - sub_bits) * sub_buckets;

    void record(std::uint32_t us) noexcept
    {
        ++counts_[index_of(us)];
        ++count_;
        max_ = std::max(max_, us);
    }
    void merge(const latency_histogram& other) noexcept
    {
        for (std::size_t i = 0; i < bucket_count; ++i)
            counts_[i] += other.counts_[i];
        count_ += other.count_;
        max_ = std::max(max_, other.max_);
    }
    std::uint64_t count() const noexcept { return count_; }
    std::uint32_t max() const noexcept { return max_; }

    /// The value at quantile `q` (0 to 1): the middle of the bucket holding the (floor(q * count) + 1)-th
    /// smallest sample, never above the largest sample; 0 when empty.
    std::uint32_t percentile(double q) const noexcept
    {
        if (count_ == 0)
            return 0;
        const auto rank =
            std::min<std::uint64_t>(count_, static_cast<std::uint64_t>(q * static_cast<double>(count_)) + 1);
        std::uint64_t seen = 0;
        for (std::size_t i = 0; i < bucket_count; ++i) {
            seen += counts_[i];
            if (seen >= rank)
                return std::min(max_, middle_of(i));
        }
        return max_;
    }

    static std::size_t index_of(std::uint32_t v) noexcept
    {
        if (v < sub_buckets)
            return v;
        const unsigned e = static_cast<unsigned>(std::bit_width(v)) - 1; // >= sub_bits
        return sub_buckets + (e - sub_bits) * sub_buckets + ((v >> (e - sub_bits)) & (sub_buckets - 1));
    }
    static std::uint32_t middle_of(std::size_t index) noexcept
    {
        if (index < sub_buckets)
            return static_cast<std::uint32_t>(index);
        const auto e = static_cast<unsigned>((index - sub_buckets) / sub_buckets) + sub_bits;
        const auto s = static_cast<std::uint64_t>((index - sub_buckets) % sub_buckets);
        const std::uint64_t width = std::uint64_t{1} << (e - sub_bits);
        return static_cast<std::uint32_t>(((sub_buckets + s) << (e - sub_bits)) + (width - 1) / 2);
    }

private:
    std::array<std::uint64_t, bucket_count> counts_{};
    std::uint64_t count_ = 0;
    std::uint32_t max_ = 0;
};

/// The gateway's view of one guild's members, from which it picks the authors of events: the first ones
/// are the busy members. At most `cap` ids; past it a new member replaces one of the quieter half, so the
/// busy members stay and memory stays bounded however many join.
/// Thread safety: none (the gateway's strand only).
class member_roster
{
public:
    explicit member_roster(std::size_t cap = 512) : cap_(std::max<std::size_t>(cap, 2)) {}

    /// Adds a member; `random` chooses the quiet member it replaces when the roster is full.
    void add(std::uint64_t id, std::uint64_t random)
    {
        if (ids_.size() < cap_) {
            ids_.push_back(id);
            return;
        }
        const std::size_t half = cap_ / 2;
        ids_[half + random % (cap_ - half)] = id;
    }
    /// A member, skewed towards the first ones (u uniform in [0, 1)). The roster must not be empty.
    std::uint64_t pick(double u) const
    {
        return ids_[std::min(ids_.size() - 1,
                             static_cast<std::size_t>(u * u * static_cast<double>(ids_.size())))];
    }
    std::size_t size() const noexcept { return ids_.size(); }
    std::size_t capacity() const noexcept { return cap_; }
    const std::vector<std::uint64_t>& ids() const noexcept { return ids_; }

private:
    std::size_t cap_;
    std::vector<std::uint64_t> ids_;
};

/// Discord's epoch (2015-01-01T00:00:00Z) in Unix milliseconds.
inline constexpr std::uint64_t discord_epoch_ms = 1420070400000;

/// Snowflake ids: (ms since the Discord epoch) << 22 | worker << 17 | process << 12 | sequence.
/// Strictly increasing per generator; not thread-safe (one generator per producer).
class snowflake_generator
{
public:
    snowflake_generator(unsigned worker, unsigned process) noexcept
        : worker_(worker & 0x1f), process_(process & 0x1f)
    {}
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
