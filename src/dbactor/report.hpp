// dbactor::stats_snapshot and dbactor::boot_summary: what database::stats() and boot_report() return.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace dbactor {

/// Latency percentiles of one measured quantity, in nanoseconds (from a log-scale histogram: each value is
/// the upper bound of its bucket, at most 19% above the true value).
struct latency_summary
{
    std::uint64_t count = 0;
    std::uint64_t p50_ns = 0;
    std::uint64_t p90_ns = 0;
    std::uint64_t p99_ns = 0;
    std::uint64_t max_ns = 0;
    double mean_ns = 0;
};

/// One lane (write, read or call).
struct lane_stats
{
    std::uint64_t completed = 0; ///< requests that ran (successfully or with an exception)
    std::uint64_t failed = 0;    ///< of those, completed with an exception
    latency_summary queue_wait;  ///< submission until start
    latency_summary execution;   ///< start until the reply is ready (including COMMIT)
};

/// A snapshot of the actor's counters; cheap to take from any thread.
struct stats_snapshot
{
    lane_stats write;
    lane_stats read;
    lane_stats call;
    std::uint64_t queue_depth = 0; ///< admitted requests not started yet (at most options::queue_capacity)
    std::uint64_t queue_depth_max = 0;   ///< the highest queue_depth seen
    std::uint64_t queue_waiting = 0;     ///< requests sent with wait_if_full waiting for space behind them
    std::uint64_t queue_waiting_max = 0; ///< the highest queue_waiting seen
    std::uint64_t rejected = 0;          ///< errc::queue_full
    std::uint64_t timed_out = 0;         ///< errc::timed_out
    std::uint64_t cancelled = 0;         ///< errc::cancelled
    std::uint64_t closed_unexecuted = 0; ///< answered errc::closed without running
    std::uint64_t write_batches = 0;     ///< write transactions committed or rolled back
    std::uint64_t write_batch_max = 0;   ///< the most write requests in one transaction
    double write_batch_mean = 0;         ///< write requests per transaction
    std::uint64_t read_batches = 0;      ///< read transactions (one snapshot shared by queued reads)
    double read_batch_mean = 0;
    std::uint64_t cached_statements = 0;
    /// WAL checkpoints run because the writer was idle (options::idle_checkpoint)
    std::uint64_t idle_checkpoints = 0;
    /// Waits for another connection's lock (each stretch in the busy handler), and how long they took.
    std::uint64_t lock_waits = 0;
    latency_summary lock_wait;
};

/// One pragma as boot set it and read it back.
struct pragma_result
{
    std::string name;
    std::string requested;
    std::string actual;
};

/// One migration's state as boot found or left it.
struct migration_status
{
    enum class state
    {
        applied,  ///< in the ledger with the same checksum
        pending,  ///< not applied yet
        modified, ///< applied, but the file's checksum changed
        unknown,  ///< in the ledger but not in this build's migration set (database ahead)
    };
    std::int64_t version = 0;
    std::string name;
    state status = state::pending;
    std::string checksum;   ///< of the file (or the ledger's, for unknown)
    std::string applied_at; ///< ISO-8601 UTC, when applied
    std::int64_t duration_ms = 0;
    bool reversible = false;  ///< has a down file
    bool applied_now = false; ///< applied by this boot
    /// Applied under another name: the ledger's name when the file was renamed after it was applied (same
    /// version and checksum), empty otherwise.
    std::string ledger_name;
};

/// What database::open did, in order, with timings.
struct boot_summary
{
    std::string path;
    bool created = false; ///< the file was new or empty
    std::string sqlite_version;
    std::vector<pragma_result> pragmas; ///< each applied pragma, read back
    /// Who checkpoints the WAL: "actor", or "external" (options::checkpoints; wal_autocheckpoint = 0).
    std::string checkpoints = "actor";
    std::string integrity;           ///< "ok", "skipped", or the first rows of the report
    std::int64_t schema_version = 0; ///< the newest applied version (PRAGMA user_version without a ledger)
    std::vector<migration_status> migrations;
    std::int64_t foreign_key_violations = 0;
    std::vector<std::pair<std::string, std::chrono::microseconds>> steps; ///< step name, its duration
    std::chrono::microseconds total{0};
    /// Boot's waits for another connection's lock (each at most options::busy_timeout), and their time
    /// added up (part of `total`). The actor's own waits are in stats().lock_waits / lock_wait.
    std::uint64_t lock_waits = 0;
    std::chrono::microseconds lock_wait{0};
};

} // namespace dbactor
