#include "common.hpp"

#include <fmt/format.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <unistd.h>

namespace dbtool {

const char* const exit_codes_help = R"(Exit codes:
  0    ok
  1    internal or I/O error (also: cannot open, pragma refused)
  2    usage error
  3    pending migrations (check)
  4    a migration was modified after it was applied, or the migration files are invalid
  5    the database is ahead of this build (versions it does not know)
  6    a migration failed (it was rolled back; earlier ones stay applied)
  7    busy: the database stayed locked longer than busy_timeout
  8    corruption, or not a database
  9    foreign-key violations
  10   the database belongs to another application (application_id)
  130  interrupted (SIGINT)
When several findings apply, the most severe decides the code, in this order:
8, 10, 6, 4, 5, 9, 7, 3. The report (text or --json) lists all of them.)";

int exit_code_for(dbactor::errc e) noexcept
{
    using dbactor::errc;
    switch (e) {
    case errc::not_a_database:
    case errc::integrity_check_failed: return corrupt;
    case errc::wrong_application: return wrong_application;
    case errc::migration_failed: return failed;
    case errc::migration_modified:
    case errc::migration_source_invalid: return modified;
    case errc::database_ahead: return ahead;
    case errc::foreign_key_violation: return foreign_keys;
    case errc::busy: return busy;
    case errc::cancelled: return interrupted;
    default: return internal;
    }
}

int most_severe(const std::vector<int>& codes) noexcept
{
    static constexpr int order[] = {interrupted, corrupt, wrong_application, failed, modified, ahead,
                                    foreign_keys, busy, pending, internal, usage};
    for (int c : order)
        for (int x : codes)
            if (x == c)
                return c;
    return ok;
}

nlohmann::json to_json(const std::vector<finding>& f)
{
    auto a = nlohmann::json::array();
    for (const auto& x : f)
        a.push_back({{"code", x.code}, {"kind", x.kind}, {"message", x.message}});
    return a;
}

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

const char* state_name(dbactor::migration_status::state s) noexcept
{
    using st = dbactor::migration_status::state;
    switch (s) {
    case st::applied: return "applied";
    case st::pending: return "pending";
    case st::modified: return "modified";
    case st::unknown: return "unknown";
    }
    return "?";
}

nlohmann::json to_json(const dbactor::migration_status& m)
{
    nlohmann::json j = {{"version", m.version},
                        {"name", m.name},
                        {"state", state_name(m.status)},
                        {"checksum", m.checksum},
                        {"reversible", m.reversible}};
    if (!m.applied_at.empty()) {
        j["applied_at"] = m.applied_at;
        j["duration_ms"] = m.duration_ms;
    }
    return j;
}

void print_json(const nlohmann::json& j)
{
    std::cout << j.dump(2) << std::endl;
}

namespace {
std::atomic<bool> g_interruptible{false};
std::atomic<bool> g_interrupted{false};

extern "C" void on_sigint(int)
{
    g_interrupted.store(true);
    if (!g_interruptible.load())
        ::_exit(interrupted);
}
} // namespace

void install_sigint_handler()
{
    struct sigaction sa = {};
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGINT, &sa, nullptr);
}

void set_interruptible(bool on) noexcept
{
    g_interruptible.store(on);
}

bool was_interrupted() noexcept
{
    return g_interrupted.load();
}

} // namespace dbtool
