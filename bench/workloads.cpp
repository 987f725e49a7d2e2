// The table of workloads and of ratio lines: a new workload is a row in each, and its measure function.
#include "workloads.hpp"

namespace dbactor_bench {

const std::vector<workload>& all_workloads()
{
    static const std::vector<workload> wls{
        {"W1", true, false, {"mean_us", "p50_us", "p99_us"}, measure_w1},
        {"W2", true, false, {"ops_per_s"}, measure_w2},
        {"W3_NORMAL", false, false, {"commits_per_s"}, measure_w3},
        {"W3_FULL", true, false, {"commits_per_s"}, measure_w3},
        {"W4", true, false, {"rows_per_s"}, measure_w4},
        {"W5", true, true, {"events_per_s", "p99_us"}, measure_w5},
    };
    return wls;
}

const std::vector<ratio_spec>& ratio_specs()
{
    static const std::vector<ratio_spec> specs{
        {"W1", "p50_us", "p50", false},
        {"W1", "p99_us", "p99", false},
        {"W2", "ops_per_s", "ops_per_s", true},
        {"W3_NORMAL", "commits_per_s", "commits_per_s", true},
        {"W3_FULL", "commits_per_s", "commits_per_s", true},
        {"W4", "rows_per_s", "rows_per_s", true},
        {"W5", "events_per_s", "events_per_s", true},
        {"W5", "p99_us", "p99", false},
    };
    return specs;
}

} // namespace dbactor_bench
