// dbtool's global options (--db, --migrations, --json, …) and the library options they give.
#pragma once

#include <dbactor/dbactor.hpp>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>

namespace dbtool {

/// `--db`, `--migrations`, `--json`: given before or after the command.
struct global_options
{
    std::string db;
    std::string migrations;
    bool json = false;
    std::int64_t busy_timeout_ms = 5000;
    std::optional<std::int32_t> application_id;
};

/// Options for booting the database of `g` (`--db`), quiet below warnings. Errors: usage when --db is empty.
dbactor::options base_options(const global_options& g);

/// The migrations of `--migrations`, or nullopt when it was not given.
std::optional<dbactor::migration_set> load_migrations(const global_options& g);

/// A command-line mistake found after parsing (exit code 2).
struct usage_error : std::runtime_error
{
    using std::runtime_error::runtime_error;
};

} // namespace dbtool
