// The output lines (output.hpp) and their check: the documented form, no zero figure, one line per run
// (of a system or of a limit).
#include "output.hpp"

#include "limits.hpp"
#include "workloads.hpp"

#include <algorithm>
#include <cstdio>
#include <regex>
#include <string>
#include <vector>

namespace dbactor_bench {

std::string output::format_value(const metric& m)
{
    if (m.name.ends_with("_us"))
        return fmt::format("{:.2f}", m.value);
    return fmt::format("{:.0f}", m.value);
}

namespace {

/// The alternatives of the line check, from the tables: "(RAW|MUTEX|DBACTOR)", "(W1 mean_us=N p50_us=N
/// p99_us=N|W2 ops_per_s=N|...)" and "W1 p50|W1 p99|...".
std::string systems_alt()
{
    std::string alt;
    for (auto s : all_systems)
        alt.append(alt.empty() ? "" : "|").append(system_name(s));
    return "(" + alt + ")";
}

std::string bodies_alt(const std::string& num)
{
    std::string alt;
    for (const auto& w : all_workloads()) {
        alt += (alt.empty() ? "" : "|") + w.name;
        for (const auto& m : w.metrics)
            alt += " " + m + "=" + num;
    }
    return "(" + alt + ")";
}

std::string ratios_alt()
{
    std::string alt;
    for (const auto& r : ratio_specs())
        alt += (alt.empty() ? "" : "|") + r.workload + " " + r.label;
    return alt;
}

/// "LIMIT_SAVEPOINT W3_NORMAL commits_per_s=N|...|LIMIT_PINGPONG W1 mean_us=N p50_us=N p99_us=N".
std::string limit_bodies_alt(const std::string& num)
{
    std::string alt;
    for (const auto& l : all_limits()) {
        alt += (alt.empty() ? "" : "|") + l.name + " " + l.workload;
        for (const auto& m : l.metrics)
            alt += " " + m + "=" + num;
    }
    return "(" + alt + ")";
}

/// A field name as a regex: the LIMIT_RATIO names hold ( ) and +.
std::string escaped(const std::string& name)
{
    return std::regex_replace(name, std::regex(R"([()+])"), R"(\$&)");
}

/// "W1 p50 dbactor-raw_us=N ... lower_is_better|W3_NORMAL commits_per_s dbactor/savepoint=xN ...".
std::string limit_ratios_alt(const std::string& num)
{
    std::string alt;
    for (const auto& r : limit_ratio_specs()) {
        alt += fmt::format("{}{} {}", alt.empty() ? "" : "|", r.workload, r.label);
        for (const auto& f : r.fields)
            alt += fmt::format(
                " {}={}{}{}", escaped(f.name), f.ratio ? "x" : "", f.may_be_negative ? "-?" : "", num);
        alt += r.higher_is_better ? " higher_is_better" : " lower_is_better";
    }
    return "(" + alt + ")";
}

/// The line without the fields that may be zero or negative (a difference), for the zero-figure check.
std::string without_signed_fields(const std::string& l)
{
    static const std::regex signed_re = [] {
        std::string alt;
        for (const auto& r : limit_ratio_specs())
            for (const auto& f : r.fields)
                if (f.may_be_negative)
                    alt.append(alt.empty() ? "" : "|").append(escaped(f.name));
        return std::regex(fmt::format(" ({})=\\S+", alt));
    }();
    return std::regex_replace(l, signed_re, "");
}

bool matches_any(const std::string& l, const std::vector<std::regex>& res)
{
    return std::any_of(res.begin(), res.end(), [&](const std::regex& re) { return std::regex_match(l, re); });
}

} // namespace

int output::check_lines(const config& cfg) const
{
    const std::string num = R"([0-9]+(\.[0-9]+)?)";
    const std::string sys = systems_alt();
    const std::string body = bodies_alt(num);
    const std::string ratio = ratios_alt();
    const std::string limit_body = limit_bodies_alt(num);
    const std::string limit_ratio = limit_ratios_alt(num);
    const std::regex result_re("^" + sys + " " + body + "$");
    const std::regex limit_re("^" + limit_body + "$");
    const std::vector<std::regex> others{
        std::regex("^MEDIAN " + sys + " " + body + "$"),
        std::regex("^RATIO (" + ratio + ") dbactor/raw=x" + num + " mutex/raw=x" + num +
                   " (higher|lower)_is_better round=[0-9]+$"),
        std::regex("^MEDIAN (" + ratio + ") dbactor/raw=x" + num + " mutex/raw=x" + num +
                   " (higher|lower)_is_better$"),
        std::regex("^MEDIAN " + limit_body + "$"),
        std::regex("^LIMIT_RATIO " + limit_ratio + " round=[0-9]+$"),
        std::regex("^MEDIAN LIMIT_RATIO " + limit_ratio + "$"),
    };
    int bad = 0;
    std::size_t results = 0, limit_results = 0;
    for (const auto& l : lines_) {
        const bool is_result = std::regex_match(l, result_re);
        const bool is_limit = !is_result && std::regex_match(l, limit_re);
        results += is_result;
        limit_results += is_limit;
        if (!is_result && !is_limit && !matches_any(l, others)) {
            std::fprintf(stderr, "dbactor-bench: FAILED: malformed output line: %s\n", l.c_str());
            ++bad;
        }
        // A zero figure means something did not run (a ratio of 0 or a rate of 0).
        const std::string figs = without_signed_fields(l);
        if (figs.find("=0 ") != std::string::npos || figs.ends_with("=0") ||
            figs.find("=x0.000") != std::string::npos) {
            std::fprintf(stderr, "dbactor-bench: FAILED: zero figure: %s\n", l.c_str());
            ++bad;
        }
    }
    const auto rounds = static_cast<std::size_t>(cfg.rounds);
    std::size_t workloads = 0, limits = 0;
    for (const auto& w : all_workloads())
        if (cfg.only.empty() || cfg.only.count(w.name)) {
            ++workloads;
            limits += limits_of(w.name).size();
        }
    if (results != workloads * 3 * rounds || limit_results != limits * rounds) {
        std::fprintf(stderr,
                     "dbactor-bench: FAILED: %zu result lines and %zu limit lines, expected %zu and %zu\n",
                     results,
                     limit_results,
                     workloads * 3 * rounds,
                     limits * rounds);
        ++bad;
    }
    return bad ? 3 : 0;
}

void output::emit(const std::string& line)
{
    std::fputs(line.c_str(), stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);
    lines_.push_back(line);
}
void output::emit_comment(const std::string& line)
{
    std::printf("# %s\n", line.c_str());
    std::fflush(stdout);
}

} // namespace dbactor_bench
