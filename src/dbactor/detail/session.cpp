#include <dbactor/detail/session.hpp>

#include <dbactor/detail/lock_waiter.hpp>

#include <dbactor/detail/close_clock.hpp>
#include <dbactor/detail/request_base.hpp>
#include <dbactor/detail/stats.hpp>
#include <dbactor/error.hpp>

#include <SQLiteCpp/Exception.h>
#include <fmt/format.h>
#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <thread>

namespace dbactor::detail {

bool session::in_transaction() const noexcept
{
    return sqlite3_get_autocommit(handle()) == 0;
}

int session::busy_timeout_ms() const noexcept
{
    try {
        return std::stoi(text_value(handle(), "PRAGMA busy_timeout"));
    }
    catch (...) {
        return 0;
    }
}

void session::start(std::unique_ptr<SQLite::Database> opened,
                    const close_clock& c,
                    request_queue& from,
                    std::size_t max_batch)
{
    closing = &c;
    queue = &from;
    group.reserve(std::max<std::size_t>(max_batch, 1)); // pop_group fills it without allocating
    db = std::move(opened);
    conn = std::make_unique<connection>(*db);
    sqlite3* h = handle();
    begin.prepare(h, "BEGIN", true);
    commit.prepare(h, "COMMIT", true);
    if (!reader) {
        begin_immediate.prepare(h, "BEGIN IMMEDIATE", true);
        rollback.prepare(h, "ROLLBACK", true);
        savepoint.prepare(h, "SAVEPOINT dbactor_request", true);
        release.prepare(h, "RELEASE dbactor_request", true);
        rollback_to.prepare(h, "ROLLBACK TO dbactor_request", true);
        data_version.prepare(h, "PRAGMA data_version", true);
        sqlite3_commit_hook(h, &session::on_commit, this);
        sqlite3_rollback_hook(h, &session::on_rollback, this);
        conn->changes_ = &changes;
        install_wal_hook();
    }
    sqlite3_progress_handler(h, 1000, &session::on_progress, this);
    install_busy_handler();
}

void session::install_busy_handler() noexcept
{
    // PRAGMA busy_timeout reads 0 once a handler of ours is installed: nonzero means boot (or a call) set a
    // new limit with it.
    if (const int ms = busy_timeout_ms(); ms > 0)
        busy_limit = std::chrono::milliseconds(ms);
    sqlite3_busy_handler(handle(), &session::on_busy, this);
}

// SQLite's own busy handler (busy_timeout) sleeps up to 100 ms at a time and knows nothing of requests: a
// request waiting for another process's lock would pass its deadline, its cancellation and the shutdown
// grace unanswered for up to busy_timeout. This one sleeps in busy_step's 1-5 ms steps and gives up at
// whichever comes first; run_one then answers the request with the reason, rolled back.
int session::on_busy(void* p, int count) noexcept
{
    auto* s = static_cast<session*>(p);
    if (s->no_wait) // the idle checkpoint: it retries later, and it is no request's wait
        return 0;
    const auto now = std::chrono::steady_clock::now();
    if (count == 0) {
        s->end_wait_stretch();
        s->waiting_ = true;
        s->wait_start_ = now;
    }
    s->wait_end_ = now;
    auto until = s->wait_start_ + s->busy_limit;
    if (request_base* r = s->current) {
        if (r->interrupted())
            return 0;
        if (const errc why = expiry_reason(*r, *s->closing, now); why != errc{}) {
            r->set_interrupt(why);
            return 0;
        }
        if (r->has_deadline())
            until = std::min(until, r->deadline_);
    }
    else if (s->closing->past_grace(now))
        return 0;
    if (s->closing->requested.load(std::memory_order_acquire))
        until = std::min(until, s->closing->deadline);
    if (now >= s->wait_start_ + s->busy_limit)
        return 0;
    std::this_thread::sleep_for(busy_step(count, until - now));
    s->wait_end_ = std::chrono::steady_clock::now();
    return 1;
}

void session::end_wait_stretch() noexcept
{
    if (!waiting_)
        return;
    waiting_ = false;
    const auto d = wait_end_ - wait_start_;
    waited_ += d;
    if (stats) {
        add(stats->lock_waits);
        stats->lock_wait.record(static_cast<std::uint64_t>(std::chrono::nanoseconds(d).count()));
    }
}

std::chrono::steady_clock::duration session::take_lock_wait() noexcept
{
    end_wait_stretch();
    return std::exchange(waited_, {});
}

// Called by SQLite every 1000 VM steps: interrupts the running request when it was cancelled, its
// deadline passed, or close()'s shutdown_grace is over. Scoped to the request: between requests there
// is nothing to interrupt.
int session::on_progress(void* p) noexcept
{
    auto* s = static_cast<session*>(p);
    request_base* r = s->current;
    if (!r)
        return 0;
    if (r->interrupted())
        return 1;
    if (!r->has_deadline() && !s->closing->requested.load(std::memory_order_relaxed))
        return 0;
    if (const errc why = expiry_reason(*r, *s->closing, std::chrono::steady_clock::now()); why != errc{}) {
        r->set_interrupt(why);
        return 1;
    }
    return 0;
}

// A write request owns no transaction of its own: the actor commits it (with the others of its group)
// after it returns, and only then replies. A COMMIT run by the request itself is turned into a
// ROLLBACK, so that "replied after COMMIT" and "an error means no effect" both stay true.
int session::on_commit(void* p) noexcept
{
    auto* s = static_cast<session*>(p);
    if (s->current && s->current->lane_ == lane::write) {
        s->commit_refused = true;
        return 1;
    }
    try {
        s->changes.on_commit();
    }
    catch (...) { // out of memory: the feed misses this commit, the commit itself goes on
        s->changes.on_rollback();
    }
    return 0;
}

// Every row an INSERT, UPDATE or DELETE is about to change in the main database, triggers, foreign-key
// actions and REPLACE's deletions included, WITHOUT ROWID tables too (their keys mean nothing: the actor
// drops them when it publishes), while a change feed is subscribed. The pre-update hook rather than the
// update hook: the update hook misses WITHOUT ROWID tables and REPLACE's deletions, and a registered
// pre-update hook turns off the truncate optimisation, under which `DELETE FROM t` reports no row at all.
void session::on_preupdate(
    void* p, sqlite3*, int op, const char* db, const char* table, long long key, long long new_key) noexcept
{
    auto* s = static_cast<session*>(p);
    if (!s->changes.active || std::strcmp(db, "main") != 0)
        return;
    try {
        s->changes.on_update(
            op, table, op == SQLITE_INSERT ? new_key : key, op == SQLITE_UPDATE ? new_key : key);
    }
    catch (...) { // out of memory: the feed drops this transaction rather than misreport it
        s->changes.on_rollback();
    }
}

// After a commit wrote its frames to the WAL: it happened. Then what SQLite's default hook does: a PASSIVE
// checkpoint once the WAL holds wal_autocheckpoint pages.
int session::on_wal(void* p, sqlite3* h, const char* db, int frames) noexcept
{
    auto* s = static_cast<session*>(p);
    try {
        s->changes.on_wal_commit();
    }
    catch (...) {
        s->changes.on_rollback();
    }
    if (s->autocheckpoint_pages_ > 0 && frames >= s->autocheckpoint_pages_)
        sqlite3_wal_checkpoint(h, db);
    return SQLITE_OK;
}

void session::record_changes(bool on, std::size_t max_rowids) noexcept
{
    changes.max_rowids = max_rowids;
    if (on == changes.active)
        return;
    // Registered only while someone listens: the hook costs a call per row, and it turns off the truncate
    // optimisation of DELETE without WHERE.
    sqlite3_preupdate_hook(handle(), on ? &session::on_preupdate : nullptr, on ? this : nullptr);
    changes.active = on;
}

void session::install_wal_hook() noexcept
{
    // sqlite3_wal_hook returns the previous hook's argument: SQLite's default hook (wal_autocheckpoint)
    // keeps its page count there, and a null one means automatic checkpoints are off.
    void* previous = sqlite3_wal_hook(handle(), &session::on_wal, this);
    if (previous != this)
        autocheckpoint_pages_ = static_cast<int>(reinterpret_cast<std::intptr_t>(previous));
}

bool session::read_data_version(std::int64_t& out) noexcept
{
    if (!data_version || data_version.step() != SQLITE_ROW) {
        data_version.reset();
        return false;
    }
    out = data_version.column_int64(0);
    data_version.reset();
    return true;
}

// The transaction ended inside a write request: by its own ROLLBACK (or refused COMMIT), or by SQLite
// after an I/O error. Seen even when the request began another transaction afterwards.
void session::on_rollback(void* p) noexcept
{
    auto* s = static_cast<session*>(p);
    s->changes.on_rollback();
    if (s->current && s->current->lane_ == lane::write)
        s->rolled_back = true;
}

// Not a cached statement: flag pragmas take effect when compiled, not when stepped.
std::exception_ptr session::set_query_only(bool on) noexcept
{
    if (reader || query_only == on)
        return nullptr;
    const int rc = sqlite3_exec(
        handle(), on ? "PRAGMA query_only = 1" : "PRAGMA query_only = 0", nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK)
        return std::make_exception_ptr(SQLite::Exception(handle(), rc));
    query_only = on;
    return nullptr;
}

bool session::deferred_violations() const noexcept
{
    int current_count = 0, high = 0;
    sqlite3_db_status(handle(), SQLITE_DBSTATUS_DEFERRED_FKS, &current_count, &high, 0);
    return current_count > 0;
}

std::exception_ptr session::close(const std::string& path) noexcept
{
    std::exception_ptr failure;
    if (conn)
        conn->clear_cache();
    for (auto* s :
         {&begin_immediate, &begin, &commit, &rollback, &savepoint, &release, &rollback_to, &data_version})
        s->finalize();
    if (db) {
        int leaked = 0;
        while (sqlite3_stmt* s = sqlite3_next_stmt(handle(), nullptr)) {
            sqlite3_finalize(s);
            ++leaked;
        }
        if (leaked)
            failure = std::make_exception_ptr(error(
                errc::close_failed,
                fmt::format("Closing '{}' found {} statement(s) still open (a statement kept beyond its "
                            "request); they were finalized. Destroy statements before the request "
                            "returns.",
                            path,
                            leaked)));
        conn.reset();
        db.reset(); // sqlite3_close: succeeds now that no statement is left
    }
    return failure;
}

} // namespace dbactor::detail
