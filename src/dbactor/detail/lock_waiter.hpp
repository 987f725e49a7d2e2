// detail::lock_waiter: boot's busy handler. It waits for another connection's lock in short steps, up to
// busy_timeout, and adds up the time, for boot_summary (the actor's session has its own, which also knows
// the running request's deadline).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

struct sqlite3;

namespace dbactor::detail {

/// The sleep of the `count`th call of a busy handler in one wait: 1 ms for the first ten, then 5 ms, never
/// past `left` (and at least 100 µs). SQLite's own handler sleeps up to 100 ms a step, so a lock released
/// just after a step began is seen up to 100 ms late; these steps see it within 5 ms.
std::chrono::steady_clock::duration busy_step(int count, std::chrono::steady_clock::duration left) noexcept;

/// Waits for other connections' locks on one connection during boot.
/// Thread safety: used by the booting thread only.
class lock_waiter
{
public:
    explicit lock_waiter(std::chrono::milliseconds limit) noexcept : limit_(limit) {}

    /// Installs the handler on `db` (it replaces busy_timeout's); reinstall after `PRAGMA busy_timeout`.
    void install(sqlite3* db) noexcept;

    /// Leaves `db` with SQLite's own busy_timeout at the limit when this handler is still the one installed
    /// (`PRAGMA busy_timeout` then reads 0): the pragma's read-back and the actor's session read it there.
    void hand_back(sqlite3* db) noexcept;

    /// sqlite3_exec, retrying SQLITE_BUSY in the same steps until the limit: changing the journal mode needs
    /// an exclusive lock, and SQLite returns BUSY at once (without the busy handler, to avoid a deadlock)
    /// while another connection holds a write lock. The contract is "busy after about busy_timeout".
    int exec(sqlite3* db, const std::string& sql);

    std::uint64_t waits() const noexcept { return waits_; }             ///< waits that slept at least once
    std::chrono::nanoseconds waited() const noexcept { return total_; } ///< their time, added up

private:
    static int on_busy(void* p, int count) noexcept;
    /// One step of a wait begun at `start`; false when the limit is reached.
    bool sleep_step(int count, std::chrono::steady_clock::time_point start) noexcept;

    std::chrono::milliseconds limit_;
    std::chrono::steady_clock::time_point start_{};
    std::uint64_t waits_ = 0;
    std::chrono::nanoseconds total_{0};
};

} // namespace dbactor::detail
