// detail::session: one connection and what the thread serving it keeps (statements, hooks, the group).
#pragma once

#include <dbactor/connection.hpp>
#include <dbactor/detail/change_log.hpp>
#include <dbactor/detail/statement.hpp>

#include <SQLiteCpp/Database.h>

#include <chrono>
#include <cstddef>
#include <exception>
#include <memory>
#include <string>
#include <vector>

struct sqlite3;

namespace dbactor::detail {

class request_base;
class request_queue;
struct actor_stats;
struct close_clock;

/// One connection and what the thread serving it keeps: the writer's (writes, calls, and reads when there
/// is no reader lane) or a reader's (reads only, on a read-only connection).
/// Thread safety: used by its own thread only (the hooks run on it too).
struct session
{
    std::unique_ptr<SQLite::Database> db;
    std::unique_ptr<connection> conn;
    request_base* current = nullptr; // the running request, seen by the progress and commit hooks
    bool commit_refused = false;     // the commit hook turned a write request's own COMMIT into a ROLLBACK
    bool rolled_back = false;        // the rollback hook saw the transaction end inside a write request
    std::vector<request_base*> group;
    bool query_only = false;
    bool reader = false;
    const close_clock* closing = nullptr;
    request_queue* queue = nullptr; // where its groups come from (the writer's queue, or the readers')
    statement begin_immediate, begin, commit, rollback, savepoint, release, rollback_to, data_version;
    change_log changes; // the writer's: what its transactions changed, for the change feed

    // Waiting for another connection's lock (the busy handler).
    actor_stats* stats = nullptr;           // counts each wait; set by the actor, may stay null (tests)
    std::chrono::milliseconds busy_limit{}; // the busy_timeout boot left (or a call set): the longest wait
    bool no_wait = false;                   // the idle checkpoint: give up at once, retry later

    sqlite3* handle() const noexcept { return db->getHandle(); }
    bool in_transaction() const noexcept;

    /// The connection's busy timeout now (SQLite has no getter but the pragma).
    int busy_timeout_ms() const noexcept;

    /// Takes the booted connection: prepares the actor's own statements, installs the hooks.
    /// Errors: SQLite::Exception.
    void start(std::unique_ptr<SQLite::Database> opened,
               const close_clock& c,
               request_queue& from,
               std::size_t max_batch);

    /// Reads on the writer's connection run with `PRAGMA query_only` on, so that a write inside them fails
    /// and changes nothing; it is switched only when the lane changes.
    std::exception_ptr set_query_only(bool on) noexcept;

    /// Records what transactions change for the change feed (the pre-update hook), or stops recording.
    void record_changes(bool on, std::size_t max_rowids) noexcept;

    /// (Re)installs the WAL hook that confirms commits to the change log and runs SQLite's automatic
    /// checkpoint as its default hook would (after boot's pragmas, and after a call: `PRAGMA
    /// wal_autocheckpoint` replaces the hook).
    void install_wal_hook() noexcept;

    /// `PRAGMA data_version` (changes when another connection commits); false when it could not be read.
    bool read_data_version(std::int64_t& out) noexcept;

    /// A deferred foreign-key violation is pending (it would fail the COMMIT).
    bool deferred_violations() const noexcept;

    /// (Re)installs the actor's busy handler, taking the connection's busy_timeout (when one is set, as boot
    /// does and as a `call` may) as the longest wait.
    void install_busy_handler() noexcept;

    /// The time spent waiting for locks since the last call (0 when none), ending the wait in progress.
    std::chrono::steady_clock::duration take_lock_wait() noexcept;

    /// Finalizes every statement, then closes the connection. Returns the close failure, if any.
    std::exception_ptr close(const std::string& path) noexcept;

private:
    static int on_progress(void* p) noexcept;
    static int on_commit(void* p) noexcept;
    static void on_rollback(void* p) noexcept;
    static void on_preupdate(void* p,
                             sqlite3* h,
                             int op,
                             const char* db,
                             const char* table,
                             long long key,
                             long long new_key) noexcept; // sqlite3_int64
    static int on_wal(void* p, sqlite3* h, const char* db, int frames) noexcept;
    static int on_busy(void* p, int count) noexcept;
    void end_wait_stretch() noexcept;

    std::chrono::steady_clock::time_point wait_start_{}, wait_end_{};
    bool waiting_ = false;
    std::chrono::steady_clock::duration waited_{};
    int autocheckpoint_pages_ = 0; // what SQLite's own WAL hook would checkpoint at (wal_autocheckpoint)
};

} // namespace dbactor::detail
