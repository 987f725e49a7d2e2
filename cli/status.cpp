#include "status.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <iostream>

namespace dbtool {

CLI::App* setup_status(CLI::App& app, status_options&)
{
    return app.add_subcommand(
        "status",
        "Show the schema version, each migration (applied with its date, pending, modified, "
        "unknown), the journal mode, page and freelist counts and the WAL size. Read-only.");
}

int run_status(const status_options& o)
{
    const auto& g = *o.global;
    auto opts = base_options(g);
    opts.read_only = true;
    opts.integrity_check = dbactor::check_level::none;
    const auto set = load_migrations(g);
    if (set)
        opts.migrations = *set;
    auto db = dbactor::database::open(opts);
    const auto& r = db.boot_report();
    auto info = db.call([](dbactor::connection& c) { return dbactor::admin::inspect(c); });
    for (const auto& p : r.pragmas)
        if (p.name == "journal_mode")
            info.journal_mode = p.actual; // an immutable (writer-less) open reports the file's own mode
    // Modified or unknown migrations are what `check` fails on too: status says so in its exit code.
    std::vector<int> codes;
    std::size_t width = 20;
    for (const auto& m : r.migrations) {
        width = std::max(width, fmt::format("{:04}_{}", m.version, m.name).size());
        if (set && m.status == dbactor::migration_status::state::modified)
            codes.push_back(exit_code::modified);
        if (set && m.status == dbactor::migration_status::state::unknown)
            codes.push_back(exit_code::ahead);
    }
    const int code = most_severe(codes);
    const auto replicator = replicator_tables(g.db);
    if (g.json) {
        auto migrations = nlohmann::json::array();
        for (const auto& m : r.migrations) {
            auto j = to_json(m);
            if (!set)
                j["state"] = "applied"; // only the ledger is known
            migrations.push_back(std::move(j));
        }
        print_json({{"command", "status"},
                    {"path", g.db},
                    {"version", r.schema_version},
                    {"migrations", migrations},
                    {"migrations_checked", set.has_value()},
                    {"journal_mode", info.journal_mode},
                    {"page_size", info.page_size},
                    {"page_count", info.page_count},
                    {"freelist_count", info.freelist_count},
                    {"file_bytes", info.file_bytes},
                    {"wal_bytes", info.wal_bytes},
                    {"replicator_tables", replicator},
                    {"checkpoints", replicator.empty() ? "actor" : "external"},
                    {"exit_code", code}});
        return code;
    }
    std::cout << fmt::format("database      {}\n", g.db);
    std::cout << fmt::format("version       {}\n", r.schema_version);
    std::cout << fmt::format("journal mode  {}\n", info.journal_mode);
    std::cout << fmt::format(
        "pages         {} of {} bytes ({} free)\n", info.page_count, info.page_size, info.freelist_count);
    std::cout << fmt::format("file          {} bytes, WAL {} bytes\n", info.file_bytes, info.wal_bytes);
    if (!replicator.empty())
        std::cout << fmt::format("replicator    Litestream ({}: its tables, not the schema's)\n",
                                 fmt::join(replicator, ", "));
    std::cout << fmt::format("checkpoints   {}\n",
                             replicator.empty()
                                 ? std::string("by the service (dbactor's default)")
                                 : std::string("external: the replicator owns them; dbtool does "
                                               "not checkpoint this file (optimize --force does)"));
    std::cout << "migrations" << (set ? "" : " (from the ledger; pass --migrations to compare with files)")
              << '\n';
    for (const auto& m : r.migrations) {
        const char* state = set ? state_name(m.status) : "applied";
        std::cout << fmt::format(
            "  {:<{}} {:<9} {}{}\n",
            fmt::format("{:04}_{}", m.version, m.name),
            width,
            state,
            m.applied_at,
            m.ledger_name.empty()
                ? std::string()
                : fmt::format("  (renamed: applied as {:04}_{})", m.version, m.ledger_name));
    }
    for (const auto& m : r.migrations)
        if (set && m.status != dbactor::migration_status::state::applied &&
            m.status != dbactor::migration_status::state::pending)
            std::cerr << fmt::format("dbtool: migration {:04}_{} is {}: {}\n",
                                     m.version,
                                     m.name,
                                     state_name(m.status),
                                     m.status == dbactor::migration_status::state::modified
                                         ? "its file changed after it was applied (exit 4); restore it"
                                         : "the ledger has it but the directory does not (exit 5): a newer "
                                           "build migrated this database");
    return code;
}

} // namespace dbtool
