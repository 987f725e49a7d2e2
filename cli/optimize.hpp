// dbtool optimize [--vacuum]: PRAGMA optimize, wal_checkpoint(TRUNCATE), and optionally VACUUM.
#pragma once

#include "common.hpp"

#include <CLI/CLI.hpp>

namespace dbtool {

struct optimize_options
{
    const global_options* global = nullptr;
    bool vacuum = false;
    bool force = false; ///< checkpoint also a file a replicator (Litestream) owns
};

CLI::App* setup_optimize(CLI::App& app, optimize_options& o);
int run_optimize(const optimize_options& o);

} // namespace dbtool
