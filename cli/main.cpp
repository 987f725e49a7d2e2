// dbtool: wires the subcommands, the global options and the exit codes; each command lives in its own file.
#include "adopt.hpp"
#include "backup.hpp"
#include "check.hpp"
#include "common.hpp"
#include "migrate.hpp"
#include "new.hpp"
#include "optimize.hpp"
#include "shards.hpp"
#include "status.hpp"

#include <CLI/CLI.hpp>
#include <SQLiteCpp/Exception.h>
#include <fmt/format.h>

#include <cstdio>
#include <filesystem>
#include <iostream>

namespace {

/// Reports a failure that ended the command: a sentence on stderr, and with --json one document on stdout.
/// It runs inside catch handlers, so nothing may escape it.
int fail(bool json,
         int code,
         std::string_view kind,
         std::string_view message,
         std::string_view command = "none",
         std::string_view path = {}) noexcept
{
    try {
        std::cerr << "dbtool: " << message << '\n';
    }
    catch (...) {
    }
    if (json) {
        try {
            dbtool::print_json({{"command", command},
                                {"path", path},
                                {"error", {{"kind", kind}, {"message", message}}},
                                {"exit_code", code}});
        }
        catch (...) {
            // Building the document failed (out of memory); print_json's own fallback cannot run.
            std::fputs("{\"error\": {\"kind\": \"internal\"}, \"exit_code\": 1}\n", stdout);
            return dbtool::exit_code::internal;
        }
    }
    return code;
}

/// --json given anywhere on the command line, even when parsing failed.
bool json_requested(int argc, char** argv) noexcept
{
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        if (a == "--")
            break;
        if (a == "--json" || a == "--json=true" || a == "--json=1")
            return true;
    }
    return false;
}

/// `--db`, `--migrations`, `--busy-timeout`, `--application-id`, `--json`.
void add_global_options(CLI::App& app, dbtool::global_options& g)
{
    app.add_option("--db", g.db, "The database file");
    app.add_option("--migrations", g.migrations, "The directory of NNNN_name.sql migration files");
    app.add_option(
           "--busy-timeout", g.busy_timeout_ms, "How long to wait for another connection's lock, in ms")
        ->capture_default_str();
    app.add_option("--application-id",
                   g.application_id,
                   "Refuse a database whose PRAGMA application_id differs (exit 10); a new database gets it");
    app.add_flag("--json", g.json, "Print exactly one JSON document on stdout (errors also go to stderr)");
    app.add_option("--shards",
                   g.shards,
                   "Work on every file of a shard set of N: --db is a pattern with {shard} (0..N-1); one "
                   "report per shard, the most severe decides the exit code");
}

/// The exit code (and output) of a command line CLI11 could not parse, or of --help given to a command.
int parse_error_exit(CLI::App& app, const CLI::ParseError& e, bool json)
{
    using namespace dbtool;
    if (e.get_exit_code() != 0 && app.get_subcommands().empty() && !app.remaining().empty()) {
        // CLI11 says only "A subcommand is required" for `dbtool frobnicate`.
        return fail(
            json,
            exit_code::usage,
            "usage",
            fmt::format("'{}' is not a dbtool command: use one of migrate, check, status, new, backup, "
                        "optimize (see `dbtool --help`).",
                        app.remaining().front()));
    }
    if (!json) {
        const int code = app.exit(e);
        return code == 0 ? exit_code::ok : exit_code::usage;
    }
    if (e.get_exit_code() == 0) {
        print_json({{"command", "help"}, {"help", app.help("", CLI::AppFormatMode::All)}, {"exit_code", 0}});
        return exit_code::ok;
    }
    return fail(true,
                exit_code::usage,
                "usage",
                fmt::format("{}. Run `dbtool --help` for the commands and their options.", e.what()));
}

/// The exit code (and output) of the exception that ended the command; called inside a catch handler.
int fail_for_current_exception(const dbtool::global_options& g, std::string_view command) noexcept
{
    using namespace dbtool;
    try {
        throw;
    }
    catch (const usage_error& e) {
        return fail(g.json, exit_code::usage, "usage", e.what(), command, g.db);
    }
    catch (const dbactor::error& e) {
        // 130 is "interrupted" everywhere in dbtool's output, whatever the library called it.
        const auto kind = e.value() == dbactor::errc::cancelled ? "interrupted" : errc_name(e.value());
        return fail(g.json, exit_code_for(e.value()), kind, e.what(), command, g.db);
    }
    catch (const SQLite::Exception& e) {
        const auto f = sqlite_failure(e.getExtendedErrorCode(), e.what(), g);
        return fail(g.json, f.code, f.kind, f.message, command, g.db);
    }
    catch (const std::filesystem::filesystem_error& e) {
        return fail(
            g.json,
            exit_code::internal,
            "io_error",
            fmt::format("A file operation failed: {}. Check the path and its permissions, then retry.",
                        e.what()),
            command,
            g.db);
    }
    catch (const std::exception& e) {
        return fail(
            g.json, exit_code::internal, "internal", e.what(), command, g.db); // own messages are sentences
    }
    catch (...) {
        return fail(g.json,
                    exit_code::internal,
                    "internal",
                    "Internal error of an unknown kind. Please report it.",
                    command,
                    g.db);
    }
}

} // namespace

int main(int argc, char** argv)
{
    using namespace dbtool;
    install_sigint_handler();

    CLI::App app{
        "dbtool: inspect, migrate, check and back up a dbactor SQLite database, also while the service "
        "runs (WAL + busy_timeout)."};
    app.footer(exit_codes_help);
    app.require_subcommand(1);
    app.fallthrough(); // global options may also follow the command

    global_options g;
    add_global_options(app, g);

    migrate_options migrate{&g};
    check_options check{&g};
    status_options status{&g};
    new_options create{&g};
    backup_options backup{&g};
    optimize_options optimize{&g};
    adopt_options adopt{&g};
    auto* migrate_cmd = setup_migrate(app, migrate);
    auto* check_cmd = setup_check(app, check);
    auto* status_cmd = setup_status(app, status);
    auto* new_cmd = setup_new(app, create);
    auto* backup_cmd = setup_backup(app, backup);
    auto* optimize_cmd = setup_optimize(app, optimize);
    auto* adopt_cmd = setup_adopt(app, adopt);

    const bool json = json_requested(argc, argv);
    try {
        app.parse(argc, argv);
    }
    catch (const CLI::CallForHelp& e) {
        if (!json)
            return app.exit(e);
        print_json({{"command", "help"}, {"help", app.help()}, {"exit_code", 0}});
        return exit_code::ok;
    }
    catch (const CLI::ParseError& e) {
        return parse_error_exit(app, e, json);
    }

    std::string_view command = "none";
    for (const auto* sub : app.get_subcommands())
        command = sub->get_name();
    // One file, or each file of a shard set in turn (`new` writes a migration file, not a database).
    auto run_one = [&]() -> int {
        try {
            prepare_interrupt_output(g, command);
            if (*migrate_cmd)
                return run_migrate(migrate);
            if (*check_cmd)
                return run_check(check);
            if (*status_cmd)
                return run_status(status);
            if (*backup_cmd)
                return run_backup(backup);
            if (*optimize_cmd)
                return run_optimize(optimize);
            if (*adopt_cmd)
                return run_adopt(adopt);
            return exit_code::usage;
        }
        catch (...) {
            return fail_for_current_exception(g, command);
        }
    };
    try {
        if (*new_cmd)
            return run_new(create);
        return run_per_shard(g, command, *backup_cmd ? &backup.to : nullptr, run_one);
    }
    catch (...) {
        return fail_for_current_exception(g, command);
    }
}
