// Workloads W1–W4 on the kv table: their template database and their measure functions.
#include "requests.hpp"
#include "stats.hpp"
#include "systems.hpp"
#include "workloads.hpp"

#include <sqlite3.h>

#include <fmt/core.h>

#include <cstdint>
#include <vector>

namespace dbactor_bench {

/// The kv table with the prefill, checkpointed: every W1–W4 run starts from a copy.
void make_kv_template(const fs::path& p, const dataset& data)
{
    remove_db(p);
    sqlite3* db = nullptr;
    if (sqlite3_open_v2(p.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) != SQLITE_OK)
        fail(fmt::format("cannot create {}", p.string()));
    sqlite3_close(db);
    raw_conn c(p, true);
    c.exec(kv_schema);
    c.exec("BEGIN");
    for (const auto& r : data.prefill)
        c.execute(kv_insert, r.id, r.guild, r.val);
    c.exec("COMMIT");
    c.exec("PRAGMA wal_checkpoint(TRUNCATE)");
}

/// W1: point reads one at a time, each awaited: latency.
std::vector<metric> measure_w1(run_context& cx, const workload& w, system_id s, const fs::path& db)
{
    std::vector<kv_get> ops;
    for (auto id : cx.data.w1_ids)
        ops.push_back({id});
    run_state<kv_get> st{&ops};
    st.record = true;
    execute(cx, s, db, w.full_sync, st, 1);
    check_equal(
        fmt::format("{} W1 rows found", system_name(s)), st.acc, static_cast<std::int64_t>(ops.size()));
    return {{"mean_us", mean_us(st.lat_ns)},
            {"p50_us", percentile_us(st.lat_ns, 0.50)},
            {"p99_us", percentile_us(st.lat_ns, 0.99)}};
}

/// W2: point reads from `tasks` coroutines: throughput.
std::vector<metric> measure_w2(run_context& cx, const workload& w, system_id s, const fs::path& db)
{
    std::vector<kv_get> ops;
    for (auto id : cx.data.w2_ids)
        ops.push_back({id});
    run_state<kv_get> st{&ops};
    const double secs = execute(cx, s, db, w.full_sync, st, cx.cfg.tasks);
    check_equal(
        fmt::format("{} W2 rows found", system_name(s)), st.acc, static_cast<std::int64_t>(ops.size()));
    return {{"ops_per_s", static_cast<double>(ops.size()) / secs}};
}

/// W3_NORMAL, W3_FULL: single-row inserts from `tasks` coroutines, each its own write request.
std::vector<metric> measure_w3(run_context& cx, const workload& w, system_id s, const fs::path& db)
{
    std::vector<kv_put> ops;
    for (const auto& r : cx.data.w3_rows)
        ops.push_back({&r});
    run_state<kv_put> st{&ops};
    const double secs = execute(cx, s, db, w.full_sync, st, cx.cfg.tasks);
    const auto n = static_cast<std::int64_t>(ops.size());
    check_equal(fmt::format("{} {} rows inserted", system_name(s), w.name), st.acc, n);
    check_equal(fmt::format("{} {} rows in kv afterwards", system_name(s), w.name),
                scalar(db, "SELECT count(*) FROM kv"),
                static_cast<std::int64_t>(cx.cfg.rows) + n);
    return {{"commits_per_s", static_cast<double>(n) / secs}};
}

/// W4: every row in one write request.
std::vector<metric> measure_w4(run_context& cx, const workload& w, system_id s, const fs::path& db)
{
    std::vector<kv_put_all> ops{{&cx.data.w4_rows}};
    run_state<kv_put_all> st{&ops};
    st.tx = true;
    const double secs = execute(cx, s, db, w.full_sync, st, 1);
    const auto n = static_cast<std::int64_t>(cx.data.w4_rows.size());
    check_equal(fmt::format("{} W4 rows inserted", system_name(s)), st.acc, n);
    check_equal(fmt::format("{} W4 rows in kv afterwards", system_name(s)),
                scalar(db, "SELECT count(*) FROM kv"),
                static_cast<std::int64_t>(cx.cfg.rows) + n);
    return {{"rows_per_s", static_cast<double>(n) / secs}};
}

} // namespace dbactor_bench
