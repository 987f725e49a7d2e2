#include <dbactor/detail/write_batch.hpp>

#include <dbactor/detail/request_base.hpp>
#include <dbactor/detail/request_errors.hpp>
#include <dbactor/detail/session.hpp>

#include <SQLiteCpp/Exception.h>
#include <fmt/format.h>
#include <sqlite3.h>

#include <utility>
#include <vector>

namespace dbactor::detail {
namespace {

/// Requests in [from, to) without an error of their own get `e` (their shared transaction failed).
void fail_range(std::vector<request_base*>& group,
                std::size_t from,
                std::size_t to,
                const std::exception_ptr& e) noexcept
{
    for (std::size_t i = from; i < to; ++i)
        if (!group[i]->error())
            group[i]->set_error(e);
}

/// After `r` ran: the transaction ended inside it (SQLite's rollback or its own COMMIT/ROLLBACK). Rolls back
/// what it began itself afterwards, gives it its error and the batch-mates theirs.
void end_of_transaction(session& s, std::size_t start, std::size_t at, bool refused)
{
    request_base* r = s.group[at];
    if (s.in_transaction())
        s.rollback.try_run(); // it began a transaction of its own after ending ours
    // SQLite's own rollback (an I/O error, disk full, an interrupt) explains itself and is what the
    // batch-mates get too; anything else was the request ending the transaction.
    const bool by_request = refused || !sqlite_rolled_back(r->error());
    if (refused || !r->error())
        r->set_error(std::make_exception_ptr(SQLite::Exception(
            fmt::format("{} {} inside async_write; nothing it did was kept. async_write commits "
                        "for you after the request returns: remove the COMMIT/ROLLBACK, or use "
                        "async_call to control the transaction yourself.",
                        who(r, "A write", "Write"),
                        refused ? "ran COMMIT itself (turned into a ROLLBACK)"
                                : "saw its write transaction end (its own ROLLBACK, or an SQLite "
                                  "error it caught)"),
            SQLITE_MISUSE)));
    fail_range(s.group,
               start,
               at,
               by_request ? std::make_exception_ptr(SQLite::Exception(
                                fmt::format("A write was rolled back with the group commit it "
                                            "shared, because {} ended that transaction before "
                                            "it was committed. It had no effect; send it again.",
                                            who(r, "another write", "write")),
                                SQLITE_ABORT_ROLLBACK))
                          : r->error());
}

/// Runs `r` and says whether the transaction survived it.
write_outcome run_request(session& s, std::size_t start, std::size_t at, batch_host& host) noexcept
{
    request_base* r = s.group[at];
    host.run_one(s, r);
    const bool refused = std::exchange(s.commit_refused, false);
    if (std::exchange(s.rolled_back, false) || refused || !s.in_transaction()) {
        try {
            end_of_transaction(s, start, at, refused);
        }
        catch (...) { // formatting failed (out of memory): the batch fails with what it has
            fail_range(s.group, start, at + 1, std::current_exception());
        }
        return write_outcome::transaction_ended;
    }
    return r->error() ? write_outcome::failed_alone : write_outcome::kept;
}

/// The request's savepoint was released (or rolled back): its change level joins the transaction's. Out of
/// memory there, the feed would report less than was committed: the feed's changes are dropped instead.
void release_change_level(session& s) noexcept
{
    try {
        s.changes.release_level();
    }
    catch (...) {
        s.changes.on_rollback();
    }
}

/// A commit happened: what the feed recorded for it is confirmed.
void confirm_changes(session& s) noexcept
{
    try {
        s.changes.on_wal_commit();
    }
    catch (...) {
        s.changes.on_rollback();
    }
}

/// Runs `r` inside SAVEPOINT … RELEASE; a failure rolls back to the savepoint.
write_outcome run_in_savepoint(session& s, std::size_t start, std::size_t at, batch_host& host) noexcept
{
    request_base* r = s.group[at];
    if (auto e = s.savepoint.try_run()) {
        r->set_error(e);
        return write_outcome::failed_alone;
    }
    try {
        s.changes.push_level();
    }
    catch (...) { // out of memory: the savepoint stands, its rollback below undoes it
        r->set_error(std::current_exception());
        s.rollback_to.try_run();
        s.release.try_run();
        return write_outcome::failed_alone;
    }
    const write_outcome o = run_request(s, start, at, host);
    if (o == write_outcome::transaction_ended)
        return o;
    if (!r->error() && s.deferred_violations()) {
        // It would fail the COMMIT of every request in the batch; it fails alone instead.
        r->set_error(std::make_exception_ptr(SQLite::Exception(
            fmt::format("{} left a deferred FOREIGN KEY constraint unresolved; its changes were "
                        "rolled back. Insert the parent row in the same request.",
                        who(r, "A write", "Write")),
            SQLITE_CONSTRAINT_FOREIGNKEY)));
    }
    if (!r->error()) {
        if (auto e = s.release.try_run())
            r->set_error(e);
        else {
            release_change_level(s);
            return write_outcome::kept;
        }
    }
    s.rollback_to.try_run();
    s.release.try_run();
    s.changes.rollback_level(); // what the change feed saw of it is dropped with it
    release_change_level(s);
    return write_outcome::failed_alone;
}

} // namespace

write_batch_result run_write_batch(session& s, std::size_t start, batch_host& host) noexcept
{
    auto& group = s.group;
    // While BEGIN IMMEDIATE waits for another connection's write lock, the busy handler watches the first
    // request's deadline and cancellation (an interruptible one is alone) and the shutdown grace.
    s.current = group[start];
    auto e = s.begin_immediate.try_run();
    s.current = nullptr;
    group[start]->lock_wait_ += s.take_lock_wait();
    if (e) {
        if (group[start]->interrupted()) {
            for (std::size_t i = start; i < group.size(); ++i)
                group[i]->set_error(make_error_ptr(group[start]->interrupt_reason(), group[i]->name_));
        }
        else
            fail_range(group, start, group.size(), busy_or(e, "BEGIN IMMEDIATE"));
        return {group.size(), false};
    }
    std::size_t i = start;
    bool closed = group[start]->alone(); // an interruptible request shares with nobody
    for (;;) {
        // Writes queued while these ran join this transaction before its COMMIT: what is already there,
        // never waited for. Under load the batch grows to max_batch this way, instead of alternating
        // between one request and all the others.
        if (i == group.size() && (closed || !host.extend(s)))
            break;
        // A request alone in its transaction needs no savepoint: a failure rolls the whole thing back.
        const bool shared = i > start || group.size() - start > 1;
        const write_outcome o = shared ? run_in_savepoint(s, start, i, host) : run_request(s, start, i, host);
        ++i;
        if (o == write_outcome::transaction_ended)
            return {i, true};
        if (!shared && o == write_outcome::failed_alone) {
            s.rollback.try_run(); // only a ROLLBACK undoes it; nobody else is in this transaction
            return {i, true};
        }
        // A deferred violation of a request without a savepoint fails this COMMIT: it must fail alone.
        closed = closed || (!shared && s.deferred_violations());
    }
    if (auto commit_error = s.commit.try_run()) {
        if (s.in_transaction())
            s.rollback.try_run();
        s.changes.on_rollback();                   // nothing of it was committed, whatever the hooks saw
        fail_range(group, start, i, commit_error); // every request of the batch loses its changes
    }
    else
        confirm_changes(s); // COMMIT returned DONE (without a WAL no WAL hook said so)
    return {i, true};
}

} // namespace dbactor::detail
