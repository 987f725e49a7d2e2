#include <dbactor/detail/stats.hpp>

#include <dbactor/error.hpp>

namespace dbactor::detail {

void actor_stats::count_abandoned(errc reason) noexcept
{
    switch (reason) {
    case errc::timed_out: add(timed_out); break;
    case errc::cancelled: add(cancelled); break;
    case errc::closed: add(closed_unexecuted); break;
    default: break;
    }
}

void actor_stats::count_write_batch(std::uint64_t size) noexcept
{
    add(write_batches);
    add(write_batched, size);
    if (size > write_batch_max.load(std::memory_order_relaxed))
        write_batch_max.store(size, std::memory_order_relaxed);
}

stats_snapshot actor_stats::snapshot() const noexcept
{
    stats_snapshot s;
    s.write = lanes[0].snapshot();
    s.read = lanes[1].snapshot();
    s.call = lanes[2].snapshot();
    s.idle_checkpoints = idle_checkpoints.load(std::memory_order_relaxed);
    s.rejected = rejected.load(std::memory_order_relaxed);
    s.timed_out = timed_out.load(std::memory_order_relaxed);
    s.cancelled = cancelled.load(std::memory_order_relaxed);
    s.closed_unexecuted = closed_unexecuted.load(std::memory_order_relaxed);
    s.write_batches = write_batches.load(std::memory_order_relaxed);
    s.write_batch_max = write_batch_max.load(std::memory_order_relaxed);
    const auto writes = write_batched.load(std::memory_order_relaxed);
    s.write_batch_mean =
        s.write_batches ? static_cast<double>(writes) / static_cast<double>(s.write_batches) : 0;
    s.read_batches = read_batches.load(std::memory_order_relaxed);
    const auto reads = read_batched.load(std::memory_order_relaxed);
    s.read_batch_mean = s.read_batches ? static_cast<double>(reads) / static_cast<double>(s.read_batches) : 0;
    s.cached_statements = cached_statements.load(std::memory_order_relaxed);
    s.lock_waits = lock_waits.load(std::memory_order_relaxed);
    s.lock_wait = lock_wait.summary();
    return s;
}

} // namespace dbactor::detail
