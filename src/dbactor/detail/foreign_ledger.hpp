// Databases another migration tool manages (sqlx, goose, dbmate, golang-migrate, diesel, refinery): found
// before anything is written, and refused until they are adopted.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

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

/// errc::not_managed, saying what was found, that nothing was written, and how to adopt the database.
[[noreturn]] void refuse_unmanaged(const foreign_management& f, const std::string& path);

} // namespace dbactor::detail
