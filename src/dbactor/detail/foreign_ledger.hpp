// Databases another migration tool manages (sqlx, goose, dbmate, golang-migrate, diesel, refinery): found
// before anything is written, and refused until they are adopted.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

struct sqlite3;

namespace dbactor::detail {

/// What says that another tool manages a database.
struct foreign_management
{
    std::string tool;  ///< "sqlx", "goose", …; empty when only user_version says so
    std::string table; ///< its ledger table, or empty
    std::int64_t user_version = 0;
};

/// nullopt when dbactor manages the database (dbactor_migrations exists) or nothing says another tool does;
/// otherwise the other tool's ledger table, or a user_version other than 0. Errors: SQLite::Exception.
std::optional<foreign_management> managed_elsewhere(sqlite3* db);

/// True for the ledger table of a migration tool dbactor knows (not dbactor's own).
bool is_foreign_ledger_table(std::string_view name) noexcept;

/// What another tool's ledger says is applied: a list of versions, or (golang-migrate keeps only its newest)
/// every version up to `up_to`.
struct foreign_applied
{
    std::vector<std::int64_t> versions;
    std::int64_t up_to = -1;
};

/// Reads `f.table` (which must be set). Errors: errc::migration_failed when the ledger says a migration
/// failed part-way (dirty) or holds a version that is not a number; SQLite::Exception.
foreign_applied applied_elsewhere(sqlite3* db, const foreign_management& f, const std::string& path);

/// errc::not_managed, saying what was found, that nothing was written, and how to adopt the database.
[[noreturn]] void refuse_unmanaged(const foreign_management& f, const std::string& path);

} // namespace dbactor::detail
