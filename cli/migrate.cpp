#include "migrate.hpp"

#include <SQLiteCpp/Exception.h>
#include <fmt/format.h>

#include <filesystem>
#include <iostream>
#include <tuple>

namespace dbtool {

CLI::App* setup_migrate(CLI::App& app, migrate_options& o)
{
    auto* sub = app.add_subcommand(
        "migrate",
        "Apply pending migrations of --migrations DIR (each in its own transaction), or with --to V revert "
        "to "
        "version V using NNNN_name.down.sql files. Creates the database when it does not exist. Then checks "
        "foreign keys (exit 9 when violations remain).");
    sub->add_option_function<std::int64_t>(
        "--to",
        [&o](const std::int64_t& v) {
            o.to = v;
            o.to_given = true;
        },
        "Target version, 0 to the newest (default: the newest); lower than the current one goes down");
    sub->add_flag("--dry-run",
                  o.dry_run,
                  "Check every pending step on a scratch copy of the schema and print the plan and every "
                  "problem, without changing anything");
    sub->add_flag("--allow-out-of-order",
                  o.allow_out_of_order,
                  "Timestamped migrations: apply a pending one older than the newest applied one");
    return sub;
}

namespace {

nlohmann::json steps_json(const std::vector<dbactor::admin::migration_step>& steps)
{
    auto a = nlohmann::json::array();
    for (const auto& s : steps)
        a.push_back({{"version", s.version},
                     {"name", s.name},
                     {"direction", s.up ? "up" : "down"},
                     {"done", s.done},
                     {"failed", s.failed},
                     {"duration_ms", s.duration_ms}});
    return a;
}

/// The findings of a failed migrate_to. A foreign-keys=off migration that would leave violations was rolled
/// back: that is a failed migration (6, more severe than 9), and the violations are listed as well.
std::vector<finding> failure_findings(const dbactor::error& e)
{
    if (e.value() == dbactor::errc::foreign_key_violation)
        return {
            {exit_code::failed, errc_name(dbactor::errc::migration_failed), e.what()},
            {exit_code::foreign_keys,
             errc_name(dbactor::errc::foreign_key_violation),
             "The rolled-back migration would have left the foreign-key violations named in the "
             "migration_failed finding; the database does not have them, since nothing of that migration was "
             "kept. Fix the migration so that every reference stays valid."}};
    return {{exit_code_for(e.value()), errc_name(e.value()), e.what()}};
}

/// What `migrate` did (or, with --dry-run, would do): the steps, the version reached, the findings and the
/// exit code they decide.
struct migrate_result
{
    std::vector<dbactor::admin::migration_step> steps;
    std::int64_t version = 0;
    std::vector<finding> findings;
    std::optional<dbactor::admin::foreign_key_report> fk;
    int code = exit_code::ok;
};

/// --dry-run: the plan, each step run on a scratch copy of the schema; every problem is a finding.
void plan_migrate(const migrate_options& o,
                  const dbactor::migration_set& set,
                  std::int64_t target,
                  dbactor::options opts,
                  migrate_result& r)
{
    if (!std::filesystem::exists(o.global->db))
        opts.path = ":memory:"; // a new database: the plan starts from an empty one
    else
        opts.read_only = true;
    auto db = dbactor::database::open(opts);
    r.version = db.boot_report().schema_version;
    std::vector<dbactor::admin::migration_problem> problems;
    r.steps = db.call([&](dbactor::connection& c) {
        return dbactor::admin::dry_run_migration(c, set, target, problems, o.allow_out_of_order);
    });
    for (const auto& p : problems)
        r.findings.push_back({exit_code_for(p.code), errc_name(p.code), p.message});
}

/// Applies (or reverts) the migrations step by step, then checks foreign keys.
void apply_migrate(const migrate_options& o,
                   const dbactor::migration_set& set,
                   std::int64_t target,
                   const dbactor::options& opts,
                   migrate_result& r)
{
    const auto& g = *o.global;
    auto db = dbactor::database::open(opts);
    r.version = db.boot_report().schema_version;
    set_interruptible(true);
    try {
        db.call([&](dbactor::connection& c) {
            const interruptible_lock_wait wait(c, g);
            dbactor::admin::migrate_to(
                c, set, target, r.steps, [] { return !was_interrupted(); }, o.allow_out_of_order);
        });
    }
    catch (const dbactor::error& e) {
        if (was_interrupted() && e.value() == dbactor::errc::busy)
            r.findings.push_back(
                {exit_code::interrupted,
                 "interrupted",
                 fmt::format("Interrupted (SIGINT) while waiting for the write lock on '{}'; the "
                             "migrations listed as applied stay applied, nothing else changed.",
                             g.db)});
        else
            r.findings = failure_findings(e);
    }
    catch (const SQLite::Exception& e) {
        r.findings.push_back(sqlite_failure(e.getExtendedErrorCode(), e.what(), g).as_finding());
    }
    set_interruptible(false);
    try {
        r.version = db.read([](dbactor::connection& c) { return dbactor::admin::schema_version(c); });
        if (!was_interrupted())
            r.fk = db.call([](dbactor::connection& c) { return dbactor::admin::foreign_key_check(c); });
    }
    catch (const dbactor::error& e) {
        r.findings.push_back({exit_code_for(e.value()), errc_name(e.value()), e.what()});
    }
    catch (const SQLite::Exception& e) {
        r.findings.push_back(sqlite_failure(e.getExtendedErrorCode(), e.what(), g).as_finding());
    }
    try {
        db.close(); // its final checkpoint may fail (a full disk): that is a finding, not silence
    }
    catch (const dbactor::error& e) {
        r.findings.push_back({exit_code_for(e.value()), errc_name(e.value()), e.what()});
    }
    if (r.fk && r.fk->violations > 0)
        r.findings.push_back(
            {exit_code::foreign_keys,
             errc_name(dbactor::errc::foreign_key_violation),
             fmt::format("After migrating, {} row(s) of '{}' refer to missing parent rows, e.g. "
                         "{}. Fix the data (delete or re-point those rows) in a new migration, "
                         "then run `dbtool migrate` again.",
                         r.fk->violations,
                         g.db,
                         fmt::join(r.fk->first, "; "))});
}

migrate_result do_migrate(const migrate_options& o)
{
    const auto& g = *o.global;
    auto set = load_migrations(g);
    if (!set)
        throw usage_error("migrate needs --migrations DIR: the directory of NNNN_name.sql files.");
    if (o.to_given && (o.to < 0 || o.to > set->latest_version()))
        throw usage_error(
            fmt::format("--to {} is not a version of '{}': choose one from 0 (no migrations) to {} "
                        "(the newest file there), or leave --to out to migrate to the newest.",
                        o.to,
                        g.migrations,
                        set->latest_version()));
    const std::int64_t target = o.to_given ? o.to : -1;
    auto opts = base_options(g);
    opts.migrations = *set;
    opts.apply_migrations = false;   // run below, step by step, so that the output lists each step
    opts.check_foreign_keys = false; // checked after the migrations: a pending one may repair a violation
    opts.integrity_check = dbactor::check_level::quick;
    migrate_result r;
    if (o.dry_run)
        plan_migrate(o, *set, target, opts, r);
    else
        apply_migrate(o, *set, target, opts, r);
    if (was_interrupted() && r.findings.empty())
        r.findings.push_back(
            {exit_code::interrupted,
             "interrupted",
             fmt::format("Interrupted (SIGINT) between migrations; the migrations listed as applied "
                         "stay applied, '{}' is at version {}.",
                         g.db,
                         r.version)});
    std::vector<int> codes;
    for (const auto& f : r.findings)
        codes.push_back(f.code);
    r.code = most_severe(codes);

    return r;
}

void print_migrate(const migrate_options& o, const migrate_result& r)
{
    const auto& g = *o.global;
    const int code = r.code;
    if (g.json) {
        nlohmann::json j = {{"command", "migrate"},
                            {"path", g.db},
                            {"dry_run", o.dry_run},
                            {"version", r.version},
                            {"steps", steps_json(r.steps)},
                            {"interrupted", code == exit_code::interrupted},
                            {"findings", to_json(r.findings)},
                            {"exit_code", code}};
        if (r.fk)
            j["foreign_key_violations"] = r.fk->violations;
        // The finding that decided the exit code (r.findings are listed in the order they were found).
        for (const auto& f : r.findings)
            if (f.code == code) {
                j["error"] = {{"kind", f.kind}, {"message", f.message}};
                break;
            }
        print_json(j);
    }
    else {
        if (r.steps.empty() && r.findings.empty())
            std::cout << fmt::format("{}: up to date at version {}.\n", g.db, r.version);
        for (const auto& s : r.steps) {
            const char* verb = o.dry_run ? (s.failed ? (s.up ? "would fail to apply" : "would fail to revert")
                                                     : (s.up ? "would apply" : "would revert"))
                               : s.failed ? (s.up ? "failed to apply" : "failed to revert")
                               : s.done   ? (s.up ? "applied" : "reverted")
                                          : "skipped";
            std::cout << fmt::format("{} {:04}_{}{}{}\n",
                                     verb,
                                     s.version,
                                     s.name,
                                     s.up ? ".sql" : ".down.sql",
                                     s.done ? fmt::format(" ({} ms)", s.duration_ms) : std::string());
        }
        if (!o.dry_run && !r.steps.empty())
            std::cout << fmt::format("{}: now at version {}.\n", g.db, r.version);
        for (const auto& f : r.findings)
            std::cerr << "dbtool: " << f.message << '\n';
    }
}

} // namespace

int run_migrate(const migrate_options& o)
{
    const auto r = do_migrate(o);
    print_migrate(o, r);
    return r.code;
}

} // namespace dbtool
