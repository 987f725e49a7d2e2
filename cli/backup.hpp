// dbtool backup TO: online backup with SQLite's backup API, then quick_check of the copy.
#pragma once

#include "common.hpp"

#include <CLI/CLI.hpp>

namespace dbtool {

struct backup_options
{
    const global_options* global = nullptr;
    std::string to;
    int pages_per_step = 256;
};

CLI::App* setup_backup(CLI::App& app, backup_options& o);
int run_backup(const backup_options& o);

} // namespace dbtool
