#include "backup.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <iostream>

namespace dbtool {

CLI::App* setup_backup(CLI::App& app, backup_options& o)
{
    auto* sub = app.add_subcommand(
        "backup",
        "Copy the database online into the new file TO (SQLite backup API, in steps, one consistent "
        "snapshot; a "
        "running service keeps writing), then quick_check the copy. Shows a progress bar on a terminal.");
    sub->add_option("TO", o.to, "The backup file to create (must not exist)")->required();
    sub->add_option("--pages-per-step", o.pages_per_step, "Pages copied per step")
        ->check(CLI::PositiveNumber);
    return sub;
}

int run_backup(const backup_options& o)
{
    const auto& g = *o.global;
    auto opts = base_options(g);
    opts.read_only = true;
    opts.integrity_check = dbactor::check_level::none; // the copy is checked instead
    auto db = dbactor::database::open(opts);
    const bool bar = !g.json && ::isatty(STDERR_FILENO);
    set_interruptible(true);
    dbactor::admin::backup_result r;
    try {
        r = db.call([&](dbactor::connection& c) {
            return dbactor::admin::backup(
                c,
                o.to,
                [&](std::int64_t done, std::int64_t total) {
                    if (bar && total > 0) {
                        const int width = 40;
                        const auto filled = static_cast<int>(done * width / total);
                        std::cerr << fmt::format("\r[{}{}] {:3}%",
                                                 std::string(static_cast<std::size_t>(filled), '#'),
                                                 std::string(static_cast<std::size_t>(width - filled), ' '),
                                                 done * 100 / total)
                                  << std::flush;
                    }
                    return !was_interrupted();
                },
                o.pages_per_step);
        });
    }
    catch (...) {
        if (bar)
            std::cerr << '\n';
        throw;
    }
    set_interruptible(false);
    if (bar)
        std::cerr << '\n';
    db.close();
    // backup() publishes TO only after the copy passed quick_check (otherwise it throws, exit 8).
    if (g.json)
        print_json({{"command", "backup"},
                    {"path", g.db},
                    {"to", o.to},
                    {"pages", r.pages},
                    {"quick_check", r.quick_check},
                    {"exit_code", exit_code::ok}});
    else
        std::cout << fmt::format("backed up {} ({} pages) to {}; quick_check ok.\n", g.db, r.pages, o.to);
    return exit_code::ok;
}

} // namespace dbtool
