// main: parses the command line, makes the work directory, runs the bench; 1 on an error, 3 on a bad line.
//
// dbactor-bench: workloads W1–W5 of DESIGN.md through RAW (the C API on one thread), MUTEX (std::mutex around
// one SQLiteCpp connection, calls posted to an asio::thread_pool) and DBACTOR, alternated over rounds on
// fresh copies of one prefilled database, with per-round ratios to RAW and their medians.
//
// Every request is written once, as a struct templated on the connection type (`op(c)`), so the three
// systems run exactly the same SQL: RAW and MUTEX through small adapters with the same execute / query_one /
// query surface as dbactor::connection.
//
// Where things are: common.hpp (config, systems' names, checks), options.cpp (command line), stats.hpp,
// output.hpp/.cpp (lines and their check), dataset.hpp/.cpp (the data), requests.hpp (W1–W4's requests),
// bot_requests.hpp (W5's), raw.hpp (RAW), mutex.hpp (MUTEX), runners.hpp (how requests are run),
// systems.hpp (DBACTOR, and one run through each system: a new baseline goes there), workloads.hpp/.cpp
// (the table of workloads and ratios: a new workload goes there), kv_workloads.cpp (W1–W4), w5.cpp (W5),
// limits.hpp/.cpp (the limit lines of W1 and W3 and their LIMIT_RATIO lines), driver.hpp/.cpp (rounds,
// ratios, medians).
#include "common.hpp"
#include "driver.hpp"

#include <fmt/core.h>

#include <cstdio>
#include <exception>
#include <filesystem>
#include <string>

#include <unistd.h>

namespace dbactor_bench {

namespace {

/// A unique directory under --dir, removed at exit.
class work_dir
{
public:
    explicit work_dir(const fs::path& parent)
    {
        fs::create_directories(parent);
        std::string tmpl = (parent / "dbactor-bench-XXXXXX").string();
        if (!::mkdtemp(tmpl.data()))
            fail(fmt::format("cannot create a directory under {}", parent.string()));
        path_ = tmpl;
    }
    work_dir(const work_dir&) = delete;
    work_dir& operator=(const work_dir&) = delete;
    ~work_dir()
    {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    const fs::path& path() const { return path_; }

private:
    fs::path path_;
};

} // namespace

} // namespace dbactor_bench

int main(int argc, char** argv)
{
    using namespace dbactor_bench;
    const config cfg = parse_args(argc, argv);
    if (cfg.cache_mib > 0)
        cache_pragma_value = std::to_string(-static_cast<long long>(cfg.cache_mib) * 1024);
    try {
        work_dir dir(cfg.dir);
        bench b(cfg, dir.path());
        return b.run();
    }
    catch (const std::exception& e) {
        std::fprintf(stderr, "dbactor-bench: FAILED: %s\n", e.what());
        return 1;
    }
}
