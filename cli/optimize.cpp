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
    return sub;
}

int run_optimize(const optimize_options& o)
{
    const auto& g = *o.global;
    auto opts = base_options(g);
    opts.create = false;
    opts.apply_migrations = false;
    opts.integrity_check = dbactor::check_level::none;
    auto db = dbactor::database::open(opts);
    const auto before = db.call([](dbactor::connection& c) { return dbactor::admin::inspect(c); });
    const auto checkpoint = db.call([&](dbactor::connection& c) {
        c.exec("PRAGMA optimize");
        if (o.vacuum)
            c.exec("VACUUM");
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
                    {"checkpoint_complete", complete},
                    {"bytes_before", before.file_bytes + before.wal_bytes},
                    {"bytes_after", after.file_bytes + after.wal_bytes},
                    {"exit_code", 0}});
    else
        std::cout << fmt::format("{}: optimized{}; {} bytes before, {} after{}.\n",
                                 g.db,
                                 o.vacuum ? " and vacuumed" : "",
                                 before.file_bytes + before.wal_bytes,
                                 after.file_bytes + after.wal_bytes,
                                 complete ? ""
                                          : " (the WAL checkpoint was not complete: a reader was active)");
    return exit_code::ok;
}

} // namespace dbtool
