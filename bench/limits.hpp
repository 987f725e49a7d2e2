// The limit lines (issue 14): what W1 and W3 could reach at best, measured in the same run as the systems.
#pragma once

#include "common.hpp"
#include "workloads.hpp"

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace dbactor_bench {

// A limit runs the work of one workload with nothing of dbactor's around it:
// - LIMIT_SAVEPOINT (W3): W3's rows into W3's table with W3's pragmas through the C API on one thread,
//   w3_limit_batch() rows per BEGIN IMMEDIATE … COMMIT, each row inside SAVEPOINT … RELEASE, as dbactor's
//   group commit runs them: the most group commit can reach.
// - LIMIT_PLAIN (W3): the same without the savepoints: the most any batching of these rows can reach.
// - LIMIT_PINGPONG (W1): two threads handing a std::atomic back and forth, spinning, one round trip per
//   sample: the floor of the two hand-offs W1 pays per request.

/// One limit run on `db` (a fresh copy of the workload's template; the ping-pong ignores it).
using limit_fn = std::vector<metric> (*)(run_context& cx, const workload& w, const fs::path& db);

struct limit
{
    std::string name;                 ///< as printed in place of a system: LIMIT_SAVEPOINT, ...
    std::string workload;             ///< the workload it bounds, whose template and pragmas it uses
    std::vector<std::string> metrics; ///< its figures as printed, in order (the line check in output.cpp)
    limit_fn measure;
};

/// Every limit, in the order listed (limits.cpp).
const std::vector<limit>& all_limits();

/// The limits of workload `w`.
std::vector<const limit*> limits_of(const std::string& w);

/// The rows per transaction of the W3 limits: what one dbactor batch can hold (max_batch, at most `tasks`).
std::size_t w3_limit_batch(const config& cfg);

/// One round's figures of one workload: (system or limit name, metric) → value.
using figures = std::map<std::pair<std::string, std::string>, double>;

/// A field of a LIMIT_RATIO line: a ratio (printed x1.234) or a figure in µs; a difference may be negative.
struct limit_field
{
    std::string name;
    bool ratio;
    bool may_be_negative;
};

/// A LIMIT_RATIO line: the workload's figures against its limits (and the limits against RAW).
struct limit_ratio_spec
{
    std::string workload;
    std::string label; ///< as in the RATIO lines: p50, commits_per_s
    bool higher_is_better;
    std::vector<limit_field> fields;
    std::vector<double> (*compute)(const figures& f); ///< one value per field, in order
};

/// Every LIMIT_RATIO line, in the order printed (limits.cpp).
const std::vector<limit_ratio_spec>& limit_ratio_specs();

/// A LIMIT_RATIO field's value as printed.
std::string format_limit_field(const limit_field& f, double v);

} // namespace dbactor_bench
