// The per-connection settings a migration can change (and must leave as it found them), read and compared.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

struct sqlite3;

namespace dbactor::detail {

/// foreign_keys, legacy_alter_table, defer_foreign_keys, recursive_triggers, writable_schema,
/// case_sensitive_like (probed: it has no getter), trusted_schema, query_only: name and value.
using connection_state = std::vector<std::pair<std::string, std::string>>;

/// Reads them. Errors: SQLite::Exception.
connection_state read_connection_state(sqlite3* db);

/// The first setting whose value now differs from `before` (name, before, now), after putting every
/// changed one back as it was; nullopt when nothing changed. Errors: SQLite::Exception.
struct state_change
{
    std::string name, before, now;
};
std::optional<state_change> restore_connection_state(sqlite3* db, const connection_state& before);

/// Where `sql` sets the pragma `name` ("file:line"), or just `source` when it cannot be found.
std::string where_set(std::string_view sql, std::string_view source, std::string_view name);

} // namespace dbactor::detail
