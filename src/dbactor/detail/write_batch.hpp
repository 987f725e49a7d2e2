// detail::run_write_batch: group commit, one BEGIN IMMEDIATE … COMMIT shared by the writes queued together.
#pragma once

#include <cstddef>

namespace dbactor::detail {

struct session;
class request_base;

/// What the batch needs from the thread serving it; tests implement it to drive a batch without threads.
class batch_host
{
public:
    /// Runs one claimed request on `s` (s.current set while it runs); its failure is stored in it.
    virtual void run_one(session& s, request_base* r) noexcept = 0;
    /// Appends to s.group the writes queued behind the batch that may join it, claimed; true when any did.
    virtual bool extend(session& s) noexcept = 0;

protected:
    ~batch_host() = default;
};

/// What became of one request of a batch.
enum class write_outcome
{
    kept,              ///< it succeeded; its changes are in the transaction (committed with the batch)
    failed_alone,      ///< it failed; only its own changes were undone (its savepoint, or the whole
                       ///< transaction when it was alone in it), the others of the batch are unaffected
    transaction_ended, ///< the transaction is gone (an I/O error, an interrupt, its own COMMIT/ROLLBACK):
                       ///< every request of the batch before it lost its changes too
};

/// Where a batch ended.
struct write_batch_result
{
    std::size_t end; ///< one past its last request: the caller finishes [start, end) and goes on from there
    bool began;      ///< false when BEGIN IMMEDIATE failed (every request from start got that failure)
};

/// Runs the writes of `s.group` from index `start` in one transaction: each in its own SAVEPOINT when it
/// shares the transaction, none when it is alone; writes queued meanwhile join before the COMMIT (up to
/// max_batch, through `host.extend`). Every request of the transaction gets its own failure, or the
/// transaction's (a failed BEGIN or COMMIT fails them all).
write_batch_result run_write_batch(session& s, std::size_t start, batch_host& host) noexcept;

} // namespace dbactor::detail
