#include "common.hpp"

#include <fmt/format.h>
#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
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
  6    a migration failed (it was rolled back, also when it would leave foreign-key
       violations; earlier ones stay applied)
  7    busy: the database stayed locked longer than busy_timeout
  8    corruption, or not a database
  9    foreign-key violations
  10   the database belongs to another application (application_id)
  130  interrupted (SIGINT)
When several findings apply, the most severe decides the code, in this order:
8, 10, 6, 4, 5, 9, 7, 3 (130 first, 1 right after 8). The report (text or --json)
lists all of them.)";

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

failure sqlite_failure(int extended_code, std::string_view sqlite_text, const global_options& g)
{
    const auto e = dbactor::errc_for_sqlite(extended_code, dbactor::errc::open_failed);
    std::string advice;
    if (e == dbactor::errc::busy)
        advice =
            fmt::format("Another connection held the lock longer than --busy-timeout ({} ms); retry when it "
                        "is done, or raise --busy-timeout.",
                        g.busy_timeout_ms);
    else if (e == dbactor::errc::integrity_check_failed)
        advice =
            fmt::format("The database is damaged: `dbtool --db {} check --full` shows where; restore it from "
                        "a backup, or salvage it with `sqlite3 {} .recover`.",
                        g.db,
                        g.db);
    else if (e == dbactor::errc::not_a_database)
        advice = "The file is not a SQLite database (or is encrypted); check --db.";
    else
        advice = "Check the file, its directory and the free space, then retry.";
    const bool mapped = e != dbactor::errc::open_failed;
    return {mapped ? exit_code_for(e) : internal,
            mapped ? errc_name(e) : "sqlite_error",
            fmt::format(
                "SQLite failed on '{}': {} (SQLite code {}). {}", g.db, sqlite_text, extended_code, advice)};
}

int most_severe(const std::vector<int>& codes) noexcept
{
    // DESIGN.md's order (8, 10, 6, 4, 5, 9, 7, 3), with an interruption first and an internal or I/O error
    // (which may have cut the other checks short) right after corruption.
    static constexpr int order[] = {interrupted,
                                    corrupt,
                                    internal,
                                    wrong_application,
                                    failed,
                                    modified,
                                    ahead,
                                    foreign_keys,
                                    busy,
                                    pending,
                                    usage};
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

namespace {
std::atomic<bool> g_interruptible{false};
std::atomic<bool> g_interrupted{false};
std::atomic<bool> g_output_started{false};
// Written by the signal handler, which may only call write() and _exit(): prepared beforehand.
std::string g_interrupt_stdout;
std::atomic<bool> g_interrupt_ready{false};
constexpr char interrupt_stderr[] =
    "dbtool: interrupted (SIGINT) before the command finished; nothing was half "
    "done (SQLite rolls back a transaction in progress). Run the command again.\n";

void write_all(int fd, const char* p, std::size_t n) noexcept
{
    while (n > 0) {
        const auto w = ::write(fd, p, n);
        if (w <= 0)
            return;
        p += w;
        n -= static_cast<std::size_t>(w);
    }
}

extern "C" void on_sigint(int)
{
    g_interrupted.store(true);
    if (g_interruptible.load())
        return; // the command stops at its next safe point and reports what it did
    if (g_output_started.load())
        return; // the command's one document is being printed: let it finish
    write_all(STDERR_FILENO, interrupt_stderr, sizeof interrupt_stderr - 1);
    if (g_interrupt_ready.load())
        write_all(STDOUT_FILENO, g_interrupt_stdout.data(), g_interrupt_stdout.size());
    ::_exit(interrupted);
}
} // namespace

void print_json(const nlohmann::json& j) noexcept
{
    g_output_started.store(true);
    try {
        std::cout << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << std::endl;
    }
    catch (...) {
        // Only allocation can fail here; still leave exactly one document.
        static constexpr char fallback[] =
            "{\"error\": {\"kind\": \"internal\", \"message\": \"dbtool could not "
            "format its output.\"}, \"exit_code\": 1}\n";
        std::cout.clear();
        write_all(STDOUT_FILENO, fallback, sizeof fallback - 1);
    }
}

void prepare_interrupt_output(const global_options& g, std::string_view command)
{
    if (!g.json)
        return;
    g_interrupt_ready.store(false);
    const nlohmann::json j = {
        {"command", command},
        {"path", g.db},
        {"error",
         {{"kind", "interrupted"},
          {"message",
           "Interrupted (SIGINT) before the command finished; nothing was half done (SQLite rolls back a "
           "transaction in progress). Run the command again."}}},
        {"exit_code", interrupted}};
    g_interrupt_stdout = j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    g_interrupt_ready.store(true);
}

void install_sigint_handler()
{
    struct sigaction sa = {};
    sa.sa_handler = on_sigint;
    sa.sa_flags =
        SA_RESTART; // a write of the JSON document to a full pipe resumes instead of failing (EINTR)
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

struct interruptible_lock_wait::state
{
    std::chrono::milliseconds timeout;
    std::string path;
    std::chrono::steady_clock::time_point since{};
    bool announced = false;
};

namespace {
extern "C" int interruptible_busy(void* p, int count)
{
    auto* s = static_cast<interruptible_lock_wait::state*>(p);
    const auto now = std::chrono::steady_clock::now();
    if (count == 0) {
        s->since = now;
        if (!s->announced) {
            s->announced = true;
            std::cerr << fmt::format(
                             "dbtool: '{}' is locked by another connection; waiting up to {} ms for it "
                             "(Ctrl-C stops).\n",
                             s->path,
                             s->timeout.count())
                      << std::flush;
        }
    }
    if (was_interrupted() || now - s->since >= s->timeout)
        return 0; // SQLITE_BUSY for the statement that waits
    ::sqlite3_sleep(10);
    return 1;
}
} // namespace

interruptible_lock_wait::interruptible_lock_wait(dbactor::connection& c, const global_options& g)
    : c_(c), state_(std::make_unique<state>(state{std::chrono::milliseconds(g.busy_timeout_ms), g.db}))
{
    ::sqlite3_busy_handler(c_.handle(), interruptible_busy, state_.get());
}

interruptible_lock_wait::~interruptible_lock_wait()
{
    ::sqlite3_busy_timeout(c_.handle(), static_cast<int>(state_->timeout.count()));
}

} // namespace dbtool
