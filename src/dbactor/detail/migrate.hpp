// The migration runner: one migration up or down with its ledger row, and foreign_key_check.
#pragma once

#include <dbactor/detail/ledger.hpp>
#include <dbactor/error.hpp>
#include <dbactor/migration.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

struct sqlite3;

namespace dbactor::detail {

/// Applies (`up`) or reverts one migration together with its ledger row and user_version, in its own
/// BEGIN IMMEDIATE transaction (unless no-transaction), re-reading the ledger inside it. Returns false when
/// another connection already did it. Errors: migration_failed (rolled back, with file:line:col),
/// foreign_key_violation, migration_modified, busy.
bool run_migration(
    sqlite3* db, const migration& m, bool up, const std::string& path, std::int64_t* duration_ms = nullptr);

/// Why `m` cannot be reverted (no down file, or one without statements), as a sentence.
std::string irreversible(const migration& m);

/// Runs `PRAGMA foreign_key_check`; returns the number of violations and fills `first` with up to `limit`
/// readable rows.
std::int64_t foreign_key_violations(sqlite3* db, std::vector<std::string>& first, std::size_t limit = 5);

} // namespace dbactor::detail
