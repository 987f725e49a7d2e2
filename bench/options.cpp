// The command line: --quick, --rounds, --only, --dir, --readers, --max-batch, --insert-order, --cache-mib,
// --subscribers.
#include "common.hpp"
#include "workloads.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <exception>

namespace dbactor_bench {

namespace {

[[noreturn]] void usage_error(const std::string& msg)
{
    std::fprintf(
        stderr,
        "dbactor-bench: %s\n"
        "usage: dbactor-bench [--quick] [--rounds N] [--only W1,W2,W3,W3_NORMAL,W3_FULL,W4,W5] [--dir DIR]\n"
        "                     [--readers N] [--max-batch N] [--insert-order random|ascending]\n"
        "                     [--cache-mib N] [--subscribers N]\n"
        "limits (run with their workload): W1 with LIMIT_PINGPONG; W3_NORMAL and W3_FULL each with\n"
        "LIMIT_SAVEPOINT and LIMIT_PLAIN (docs/PERFORMANCE.md)\n",
        msg.c_str());
    std::exit(2);
}

std::size_t parse_count(const std::string& opt, const std::string& v)
{
    try {
        std::size_t pos = 0;
        const unsigned long long n = std::stoull(v, &pos);
        if (pos != v.size())
            throw std::invalid_argument(v);
        return static_cast<std::size_t>(n);
    }
    catch (const std::exception&) {
        usage_error(fmt::format("{} expects a non-negative integer, got '{}'", opt, v));
    }
}

bool is_workload(const std::string& name)
{
    const auto& wls = all_workloads();
    return std::any_of(wls.begin(), wls.end(), [&](const workload& w) { return w.name == name; });
}

} // namespace

config parse_args(int argc, char** argv)
{
    config c;
    bool rounds_given = false;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc)
                usage_error(a + " needs a value");
            return argv[++i];
        };
        if (a == "--quick")
            c.quick = true;
        else if (a == "--rounds") {
            c.rounds = static_cast<int>(parse_count(a, value()));
            rounds_given = true;
            if (c.rounds < 1)
                usage_error("--rounds must be at least 1");
        }
        else if (a == "--only") {
            std::string list = value();
            std::size_t start = 0;
            while (start <= list.size()) {
                const auto comma = list.find(',', start);
                std::string w =
                    list.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
                std::transform(
                    w.begin(), w.end(), w.begin(), [](unsigned char ch) { return std::toupper(ch); });
                if (w == "W3") {
                    c.only.insert("W3_NORMAL");
                    c.only.insert("W3_FULL");
                }
                else if (is_workload(w))
                    c.only.insert(w);
                else if (!w.empty())
                    usage_error(fmt::format("unknown workload '{}' in --only", w));
                if (comma == std::string::npos)
                    break;
                start = comma + 1;
            }
        }
        else if (a == "--dir")
            c.dir = value();
        else if (a == "--subscribers")
            c.subscribers = parse_count(a, value());
        else if (a == "--readers")
            c.readers = static_cast<unsigned>(parse_count(a, value()));
        else if (a == "--max-batch") {
            c.max_batch = parse_count(a, value());
            if (*c.max_batch < 1)
                usage_error("--max-batch must be at least 1 (1 = group commit off)");
        }
        else if (a == "--cache-mib") {
            c.cache_mib = parse_count(a, value());
            if (c.cache_mib > 20)
                usage_error("--cache-mib is at most 20 (DESIGN.md: 20 MiB or less of page cache)");
        }
        else if (a == "--insert-order") {
            const std::string v = value();
            if (v != "random" && v != "ascending")
                usage_error("--insert-order is 'random' (the default) or 'ascending'");
            c.ascending_inserts = v == "ascending";
        }
        else if (a == "--help" || a == "-h")
            usage_error("runs workloads W1-W5 (DESIGN.md) through RAW, MUTEX and DBACTOR");
        else
            usage_error(fmt::format("unknown option '{}'", a));
    }
    if (c.quick) {
        if (!rounds_given)
            c.rounds = 1;
        c.rows = 2'000;
        c.w1 = 200;
        c.w2 = 2'000;
        c.w3 = 256;
        c.w4 = 2'000;
        c.w5 = 1'000;
        c.members_per_guild = 5;
    }
    if (c.dir.empty())
        c.dir = fs::temp_directory_path();
    return c;
}

} // namespace dbactor_bench
