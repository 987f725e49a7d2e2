// Statistics over the measured figures: mean and percentiles of latencies, the median over rounds.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace dbactor_bench {

inline double percentile_us(std::vector<std::int64_t> v, double p)
{
    if (v.empty())
        return 0;
    std::sort(v.begin(), v.end());
    auto rank = static_cast<std::size_t>(std::ceil(p * static_cast<double>(v.size())));
    rank = std::clamp<std::size_t>(rank, 1, v.size());
    return static_cast<double>(v[rank - 1]) / 1000.0;
}

inline double mean_us(const std::vector<std::int64_t>& v)
{
    if (v.empty())
        return 0;
    long double s = 0;
    for (auto x : v)
        s += static_cast<long double>(x);
    return static_cast<double>(s / static_cast<long double>(v.size())) / 1000.0;
}

inline double median(std::vector<double> v)
{
    if (v.empty())
        return 0;
    std::sort(v.begin(), v.end());
    const auto n = v.size();
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

} // namespace dbactor_bench
