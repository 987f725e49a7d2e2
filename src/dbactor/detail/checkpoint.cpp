#include <dbactor/detail/checkpoint.hpp>

#include <dbactor/detail/boot.hpp>
#include <dbactor/detail/session.hpp>
#include <dbactor/detail/statement.hpp>
#include <dbactor/error.hpp>
#include <dbactor/report.hpp>

#include <SQLiteCpp/Exception.h>

#include <fmt/format.h>
#include <sqlite3.h>

namespace dbactor::detail {

void apply_checkpoint_mode(session& s, const options& o, boot_summary& report)
{
    if (o.checkpoints != checkpoint_mode::external) {
        report.checkpoints = "actor";
        return;
    }
    report.checkpoints = "external";
    sqlite3* h = s.handle();
    // Closing the last connection checkpoints the WAL too: a replicator that owns checkpoints must see every
    // frame in the WAL first, so the actor's connections never do.
    sqlite3_db_config(h, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, nullptr);
    if (o.read_only)
        return;
    std::string actual;
    try {
        if (sqlite3_exec(h, "PRAGMA wal_autocheckpoint = 0", nullptr, nullptr, nullptr) != SQLITE_OK)
            throw SQLite::Exception(h, sqlite3_extended_errcode(h));
        actual = text_value(h, "PRAGMA wal_autocheckpoint");
    }
    catch (const SQLite::Exception& e) {
        throw error(
            errc::pragma_mismatch,
            fmt::format("Boot of '{}': PRAGMA wal_autocheckpoint = 0 (options::checkpoints = external) "
                        "failed: {}.",
                        o.path,
                        e.what()),
            e.getExtendedErrorCode());
    }
    report.pragmas.push_back({"wal_autocheckpoint", "0", actual});
    if (actual != "0")
        throw error(
            errc::pragma_mismatch,
            fmt::format("Boot of '{}': PRAGMA wal_autocheckpoint was set to 0 (options::checkpoints = "
                        "external) but reads back '{}'.",
                        o.path,
                        actual));
}

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
    writer.no_wait = true; // a reader still on the WAL: try again later rather than hold the writer here
    rc = sqlite3_wal_checkpoint_v2(h, nullptr, SQLITE_CHECKPOINT_TRUNCATE, nullptr, nullptr);
    writer.no_wait = false;
    return rc == SQLITE_OK;
}

std::exception_ptr final_checkpoint(session& writer, const options& o) noexcept
{
    if (o.read_only || is_memory(o.path) || o.checkpoints == checkpoint_mode::external)
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
