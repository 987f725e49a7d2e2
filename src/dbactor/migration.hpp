// dbactor::migration and dbactor::migration_set: the schema steps a database is brought up to at boot.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace dbactor {

/// One migration: `NNNN_name.sql` and its optional `NNNN_name.down.sql`.
struct migration
{
    std::int64_t version = 0;
    std::string name;                    ///< the part after `NNNN_`, without `.sql`
    std::string up_sql;                  ///< the text of `NNNN_name.sql`
    std::optional<std::string> down_sql; ///< the text of `NNNN_name.down.sql`, if there is one
    std::string source;                  ///< where it came from, used in messages (a path, or `embedded:file`)
};

/// An ordered, validated list of migrations (versions strictly increasing from 1, no gaps).
class migration_set
{
public:
    /// No migrations.
    migration_set() = default;

    /// Reads `NNNN_name.sql` (and `NNNN_name.down.sql`) files from `dir`.
    /// Errors: dbactor::error with errc::migration_source_invalid for a missing directory, a badly named
    /// `.sql` file, a gap or a duplicate version; the message names the file.
    static migration_set from_directory(const std::filesystem::path& dir);

    /// Builds a set from (file name, text) pairs, e.g. those compiled in by `dbactor_embed_migrations`.
    /// `origin` prefixes each migration's `source` in messages. Errors as from_directory.
    static migration_set from_files(std::vector<std::pair<std::string, std::string>> files,
                                    std::string_view origin = "embedded");

    const std::vector<migration>& items() const noexcept { return items_; }
    bool empty() const noexcept { return items_.empty(); }
    /// The highest version, or 0 when empty.
    std::int64_t latest_version() const noexcept { return items_.empty() ? 0 : items_.back().version; }

private:
    std::vector<migration> items_;
};

/// The ledger checksum of a migration text: lowercase hex SHA-256 of the text with CRLF turned into LF
/// and trailing whitespace removed from every line and from the end.
std::string migration_checksum(std::string_view sql);

} // namespace dbactor
