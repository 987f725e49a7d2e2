#include "optimize.hpp"

#include <fmt/format.h>

#include <iostream>
#include <tuple>

namespace dbtool {

CLI::App* setup_optimize(CLI::App& app, optimize_options& o)
{
    auto* sub =
        app.add_subcommand("optimize",
                           "Run PRAGMA optimize and wal_checkpoint(TRUNCATE); with --vacuum also VACUUM "
                           "(rewrites the whole file; blocks writers while it runs).");
    sub->add_flag("--vacuum", o.vacuum, "Also VACUUM, returning free pages to the file system");
    sub->add_flag(
        "--force", o.force, "Checkpoint also a database whose checkpoints a replicator (Litestream) owns");
    return sub;
}

int run_optimize(const optimize_options& o)
{
    const auto& g = *o.global;
    auto opts = base_options(g);
    opts.create = false;
    opts.apply_migrations = false;
    opts.integrity_check = dbactor::check_level::none;
    // Under Litestream the replicator owns checkpoints: one from here would make it start a new generation.
    const auto replicator = replicator_tables(g.db);
    const bool checkpoint_it = replicator.empty() || o.force;
    if (!checkpoint_it)
        std::cerr << fmt::format(
            "dbtool: '{}' has Litestream's tables ({}): a replicator owns its checkpoints, so "
            "optimize runs PRAGMA optimize{} but does not checkpoint the WAL. Pass --force "
            "to checkpoint anyway (Litestream then starts a new generation).\n",
            g.db,
            fmt::join(replicator, ", "),
            o.vacuum ? " and VACUUM" : "");
    auto db = dbactor::database::open(opts);
    const auto before = db.call([](dbactor::connection& c) { return dbactor::admin::inspect(c); });
    const auto checkpoint = db.call([&](dbactor::connection& c) {
        c.exec("PRAGMA optimize");
        if (o.vacuum)
            c.exec("VACUUM");
        if (!checkpoint_it)
            return std::tuple<std::int64_t, std::int64_t, std::int64_t>{0, -1, -1};
        return *c.query_one<std::tuple<std::int64_t, std::int64_t, std::int64_t>>(
            "PRAGMA wal_checkpoint(TRUNCATE)");
    });
    const auto after = db.call([](dbactor::connection& c) { return dbactor::admin::inspect(c); });
    db.close(); // a failed final checkpoint throws close_failed (exit 1) instead of passing unnoticed
    const bool complete = std::get<0>(checkpoint) == 0;
    if (g.json)
        print_json({{"command", "optimize"},
                    {"path", g.db},
                    {"vacuum", o.vacuum},
                    {"checkpointed", checkpoint_it},
                    {"checkpoint_complete", checkpoint_it && complete},
                    {"bytes_before", before.file_bytes + before.wal_bytes},
                    {"bytes_after", after.file_bytes + after.wal_bytes},
                    {"exit_code", 0}});
    else
        std::cout << fmt::format("{}: optimized{}; {} bytes before, {} after{}.\n",
                                 g.db,
                                 o.vacuum ? " and vacuumed" : "",
                                 before.file_bytes + before.wal_bytes,
                                 after.file_bytes + after.wal_bytes,
                                 !checkpoint_it ? " (no checkpoint: the replicator owns them)"
                                 : complete     ? ""
                                            : " (the WAL checkpoint was not complete: a reader was active)");
    return exit_code::ok;
}

} // namespace dbtool
