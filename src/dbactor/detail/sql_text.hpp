// Reading SQL text without SQLite: positions, comments, the first words of a statement.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace dbactor::detail {

/// 1-based line and column (in bytes) of `offset` in `text`.
std::pair<int, int> line_col(std::string_view text, std::size_t offset);

/// 1-based line and column (in bytes) of the first NUL byte in `text`, if any.
std::optional<std::pair<int, int>> first_nul(std::string_view text);

/// The offset of the first character at or after `pos` that is neither white space nor inside a comment.
std::size_t skip_blank(std::string_view text, std::size_t pos);

/// The first `words` words of `sql` in upper case, separated by one space (stopping at '=').
std::string upper_words(std::string_view sql, int words);

/// `PRAGMA foreign_keys` (or `main.foreign_keys`), in any case.
bool is_pragma_foreign_keys(std::string_view sql);

/// For `PRAGMA foreign_keys = V` (or `(V)`): whether V switches them on (ON, 1, TRUE, YES).
bool pragma_value_is_on(std::string_view sql);

/// The table a `DROP TABLE [IF EXISTS] [schema.]name` statement drops (unquoted), or nullopt for another
/// statement.
std::optional<std::string> dropped_table(std::string_view sql);

/// BEGIN, COMMIT, END or ROLLBACK (but not ROLLBACK TO a savepoint).
bool is_transaction_control(std::string_view sql);

} // namespace dbactor::detail
