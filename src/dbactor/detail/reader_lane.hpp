// detail::reader_lane: options::readers read-only connections, each on its own thread, serving async_read.
#pragma once

#include <dbactor/options.hpp>

#include <memory>
#include <thread>
#include <vector>

namespace dbactor::detail {

class actor;
class group_server;
class request_queue;
struct close_clock;
struct session;

/// The reader lane: N read-only connections (WAL files only), each with its thread, serving the reads of
/// one bounded queue. Opened after the writer booted; closed when that queue closes (with the writer's).
/// Thread safety: start() and stop() from the writer thread only.
class reader_lane
{
public:
    reader_lane(const options& o,
                const close_clock& closing,
                request_queue& queue,
                group_server& server) noexcept
        : opts_(o), closing_(closing), queue_(queue), server_(server)
    {}
    reader_lane(const reader_lane&) = delete;
    reader_lane& operator=(const reader_lane&) = delete;
    ~reader_lane() { stop(); }

    /// Opens options::readers connections and starts their threads (none when readers = 0).
    /// Errors: errc::open_failed for an in-memory or read-only database; SQLite::Exception from opening.
    void start(const actor* owner);

    /// Waits for the threads (their queue must be closed first) and closes every connection. Idempotent.
    void stop() noexcept;

private:
    void main(session& s, const actor* owner) noexcept;

    const options& opts_;
    const close_clock& closing_;
    request_queue& queue_;
    group_server& server_;
    std::vector<std::unique_ptr<session>> sessions_;
    std::vector<std::thread> threads_;
};

} // namespace dbactor::detail
