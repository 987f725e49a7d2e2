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
        for (const auto& w : all_workloads())
            if (cfg_.only.empty() || cfg_.only.count(w.name))
                run_workload(w, round);
    }
    summary();
    return out_.check_lines(cfg_);
}

void bench::run_workload(const workload& w, int round)
{
    // The systems and the workload's limits rotate together: a limit is not always measured last either.
    // Without limits this is the round's order printed above.
    struct runner
    {
        system_id sys;
        const limit* lim;
        std::string name() const { return lim ? lim->name : system_name(sys); }
    };
    std::vector<runner> order;
    for (auto s : all_systems)
        order.push_back({s, nullptr});
    for (const limit* l : limits_of(w.name))
        order.push_back({system_id::raw, l});
    std::rotate(order.begin(), order.begin() + (round - 1) % static_cast<int>(order.size()), order.end());
    if (order.size() > all_systems.size()) {
        std::string names;
        for (const auto& r : order)
            names.append(" ").append(r.name());
        output::emit_comment(fmt::format("{}: order{}", w.name, names));
    }
    std::map<system_id, std::vector<metric>> results;
    figures f;
    for (const auto& r : order) {
        auto m = measure(w, r.sys, r.lim);
        std::string line = fmt::format("{} {}", r.name(), w.name);
        for (const auto& x : m) {
            line += fmt::format(" {}={}", x.name, output::format_value(x));
            f[{r.name(), x.name}] = x.value;
            if (r.lim)
                limit_values_[{w.name, r.name(), x.name}].push_back(x.value);
        }
        out_.emit(line);
        if (!r.lim && r.sys == system_id::actor && !cx_.actor_note.empty())
            output::emit_comment(std::exchange(cx_.actor_note, {}));
        if (!r.lim)
            results[r.sys] = std::move(m);
    }
    for (auto s : all_systems)
        for (const auto& x : results[s])
            values_[{w.name, s, x.name}].push_back(x.value);
    ratios(w, results, round);
    limit_ratios(w, f, round);
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
    output::emit_comment(fmt::format(
        "sqlite {}; MUTEX pool threads={}; DBACTOR readers={} max_batch={} subscribers={}; insert ids {}; "
        "page cache {}; dir {}",
        sqlite3_libversion(),
        cfg_.pool_threads,
        cfg_.readers,
        cfg_.max_batch ? fmt::format("{}", *cfg_.max_batch) : "default",
        cfg_.subscribers,
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
    output::emit_comment(fmt::format(
        "limits: LIMIT_SAVEPOINT = W3's rows through the C API, {} per BEGIN IMMEDIATE … COMMIT, "
        "each in SAVEPOINT … RELEASE; LIMIT_PLAIN = the same without savepoints; LIMIT_PINGPONG = "
        "one round trip between two threads spinning on a std::atomic (W1's hand-off floor); "
        "LIMIT_RATIO = DBACTOR against them, same round",
        w3_limit_batch(cfg_)));
}

std::vector<metric> bench::measure(const workload& w, system_id s, const limit* lim)
{
    const fs::path db = work_ / "run.db";
    remove_db(db);
    fs::copy_file(w.bot_schema ? bot_template_ : kv_template_, db, fs::copy_options::overwrite_existing);
    auto out = lim ? lim->measure(cx_, w, db) : w.measure(cx_, w, s, db);
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

void bench::limit_ratios(const workload& w, const figures& f, int round)
{
    for (const auto& r : limit_ratio_specs()) {
        if (r.workload != w.name)
            continue;
        const std::vector<double> v = r.compute(f);
        limit_ratio_values_[{r.workload, r.label}].push_back(v);
        std::string line = fmt::format("LIMIT_RATIO {} {}", r.workload, r.label);
        for (std::size_t i = 0; i < r.fields.size(); ++i)
            line += fmt::format(" {}={}", r.fields[i].name, format_limit_field(r.fields[i], v[i]));
        out_.emit(fmt::format(
            "{} {} round={}", line, r.higher_is_better ? "higher_is_better" : "lower_is_better", round));
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
    limit_summary();
}

void bench::limit_summary()
{
    for (const auto& w : all_workloads())
        for (const limit* l : limits_of(w.name)) {
            std::string line;
            for (const auto& m : l->metrics) {
                auto it = limit_values_.find({w.name, l->name, m});
                if (it != limit_values_.end())
                    line += fmt::format(" {}={}", m, output::format_value({m, median(it->second)}));
            }
            if (!line.empty())
                out_.emit(fmt::format("MEDIAN {} {}{}", l->name, w.name, line));
        }
    for (const auto& r : limit_ratio_specs()) {
        auto it = limit_ratio_values_.find({r.workload, r.label});
        if (it == limit_ratio_values_.end())
            continue;
        std::string line = fmt::format("MEDIAN LIMIT_RATIO {} {}", r.workload, r.label);
        for (std::size_t i = 0; i < r.fields.size(); ++i) {
            std::vector<double> per_round;
            for (const auto& v : it->second)
                per_round.push_back(v[i]);
            line +=
                fmt::format(" {}={}", r.fields[i].name, format_limit_field(r.fields[i], median(per_round)));
        }
        out_.emit(fmt::format("{} {}", line, r.higher_is_better ? "higher_is_better" : "lower_is_better"));
    }
}

} // namespace dbactor_bench
