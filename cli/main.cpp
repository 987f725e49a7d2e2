// dbtool: wires the subcommands, the global options and the exit codes; each command lives in its own file.
#include "backup.hpp"
#include "check.hpp"
#include "common.hpp"
#include "migrate.hpp"
#include "new.hpp"
#include "optimize.hpp"
#include "status.hpp"

#include <CLI/CLI.hpp>

#include <iostream>

namespace {

int fail(const dbtool::global_options& g, int code, std::string_view kind, std::string_view message)
{
    std::cerr << "dbtool: " << message << '\n';
    if (g.json)
        dbtool::print_json({{"error", {{"kind", kind}, {"message", message}}}, {"exit_code", code}});
    return code;
}

} // namespace

int main(int argc, char** argv)
{
    using namespace dbtool;
    install_sigint_handler();

    CLI::App app{"dbtool: inspect, migrate, check and back up a dbactor SQLite database, also while the service "
                 "runs (WAL + busy_timeout)."};
    app.footer(exit_codes_help);
    app.require_subcommand(1);
    app.fallthrough(); // global options may also follow the command

    global_options g;
    app.add_option("--db", g.db, "The database file");
    app.add_option("--migrations", g.migrations, "The directory of NNNN_name.sql migration files");
    app.add_option("--busy-timeout", g.busy_timeout_ms, "How long to wait for another connection's lock, in ms")
        ->capture_default_str();
    app.add_option("--application-id", g.application_id,
                   "Refuse a database whose PRAGMA application_id differs (exit 10); a new database gets it");
    app.add_flag("--json", g.json, "Print exactly one JSON document on stdout (errors also go to stderr)");

    migrate_options migrate{&g};
    check_options check{&g};
    status_options status{&g};
    new_options create{&g};
    backup_options backup{&g};
    optimize_options optimize{&g};
    auto* migrate_cmd = setup_migrate(app, migrate);
    auto* check_cmd = setup_check(app, check);
    auto* status_cmd = setup_status(app, status);
    auto* new_cmd = setup_new(app, create);
    auto* backup_cmd = setup_backup(app, backup);
    auto* optimize_cmd = setup_optimize(app, optimize);

    try {
        app.parse(argc, argv);
    }
    catch (const CLI::ParseError& e) {
        const int code = app.exit(e);
        return code == 0 ? exit_code::ok : exit_code::usage;
    }

    try {
        if (*migrate_cmd)
            return run_migrate(migrate);
        if (*check_cmd)
            return run_check(check);
        if (*status_cmd)
            return run_status(status);
        if (*new_cmd)
            return run_new(create);
        if (*backup_cmd)
            return run_backup(backup);
        if (*optimize_cmd)
            return run_optimize(optimize);
        return exit_code::usage;
    }
    catch (const usage_error& e) {
        return fail(g, exit_code::usage, "usage", e.what());
    }
    catch (const dbactor::error& e) {
        return fail(g, exit_code_for(e.value()), dbactor::make_error_code(e.value()).message(), e.what());
    }
    catch (const std::exception& e) {
        return fail(g, exit_code::internal, "internal", e.what());
    }
}
