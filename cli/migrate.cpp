#include "migrate.hpp"

#include <fmt/format.h>

#include <filesystem>
#include <iostream>

namespace dbtool {

CLI::App* setup_migrate(CLI::App& app, migrate_options& o)
{
    auto* sub = app.add_subcommand(
        "migrate",
        "Apply pending migrations of --migrations DIR (each in its own transaction), or with --to V revert to "
        "version V using NNNN_name.down.sql files. Creates the database when it does not exist.");
    sub->add_option("--to", o.to, "Target version (default: the newest); lower than the current one goes down");
    sub->add_flag("--dry-run", o.dry_run, "Print the plan without changing anything");
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
                     {"duration_ms", s.duration_ms}});
    return a;
}

} // namespace

int run_migrate(const migrate_options& o)
{
    const auto& g = *o.global;
    auto set = load_migrations(g);
    if (!set)
        throw usage_error("migrate needs --migrations DIR: the directory of NNNN_name.sql files.");
    auto opts = base_options(g);
    opts.migrations = *set;
    opts.apply_migrations = false; // run below, step by step, so that the output lists each step
    opts.integrity_check = dbactor::check_level::quick;
    std::vector<dbactor::admin::migration_step> steps;
    std::int64_t version = 0;
    std::vector<std::string> fk_rows;

    if (o.dry_run) {
        if (!std::filesystem::exists(g.db)) {
            // A new database: every migration up to the target would be applied.
            for (const auto& m : set->items())
                if (o.to < 0 || m.version <= o.to)
                    steps.push_back({m.version, m.name, true});
        }
        else {
            opts.read_only = true;
            auto db = dbactor::database::open(opts);
            version = db.boot_report().schema_version;
            steps = db.call([&](dbactor::connection& c) { return dbactor::admin::plan_migration(c, *set, o.to); });
        }
    }
    else {
        auto db = dbactor::database::open(opts);
        set_interruptible(true);
        steps = db.call([&](dbactor::connection& c) {
            return dbactor::admin::migrate_to(c, *set, o.to, [] { return !was_interrupted(); });
        });
        set_interruptible(false);
        version = db.read([](dbactor::connection& c) { return *c.query_one<std::int64_t>("PRAGMA user_version"); });
    }
    int code = was_interrupted() ? exit_code::interrupted : exit_code::ok;

    if (g.json) {
        print_json({{"command", "migrate"},
                    {"path", g.db},
                    {"dry_run", o.dry_run},
                    {"version", version},
                    {"steps", steps_json(steps)},
                    {"interrupted", code == exit_code::interrupted},
                    {"exit_code", code}});
    }
    else {
        if (steps.empty())
            std::cout << fmt::format("{}: up to date at version {}.\n", g.db, version);
        for (const auto& s : steps) {
            const char* verb = o.dry_run ? (s.up ? "would apply" : "would revert")
                                         : (s.done ? (s.up ? "applied" : "reverted") : "skipped");
            std::cout << fmt::format("{} {:04}_{}{}{}\n",
                                     verb,
                                     s.version,
                                     s.name,
                                     s.up ? ".sql" : ".down.sql",
                                     s.done ? fmt::format(" ({} ms)", s.duration_ms) : std::string());
        }
        if (!o.dry_run && !steps.empty())
            std::cout << fmt::format("{}: now at version {}.\n", g.db, version);
        if (code == exit_code::interrupted)
            std::cerr << "dbtool: interrupted; the migrations listed as applied stay applied.\n";
    }
    return code;
}

} // namespace dbtool
