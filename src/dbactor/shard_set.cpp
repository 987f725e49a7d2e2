#include <dbactor/shard_set.hpp>

#include <dbactor/error.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <thread>

namespace dbactor {
namespace {

constexpr std::string_view placeholder = "{shard}";

/// `e` as the error of shard i: the same errc, the message naming the shard.
error shard_error(const std::exception_ptr& e, std::size_t i, std::size_t n, const std::string& path)
{
    const std::string where = fmt::format("Shard {} of {} ('{}'): ", i, n, path);
    try {
        std::rethrow_exception(e);
    }
    catch (const error& x) {
        return error(x.value(), where + x.what(), x.sqlite_code());
    }
    catch (const std::exception& x) {
        return error(errc::open_failed, where + x.what());
    }
    catch (...) {
        return error(errc::open_failed, where + "an unknown exception was thrown while it booted.");
    }
}

void add(latency_summary& to, const latency_summary& s)
{
    const auto count = to.count + s.count;
    to.mean_ns = count ? (to.mean_ns * double(to.count) + s.mean_ns * double(s.count)) / double(count) : 0;
    to.count = count;
    to.p50_ns = std::max(to.p50_ns, s.p50_ns);
    to.p90_ns = std::max(to.p90_ns, s.p90_ns);
    to.p99_ns = std::max(to.p99_ns, s.p99_ns);
    to.max_ns = std::max(to.max_ns, s.max_ns);
}

void add(lane_stats& to, const lane_stats& s)
{
    to.completed += s.completed;
    to.failed += s.failed;
    add(to.queue_wait, s.queue_wait);
    add(to.execution, s.execution);
}

} // namespace

std::string shard_path(std::string_view pattern, std::size_t shard)
{
    std::string out;
    const std::string index = std::to_string(shard);
    for (std::size_t pos = 0;;) {
        const auto at = pattern.find(placeholder, pos);
        if (at == std::string_view::npos) {
            out += pattern.substr(pos);
            return out;
        }
        out += pattern.substr(pos, at - pos);
        out += index;
        pos = at + placeholder.size();
    }
}

shard_set& shard_set::operator=(shard_set&& other) noexcept
{
    if (this != &other) {
        try {
            close();
        }
        catch (...) {
            // Logged by each database; a move must not throw.
        }
        shards_ = std::move(other.shards_);
        paths_ = std::move(other.paths_);
    }
    return *this;
}

shard_set::~shard_set()
{
    try {
        close();
    }
    catch (...) {
        // Each database logged its close failure (options::on_log).
    }
}

shard_set shard_set::open(options tmpl, std::size_t n)
{
    if (n == 0)
        throw error(
            errc::open_failed,
            fmt::format("shard_set::open('{}', 0): a shard set needs at least one shard.", tmpl.path));
    if (n > 1 && tmpl.path.find(placeholder) == std::string::npos)
        throw error(errc::open_failed,
                    fmt::format("shard_set::open('{}', {}): the path has no {{shard}} placeholder, so every "
                                "shard would be the same file. Use a pattern such as 'var/bot-{{shard}}.db'.",
                                tmpl.path,
                                n));
    shard_set set;
    set.shards_.resize(n);
    std::vector<std::exception_ptr> failures(n);
    std::vector<std::thread> booting;
    booting.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
        set.paths_.push_back(shard_path(tmpl.path, i));
        options o = tmpl;
        o.path = set.paths_.back();
        o.shard = shard_identity{i, n};
        // Each boot on a thread of its own (database::open blocks until its actor serves): eight shards boot
        // in about the time of one.
        booting.emplace_back([&set, &failures, i, o = std::move(o)]() mutable {
            try {
                set.shards_[i] = database::open(std::move(o));
            }
            catch (...) {
                failures[i] = std::current_exception();
            }
        });
    }
    for (auto& t : booting)
        t.join();
    for (std::size_t i = 0; i < n; ++i)
        if (failures[i]) {
            const error e = shard_error(failures[i], i, n, set.paths_[i]);
            set.shards_.clear(); // the booted ones close (the last handle of each)
            throw e;
        }
    return set;
}

void shard_set::close()
{
    std::exception_ptr first;
    for (auto& db : shards_) {
        try {
            db.close();
        }
        catch (...) {
            if (!first)
                first = std::current_exception();
        }
    }
    if (first)
        std::rethrow_exception(first);
}

std::vector<stats_snapshot> shard_set::stats() const
{
    std::vector<stats_snapshot> out;
    out.reserve(shards_.size());
    for (const auto& db : shards_)
        out.push_back(db.stats());
    return out;
}

stats_snapshot shard_set::stats_total() const
{
    stats_snapshot t;
    std::uint64_t batched_writes = 0, batched_reads = 0;
    for (const auto& s : stats()) {
        add(t.write, s.write);
        add(t.read, s.read);
        add(t.call, s.call);
        t.queue_depth += s.queue_depth;
        t.queue_depth_max += s.queue_depth_max;
        t.queue_waiting += s.queue_waiting;
        t.queue_waiting_max += s.queue_waiting_max;
        t.rejected += s.rejected;
        t.timed_out += s.timed_out;
        t.cancelled += s.cancelled;
        t.closed_unexecuted += s.closed_unexecuted;
        t.write_batches += s.write_batches;
        t.write_batch_max = std::max(t.write_batch_max, s.write_batch_max);
        batched_writes += static_cast<std::uint64_t>(s.write_batch_mean * double(s.write_batches) + 0.5);
        t.read_batches += s.read_batches;
        batched_reads += static_cast<std::uint64_t>(s.read_batch_mean * double(s.read_batches) + 0.5);
        t.cached_statements += s.cached_statements;
        t.idle_checkpoints += s.idle_checkpoints;
        t.lock_waits += s.lock_waits;
        add(t.lock_wait, s.lock_wait);
    }
    t.write_batch_mean = t.write_batches ? double(batched_writes) / double(t.write_batches) : 0;
    t.read_batch_mean = t.read_batches ? double(batched_reads) / double(t.read_batches) : 0;
    return t;
}

} // namespace dbactor
