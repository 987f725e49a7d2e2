// dbtool's SIGINT handling: interruptible commands, the output of an immediate exit, lock waits.
#pragma once

#include "exit_codes.hpp"
#include "options.hpp"

#include <dbactor/dbactor.hpp>

#include <cstddef>
#include <memory>
#include <string_view>

namespace dbtool {

/// SIGINT: while a command is interruptible it sees `was_interrupted()` and stops at a safe point (exit 130);
/// otherwise the process exits with 130 at once (SQLite's transactions make that safe), printing the document
/// of prepare_interrupt_output first under --json.
void install_sigint_handler();
void set_interruptible(bool on) noexcept;
bool was_interrupted() noexcept;
/// Prepares what an immediate exit on SIGINT prints (one JSON document with --json), so that the signal
/// handler only has to write it.
void prepare_interrupt_output(const global_options& g, std::string_view command);

/// While alive, lock waits on `db` (inside the request that creates it) are interruptible: a busy handler
/// sleeps in 10 ms steps up to `g.busy_timeout_ms` and gives up at once when SIGINT was seen; the first wait
/// is announced on stderr. The connection's own busy_timeout is restored on destruction.
class interruptible_lock_wait
{
public:
    interruptible_lock_wait(dbactor::connection& c, const global_options& g);
    ~interruptible_lock_wait();
    interruptible_lock_wait(const interruptible_lock_wait&) = delete;
    interruptible_lock_wait& operator=(const interruptible_lock_wait&) = delete;

    struct state;

private:
    dbactor::connection& c_;
    std::unique_ptr<state> state_;
};

/// Writes `n` bytes to `fd` with write(2) only (safe in a signal handler); gives up on an error.
void write_all(int fd, const char* p, std::size_t n) noexcept;
/// Marks the command's one document as being printed: SIGINT then lets it finish.
void mark_output_started() noexcept;

} // namespace dbtool
