#include <dbactor/admin.hpp>

#include <dbactor/detail/file_checks.hpp>
#include <dbactor/detail/ledger.hpp>
#include <dbactor/detail/migrate.hpp>
#include <dbactor/detail/scratch_schema.hpp>
#include <dbactor/detail/sql_failure.hpp>
#include <dbactor/error.hpp>

#include <fmt/format.h>
#include <sqlite3.h>

namespace dbactor::admin {
namespace {

std::string db_path(connection& c)
{
    return detail::database_path(c.handle());
}

/// `sql` prepared and stepped to its first row; no row is a failure too (never a zero in place of an error).
detail::statement first_row(sqlite3* db, const char* sql, const std::string& path)
{
    const std::string what = fmt::format("Reading {} of '{}' failed", sql, path);
    auto st = detail::prepare_or_fail(db, sql, errc::open_failed, what);
    if (const int rc = st.step(); rc != SQLITE_ROW)
        detail::fail_sql(db, rc == SQLITE_DONE ? SQLITE_ERROR : rc, errc::open_failed, what);
    return st;
}

std::int64_t pragma_int(sqlite3* db, const char* sql, const std::string& path)
{
    return first_row(db, sql, path).column_int64(0);
}

} // namespace

std::vector<migration_status> migration_state(connection& c, const migration_set& set)
{
    return detail::compare_state(set, detail::read_ledger(c.handle(), db_path(c)));
}

std::int64_t schema_version(connection& c)
{
    return detail::schema_version(c.handle());
}

std::vector<migration_step>
plan_migration(connection& c, const migration_set& set, std::int64_t target, bool allow_out_of_order)
{
    const std::string path = db_path(c);
    const auto state = migration_state(c, set);
    detail::refuse_inconsistent(state, set, path);
    if (target < 0)
        target = set.latest_version();
    if (target > set.latest_version())
        throw error(errc::migration_failed,
                    fmt::format("Cannot migrate '{}' to version {}: the newest migration is {}. Nothing was "
                                "changed.",
                                path,
                                target,
                                set.latest_version()));
    std::vector<migration_step> plan;
    for (const auto& s : state) // up, oldest first
        if (s.status == migration_status::state::pending && s.version <= target)
            plan.push_back({s.version, s.name, true});
    if (plan.size() > 0)
        detail::refuse_out_of_order(state, set, path, allow_out_of_order);
    for (auto it = state.rbegin(); it != state.rend(); ++it) // down, newest first
        if (it->status == migration_status::state::applied && it->version > target) {
            const auto& m = *set.find(it->version);
            if (!m.down_sql)
                throw error(
                    errc::migration_failed,
                    fmt::format(
                        "Cannot migrate '{}' down to version {}: {}", path, target, detail::irreversible(m)));
            plan.push_back({it->version, it->name, false});
        }
    return plan;
}

std::vector<migration_step> dry_run_migration(connection& c,
                                              const migration_set& set,
                                              std::int64_t target,
                                              std::vector<migration_problem>& problems,
                                              bool allow_out_of_order)
{
    problems.clear();
    auto steps = plan_migration(c, set, target, allow_out_of_order);
    const std::string path = db_path(c);
    detail::scratch_db scratch;
    scratch.copy_schema_of(c.handle());
    const std::string where = fmt::format("{} (dry run: a scratch copy of its schema)", path);
    for (auto& step : steps) {
        try {
            detail::run_migration(scratch.get(), *set.find(step.version), step.up, where);
        }
        catch (const error& e) {
            step.failed = true;
            problems.push_back({step.version, step.up, e.value(), e.what()});
        }
    }
    return steps;
}

std::vector<migration_step> migrate_to(connection& c,
                                       const migration_set& set,
                                       std::int64_t target,
                                       const std::function<bool()>& keep_going,
                                       bool allow_out_of_order)
{
    std::vector<migration_step> steps;
    migrate_to(c, set, target, steps, keep_going, allow_out_of_order);
    return steps;
}

void migrate_to(connection& c,
                const migration_set& set,
                std::int64_t target,
                std::vector<migration_step>& steps,
                const std::function<bool()>& keep_going,
                bool allow_out_of_order)
{
    steps.clear();
    steps = plan_migration(c, set, target, allow_out_of_order);
    const std::string path = db_path(c);
    for (auto& step : steps) {
        if (keep_going && !keep_going())
            break;
        const auto& m = *set.find(step.version);
        try {
            step.done = detail::run_migration(c.handle(), m, step.up, path, &step.duration_ms);
        }
        catch (...) {
            step.failed = true;
            throw;
        }
    }
}

foreign_key_report foreign_key_check(connection& c, std::size_t limit)
{
    foreign_key_report r;
    r.violations = detail::foreign_key_violations(c.handle(), r.first, limit);
    return r;
}

file_info inspect(connection& c)
{
    sqlite3* db = c.handle();
    const std::string path = db_path(c);
    file_info f;
    f.journal_mode = first_row(db, "PRAGMA journal_mode", path).column_text(0);
    f.user_version = pragma_int(db, "PRAGMA user_version", path);
    f.page_size = pragma_int(db, "PRAGMA page_size", path);
    f.page_count = pragma_int(db, "PRAGMA page_count", path);
    f.freelist_count = pragma_int(db, "PRAGMA freelist_count", path);
    f.file_bytes = detail::file_size(path);
    f.wal_bytes = detail::file_size(path + "-wal");
    return f;
}

} // namespace dbactor::admin
