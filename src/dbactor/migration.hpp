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

/// How a directory numbers its migrations (one scheme per directory).
enum class version_scheme
{
    sequential,  ///< 1, 2, 3, … without gaps (`0001_name.sql`: four to nine digits)
    timestamped, ///< ten or more digits (`20210422143411_name.sql`, as sqlx, goose, dbmate write them):
                 ///< strictly increasing, gaps allowed; a pending one below the newest applied is out of
                 ///< order
};

/// One migration: `V_name.sql` (or `V_name.up.sql`) and its optional `V_name.down.sql`.
struct migration
{
    std::int64_t version = 0;
    std::string name;                    ///< the part after `NNNN_`, without `.sql`
    std::string up_sql;                  ///< the text of `NNNN_name.sql`
    std::optional<std::string> down_sql; ///< the text of `NNNN_name.down.sql`, if there is one
    std::string source; ///< where it came from, used in messages (a path, or `embedded:file`)
    /// Where the down migration comes from: the down file, or `source` for a Down section (goose, dbmate).
    std::string down_source;
    /// A down file (or Down section) that holds no statement: the migration is not reversible, and
    /// `migrate --to` names this file when it refuses to revert past it. Empty otherwise.
    std::string empty_down;
    /// `-- dbactor: no-transaction` in the leading comments: its statements run one by one in autocommit
    /// mode (for what cannot run in a transaction, such as VACUUM); only its ledger row is transactional.
    /// It must be safe to run twice (IF NOT EXISTS), since a crash between the two leaves it unrecorded.
    bool no_transaction = false;
    /// `-- dbactor: foreign-keys=off` in the leading comments: foreign keys are turned off around its
    /// transaction and `PRAGMA foreign_key_check` runs before COMMIT (SQLite's table-rebuild procedure).
    bool foreign_keys_off = false;
};

/// An ordered, validated list of migrations: versions strictly increasing, from 1 without gaps
/// (version_scheme::sequential) or with gaps (version_scheme::timestamped).
class migration_set
{
public:
    /// No migrations.
    migration_set() = default;

    /// Reads `V_name.sql` (or `V_name.up.sql`) and `V_name.down.sql` files from `dir`.
    /// Errors: dbactor::error with errc::migration_source_invalid for a missing directory, a badly named
    /// `.sql` file (the message says what to rename it to), two schemes in one directory, a gap (sequential)
    /// or a duplicate version, a down file without its up file, or an unknown `-- dbactor:` directive. Every
    /// problem of the directory is in the one message, one per line, sorted by version; each names its file
    /// (and the line of a directive).
    static migration_set from_directory(const std::filesystem::path& dir);

    /// Builds a set from (file name, text) pairs, e.g. those compiled in by `dbactor_embed_migrations`.
    /// `origin` prefixes each migration's `source` in messages. Errors as from_directory.
    static migration_set from_files(std::vector<std::pair<std::string, std::string>> files,
                                    std::string_view origin = "embedded");

    const std::vector<migration>& items() const noexcept { return items_; }
    bool empty() const noexcept { return items_.empty(); }
    /// The highest version, or 0 when empty.
    std::int64_t latest_version() const noexcept { return items_.empty() ? 0 : items_.back().version; }
    /// How the versions are numbered (sequential for an empty set).
    version_scheme scheme() const noexcept { return scheme_; }
    /// The migration with `version`, or nullptr.
    const migration* find(std::int64_t version) const noexcept;

private:
    std::vector<migration> items_;
    version_scheme scheme_ = version_scheme::sequential;
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
