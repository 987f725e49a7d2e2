#include "new.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <regex>

namespace dbtool {

CLI::App* setup_new(CLI::App& app, new_options& o)
{
    auto* sub =
        app.add_subcommand("new",
                           "Write the next migration file NNNN_NAME.sql into --migrations DIR (default "
                           "./migrations). Does not open the database.");
    sub->add_option("NAME", o.name, "What the migration does, e.g. add_bans (letters, digits, '_' or '-')")
        ->required();
    return sub;
}

int run_new(const new_options& o)
{
    const auto& g = *o.global;
    static const std::regex valid(R"([A-Za-z0-9][A-Za-z0-9_\-]*)");
    if (!std::regex_match(o.name, valid))
        throw usage_error(
            fmt::format("'{}' is not a migration name: it must start with a letter or a digit and "
                        "go on with letters, digits, '_' or '-' (e.g. add_bans).",
                        o.name));
    const std::filesystem::path dir = g.migrations.empty() ? "migrations" : g.migrations;
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec)
        throw std::runtime_error(
            fmt::format("Cannot create the migrations directory '{}': {}. Check the "
                        "permissions of its parent directory, or pass another --migrations.",
                        dir.string(),
                        ec.message()));
    const auto set = dbactor::migration_set::from_directory(dir); // refuses an invalid directory (exit 4)
    // The directory's scheme: the next number, or (timestamped) the current UTC time, later than the newest.
    std::int64_t version = set.latest_version() + 1;
    if (set.scheme() == dbactor::version_scheme::timestamped) {
        const std::time_t now = std::time(nullptr);
        std::tm utc{};
        gmtime_r(&now, &utc);
        char stamp[16];
        std::strftime(stamp, sizeof stamp, "%Y%m%d%H%M%S", &utc);
        version = std::max<std::int64_t>(std::stoll(stamp), set.latest_version() + 1);
    }
    const auto path = dir / fmt::format("{:04}_{}.sql", version, o.name);
    {
        std::ofstream out(path, std::ios::binary);
        out << fmt::format(
            "-- {}: describe what this migration does and why.\n"
            "-- One concern per file. Never edit this file after it was applied anywhere.\n"
            "-- Directives (optional, in these leading comments): -- dbactor: no-transaction\n"
            "--                                                   -- dbactor: foreign-keys=off\n\n",
            o.name);
        out.close(); // flushes: a full disk shows here, not in the destructor
        if (!out) {
            std::error_code ignored;
            std::filesystem::remove(path, ignored); // a half-written file would become the next migration
            throw std::runtime_error(fmt::format("Cannot write the new migration file '{}'. Check that the "
                                                 "directory is writable and the disk is not full.",
                                                 path.string()));
        }
    }
    if (g.json)
        print_json({{"command", "new"}, {"path", path.string()}, {"version", version}, {"exit_code", 0}});
    else
        std::cout << fmt::format("created {}\n", path.string());
    return exit_code::ok;
}

} // namespace dbtool
