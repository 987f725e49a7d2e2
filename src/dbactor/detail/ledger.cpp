#include <dbactor/detail/ledger.hpp>

#include <dbactor/detail/sql_failure.hpp>
#include <dbactor/detail/statement.hpp>
#include <dbactor/error.hpp>

#include <SQLiteCpp/Exception.h>
#include <fmt/format.h>
#include <sqlite3.h>

#include <algorithm>
#include <map>
#include <string_view>

namespace dbactor::detail {

std::optional<std::string> ledger_checksum(sqlite3* db, std::int64_t version, const std::string& path)
{
    const std::string what = fmt::format("Reading the ledger of '{}'", path);
    statement st = prepare_or_fail(
        db, "SELECT checksum FROM dbactor_migrations WHERE version = ?", errc::migration_failed, what);
    st.bind(1, version);
    const int rc = st.step();
    if (rc == SQLITE_ROW)
        return st.column_text(0);
    if (rc != SQLITE_DONE)
        fail_sql(db, rc, errc::migration_failed, what);
    return std::nullopt;
}

std::int64_t ledger_max(sqlite3* db)
{
    try {
        statement st(db, "SELECT coalesce(max(version), 0) FROM dbactor_migrations");
        return st.step() == SQLITE_ROW ? st.column_int64(0) : 0;
    }
    catch (const SQLite::Exception&) {
        return 0;
    }
}

std::int64_t ledger_count(sqlite3* db)
{
    try {
        statement st(db, "SELECT count(*) FROM dbactor_migrations");
        return st.step() == SQLITE_ROW ? st.column_int64(0) : 0;
    }
    catch (const SQLite::Exception&) {
        return 0;
    }
}

std::int64_t schema_version(sqlite3* db)
{
    const bool ledger =
        !text_rows(db, "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'dbactor_migrations'", 1)
             .empty();
    return ledger ? ledger_max(db) : std::stoll(text_value(db, "PRAGMA user_version"));
}

void refuse_out_of_order(const std::vector<migration_status>& state,
                         const migration_set& set,
                         const std::string& path,
                         bool allow)
{
    if (allow || set.scheme() != version_scheme::timestamped)
        return;
    const migration_status* newest = nullptr;
    for (const auto& s : state)
        if (s.status == migration_status::state::applied)
            newest = &s;
    if (!newest)
        return;
    std::vector<std::string> late;
    for (const auto& s : state)
        if (s.status == migration_status::state::pending && s.version < newest->version)
            late.push_back(set.find(s.version)->source);
    if (late.empty())
        return;
    throw error(errc::migration_source_invalid,
                fmt::format("Migration {} is pending but older than {}, which is already applied to '{}': it "
                            "is out of order (a branch merged after a newer migration ran). Give it a newer "
                            "timestamp (rename it, e.g. with `dbtool new`'s), or apply it where it is with "
                            "`dbtool migrate --allow-out-of-order` (options::allow_out_of_order) if it does "
                            "not depend on the newer ones. Nothing was changed.",
                            fmt::join(late, ", "),
                            set.find(newest->version)->source,
                            path));
}

std::vector<ledger_row> read_ledger(sqlite3* db, const std::string& path)
{
    const std::string what = fmt::format("Reading the migration ledger of '{}'", path);
    std::vector<ledger_row> rows;
    statement st;
    try {
        st.prepare(db,
                   "SELECT version, name, checksum, applied_at, duration_ms FROM dbactor_migrations ORDER BY "
                   "version");
    }
    catch (const SQLite::Exception& e) {
        if (std::string_view(e.what()).starts_with("no such table"))
            return rows; // a database no migration has touched yet
        fail_sql(db, e.getErrorCode(), errc::migration_failed, what);
    }
    int rc;
    while ((rc = st.step()) == SQLITE_ROW)
        rows.push_back({st.column_int64(0),
                        st.column_text(1),
                        st.column_text(2),
                        st.column_text(3),
                        st.column_int64(4)});
    if (rc != SQLITE_DONE)
        fail_sql(db, rc, errc::migration_failed, what);
    return rows;
}

std::vector<migration_status> compare_state(const migration_set& set, const std::vector<ledger_row>& ledger)
{
    std::map<std::int64_t, const ledger_row*> by_version;
    for (const auto& r : ledger)
        by_version[r.version] = &r;
    std::vector<migration_status> out;
    for (const auto& m : set.items()) {
        migration_status st;
        st.version = m.version;
        st.name = m.name;
        st.checksum = migration_checksum(m.up_sql);
        st.reversible = m.down_sql.has_value();
        if (auto it = by_version.find(m.version); it != by_version.end()) {
            st.status = it->second->checksum == st.checksum ? migration_status::state::applied
                                                            : migration_status::state::modified;
            if (it->second->name != m.name)
                st.ledger_name = it->second->name; // renamed after it was applied
            st.applied_at = it->second->applied_at;
            st.duration_ms = it->second->duration_ms;
            by_version.erase(it);
        }
        out.push_back(std::move(st));
    }
    for (const auto& [version, r] : by_version) {
        migration_status st;
        st.version = version;
        st.name = r->name;
        st.status = migration_status::state::unknown;
        st.checksum = r->checksum;
        st.applied_at = r->applied_at;
        st.duration_ms = r->duration_ms;
        out.push_back(std::move(st));
    }
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.version < b.version; });
    return out;
}

void refuse_inconsistent(const std::vector<migration_status>& state,
                         const migration_set& set,
                         const std::string& path)
{
    for (const auto& s : state)
        if (s.status == migration_status::state::modified) {
            const auto& m = *std::find_if(set.items().begin(), set.items().end(), [&](const migration& x) {
                return x.version == s.version;
            });
            throw error(
                errc::migration_modified,
                fmt::format("Migration {} was changed after it was applied to '{}' (the ledger's checksum "
                            "differs from the file's). Never edit an applied migration: restore the file "
                            "as it was applied (e.g. from version control) and put the change in a new "
                            "migration {}.",
                            m.source,
                            path,
                            set.scheme() == version_scheme::timestamped
                                ? std::string("(`dbtool new NAME` names it with the current time)")
                                : fmt::format("{:04}_name.sql", set.latest_version() + 1)));
        }
    std::vector<std::string> unknown;
    for (const auto& s : state)
        if (s.status == migration_status::state::unknown)
            unknown.push_back(fmt::format("{:04}_{}", s.version, s.name));
    if (!unknown.empty())
        throw error(
            errc::database_ahead,
            fmt::format("'{}' has migration(s) {} that this build does not know (its newest is {}): the "
                        "database was migrated by a newer build. Run that build, or revert with its "
                        "`dbtool migrate --to {}`.",
                        path,
                        fmt::join(unknown, ", "),
                        set.latest_version(),
                        set.latest_version()));
}
} // namespace dbactor::detail
