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
    std::string source; ///< where it came from, used in messages (a path, or `embedded:file`)
    /// `-- dbactor: no-transaction` in the leading comments: its statements run one by one in autocommit
    /// mode (for what cannot run in a transaction, such as VACUUM); only its ledger row is transactional.
    /// It must be safe to run twice (IF NOT EXISTS), since a crash between the two leaves it unrecorded.
    bool no_transaction = false;
    /// `-- dbactor: foreign-keys=off` in the leading comments: foreign keys are turned off around its
    /// transaction and `PRAGMA foreign_key_check` runs before COMMIT (SQLite's table-rebuild procedure).
    bool foreign_keys_off = false;
};

/// An ordered, validated list of migrations (versions strictly increasing from 1, no gaps).
class migration_set
{
public:
    /// No migrations.
    migration_set() = default;

    /// Reads `NNNN_name.sql` (and `NNNN_name.down.sql`) files from `dir`.
    /// Errors: dbactor::error with errc::migration_source_invalid for a missing directory, a badly named
    /// `.sql` file, a gap or a duplicate version, a down file without its up file, or an unknown
    /// `-- dbactor:` directive; the message names the file (and the line of a directive).
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

/// The header directives of a migration text (`-- dbactor: no-transaction`, `-- dbactor: foreign-keys=off`),
/// read from its leading comment lines.
/// Errors: errc::migration_source_invalid for an unknown directive, naming `source:line`.
struct migration_directives
{
    bool no_transaction = false;
    bool foreign_keys_off = false;
};
migration_directives parse_migration_directives(std::string_view sql, std::string_view source);

/// The ledger checksum of a migration text: lowercase hex SHA-256 of the text with CRLF turned into LF
/// and trailing whitespace removed from every line and from the end.
std::string migration_checksum(std::string_view sql);

} // namespace dbactor
