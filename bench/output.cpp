// The output lines (output.hpp) and their check: the documented form, no zero figure, one line per run.
#include "output.hpp"

#include "workloads.hpp"

#include <cstdio>
#include <regex>

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
        alt += (alt.empty() ? "" : "|") + std::string(system_name(s));
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

} // namespace

int output::check_lines(const config& cfg) const
{
    const std::string num = R"([0-9]+(\.[0-9]+)?)";
    const std::string sys = systems_alt();
    const std::string body = bodies_alt(num);
    const std::string ratio = ratios_alt();
    const std::regex result_re("^" + sys + " " + body + "$");
    const std::regex median_re("^MEDIAN " + sys + " " + body + "$");
    const std::regex ratio_re("^RATIO (" + ratio + ") dbactor/raw=x" + num + " mutex/raw=x" + num +
                              " (higher|lower)_is_better round=[0-9]+$");
    const std::regex median_ratio_re("^MEDIAN (" + ratio + ") dbactor/raw=x" + num + " mutex/raw=x" + num +
                                     " (higher|lower)_is_better$");
    int bad = 0;
    std::size_t results = 0;
    for (const auto& l : lines_) {
        const bool is_result = std::regex_match(l, result_re);
        results += is_result;
        if (!is_result && !std::regex_match(l, ratio_re) && !std::regex_match(l, median_re) &&
            !std::regex_match(l, median_ratio_re)) {
            std::fprintf(stderr, "dbactor-bench: FAILED: malformed output line: %s\n", l.c_str());
            ++bad;
        }
        // A zero figure means something did not run (a ratio of 0 or a rate of 0).
        if (l.find("=0 ") != std::string::npos || l.ends_with("=0") ||
            l.find("=x0.000") != std::string::npos) {
            std::fprintf(stderr, "dbactor-bench: FAILED: zero figure: %s\n", l.c_str());
            ++bad;
        }
    }
    const std::size_t workloads = cfg.only.empty() ? all_workloads().size() : cfg.only.size();
    if (results != workloads * 3 * static_cast<std::size_t>(cfg.rounds)) {
        std::fprintf(stderr,
                     "dbactor-bench: FAILED: %zu result lines, expected %zu\n",
                     results,
                     workloads * 3 * static_cast<std::size_t>(cfg.rounds));
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
