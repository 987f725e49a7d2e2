// dbtool new NAME: writes the next NNNN_name.sql into --migrations DIR (default ./migrations).
#pragma once

#include "common.hpp"

#include <CLI/CLI.hpp>

namespace dbtool {

struct new_options
{
    const global_options* global = nullptr;
    std::string name;
};

CLI::App* setup_new(CLI::App& app, new_options& o);
int run_new(const new_options& o);

} // namespace dbtool
