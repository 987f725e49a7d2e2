// Migration files from other tools: a UTF-8 BOM, and goose's and dbmate's Up/Down sections in one file.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace dbactor::detail {

/// What one migration file holds once its sections are read.
struct migration_text
{
    std::string up; ///< what runs to apply it (the whole file when it has no sections)
    std::optional<std::string>
        down;                    ///< its Down section, padded with blank lines so line numbers match the file
    bool no_transaction = false; ///< `-- +goose NO TRANSACTION`, or dbmate's `transaction:false`
    bool sections = false;       ///< it had goose or dbmate section markers
};

/// `text` without a leading UTF-8 byte order mark.
std::string_view without_bom(std::string_view text) noexcept;

/// Reads goose (`-- +goose Up`, `-- +goose Down`, `-- +goose StatementBegin/End`, `-- +goose NO TRANSACTION`)
/// and dbmate (`-- migrate:up`, `-- migrate:down`, `transaction:false`) markers; a file without them is all
/// `up`. The Down section never runs with the migration.
/// Errors: errc::migration_source_invalid for markers out of order, an unknown goose annotation, or both
/// kinds in one file, naming `source:line`.
migration_text read_sections(std::string_view text, std::string_view source);

} // namespace dbactor::detail
