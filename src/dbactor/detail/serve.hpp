// detail::group_server: serves one group taken from a queue (claim, run, the write batch, reads, a call).
#pragma once

#include <dbactor/detail/write_batch.hpp>
#include <dbactor/options.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>

namespace dbactor::detail {

struct actor_stats;
class change_hub;
struct close_clock;
struct session;
class request_base;
enum class lane : std::uint8_t;

/// Serves the group a session took from its queue: claims each request (answering instead those abandoned,
/// past their deadline or past the shutdown grace), runs the rest together by lane, counts them and replies.
/// Thread safety: shared by the writer and the reader threads; it keeps no state of its own between calls.
class group_server final : public batch_host
{
public:
    group_server(const options& o, const close_clock& closing, actor_stats& stats) noexcept
        : opts_(o), closing_(closing), stats_(stats)
    {}

    /// Claims and runs `s.group`; true when a write or a call ran (the WAL may have grown).
    bool process(session& s) noexcept;

    actor_stats& stats() noexcept { return stats_; }
    /// Where the writer publishes what each batch or call committed (set before serving; null: nowhere).
    void set_hub(change_hub* hub) noexcept { hub_ = hub; }

    void run_one(session& s, request_base* r) noexcept override;
    bool extend(session& s) noexcept override;

private:
    bool claim(session& s, request_base* r) noexcept;
    void claim_from(session& s, std::size_t from) noexcept;
    void run_writes(session& s) noexcept;
    void run_reads(session& s) noexcept;
    void run_call(session& s) noexcept;
    void publish_changes(session& s) noexcept;
    void finish_range(session& s, std::size_t from, std::size_t to, lane l) noexcept;
    void report_slow(request_base* r,
                     lane l,
                     std::chrono::steady_clock::duration wait,
                     std::chrono::steady_clock::duration exec,
                     bool failed) noexcept;

    const options& opts_;
    const close_clock& closing_;
    actor_stats& stats_;
    change_hub* hub_ = nullptr;
};

} // namespace dbactor::detail
