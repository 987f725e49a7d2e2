// The boot gate: opens a connection and checks, configures and migrates it before the actor serves.
#pragma once

#include <dbactor/options.hpp>
#include <dbactor/report.hpp>

#include <memory>
#include <string>
#include <string_view>

namespace SQLite {
class Database;
}

namespace dbactor::detail {

/// Opens `o.path` and runs the boot sequence of DESIGN.md on the calling thread (the actor thread):
/// open, read the schema, integrity check, pragmas (read back), application_id, migrations,
/// foreign_key_check. Fills `report` as it goes.
/// Errors: dbactor::error with the failing step's errc; the connection is closed again and a file that
/// failed its checks is left byte-for-byte unchanged.
std::unique_ptr<SQLite::Database> boot(const options& o, boot_summary& report);

/// Opens one read-only connection for the reader lane (after the writer booted): same VFS, busy_timeout
/// and query-time pragmas, no checks.
std::unique_ptr<SQLite::Database> open_reader(const options& o);

/// A path that names an in-memory database (":memory:", "file::memory:…", "file:…?mode=memory").
bool is_memory(const std::string& path) noexcept;

/// Sends a message to options::on_log, or to stderr for warnings and errors when there is no hook.
void log(const options& o, log_level level, std::string_view message) noexcept;

} // namespace dbactor::detail
