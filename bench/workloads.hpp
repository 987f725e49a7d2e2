// The workloads W1–W5 (DESIGN.md): what each is, how it is measured, which ratios it prints. Add one here.
#pragma once

#include "common.hpp"
#include "dataset.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace dbactor_bench {

/// W5's figures in a bot database, checked before and after each run (w5.cpp).
struct totals
{
    std::int64_t members, messages, warnings, bans;
};
totals bot_totals(const fs::path& db);

/// What a measure function works with: the configuration, the data, and what a DBACTOR run reports.
struct run_context
{
    const config& cfg;
    const dataset& data;
    totals w5_before{};     ///< the bot template's totals
    std::string actor_note; ///< the actor's own counters for the last DBACTOR run, printed as a comment
};

struct workload;

/// One system, one workload, on `db` (a fresh copy of its template): the figures to print, each checked.
using measure_fn = std::vector<metric> (*)(run_context& cx,
                                           const workload& w,
                                           system_id s,
                                           const fs::path& db);

struct workload
{
    std::string name;                 ///< W1, W2, W3_NORMAL, W3_FULL, W4, W5
    bool full_sync;                   ///< synchronous=FULL (the library's default) or NORMAL
    bool bot_schema;                  ///< W5 runs on its own (bot) database
    std::vector<std::string> metrics; ///< its figures as printed, in order (the line check in output.cpp)
    measure_fn measure;
};

/// Every workload, in the order run and printed (workloads.cpp).
const std::vector<workload>& all_workloads();

/// What a ratio line compares, and which way is better.
struct ratio_spec
{
    std::string workload;
    std::string metric; ///< metric name as printed
    std::string label;  ///< as in the RATIO line: p50, ops_per_s, ...
    bool higher_is_better;
};

/// Every ratio line, in the order printed (workloads.cpp).
const std::vector<ratio_spec>& ratio_specs();

// kv_workloads.cpp
void make_kv_template(const fs::path& p, const dataset& data);
std::vector<metric> measure_w1(run_context& cx, const workload& w, system_id s, const fs::path& db);
std::vector<metric> measure_w2(run_context& cx, const workload& w, system_id s, const fs::path& db);
std::vector<metric> measure_w3(run_context& cx, const workload& w, system_id s, const fs::path& db);
std::vector<metric> measure_w4(run_context& cx, const workload& w, system_id s, const fs::path& db);

// w5.cpp
void make_bot_template(const fs::path& p, const config& cfg, const dataset& data);
std::vector<metric> measure_w5(run_context& cx, const workload& w, system_id s, const fs::path& db);

} // namespace dbactor_bench
