// dbactor::options (how a database is opened) and dbactor::request_options (how one request is sent).
#pragma once

#include <dbactor/migration.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace dbactor {

/// `PRAGMA synchronous`. OFF is not offered: an acknowledged write must survive at least a process crash.
enum class synchronous_mode
{
    normal, ///< WAL + NORMAL: survives a process crash; the last commits may be lost on power loss
    full,   ///< WAL + FULL: an acknowledged write survives power loss (the default)
};

/// Integrity check run at boot.
enum class check_level
{
    none,
    quick, ///< `PRAGMA quick_check` (the default)
    full,  ///< `PRAGMA integrity_check`
};

/// The three request kinds; also the lanes of stats().
enum class request_kind
{
    write,
    read,
    call,
};

enum class log_level
{
    debug,
    info,
    warning,
    error,
};

/// What options::on_slow_request is told.
struct slow_request_info
{
    std::string_view name; ///< request_options::name, or empty
    request_kind kind;
    std::chrono::nanoseconds queue_wait; ///< from submission until the actor started it
    std::chrono::nanoseconds execution;  ///< running time, including its share of BEGIN/COMMIT
    bool failed;                         ///< it completed with an exception
    /// Of `execution`, the time spent waiting for another connection's lock (SQLite's busy handler).
    std::chrono::nanoseconds lock_wait{0};
};

/// Who checkpoints the WAL (copies it back into the main file).
enum class checkpoint_mode
{
    actor, ///< the actor: when idle after writes (options::idle_checkpoint), at close, and SQLite's automatic
           ///< checkpoints
    external, ///< another process (a replicator such as Litestream): the actor never checkpoints, not even at
              ///< close, and sets `PRAGMA wal_autocheckpoint = 0`
};

/// One shard's place in a set: its index, 0..shards-1, and the set's size.
struct shard_identity
{
    std::size_t shard = 0;
    std::size_t shards = 1;
    bool operator==(const shard_identity&) const = default;
};

/// How database::open opens and prepares a database. Field names are part of the contract.
struct options
{
    /// A file path, or ":memory:".
    std::string path;
    /// Create the file when it does not exist. With false a missing file fails with errc::open_failed.
    bool create = true;
    /// The name of a registered SQLite VFS, or empty for the default.
    std::string vfs;
    synchronous_mode synchronous = synchronous_mode::full;
    /// How long a statement waits for another connection's lock before failing with SQLITE_BUSY. The wait
    /// (the actor's own busy handler, 1-5 ms steps) also ends at the waiting request's deadline, its
    /// cancellation and the end of shutdown_grace, answered timed_out / cancelled / closed and rolled back.
    std::chrono::milliseconds busy_timeout{5000};
    /// Requests admitted to the queue at once; beyond it senders wait or fail
    /// (request_options::wait_if_full).
    std::size_t queue_capacity = 1024;
    /// Applied at boot, in order, each in its own transaction.
    migration_set migrations;
    /// When set: a new database gets this `PRAGMA application_id`; a non-empty one with another id is
    /// refused.
    std::optional<std::int32_t> application_id;
    check_level integrity_check = check_level::quick;
    /// Read-only connections, each on its own thread, serving async_read (WAL files only; 0 = reads go to the
    /// writer's thread).
    unsigned readers = 0;
    /// Write requests queued behind one another share one transaction, up to this many (1 = off).
    std::size_t max_batch = 64;
    /// An async caller running on the handler's io_context, sending when nothing is queued, keeps that thread
    /// busy this long looking for the reply (a job that re-posts itself: other handlers still run) instead of
    /// letting it park, which costs about 10 µs to wake on a VM. Not for writes under synchronous FULL (their
    /// fsync takes longer). Zero: never.
    std::chrono::nanoseconds reply_spin{std::chrono::microseconds(20)};
    /// How long close() keeps executing queued requests before answering the rest with errc::closed.
    std::chrono::milliseconds shutdown_grace{5000};
    /// `PRAGMA journal_size_limit` in bytes (the WAL is truncated to this after a checkpoint).
    std::int64_t journal_size_limit = 64 * 1024 * 1024;
    /// When the writer has been idle this long after a write, it checkpoints the WAL (PASSIVE, then TRUNCATE
    /// when no reader still uses it), so a WAL that grew behind a long reader shrinks without further writes.
    /// Zero: only SQLite's automatic checkpoints.
    std::chrono::milliseconds idle_checkpoint{1000};
    /// Who checkpoints the WAL: the actor (default), or another process that owns checkpoints (a replicator
    /// such as Litestream; see docs/SCALING.md). boot_report().checkpoints says which.
    checkpoint_mode checkpoints = checkpoint_mode::actor;
    /// While a change feed is subscribed (database::subscribe): how often an idle actor reads
    /// `PRAGMA data_version` to see another connection's commits (it also reads it before each request
    /// group).
    std::chrono::milliseconds external_poll{100};
    /// Extra pragmas (name, value), applied after the defaults and each read back.
    std::vector<std::pair<std::string, std::string>> pragmas;
    /// A request whose queue wait + execution reaches this is reported to on_slow_request (zero = never).
    std::chrono::nanoseconds slow_request{std::chrono::milliseconds(100)};
    /// Called on the actor thread; keep it short. It must not call blocking methods of the database.
    std::function<void(const slow_request_info&)> on_slow_request;
    /// Where the library's own diagnostics go (close failures, boot steps). Called on the actor thread.
    std::function<void(log_level, std::string_view)> on_log;

    /// Boot without writing anything: open read-only, read pragmas back without setting them, and report
    /// migration state instead of applying migrations. Used by `dbtool check` and `dbtool status`.
    bool read_only = false;
    /// Apply pending migrations at boot (otherwise they are only reported in boot_report()).
    bool apply_migrations = true;
    /// Timestamped migrations only: apply a pending migration whose version is below the newest applied one
    /// (a branch merged late) instead of refusing the boot with errc::migration_source_invalid.
    bool allow_out_of_order = false;
    /// Run `PRAGMA foreign_key_check` as boot's last step (a violation refuses the boot, or is only reported
    /// by a read-only boot). `dbtool migrate` turns it off and checks after applying its own migrations.
    bool check_foreign_keys = true;
    /// Which shard of a set this file is (shard_set::open sets it; so does `dbtool --shards`). The file
    /// records it in the table `dbactor_shard(shard, shards)` the first time it is opened as a shard; opened
    /// at another index or with another count, boot fails with errc::shard_mismatch before anything is
    /// written. Unset: no check (one shard may still be opened on its own, as any database).
    std::optional<shard_identity> shard;
};

/// Per-request settings, given before the completion token: `{.timeout = 2s, .wait_if_full = false,
/// .name = "add_warning"}`.
struct request_options
{
    /// Zero: none. Past the deadline a queued request is answered errc::timed_out without running; a running
    /// one is interrupted at its next SQLite step and rolled back (a `call` cannot be rolled back: it is
    /// interrupted, and keeps what it committed).
    std::chrono::nanoseconds timeout{0};
    /// true: when the queue is full, wait for space (an async operation without blocking its thread).
    /// false: fail at once with errc::queue_full.
    bool wait_if_full = true;
    /// Names the request in slow-request reports and error messages. Not copied: pass a string literal,
    /// or a string that outlives the reply (with `deferred`, that outlives the launch too). Kept a view so
    /// that request_options stays trivially destructible: GCC 12 destroys non-trivial temporaries created
    /// in a `co_await` expression twice, and `co_await db.async_read(fn, {.name = "x"}, use_awaitable)` is
    /// how it is meant to be written.
    std::string_view name;
};

} // namespace dbactor

static_assert(std::is_trivially_destructible_v<dbactor::request_options>,
              "request_options is created inside co_await expressions; see request_options::name");
