// The writer's WAL checkpoints: the idle one (after writes, when the queue stays empty) and the final one.
#pragma once

#include <dbactor/options.hpp>

#include <exception>

namespace dbactor {
struct boot_summary;
}

namespace dbactor::detail {

struct session;

/// With checkpoint_mode::external: `PRAGMA wal_autocheckpoint = 0` (read back) and no checkpoint when the
/// connection closes; records the mode in `report`. Errors: errc::pragma_mismatch.
void apply_checkpoint_mode(session& s, const options& o, boot_summary& report);

/// PASSIVE, then (when every frame is back in the main file) TRUNCATE without waiting for readers.
/// True when the WAL was emptied or there is none (then `enabled` is cleared: not in WAL mode, nothing to
/// checkpoint, ever); false when a reader still needs it (tried again later).
bool idle_checkpoint(session& writer, bool& enabled) noexcept;

/// Copies the WAL back into the main file before closing. sqlite3_close does this too (when it is the last
/// connection), but swallows its I/O errors: done here, a failing disk is reported to close()'s caller
/// (errc::close_failed). PASSIVE: never waits for another process's reader (then its WAL stays, as normal).
std::exception_ptr final_checkpoint(session& writer, const options& o) noexcept;

} // namespace dbactor::detail
