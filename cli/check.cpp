#include "check.hpp"

#include <fmt/format.h>

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
    sub->add_flag("--full", o.full, "PRAGMA integrity_check (slower, also checks indexes against tables)")->excludes(q);
    return sub;
}

int run_check(const check_options& o)
{
    const auto& g = *o.global;
    auto opts = base_options(g);
    opts.read_only = true;
    opts.integrity_check = o.full ? dbactor::check_level::full : dbactor::check_level::quick;
    const auto set = load_migrations(g);
    if (set)
        opts.migrations = *set;
    std::vector<finding> findings;
    nlohmann::json migrations = nlohmann::json::array();
    std::string integrity;
    std::int64_t fk = 0, version = 0;
    try {
        auto db = dbactor::database::open(opts);
        const auto& r = db.boot_report();
        integrity = r.integrity;
        fk = r.foreign_key_violations;
        version = r.schema_version;
        if (fk > 0)
            findings.push_back({exit_code::foreign_keys,
                                "foreign_key_violation",
                                fmt::format("{} row(s) refer to missing parent rows (PRAGMA foreign_key_check lists "
                                            "them).",
                                            fk)});
        if (set) {
            for (const auto& m : r.migrations) {
                migrations.push_back(to_json(m));
                using st = dbactor::migration_status::state;
                const auto file = fmt::format("{:04}_{}.sql", m.version, m.name);
                if (m.status == st::pending)
                    findings.push_back({exit_code::pending, "pending", fmt::format("{} is not applied yet.", file)});
                else if (m.status == st::modified)
                    findings.push_back({exit_code::modified,
                                        "modified",
                                        fmt::format("{} was changed after it was applied; restore it and put the "
                                                    "change in a new migration.",
                                                    file)});
                else if (m.status == st::unknown)
                    findings.push_back({exit_code::ahead,
                                        "ahead",
                                        fmt::format("{} is applied but not in {}: the database is ahead of these "
                                                    "migrations.",
                                                    file,
                                                    g.migrations)});
            }
        }
    }
    catch (const dbactor::error& e) {
        // A boot refusal (corruption, not a database, wrong application, busy) is itself a finding.
        if (exit_code_for(e.value()) == exit_code::internal)
            throw;
        findings.push_back({exit_code_for(e.value()), dbactor::make_error_code(e.value()).message(), e.what()});
    }
    std::vector<int> codes;
    for (const auto& f : findings)
        codes.push_back(f.code);
    const int code = most_severe(codes);
    if (g.json) {
        nlohmann::json j = {{"command", "check"},
                            {"path", g.db},
                            {"level", o.full ? "full" : "quick"},
                            {"integrity", integrity},
                            {"foreign_key_violations", fk},
                            {"version", version},
                            {"findings", to_json(findings)},
                            {"exit_code", code}};
        if (set)
            j["migrations"] = migrations;
        print_json(j);
    }
    else {
        for (const auto& f : findings)
            std::cout << fmt::format("[{}] {}: {}\n", f.code, f.kind, f.message);
        if (findings.empty())
            std::cout << fmt::format("{}: ok (integrity {}, no foreign-key violations{}).\n",
                                     g.db,
                                     integrity,
                                     set ? ", migrations up to date" : "; pass --migrations to check migrations");
    }
    return code;
}

} // namespace dbtool
