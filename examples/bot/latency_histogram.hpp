// bot::latency_histogram: handler latencies in a fixed-size log-linear histogram, for the summary.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>

namespace bot {

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

} // namespace bot
