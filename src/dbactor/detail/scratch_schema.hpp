// Scratch in-memory databases for the migration runner: a dry run on a copy of a database's schema, and
// adoption's comparison of a live schema with what migrations build.
#pragma once

#include <string>
#include <vector>

struct sqlite3;

namespace dbactor::detail {

/// An in-memory database with foreign keys on, as the runner's connection has them.
class scratch_db
{
public:
    scratch_db();
    ~scratch_db();
    scratch_db(const scratch_db&) = delete;
    scratch_db& operator=(const scratch_db&) = delete;

    sqlite3* get() const noexcept { return db_; }

    /// Creates the tables, virtual tables, indexes, views and triggers of `live` (not its rows, not the
    /// shadow tables a virtual table makes itself) and copies the rows of its dbactor_migrations ledger.
    /// Errors: errc::migration_failed naming the object that could not be created.
    void copy_schema_of(sqlite3* live);

private:
    sqlite3* db_ = nullptr;
};

/// One object of a schema: `type` (table, index, view, trigger), `name`, and its SQL.
struct schema_object
{
    std::string type, name, sql;
};

/// The objects of `db`'s main schema that migrations build: not SQLite's own (`sqlite_*`), not shadow tables,
/// not dbactor_migrations, not the ledgers of other migration tools, not replicators' tables
/// (`_litestream_*`).
std::vector<schema_object> user_schema(sqlite3* db);

/// The differences between `live` and `built`, one readable line each; empty when they are the same (the
/// SQL is compared with runs of white space as one space).
std::vector<std::string> schema_differences(const std::vector<schema_object>& live,
                                            const std::vector<schema_object>& built);

} // namespace dbactor::detail
