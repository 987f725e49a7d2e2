// The driver: the templates, the rounds (systems rotated), each run's line, the ratios and the medians.
#pragma once

#include "common.hpp"
#include "dataset.hpp"
#include "limits.hpp"
#include "output.hpp"
#include "workloads.hpp"

#include <map>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace dbactor_bench {

class bench
{
public:
    bench(config c, fs::path work);

    /// Every round, every selected workload through every system; the exit status (check_lines).
    int run();

private:
    void make_templates();
    void header();
    /// One workload in one round: its systems and its limits, in an order that rotates with the round.
    void run_workload(const workload& w, int round);
    /// One system (or, with `lim`, one limit), one workload, on a fresh copy of the template.
    std::vector<metric> measure(const workload& w, system_id s, const limit* lim = nullptr);
    void ratios(const workload& w, const std::map<system_id, std::vector<metric>>& results, int round);
    void limit_ratios(const workload& w, const figures& f, int round);
    void summary();
    void limit_summary();

    config cfg_;
    fs::path work_;
    dataset data_;
    run_context cx_;
    fs::path kv_template_, bot_template_;
    output out_;
    std::map<std::tuple<std::string, system_id, std::string>, std::vector<double>> values_;
    std::map<std::pair<std::string, std::string>, std::pair<std::vector<double>, std::vector<double>>>
        ratio_values_;
    /// (workload, limit name, metric) → per-round values; (workload, label) → per-round fields
    std::map<std::tuple<std::string, std::string, std::string>, std::vector<double>> limit_values_;
    std::map<std::pair<std::string, std::string>, std::vector<std::vector<double>>> limit_ratio_values_;
};

} // namespace dbactor_bench
