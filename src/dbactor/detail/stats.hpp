// detail::actor_stats: the counters and latency histograms behind database::stats(), updated lock-free.
#pragma once

#include <dbactor/error.hpp>
#include <dbactor/report.hpp>

#include <array>
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>

namespace dbactor::detail {

enum class lane : std::uint8_t;

inline void add(std::atomic<std::uint64_t>& a, std::uint64_t by = 1) noexcept
{
    a.fetch_add(by, std::memory_order_relaxed);
}

/// Log-scale latency histogram: recorded by the threads serving a lane, read by stats() from any thread.
class histogram
{
public:
    void record(std::uint64_t ns) noexcept
    {
        const auto i = index(ns);
        bump(counts_[i], 1);
        bump(count_, 1);
        bump(sum_, ns);
        auto seen = max_.load(std::memory_order_relaxed);
        while (ns > seen && !max_.compare_exchange_weak(seen, ns, std::memory_order_relaxed)) {
        }
    }

    latency_summary summary() const noexcept
    {
        latency_summary s;
        s.count = count_.load(std::memory_order_relaxed);
        s.max_ns = max_.load(std::memory_order_relaxed);
        if (s.count == 0)
            return s;
        s.mean_ns = static_cast<double>(sum_.load(std::memory_order_relaxed)) / static_cast<double>(s.count);
        s.p50_ns = percentile(0.50, s);
        s.p90_ns = percentile(0.90, s);
        s.p99_ns = percentile(0.99, s);
        return s;
    }

private:
    static constexpr int sub_bits = 3; // 8 buckets per power of two: at most 12.5% above the true value
    static constexpr int buckets = (64 - sub_bits + 1) << sub_bits;

    static void bump(std::atomic<std::uint64_t>& a, std::uint64_t by) noexcept
    {
        a.fetch_add(by, std::memory_order_relaxed); // the reader lane's threads share one histogram
    }

    static std::size_t index(std::uint64_t v) noexcept
    {
        if (v < (1u << sub_bits))
            return static_cast<std::size_t>(v);
        const int k = std::bit_width(v) - 1; // floor(log2 v) >= sub_bits
        const auto sub = (v >> (k - sub_bits)) & ((1u << sub_bits) - 1);
        return static_cast<std::size_t>(((k - sub_bits + 1) << sub_bits) + sub);
    }

    static std::uint64_t upper_bound(std::size_t i) noexcept
    {
        if (i < (1u << sub_bits))
            return i;
        const int k = static_cast<int>(i >> sub_bits) + sub_bits - 1;
        const std::uint64_t sub = i & ((1u << sub_bits) - 1);
        return (((1ull << sub_bits) + sub + 1) << (k - sub_bits)) - 1;
    }

    std::uint64_t percentile(double q, const latency_summary& s) const noexcept
    {
        const auto target = static_cast<std::uint64_t>(q * static_cast<double>(s.count) + 0.5);
        std::uint64_t seen = 0;
        for (std::size_t i = 0; i < counts_.size(); ++i) {
            seen += counts_[i].load(std::memory_order_relaxed);
            if (seen >= target && seen > 0)
                return std::min(upper_bound(i), s.max_ns);
        }
        return s.max_ns;
    }

    std::array<std::atomic<std::uint64_t>, buckets> counts_{};
    std::atomic<std::uint64_t> count_{0}, sum_{0}, max_{0};
};

struct lane_counters
{
    std::atomic<std::uint64_t> completed{0}, failed{0};
    histogram wait, exec;

    lane_stats snapshot() const noexcept
    {
        return {completed.load(std::memory_order_relaxed),
                failed.load(std::memory_order_relaxed),
                wait.summary(),
                exec.summary()};
    }
};

/// Every counter of one actor: written by the threads serving it, read by stats() from any thread.
struct actor_stats
{
    std::array<lane_counters, 3> lanes; ///< write, read, call
    std::atomic<std::uint64_t> rejected{0}, timed_out{0}, cancelled{0}, closed_unexecuted{0};
    std::atomic<std::uint64_t> write_batches{0}, write_batched{0}, write_batch_max{0};
    std::atomic<std::uint64_t> read_batches{0}, read_batched{0};
    std::atomic<std::uint64_t> cached_statements{0};
    std::atomic<std::uint64_t> idle_checkpoints{0};
    std::atomic<std::uint64_t> lock_waits{0};
    histogram lock_wait;

    lane_counters& of(lane l) noexcept { return lanes[static_cast<std::size_t>(l)]; }
    /// Counts a request answered without running (or interrupted) for `reason`.
    void count_abandoned(errc reason) noexcept;
    /// Counts one write transaction of `size` requests.
    void count_write_batch(std::uint64_t size) noexcept;
    /// Everything but the queue depths, which the queues report.
    stats_snapshot snapshot() const noexcept;
};

} // namespace dbactor::detail
