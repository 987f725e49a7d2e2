// dbtool status: version, each migration's state, journal mode and sizes, without changing anything.
#pragma once

#include "common.hpp"

#include <CLI/CLI.hpp>

namespace dbtool {

struct status_options
{
    const global_options* global = nullptr;
};

CLI::App* setup_status(CLI::App& app, status_options& o);
int run_status(const status_options& o);

} // namespace dbtool
