// Test VFSes registered in-process over the default "unix" VFS: a fault injector and a power-loss simulator.
#pragma once

#include <cstdint>
#include <map>
#include <random>
#include <string>

namespace rel {

/// "dbactor_fault": counts writes and syncs of main database and WAL files, and fails chosen ones.
namespace fault_vfs {
inline constexpr const char* name = "dbactor_fault";
enum class kind
{
    write, ///< xWrite fails with SQLITE_IOERR_WRITE
    sync,  ///< xSync fails with SQLITE_IOERR_FSYNC
    full,  ///< xWrite fails with SQLITE_FULL (and keeps failing: the disk stays full)
};
/// The fault's name in reports.
inline const char* kind_name(kind k)
{
    switch (k) {
    case kind::write: return "write_error";
    case kind::sync: return "fsync_error";
    case kind::full: return "disk_full";
    }
    return "?";
}
void install();
/// Starts counting from zero; the `n`-th operation of `k` (1-based) fails, and with `sticky` every one after
/// it too, until disarm().
void arm(kind k, long n, bool sticky);
void disarm();
/// Operations of `k` seen since the last arm()/count_from_now().
long seen(kind k);
/// Failures injected since the last arm().
long injected();
void count_from_now();
} // namespace fault_vfs

/// "dbactor_crash": passes everything through, and keeps for every main database and WAL file the image a
/// power loss would leave: what was last synced, plus the writes since (applied at random by image()).
namespace crash_vfs {
inline constexpr const char* name = "dbactor_crash";
void install();
/// Forgets every tracked file (call before a new run).
void reset();
/// The power goes out: from now on nothing reaches the durable images; the files keep working.
void power_off();
/// The file contents after the power loss: the synced image of `path`, plus each unsynced write applied
/// with probability `keep` (torn at 512-byte boundaries). Empty optional when the file never existed.
struct image
{
    bool existed = false;
    std::string bytes;
    long unsynced_ops = 0;     ///< writes and truncates since the last sync
    long unsynced_kept = 0;    ///< of them, applied at least in part
    long unsynced_dropped = 0; ///< of them, not applied or applied only in part (torn)
};
image after_power_loss(const std::string& path, double keep, std::mt19937_64& r);
} // namespace crash_vfs

} // namespace rel
