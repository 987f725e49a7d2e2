// dbactor-bot: the persistence layer of a Discord-style bot under simulated gateway traffic.
#include "bot_core.hpp"

#include <CLI/CLI.hpp>

#include <iostream>

int main(int argc, char** argv)
{
    bot::config cfg;
    CLI::App app{
        "dbactor-bot: a Discord-style bot core (simulated gateway, no network) persisting through dbactor.\n"
        "Runs until --duration elapses or SIGINT/SIGTERM arrives, then shuts down gracefully and prints a "
        "summary.\n"
        "An option given twice takes its last value (run.sh passes --duration 10 before your own options)."};
    // Before the options are added: the defaults apply to options created afterwards.
    app.option_defaults()->take_last();
    app.add_option("--db", cfg.db_path, "Database file (created and migrated when missing)")
        ->capture_default_str();
    app.add_option("--guilds", cfg.guilds, "Simulated guilds")
        ->capture_default_str()
        ->check(CLI::Range(1u, 1000000u));
    app.add_option("--events-per-sec", cfg.events_per_sec, "Gateway events per second")
        ->capture_default_str()
        ->check(CLI::Range(0.0, 1e7));
    app.add_option("--duration", cfg.duration_s, "Seconds to run (0 = until SIGINT/SIGTERM)")
        ->capture_default_str()
        ->check(CLI::NonNegativeNumber);
    app.add_option("--threads", cfg.threads, "io_context threads (0 = one per core)")->capture_default_str();
    app.add_option("--seed", cfg.seed, "Seed of the simulated gateway (same seed, same guild ids)")
        ->capture_default_str();
    app.add_option("--readers", cfg.readers, "Reader connections serving reads (0 = reads share the writer)")
        ->capture_default_str()
        ->check(CLI::Range(0u, 16u));
    std::string checkpoints = "actor";
    app.add_option(
           "--checkpoints",
           checkpoints,
           "Who checkpoints the WAL: actor (the bot, when idle and at exit) or external (a replicator "
           "such as Litestream that the bot runs under; the bot never checkpoints)")
        ->capture_default_str()
        ->check(CLI::IsMember({"actor", "external"}));
    bool normal = false;
    app.add_flag("--synchronous-normal",
                 normal,
                 "PRAGMA synchronous=NORMAL (survives a process crash, not a power loss) instead of FULL");
    app.add_flag(
        "--self-check",
        cfg.self_check,
        "After closing, reopen the database and check it holds exactly what the handlers wrote (exit 1 "
        "if not)");
    app.add_option(
           "--progress-every", cfg.progress_every_s, "Seconds between progress lines on stderr (0 = none)")
        ->capture_default_str()
        ->check(CLI::NonNegativeNumber);
    app.add_option("--roster-cap", cfg.roster_cap, "Members the gateway remembers per guild (memory bound)")
        ->capture_default_str()
        ->check(CLI::Range(std::size_t{2}, std::size_t{1} << 24));
    app.add_option("--fault-every", cfg.fault_every, "Testing: every N-th tempban sweep iteration throws")
        ->group("Testing");
    bool fault_non_std = false;
    app.add_flag("--fault-non-std",
                 fault_non_std,
                 "Testing: the injected fault throws a value not derived from std::exception")
        ->group("Testing");
    CLI11_PARSE(app, argc, argv);
    if (normal)
        cfg.synchronous = dbactor::synchronous_mode::normal;
    cfg.fault_is_std = !fault_non_std;
    cfg.checkpoints =
        checkpoints == "external" ? dbactor::checkpoint_mode::external : dbactor::checkpoint_mode::actor;
    return bot::run(cfg, std::cout);
}
