#include <dbactor/detail/checkpoint.hpp>

#include <dbactor/detail/boot.hpp>
#include <dbactor/detail/session.hpp>
#include <dbactor/error.hpp>

#include <fmt/format.h>
#include <sqlite3.h>

namespace dbactor::detail {

bool idle_checkpoint(session& writer, bool& enabled) noexcept
{
    sqlite3* h = writer.handle();
    int frames = -1, copied = -1;
    int rc = sqlite3_wal_checkpoint_v2(h, nullptr, SQLITE_CHECKPOINT_PASSIVE, &frames, &copied);
    if (rc == SQLITE_OK && frames < 0) {
        enabled = false; // not in WAL mode (a pragma changed it)
        return true;
    }
    if (rc != SQLITE_OK || copied < frames)
        return false;
    const int busy_ms = writer.busy_timeout_ms(); // as boot (or options::pragmas) left it
    sqlite3_busy_timeout(h, 0); // a reader still on the WAL: try again later rather than wait here
    rc = sqlite3_wal_checkpoint_v2(h, nullptr, SQLITE_CHECKPOINT_TRUNCATE, nullptr, nullptr);
    sqlite3_busy_timeout(h, busy_ms);
    return rc == SQLITE_OK;
}

std::exception_ptr final_checkpoint(session& writer, const options& o) noexcept
{
    if (o.read_only || is_memory(o.path))
        return nullptr;
    sqlite3* h = writer.handle();
    const int rc = sqlite3_wal_checkpoint_v2(h, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
    if (rc == SQLITE_OK || (rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED)
        return nullptr;
    const int ext = sqlite3_extended_errcode(h);
    try {
        return std::make_exception_ptr(
            error(errc::close_failed,
                  fmt::format(
                      "Closing '{}': the final checkpoint failed ({}). Nothing acknowledged is lost: those "
                      "writes are in '{}-wal', which the next open replays. Check the disk (free space, I/O "
                      "errors) before opening it again, and keep the -wal file with the database.",
                      o.path,
                      sqlite3_errmsg(h),
                      o.path),
                  ext));
    }
    catch (...) {
        return std::current_exception();
    }
}

} // namespace dbactor::detail
