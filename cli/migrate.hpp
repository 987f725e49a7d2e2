// dbtool migrate [--to V] [--dry-run]: apply pending migrations, or revert with down files.
#pragma once

#include "common.hpp"

#include <CLI/CLI.hpp>

namespace dbtool {

struct migrate_options
{
    const global_options* global = nullptr;
    std::int64_t to = -1; ///< the newest version unless --to was given
    bool to_given = false;
    bool dry_run = false;
    bool allow_out_of_order = false;
};

CLI::App* setup_migrate(CLI::App& app, migrate_options& o);
int run_migrate(const migrate_options& o);

} // namespace dbtool
