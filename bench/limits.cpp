// The limits (limits.hpp): W3's rows committed in batches through the C API, and the two-thread ping-pong.
#include "limits.hpp"

#include "raw.hpp"
#include "requests.hpp"
#include "stats.hpp"

#include <dbactor/options.hpp>

#include <fmt/core.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <thread>

namespace dbactor_bench {

namespace {

// The statements of dbactor's group commit (src/dbactor/detail/session.cpp), each prepared once.
constexpr const char* begin_immediate = "BEGIN IMMEDIATE";
constexpr const char* commit = "COMMIT";
constexpr const char* savepoint = "SAVEPOINT dbactor_request";
constexpr const char* release = "RELEASE dbactor_request";

/// W3's rows, w3_limit_batch() per transaction, each in its own savepoint or not.
std::vector<metric> run_w3_limit(run_context& cx, const workload& w, const fs::path& db, bool savepoints)
{
    const auto& rows = cx.data.w3_rows;
    const std::size_t batch = w3_limit_batch(cx.cfg);
    std::int64_t inserted = 0;
    double secs = 0;
    {
        raw_conn c(db, w.full_sync); // RAW's pragmas: the same as W3's three systems
        const auto start = clock_type::now();
        for (std::size_t i = 0; i < rows.size(); i += batch) {
            c.execute(begin_immediate);
            for (std::size_t k = i; k < std::min(rows.size(), i + batch); ++k) {
                if (savepoints)
                    c.execute(savepoint);
                inserted += c.execute(kv_insert, rows[k].id, rows[k].guild, rows[k].val);
                if (savepoints)
                    c.execute(release);
            }
            c.execute(commit);
        }
        secs = std::chrono::duration<double>(clock_type::now() - start).count();
    }
    const auto n = static_cast<std::int64_t>(rows.size());
    const std::string who = fmt::format("{} {}", savepoints ? "LIMIT_SAVEPOINT" : "LIMIT_PLAIN", w.name);
    check_equal(who + " rows inserted", inserted, n);
    check_equal(who + " rows in kv afterwards",
                scalar(db, "SELECT count(*) FROM kv"),
                static_cast<std::int64_t>(cx.cfg.rows) + n);
    return {{"commits_per_s", static_cast<double>(n) / secs}};
}

std::vector<metric> measure_w3_savepoint(run_context& cx, const workload& w, const fs::path& db)
{
    return run_w3_limit(cx, w, db, true);
}

std::vector<metric> measure_w3_plain(run_context& cx, const workload& w, const fs::path& db)
{
    return run_w3_limit(cx, w, db, false);
}

inline void cpu_relax() noexcept
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause(); // as the library's own spin (detail/spin.hpp)
#endif
}

/// The ball: odd while a ping is on its way to the partner, even when it came back; `stop` ends the partner.
struct alignas(64) ball
{
    static constexpr std::uint64_t stop = ~std::uint64_t{0}; // odd, so the partner sees it
    std::atomic<std::uint64_t> seq{0};
};

/// W1's hand-off floor: one round trip between two spinning threads per sample, as many samples as W1.
std::vector<metric> measure_pingpong(run_context& cx, const workload&, const fs::path&)
{
    ball b;
    std::thread partner([&b] {
        for (;;) {
            std::uint64_t v;
            while (((v = b.seq.load(std::memory_order_acquire)) & 1) == 0)
                cpu_relax();
            if (v == ball::stop)
                return;
            b.seq.store(v + 1, std::memory_order_release);
        }
    });
    std::uint64_t seq = 0;
    auto round_trip = [&] {
        b.seq.store(++seq, std::memory_order_release);
        ++seq;
        while (b.seq.load(std::memory_order_acquire) != seq)
            cpu_relax();
    };
    for (int i = 0; i < 1'000; ++i) // the partner is running and both cache lines are warm
        round_trip();
    std::vector<std::int64_t> lat_ns(cx.data.w1_ids.size());
    for (auto& l : lat_ns) {
        const auto t0 = clock_type::now(); // timed as W1 times a request
        round_trip();
        l = std::chrono::duration_cast<std::chrono::nanoseconds>(clock_type::now() - t0).count();
    }
    b.seq.store(ball::stop, std::memory_order_release);
    partner.join();
    return {{"mean_us", mean_us(lat_ns)},
            {"p50_us", percentile_us(lat_ns, 0.50)},
            {"p99_us", percentile_us(lat_ns, 0.99)}};
}

double get(const figures& f, const char* who, const char* metric)
{
    auto it = f.find({who, metric});
    return it == f.end() ? 0.0 : it->second;
}

double ratio(double a, double b)
{
    return b > 0 ? a / b : 0.0;
}

/// W3: DBACTOR against each limit, and each limit against RAW (how far batching alone could take RAW).
std::vector<double> w3_ratios(const figures& f)
{
    const double actor = get(f, "DBACTOR", "commits_per_s");
    const double raw = get(f, "RAW", "commits_per_s");
    const double sp = get(f, "LIMIT_SAVEPOINT", "commits_per_s");
    const double plain = get(f, "LIMIT_PLAIN", "commits_per_s");
    return {ratio(actor, sp), ratio(actor, plain), ratio(sp, raw), ratio(plain, raw)};
}

/// W1 p50: what DBACTOR adds to RAW, and that against one ping-pong round trip.
std::vector<double> w1_ratios(const figures& f)
{
    const double actor = get(f, "DBACTOR", "p50_us");
    const double raw = get(f, "RAW", "p50_us");
    const double floor = get(f, "LIMIT_PINGPONG", "p50_us");
    return {actor - raw, floor, ratio(actor, raw), ratio(actor - raw, floor)};
}

} // namespace

const std::vector<limit>& all_limits()
{
    static const std::vector<limit> limits{
        {"LIMIT_SAVEPOINT", "W3_NORMAL", {"commits_per_s"}, measure_w3_savepoint},
        {"LIMIT_PLAIN", "W3_NORMAL", {"commits_per_s"}, measure_w3_plain},
        {"LIMIT_SAVEPOINT", "W3_FULL", {"commits_per_s"}, measure_w3_savepoint},
        {"LIMIT_PLAIN", "W3_FULL", {"commits_per_s"}, measure_w3_plain},
        {"LIMIT_PINGPONG", "W1", {"mean_us", "p50_us", "p99_us"}, measure_pingpong},
    };
    return limits;
}

std::vector<const limit*> limits_of(const std::string& w)
{
    std::vector<const limit*> out;
    for (const auto& l : all_limits())
        if (l.workload == w)
            out.push_back(&l);
    return out;
}

std::size_t w3_limit_batch(const config& cfg)
{
    return std::max<std::size_t>(1,
                                 std::min(cfg.tasks, cfg.max_batch.value_or(dbactor::options{}.max_batch)));
}

const std::vector<limit_ratio_spec>& limit_ratio_specs()
{
    static const std::vector<limit_field> w3_fields{{"dbactor/savepoint", true, false},
                                                    {"dbactor/plain", true, false},
                                                    {"savepoint/raw", true, false},
                                                    {"plain/raw", true, false}};
    static const std::vector<limit_ratio_spec> specs{
        {"W1",
         "p50",
         false,
         {{"dbactor-raw_us", false, true},
          {"pingpong_us", false, false},
          {"dbactor/raw", true, false},
          {"(dbactor-raw)/pingpong", true, true}},
         w1_ratios},
        {"W3_NORMAL", "commits_per_s", true, w3_fields, w3_ratios},
        {"W3_FULL", "commits_per_s", true, w3_fields, w3_ratios},
    };
    return specs;
}

std::string format_limit_field(const limit_field& f, double v)
{
    return f.ratio ? fmt::format("x{:.3f}", v) : fmt::format("{:.2f}", v);
}

} // namespace dbactor_bench
