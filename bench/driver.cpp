// The driver (driver.hpp): rounds with the systems rotated, RATIO lines per round, MEDIAN lines at the end.
#include "driver.hpp"

#include "stats.hpp"

#include <sqlite3.h>

#include <fmt/core.h>

#include <algorithm>
#include <array>

namespace dbactor_bench {

bench::bench(config c, fs::path work)
    : cfg_(std::move(c)), work_(std::move(work)), data_(make_dataset(cfg_)), cx_{cfg_, data_}
{}

void bench::make_templates()
{
    kv_template_ = work_ / "kv-template.db";
    bot_template_ = work_ / "bot-template.db";
    make_kv_template(kv_template_, data_);
    make_bot_template(bot_template_, cfg_, data_);
    cx_.w5_before = bot_totals(bot_template_);
}

int bench::run()
{
    header();
    make_templates();
    const auto& wls = all_workloads();
    for (int round = 1; round <= cfg_.rounds; ++round) {
        // Rotate the order of the systems from round to round, so that none always runs first (cold)
        // or last (after the others have warmed the OS page cache and the CPU frequency).
        std::array<system_id, 3> order = all_systems;
        std::rotate(order.begin(), order.begin() + (round - 1) % 3, order.end());
        output::emit_comment(fmt::format("round {}/{}: order {} {} {}",
                                         round,
                                         cfg_.rounds,
                                         system_name(order[0]),
                                         system_name(order[1]),
                                         system_name(order[2])));
        for (const auto& w : wls) {
            if (!cfg_.only.empty() && !cfg_.only.count(w.name))
                continue;
            std::map<system_id, std::vector<metric>> results;
            for (auto s : order) {
                auto m = measure(w, s);
                std::string line = fmt::format("{} {}", system_name(s), w.name);
                for (const auto& x : m)
                    line += fmt::format(" {}={}", x.name, output::format_value(x));
                out_.emit(line);
                if (s == system_id::actor && !cx_.actor_note.empty())
                    output::emit_comment(std::exchange(cx_.actor_note, {}));
                results[s] = std::move(m);
            }
            for (auto s : all_systems)
                for (const auto& x : results[s])
                    values_[{w.name, s, x.name}].push_back(x.value);
            ratios(w, results, round);
        }
    }
    summary();
    return out_.check_lines(cfg_);
}

void bench::header()
{
    output::emit_comment(
        fmt::format("dbactor-bench: rows={} W1={} W2={} W3={} W4={} W5={} tasks={} rounds={}{}",
                    cfg_.rows,
                    cfg_.w1,
                    cfg_.w2,
                    cfg_.w3,
                    cfg_.w4,
                    cfg_.w5,
                    cfg_.tasks,
                    cfg_.rounds,
                    cfg_.quick ? " (quick)" : ""));
    output::emit_comment(
        fmt::format("sqlite {}; MUTEX pool threads={}; DBACTOR readers={} max_batch={}; insert ids {}; "
                    "page cache {}; dir {}",
                    sqlite3_libversion(),
                    cfg_.pool_threads,
                    cfg_.readers,
                    cfg_.max_batch ? fmt::format("{}", *cfg_.max_batch) : "default",
                    cfg_.ascending_inserts ? "ascending" : "random",
                    cfg_.cache_mib ? fmt::format("{} MiB", cfg_.cache_mib) : "SQLite's default (2 MiB)",
                    work_.string()));
    output::emit_comment(
        fmt::format("W5: the bot example's traffic on its schema: {} events, {} requests, {:.0f}% of them "
                    "writes; {} guilds",
                    data_.events.size(),
                    data_.w5_requests,
                    100.0 * static_cast<double>(data_.w5_writes) /
                        static_cast<double>(std::max<std::int64_t>(data_.w5_requests, 1)),
                    cfg_.guilds));
    output::emit_comment(
        "synchronous=FULL except W3_NORMAL; ratio = system/raw of the same round: for throughput "
        "higher is better, for latency lower is better");
}

std::vector<metric> bench::measure(const workload& w, system_id s)
{
    const fs::path db = work_ / "run.db";
    remove_db(db);
    fs::copy_file(w.bot_schema ? bot_template_ : kv_template_, db, fs::copy_options::overwrite_existing);
    auto out = w.measure(cx_, w, s, db);
    remove_db(db);
    return out;
}

void bench::ratios(const workload& w, const std::map<system_id, std::vector<metric>>& results, int round)
{
    auto get = [&](system_id s, const std::string& name) {
        for (const auto& m : results.at(s))
            if (m.name == name)
                return m.value;
        return 0.0;
    };
    for (const auto& r : ratio_specs()) {
        if (r.workload != w.name)
            continue;
        const double raw = get(system_id::raw, r.metric);
        const double a = raw > 0 ? get(system_id::actor, r.metric) / raw : 0;
        const double m = raw > 0 ? get(system_id::mutex, r.metric) / raw : 0;
        ratio_values_[{r.workload, r.label}].first.push_back(a);
        ratio_values_[{r.workload, r.label}].second.push_back(m);
        out_.emit(fmt::format("RATIO {} {} dbactor/raw=x{:.3f} mutex/raw=x{:.3f} {} round={}",
                              r.workload,
                              r.label,
                              a,
                              m,
                              r.higher_is_better ? "higher_is_better" : "lower_is_better",
                              round));
    }
}

void bench::summary()
{
    output::emit_comment(fmt::format("medians over {} round(s)", cfg_.rounds));
    for (const auto& w : all_workloads())
        for (auto s : all_systems) {
            const std::string& wl = w.name;
            std::string line;
            for (const auto& [key, vals] : values_)
                if (std::get<0>(key) == wl && std::get<1>(key) == s)
                    line += fmt::format(
                        " {}={}", std::get<2>(key), output::format_value({std::get<2>(key), median(vals)}));
            if (!line.empty())
                out_.emit(fmt::format("MEDIAN {} {}{}", system_name(s), wl, line));
        }
    for (const auto& r : ratio_specs()) {
        auto it = ratio_values_.find({r.workload, r.label});
        if (it == ratio_values_.end())
            continue;
        out_.emit(fmt::format("MEDIAN {} {} dbactor/raw=x{:.3f} mutex/raw=x{:.3f} {}",
                              r.workload,
                              r.label,
                              median(it->second.first),
                              median(it->second.second),
                              r.higher_is_better ? "higher_is_better" : "lower_is_better"));
    }
}

} // namespace dbactor_bench
