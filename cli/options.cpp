// dbtool's global options turned into what the library boots with.
#include "options.hpp"

#include <chrono>
#include <iostream>

namespace dbtool {

dbactor::options base_options(const global_options& g)
{
    if (g.db.empty())
        throw usage_error("--db PATH is required: the database file to work on.");
    dbactor::options o;
    o.path = g.db;
    o.busy_timeout = std::chrono::milliseconds(g.busy_timeout_ms);
    o.application_id = g.application_id;
    o.on_log = [](dbactor::log_level level, std::string_view m) {
        if (level >= dbactor::log_level::warning)
            std::cerr << "dbtool: " << m << '\n';
    };
    return o;
}

std::optional<dbactor::migration_set> load_migrations(const global_options& g)
{
    if (g.migrations.empty())
        return std::nullopt;
    return dbactor::migration_set::from_directory(g.migrations);
}

} // namespace dbtool
