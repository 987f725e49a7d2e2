// Shared by every part of the bench: the configuration, the systems' names, a metric, checks, files.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>

#include <fmt/core.h>

namespace boost::asio {} // namespace boost::asio

namespace dbactor_bench {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using clock_type = std::chrono::steady_clock;

// ---------------------------------------------------------------------------------------------------------
// Configuration

struct config
{
    bool quick = false;
    int rounds = 5;
    std::set<std::string> only; // workload names; empty = all
    fs::path dir;
    unsigned readers = 0;
    std::size_t subscribers = 0; ///< change feeds DBACTOR runs with, each drained on one io_context thread
    std::optional<std::size_t> max_batch;
    bool ascending_inserts = false; ///< W3/W4 insert ids above the prefill's (appends) instead of random ids
    std::size_t cache_mib = 0; ///< PRAGMA cache_size for every system, in MiB; 0 = SQLite's default (2 MiB)

    // Sizes (DESIGN.md); --quick shrinks them.
    std::size_t rows = 100'000;
    std::size_t w1 = 20'000;
    std::size_t w2 = 200'000;
    std::size_t w3 = 20'000;
    std::size_t w4 = 100'000;
    std::size_t w5 = 20'000;
    std::size_t guilds = 1'000;
    std::size_t members_per_guild = 100;
    std::size_t tasks = 64;
    std::size_t pool_threads = 4;
};

/// The command line (options.cpp); exits with status 2 on a usage error.
config parse_args(int argc, char** argv);

// ---------------------------------------------------------------------------------------------------------
// The systems under test. A new baseline: its id here, its name in system_name, its run in systems.hpp.

enum class system_id
{
    raw,
    mutex,
    actor,
};
constexpr std::array<system_id, 3> all_systems{system_id::raw, system_id::mutex, system_id::actor};

inline const char* system_name(system_id s)
{
    switch (s) {
    case system_id::raw: return "RAW";
    case system_id::mutex: return "MUTEX";
    case system_id::actor: return "DBACTOR";
    }
    return "?";
}

struct metric
{
    std::string name; ///< as printed: p50_us, ops_per_s, ...
    double value;
};

inline void fail(const std::string& msg)
{
    throw std::runtime_error(msg);
}

inline void check_equal(const std::string& what, std::int64_t got, std::int64_t want)
{
    if (got != want)
        fail(fmt::format("{}: got {}, expected {}", what, got, want));
}

inline void remove_db(const fs::path& p)
{
    std::error_code ec;
    fs::remove(p, ec);
    fs::remove(fs::path(p.string() + "-wal"), ec);
    fs::remove(fs::path(p.string() + "-shm"), ec);
}

template <class T>
struct is_tuple : std::false_type
{};
template <class... T>
struct is_tuple<std::tuple<T...>> : std::true_type
{};

constexpr const char* common_pragmas =
    "PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON; PRAGMA busy_timeout=5000; "
    "PRAGMA journal_size_limit=67108864;";

/// --cache-mib, the same for every system: PRAGMA cache_size in KiB (negative), or empty for the default.
inline std::string cache_pragma_value;

} // namespace dbactor_bench
