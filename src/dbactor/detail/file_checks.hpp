// What the database's files on disk say, read without SQLite or through an immutable connection: the header,
// the main file without its -wal, and whether a file changed under a lock-free read.
#pragma once

#include <dbactor/options.hpp>

#include <array>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

struct sqlite3;

namespace dbactor::detail {

/// The first bytes of the main file, read without SQLite (which would not be asked to write anything
/// either, but this way the checks need no connection at all).
struct file_header
{
    bool exists = false;
    std::uintmax_t size = 0;
    bool sqlite_magic = false;
    std::uint32_t page_size = 0;
    std::uint32_t page_count = 0; ///< the in-header database size, 0 when not valid
    bool wal_mode = false;        ///< header bytes 18/19 = 2
};

file_header read_header(const std::string& path);

/// A `file:` URI of `path` (made absolute, percent-encoded) with the query `params`.
std::string file_uri(const std::string& path, const char* params);

/// What the main file says on its own, without its -wal (read through an immutable connection, which takes
/// no locks and creates nothing).
struct main_file_view
{
    std::int64_t schema_version = 0;
    bool has_ledger = false;
};

/// The schema cookie and whether the ledger exists, as `db` sees the database. Throws SQLite::Exception.
main_file_view view_of(sqlite3* db);

/// Reads the main file alone; nullopt when it cannot be read that way (the checks after it will say why).
/// Nothing in a WAL names its database, and SQLite replays any -wal with valid frames over the main file.
/// A -wal of the same database only ever moves it forward: the schema cookie never decreases (VACUUM
/// increments it too) and the migration ledger, once there, stays. A -wal that moves it backwards belongs
/// to another database (or to an older copy of this one).
std::optional<main_file_view> read_main_file_only(const std::string& path, const std::string& vfs);

/// What a read-only boot saw of the file before it opened it as immutable (no locks, so a writer that starts
/// meanwhile is not noticed by SQLite).
struct immutable_open
{
    bool allowed = true; ///< false on the retry: a normal read-only open
    bool used = false;
    std::array<char, 100> header{};
    std::uintmax_t size = 0;
    std::filesystem::file_time_type mtime{};
};

/// Records the size, modification time and header of `path` in `im`.
void take_snapshot(const std::string& path, immutable_open& im);

/// Whether the file may have changed under an immutable connection since take_snapshot: a -wal appeared (a
/// writer started), or the header, size or modification time differ (a checkpoint wrote pages).
bool changed_since(const std::string& path, const immutable_open& im);

/// The size of a file in bytes, 0 when it does not exist (no -wal: nothing in it).
/// Errors: errc::open_failed when it cannot be read.
std::int64_t file_size(const std::string& path);

/// A writing boot fails fast and clearly where SQLite would say only "unable to open" or "readonly database"
/// after the first write: a read-only file, an unwritable directory, a missing file with create = false.
/// Errors: errc::open_failed.
void refuse_unwritable(const options& o, const file_header& header, bool plain_file);

} // namespace dbactor::detail
