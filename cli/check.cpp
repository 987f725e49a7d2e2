#include "check.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <iostream>

namespace dbtool {

CLI::App* setup_check(CLI::App& app, check_options& o)
{
    auto* sub = app.add_subcommand(
        "check",
        "Check integrity (quick_check by default), foreign keys, and with --migrations the migration state "
        "(pending 3, modified 4, ahead 5). Opens the database read-only and never changes it; safe next to a "
        "running service.");
    auto* q = sub->add_flag("--quick", o.quick, "PRAGMA quick_check (the default)");
    sub->add_flag("--full", o.full, "PRAGMA integrity_check (slower, also checks indexes against tables)")
        ->excludes(q);
    return sub;
}

namespace {

/// What a read-only boot of the database found, as findings. A refusal is itself a finding; the boot is then
/// repeated without the refused check (integrity, application_id) so that the rest is still evaluated.
struct evaluation
{
    std::vector<finding> findings;
    std::string integrity = "not_checked"; ///< "ok", "failed", "skipped" or "not_checked"
    std::int64_t foreign_key_violations = 0;
    bool foreign_keys_checked = false;
    std::int64_t version = 0;
    std::vector<dbactor::migration_status> migrations;
    bool migrations_read = false;
};

void evaluate(dbactor::options opts, evaluation& ev)
{
    std::vector<dbactor::errc> seen;
    for (;;) {
        try {
            auto db = dbactor::database::open(opts);
            const auto& r = db.boot_report();
            if (opts.integrity_check != dbactor::check_level::none)
                ev.integrity = r.integrity;
            ev.foreign_key_violations = r.foreign_key_violations;
            ev.foreign_keys_checked = true;
            ev.version = r.schema_version;
            ev.migrations = r.migrations;
            ev.migrations_read = true;
            return;
        }
        catch (const dbactor::error& e) {
            const int code = exit_code_for(e.value());
            if (code == exit_code::internal)
                throw; // cannot open at all (missing file, permissions): nothing was checked
            if (std::find(seen.begin(), seen.end(), e.value()) != seen.end())
                return; // the same refusal again (a damaged page the foreign-key check reads too): reported
            seen.push_back(e.value());
            ev.findings.push_back({code, errc_name(e.value()), e.what()});
            using dbactor::errc;
            if (e.value() == errc::integrity_check_failed || e.value() == errc::not_a_database)
                ev.integrity = "failed";
            if (e.value() == errc::integrity_check_failed &&
                opts.integrity_check != dbactor::check_level::none)
                opts.integrity_check = dbactor::check_level::none; // go on to application_id, migrations, FKs
            else if (e.value() == errc::wrong_application && opts.application_id)
                opts.application_id.reset();
            else
                return; // not a database, busy: nothing more can be read
        }
    }
}

/// The migration state as JSON, adding a finding for each pending, modified or unknown migration.
nlohmann::json migration_findings(evaluation& ev, const global_options& g, bool checked)
{
    nlohmann::json migrations = nlohmann::json::array();
    if (checked && ev.migrations_read) {
        for (const auto& m : ev.migrations) {
            migrations.push_back(to_json(m));
            using st = dbactor::migration_status::state;
            const auto file = fmt::format("{:04}_{}.sql", m.version, m.name);
            if (m.status == st::pending)
                ev.findings.push_back(
                    {exit_code::pending,
                     "pending",
                     fmt::format("{} is not applied yet; `dbtool migrate` applies it.", file)});
            else if (m.status == st::modified)
                ev.findings.push_back(
                    {exit_code::modified,
                     errc_name(dbactor::errc::migration_modified),
                     fmt::format("{} was changed after it was applied; restore it and put the "
                                 "change in a new migration.",
                                 file)});
            else if (m.status == st::unknown)
                ev.findings.push_back(
                    {exit_code::ahead,
                     errc_name(dbactor::errc::database_ahead),
                     fmt::format("{} is applied but not in {}: the database is ahead of these "
                                 "migrations; use the newer build's migrations.",
                                 file,
                                 g.migrations)});
        }
    }
    return migrations;
}

} // namespace

int run_check(const check_options& o)
{
    const auto& g = *o.global;
    auto opts = base_options(g);
    opts.read_only = true;
    opts.integrity_check = o.full ? dbactor::check_level::full : dbactor::check_level::quick;
    evaluation ev;
    // An invalid migration directory is a finding like the others: the database is still checked, and a
    // more severe finding (corruption, another application) decides the exit code.
    std::optional<dbactor::migration_set> set;
    try {
        set = load_migrations(g);
    }
    catch (const dbactor::error& e) {
        if (e.value() != dbactor::errc::migration_source_invalid)
            throw;
        ev.findings.push_back({exit_code_for(e.value()), errc_name(e.value()), e.what()});
    }
    if (set)
        opts.migrations = *set;
    try {
        evaluate(opts, ev);
    }
    catch (const dbactor::error& e) {
        if (ev.findings.empty())
            throw;
        // The database could not be opened (a missing file): that is one more finding, and the migration
        // directory's problems found before it stay in the report.
        ev.findings.push_back({exit_code_for(e.value()), errc_name(e.value()), e.what()});
    }

    if (ev.foreign_key_violations > 0)
        ev.findings.push_back(
            {exit_code::foreign_keys,
             errc_name(dbactor::errc::foreign_key_violation),
             fmt::format("{} row(s) of '{}' refer to missing parent rows; `PRAGMA foreign_key_check` "
                         "lists them. Delete or re-point them in a migration.",
                         ev.foreign_key_violations,
                         g.db)});
    const nlohmann::json migrations = migration_findings(ev, g, set.has_value());
    std::vector<int> codes;
    for (const auto& f : ev.findings)
        codes.push_back(f.code);
    const int code = most_severe(codes);
    if (g.json) {
        nlohmann::json j = {
            {"command", "check"},
            {"path", g.db},
            {"level", o.full ? "full" : "quick"},
            {"integrity", ev.integrity},
            {"foreign_key_violations",
             ev.foreign_keys_checked ? nlohmann::json(ev.foreign_key_violations) : nlohmann::json()},
            {"version", ev.version},
            {"migrations_checked", set.has_value() && ev.migrations_read},
            {"findings", to_json(ev.findings)},
            {"replicator_tables", replicator_tables(g.db)}, // Litestream's: foreign, never a problem
            {"exit_code", code}};
        if (set && ev.migrations_read)
            j["migrations"] = migrations;
        print_json(j);
    }
    else {
        for (const auto& f : ev.findings)
            std::cout << fmt::format("[{}] {}: {}\n", f.code, f.kind, f.message);
        if (ev.findings.empty())
            std::cout << fmt::format("{}: ok (integrity {}, no foreign-key violations{}).\n",
                                     g.db,
                                     ev.integrity,
                                     set ? ", migrations up to date"
                                         : "; pass --migrations to check migrations");
        else if (ev.findings.size() > 1)
            std::cout << fmt::format(
                "{}: {} findings; exit code {} (the most severe).\n", g.db, ev.findings.size(), code);
    }
    return code;
}

} // namespace dbtool
