// The driver: the templates, the rounds (systems rotated), each run's line, the ratios and the medians.
#pragma once

#include "common.hpp"
#include "dataset.hpp"
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
    /// One system, one workload, on a fresh copy of the template.
    std::vector<metric> measure(const workload& w, system_id s);
    void ratios(const workload& w, const std::map<system_id, std::vector<metric>>& results, int round);
    void summary();

    config cfg_;
    fs::path work_;
    dataset data_;
    run_context cx_;
    fs::path kv_template_, bot_template_;
    output out_;
    std::map<std::tuple<std::string, system_id, std::string>, std::vector<double>> values_;
    std::map<std::pair<std::string, std::string>, std::pair<std::vector<double>, std::vector<double>>>
        ratio_values_;
};

} // namespace dbactor_bench
