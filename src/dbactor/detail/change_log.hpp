// detail::change_log: what the writer's transaction changed, by table, kept through savepoints, until COMMIT.
#pragma once

#include <dbactor/change_feed.hpp>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace dbactor::detail {

/// Changes by table: counts, and rowids up to a bound.
struct change_set
{
    std::vector<table_change> tables;

    bool empty() const noexcept { return tables.empty(); }
    void clear() noexcept { tables.clear(); }
    /// One row changed (op: SQLITE_INSERT, SQLITE_UPDATE or SQLITE_DELETE); an UPDATE that moved the row
    /// to another rowid has both.
    void add(int op, const char* table, std::int64_t rowid, std::int64_t new_rowid, std::size_t max_rowids);
    /// Adds `other`'s counts and rowids (up to max_rowids per table) to this one's.
    void merge(const change_set& other, std::size_t max_rowids);
};

/// Sums `from` into `into` (counts; rowids up to max_rowids, each once; complete only when both were).
void merge_change(table_change& into, const table_change& from, std::size_t max_rowids);

/// The writer's change accounting, fed by SQLite's pre-update, commit, rollback and WAL hooks (session) and
/// by the savepoints the actor and connection::savepoint open. A level per open savepoint: ROLLBACK TO drops
/// the changes of its level only. A commit moves every level to `tentative`; the WAL hook (the frames are
/// written: the commit happened) or, without a WAL, the commit itself confirms it into `committed`, which the
/// actor publishes after the request or batch. A rollback drops what is not confirmed. Without a WAL (or for
/// a commit made inside sqlite3_reset) a call's commit is confirmed when the call ends, so a rollback of a
/// later transaction of the same call drops it (docs/CHANGE-FEED.md). Thread safety: the
/// writer thread only. Memory: bounded by tables x max_rowids, not by rows changed.
class change_log
{
public:
    bool active = false; ///< someone subscribed: the pre-update hook records (session::record_changes)
    std::size_t max_rowids = 64;

    void on_update(int op, const char* table, std::int64_t rowid, std::int64_t new_rowid);
    void push_level();
    void release_level();
    void rollback_level() noexcept;
    void on_commit();
    /// A commit happened: the WAL hook, or the actor after its COMMIT returned DONE, or at the end of a call
    /// with no transaction open (a commit inside sqlite3_reset, or without a WAL, runs no WAL hook).
    void on_wal_commit();
    /// Also when a COMMIT the actor ran failed: nothing unconfirmed is kept.
    void on_rollback() noexcept;

    /// Takes the confirmed changes (empty when nothing was committed since the last take).
    bool take(change_set& out);

private:
    std::vector<change_set> levels_ = std::vector<change_set>(1);
    std::size_t depth_ = 0; // open levels above the transaction's (levels_ keeps their storage)
    change_set tentative_, committed_;
};

} // namespace dbactor::detail
