// dbactor-emulator: an emulator's bookkeeping (ROM catalog, play sessions, save states, achievements) from
// plain threads, through futures.
#include "emulator_core.hpp"

#include <CLI/CLI.hpp>

#include <iostream>

int main(int argc, char** argv)
{
    emu::config cfg;
    CLI::App app{
        "dbactor-emulator: emulator bookkeeping through dbactor from plain threads (std::future replies).\n"
        "Each player thread plays sessions, saves states into slots and unlocks achievements; at the end "
        "it prints the play time per game. An option given twice takes its last value."};
    app.option_defaults()->take_last();
    app.add_option("--db", cfg.db_path, "Database file (created and migrated when missing)")
        ->capture_default_str();
    app.add_option("--players", cfg.players, "Player threads")
        ->capture_default_str()
        ->check(CLI::Range(1u, 64u));
    app.add_option("--sessions", cfg.sessions, "Play sessions per player")->capture_default_str();
    app.add_option("--saves-per-session", cfg.saves_per_session, "Save states per session")
        ->capture_default_str();
    app.add_option("--seed", cfg.seed, "Seed of the simulated players")->capture_default_str();
    app.add_option("--state-kib", cfg.state_kib, "Size of a new save state in KiB (0 = 24 to 64 at random)")
        ->capture_default_str()
        ->check(CLI::Range(0u, 65536u));
    bool normal = false;
    app.add_flag("--synchronous-normal", normal, "PRAGMA synchronous=NORMAL instead of FULL");
    app.add_flag(
        "--self-check",
        cfg.self_check,
        "Verify every save slot and the play-time totals against what the players did (exit 1 if not)");
    app.add_option(
           "--crash-in-save",
           cfg.crash_in_save,
           "Testing: the N-th save kills the process (SIGKILL) halfway through writing its chunks; the page "
           "cache is 16 pages so that they reach the -wal first")
        ->group("Testing");
    CLI11_PARSE(app, argc, argv);
    if (normal)
        cfg.synchronous = dbactor::synchronous_mode::normal;
    return emu::run(cfg, std::cout);
}
