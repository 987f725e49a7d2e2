// dbtool check [--quick|--full]: integrity, foreign keys and migration state, without changing anything.
#pragma once

#include "common.hpp"

#include <CLI/CLI.hpp>

namespace dbtool {

struct check_options
{
    const global_options* global = nullptr;
    bool quick = false;
    bool full = false;
};

CLI::App* setup_check(CLI::App& app, check_options& o);
int run_check(const check_options& o);

} // namespace dbtool
