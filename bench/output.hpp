// The output: result, limit, RATIO, LIMIT_RATIO and MEDIAN lines as printed, `#` comments, and their check.
#pragma once

#include "common.hpp"

#include <string>
#include <vector>

namespace dbactor_bench {

class output
{
public:
    /// A measured line: printed, flushed, and kept for check_lines.
    void emit(const std::string& line);
    /// A `# ` comment line, never checked.
    static void emit_comment(const std::string& line);
    /// A figure as printed: latencies (`_us`) with two decimals, rates as integers.
    static std::string format_value(const metric& m);
    /// Every line printed must have the documented form, with finite positive figures; 3 otherwise.
    int check_lines(const config& cfg) const;

private:
    std::vector<std::string> lines_;
};

} // namespace dbactor_bench
