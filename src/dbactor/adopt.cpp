// admin::adopt: taking over a database another migration tool manages.
#include <dbactor/admin.hpp>

#include <dbactor/detail/file_checks.hpp>
#include <dbactor/detail/foreign_ledger.hpp>
#include <dbactor/detail/ledger.hpp>
#include <dbactor/detail/migrate.hpp>
#include <dbactor/detail/scratch_schema.hpp>
#include <dbactor/detail/sql_failure.hpp>
#include <dbactor/error.hpp>

#include <SQLiteCpp/Exception.h>
#include <fmt/format.h>
#include <sqlite3.h>

namespace dbactor::admin {
namespace {

[[noreturn]] void cannot(std::string message)
{
    throw error(errc::migration_failed, std::move(message));
}

/// The versions to record: those the other ledger lists, or every migration of `set` up to `up_to`.
std::vector<std::int64_t> versions_to_adopt(sqlite3* db,
                                            const migration_set& set,
                                            std::int64_t up_to,
                                            const std::optional<detail::foreign_management>& f,
                                            const std::string& path,
                                            const std::string& dir)
{
    if (up_to < 0 && f && !f->table.empty()) {
        const auto applied = detail::applied_elsewhere(db, *f, path);
        if (applied.up_to < 0) {
            for (auto v : applied.versions)
                if (!set.find(v))
                    cannot(fmt::format("The {} ledger '{}' of '{}' says version {} is applied, but {} has no "
                                       "migration with that version. Put that migration's file there "
                                       "(converted, see migrations/README.md), or adopt up to an earlier "
                                       "version with `--version V`. Nothing was written.",
                                       f->tool,
                                       f->table,
                                       path,
                                       v,
                                       dir));
            return applied.versions;
        }
        up_to = applied.up_to;
    }
    if (up_to < 0)
        cannot(
            fmt::format("'{}' has no migration ledger dbactor can read (its user_version is {}): say how far "
                        "its schema is with `dbtool adopt --version V`, V being the newest migration of {} "
                        "whose changes it has. Nothing was written.",
                        path,
                        f ? f->user_version : 0,
                        dir));
    if (up_to > 0 && !set.find(up_to))
        cannot(
            fmt::format("Cannot adopt '{}' at version {}: {} has no migration with that version. Nothing was "
                        "written.",
                        path,
                        up_to,
                        dir));
    std::vector<std::int64_t> out;
    for (const auto& m : set.items())
        if (m.version <= up_to)
            out.push_back(m.version);
    return out;
}

/// Runs `versions` on an empty scratch database and compares its schema with the live one.
void compare_with_scratch(sqlite3* db,
                          const migration_set& set,
                          const std::vector<std::int64_t>& versions,
                          const std::string& path)
{
    detail::scratch_db scratch;
    for (auto v : versions) {
        try {
            detail::run_migration(scratch.get(), *set.find(v), true, "a scratch database");
        }
        catch (const error& e) {
            cannot(
                fmt::format("Adopting '{}': the migrations to record do not build on an empty database, so "
                            "they cannot be what built it: {} Nothing was written.",
                            path,
                            e.what()));
        }
    }
    const auto diffs =
        detail::schema_differences(detail::user_schema(db), detail::user_schema(scratch.get()));
    if (diffs.empty())
        return;
    throw error(
        errc::migration_modified,
        fmt::format("The schema of '{}' is not what the {} migration(s) to record (up to {}) build, so "
                    "they cannot be recorded as applied; {} difference(s):\n  - {}\nNothing was written. "
                    "Adopt at the version whose schema the database has (`--version V`), or make the "
                    "migration files match what was run on it.",
                    path,
                    versions.size(),
                    versions.empty() ? 0 : versions.back(),
                    diffs.size(),
                    fmt::join(diffs, "\n  - ")));
}

} // namespace

adopt_result adopt(connection& c, const migration_set& set, std::int64_t up_to, bool record)
{
    sqlite3* db = c.handle();
    const std::string path = detail::database_path(db);
    std::string dir = set.empty() ? std::string("the migrations") : set.items().front().source;
    if (const auto slash = dir.find_last_of('/'); slash != std::string::npos && !set.empty())
        dir = "'" + dir.substr(0, slash) + "'";
    try {
        if (detail::ledger_count(db) > 0)
            cannot(fmt::format("'{}' already has dbactor's migration ledger: there is nothing to adopt. Use "
                               "`dbtool status` and `dbtool migrate`.",
                               path));
        const auto f = detail::managed_elsewhere(db);
        adopt_result r;
        r.user_version = std::stoll(detail::text_value(db, "PRAGMA user_version"));
        if (f) {
            r.tool = f->tool;
            r.table = f->table;
        }
        r.versions = versions_to_adopt(db, set, up_to, f, path, dir);
        compare_with_scratch(db, set, r.versions, path);
        if (!record)
            return r;
        detail::exec(db, "BEGIN IMMEDIATE", fmt::format("Adopting '{}': taking the write lock", path));
        try {
            detail::exec(
                db, detail::create_ledger, fmt::format("Creating the migration ledger in '{}'", path));
            auto st = detail::prepare_or_fail(db,
                                              "INSERT INTO dbactor_migrations (version, name, checksum, "
                                              "applied_at, duration_ms) VALUES (?1, ?2, "
                                              "?3, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), 0)",
                                              errc::migration_failed,
                                              fmt::format("Recording the adopted migrations in '{}'", path));
            for (auto v : r.versions) {
                const auto& m = *set.find(v);
                st.bind(1, m.version);
                st.bind(2, std::string_view(m.name));
                st.bind(3, std::string_view(migration_checksum(m.up_sql)));
                if (const int rc = st.run(); rc != SQLITE_DONE)
                    detail::fail_sql(
                        db, rc, errc::migration_failed, fmt::format("Recording {} in '{}'", m.source, path));
            }
            detail::exec(db, "COMMIT", fmt::format("Committing the adoption of '{}'", path));
        }
        catch (...) {
            detail::rollback_quietly(db);
            throw;
        }
        return r;
    }
    catch (const SQLite::Exception& e) {
        detail::fail_sql(db, e.getErrorCode(), errc::migration_failed, fmt::format("Adopting '{}'", path));
    }
}

} // namespace dbactor::admin
