#include "adopt.hpp"

#include <fmt/format.h>

#include <filesystem>
#include <iostream>

namespace dbtool {

CLI::App* setup_adopt(CLI::App& app, adopt_options& o)
{
    auto* sub = app.add_subcommand(
        "adopt",
        "Take over a database another migration tool (sqlx, goose, dbmate, golang-migrate, diesel, refinery) "
        "or a hand-written script manages: record in dbactor_migrations the migrations of --migrations DIR "
        "that its ledger says are applied (or all up to --version V), after checking that the schema is what "
        "they build. The other tool's ledger and user_version are left as they are.");
    sub->add_option(
        "--version", o.version, "Record every migration up to version V (needed without a ledger)");
    sub->add_flag("--dry-run", o.dry_run, "Check and print what would be recorded, without writing");
    return sub;
}

namespace {

dbactor::admin::adopt_result
adopt_once(const adopt_options& o, const dbactor::migration_set& set, dbactor::options opts, bool record)
{
    opts.read_only = !record; // the checks write nothing, not even the journal mode
    auto db = dbactor::database::open(opts);
    auto r =
        db.call([&](dbactor::connection& c) { return dbactor::admin::adopt(c, set, o.version, record); });
    db.close();
    return r;
}

} // namespace

int run_adopt(const adopt_options& o)
{
    const auto& g = *o.global;
    const auto set = load_migrations(g);
    if (!set)
        throw usage_error("adopt needs --migrations DIR: the migration files that built the database.");
    if (!std::filesystem::exists(g.db))
        throw usage_error(fmt::format("adopt takes over an existing database, and '{}' does not exist. For a "
                                      "new database run `dbtool migrate`.",
                                      g.db));
    auto opts = base_options(g);
    opts.create = false;
    opts.apply_migrations = false; // no migrations in the options: the not_managed refusal is for migrating
    opts.check_foreign_keys = false;
    opts.integrity_check = dbactor::check_level::quick;
    // Checked read-only first, so that a refusal leaves the file exactly as it was; then recorded.
    auto r = adopt_once(o, *set, opts, false);
    if (!o.dry_run)
        r = adopt_once(o, *set, opts, true);
    std::vector<std::string> names;
    for (auto v : r.versions)
        names.push_back(fmt::format("{:04}_{}", v, set->find(v)->name));
    if (g.json) {
        print_json({{"command", "adopt"},
                    {"path", g.db},
                    {"dry_run", o.dry_run},
                    {"tool", r.tool},
                    {"ledger", r.table},
                    {"user_version", r.user_version},
                    {"versions", r.versions},
                    {"exit_code", 0}});
        return exit_code::ok;
    }
    const std::string from = r.table.empty() ? std::string("--version")
                                             : fmt::format("{}'s ledger {} (left as it is)", r.tool, r.table);
    std::cout << fmt::format("{}: {} {} migration(s) as applied, from {}; its schema is what they build.\n",
                             g.db,
                             o.dry_run ? "would record" : "recorded",
                             names.size(),
                             from);
    for (const auto& n : names)
        std::cout << "  " << n << '\n';
    if (!o.dry_run)
        std::cout << "Next: `dbtool migrate` applies the pending ones; the service can boot on it now.\n";
    return exit_code::ok;
}

} // namespace dbtool
