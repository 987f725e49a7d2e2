// dbtool adopt [--version V] [--dry-run]: take over a database another migration tool manages.
#pragma once

#include "common.hpp"

#include <CLI/CLI.hpp>

namespace dbtool {

struct adopt_options
{
    const global_options* global = nullptr;
    std::int64_t version = -1; ///< record every migration up to this one; -1: what the other ledger says
    bool dry_run = false;
};

CLI::App* setup_adopt(CLI::App& app, adopt_options& o);
int run_adopt(const adopt_options& o);

} // namespace dbtool
