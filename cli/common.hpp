// dbtool's shared pieces, for the subcommand files: options, exit codes, output, SIGINT handling.
#pragma once

#include "exit_codes.hpp"
#include "interrupt.hpp"
#include "options.hpp"
#include "output.hpp"
