#include <dbactor/detail/serve.hpp>

#include <dbactor/detail/change_hub.hpp>
#include <dbactor/detail/change_log.hpp>
#include <dbactor/detail/close_clock.hpp>
#include <dbactor/detail/request_base.hpp>
#include <dbactor/detail/request_errors.hpp>
#include <dbactor/detail/request_queue.hpp>
#include <dbactor/detail/session.hpp>
#include <dbactor/detail/stats.hpp>
#include <dbactor/error.hpp>

#include <fmt/format.h>
#include <sqlite3.h>

namespace dbactor::detail {

using clock = std::chrono::steady_clock;

bool group_server::process(session& s) noexcept
{
    if (s.group.empty())
        return false;
    const lane l = s.group.front()->lane_;
    claim_from(s, 0);
    if (s.group.empty())
        return false;
    switch (l) {
    case lane::write: run_writes(s); break;
    case lane::read: run_reads(s); break;
    case lane::call: run_call(s); break;
    case lane::close: break;
    }
    return l != lane::read;
}

/// Marks a request as running; answers it instead when it was abandoned, is past its deadline, or the
/// shutdown grace is over. True when it is to run.
bool group_server::claim(session& s, request_base* r) noexcept
{
    s.queue->done_one();
    const auto now = clock::now();
    if (const errc reason = expiry_reason(*r, closing_, now); reason != errc{}) {
        stats_.count_abandoned(r->abandon(reason, true) ? reason : r->interrupt_reason());
        r->release();
        return false;
    }
    if (!r->try_start()) {
        stats_.count_abandoned(r->interrupt_reason()); // cancelled or timed out by its caller while queued
        r->release();
        return false;
    }
    r->started_ = now;
    return true;
}

/// Claims the requests of the group from index `from` on, keeping (in order) only those that are to run.
void group_server::claim_from(session& s, std::size_t from) noexcept
{
    auto& group = s.group;
    std::size_t kept = from;
    for (std::size_t j = from; j < group.size(); ++j)
        if (claim(s, group[j]))
            group[kept++] = group[j];
    group.resize(kept); // shrinks: no allocation
}

void group_server::run_one(session& s, request_base* r) noexcept
{
    if (r->has_deadline() || closing_.requested.load(std::memory_order_acquire)) { // else no clock read
        // Claimed with its group just before its deadline or the grace ran out.
        if (const errc why = expiry_reason(*r, closing_, clock::now()); !r->interrupted() && why != errc{})
            r->set_interrupt(why);
    }
    if (r->interrupted()) {
        r->set_error(make_error_ptr(r->interrupt_reason(), r->name_));
        return;
    }
    s.current = r;
    r->run(*s.conn);
    s.current = nullptr;
    r->lock_wait_ += s.take_lock_wait();
    if (r->lane_ != lane::call && !r->interrupted() && r->has_deadline() && clock::now() >= r->deadline_)
        r->set_interrupt(errc::timed_out);
    if (r->interrupted()) {
        stats_.count_abandoned(r->interrupt_reason());
        r->set_error(make_error_ptr(r->interrupt_reason(), r->name_));
    }
}

/// Adds the writes queued behind the running batch to it (up to max_batch, none that is interruptible),
/// claiming each. True when any joined.
bool group_server::extend(session& s) noexcept
{
    // Someone subscribed (or the last one left) while this batch ran: the writes queued since go in the
    // next group, which records changes from its start; joining this one, a write would have no event.
    if (hub_ && hub_->active() != s.changes.active)
        return false;
    const std::size_t before = s.group.size();
    s.queue->pop_more(s.group, lane::write, opts_.max_batch);
    claim_from(s, before);
    return s.group.size() > before;
}

void group_server::run_writes(session& s) noexcept
{
    auto& group = s.group;
    if (auto e = s.set_query_only(false)) {
        for (auto* r : group)
            r->set_error(e);
        finish_range(s, 0, group.size(), lane::write);
        return;
    }
    for (std::size_t start = 0; start < group.size();) {
        const auto batch = run_write_batch(s, start, *this);
        if (batch.began)
            stats_.count_write_batch(batch.end - start);
        else if (group[start]->interrupted()) // answered at its deadline while waiting for the lock
            for (std::size_t i = start; i < batch.end; ++i)
                stats_.count_abandoned(group[start]->interrupt_reason());
        publish_changes(s); // before the replies: a caller told "committed" can find its event already
        finish_range(s, start, batch.end, lane::write);
        start = batch.end;
    }
}

void group_server::run_reads(session& s) noexcept
{
    auto& group = s.group;
    const std::size_t n = group.size();
    if (auto e = s.set_query_only(true)) {
        for (auto* r : group)
            r->set_error(e);
        finish_range(s, 0, n, lane::read);
        return;
    }
    // One snapshot for every read of the batch: a request that queries twice sees one state, and reads
    // queued together pay for one lock round trip. The snapshot starts at the first read, after these
    // requests were taken from the queue, so each sees every write acknowledged before it was sent.
    s.begin.try_run();
    for (std::size_t i = 0; i < n; ++i) {
        request_base* r = group[i];
        run_one(s, r);
        if (r->error())
            translate_read_only(r);
        if (!s.in_transaction() && i + 1 < n)
            s.begin.try_run(); // the request ended the snapshot; the rest get a new one
    }
    if (s.in_transaction())
        s.commit.try_run();
    add(stats_.read_batches);
    add(stats_.read_batched, n);
    finish_range(s, 0, n, lane::read);
}

void group_server::run_call(session& s) noexcept
{
    request_base* r = s.group.front();
    if (auto e = s.set_query_only(false)) {
        r->set_error(e);
        finish_range(s, 0, 1, lane::call);
        return;
    }
    run_one(s, r);
    s.install_wal_hook();     // first: after a PRAGMA wal_autocheckpoint the next statement's WAL callback
                              // would go to SQLite's default hook
    s.install_busy_handler(); // raw access may have set busy_timeout (the new limit) or a handler of its own
    if (s.in_transaction()) {
        s.rollback.try_run();
        if (!r->error()) {
            try {
                r->set_error(std::make_exception_ptr(error(
                    errc::transaction_leaked,
                    fmt::format("{} returned with a transaction still open; it was rolled back. End every "
                                "BEGIN with COMMIT or ROLLBACK inside the call, or use async_write, which "
                                "manages the transaction.",
                                who(r, "A call", "Call")))));
            }
            catch (...) {
                r->set_error(std::current_exception());
            }
        }
    }
    if (!s.in_transaction()) {
        // A commit no WAL hook confirmed (made inside sqlite3_reset, or without a WAL) did happen: a failed
        // one left its transaction open or ran the rollback hook.
        try {
            s.changes.on_wal_commit();
        }
        catch (...) {
            s.changes.on_rollback();
        }
    }
    publish_changes(s); // every transaction the call committed, as one event
    finish_range(s, 0, 1, lane::call);
}

void group_server::publish_changes(session& s) noexcept
{
    if (!hub_ || !s.changes.active)
        return;
    try {
        change_set committed;
        if (!s.changes.take(committed))
            return;
        for (auto& t : committed.tables) {
            // A WITHOUT ROWID table has no rowid column: the keys the hook gave mean nothing.
            if (sqlite3_table_column_metadata(s.handle(),
                                              "main",
                                              t.table.c_str(),
                                              "rowid",
                                              nullptr,
                                              nullptr,
                                              nullptr,
                                              nullptr,
                                              nullptr) != SQLITE_OK) {
                t.rowids.clear();
                t.rowids_complete = false;
            }
        }
        hub_->publish(committed, false);
    }
    catch (...) { // out of memory: the subscribers miss this event; the commit stands
    }
}

void group_server::finish_range(session& s, std::size_t from, std::size_t to, lane l) noexcept
{
    if (!s.reader) // before the replies: a caller reading stats() after its reply sees this
        stats_.cached_statements.store(s.conn->cached_statements(), std::memory_order_relaxed);
    const auto now = clock::now();
    auto& counters = stats_.of(l);
    for (std::size_t i = from; i < to; ++i) {
        request_base* r = s.group[i];
        const bool failed = r->error() != nullptr;
        const auto wait = r->started_ - r->submitted_;
        const auto exec = now - r->started_;
        counters.wait.record(static_cast<std::uint64_t>(wait.count()));
        counters.exec.record(static_cast<std::uint64_t>(exec.count()));
        add(counters.completed);
        if (failed)
            add(counters.failed);
        if (opts_.on_slow_request && opts_.slow_request.count() > 0 && wait + exec >= opts_.slow_request)
            report_slow(r, l, wait, exec, failed);
        r->complete(true);
        r->release();
    }
}

void group_server::report_slow(
    request_base* r, lane l, clock::duration wait, clock::duration exec, bool failed) noexcept
{
    try {
        opts_.on_slow_request(
            slow_request_info{r->name_,
                              static_cast<request_kind>(l),
                              std::chrono::duration_cast<std::chrono::nanoseconds>(wait),
                              std::chrono::duration_cast<std::chrono::nanoseconds>(exec),
                              failed,
                              std::chrono::duration_cast<std::chrono::nanoseconds>(r->lock_wait_)});
    }
    catch (...) {
    }
}

} // namespace dbactor::detail
