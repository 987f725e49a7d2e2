// The bot example's entry point, bot::run(): open the database, run the service, print the summary.
#include "bot_core.hpp"

#include "common.hpp"
#include "service.hpp"
#include "summary.hpp"

#include <bot_migrations.hpp>

#include <dbactor/dbactor.hpp>

#include <fmt/format.h>
#include <fmt/ostream.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <ostream>
#include <string_view>
#include <thread>
#include <utility>

#include <pthread.h>
#include <signal.h>

namespace bot {

namespace {

/// Blocks SIGINT and SIGTERM in the calling thread, and so in every thread it starts, until restore(). A
/// signal that arrives meanwhile stays pending instead of killing the process with its default action;
/// once the service's signal_set exists, restore() lets it through to the signal_set. The destructor
/// discards what is still pending (a second signal during the shutdown) before restoring the mask.
class blocked_stop_signals
{
public:
    blocked_stop_signals()
    {
        sigemptyset(&set_);
        sigaddset(&set_, SIGINT);
        sigaddset(&set_, SIGTERM);
        block();
    }
    blocked_stop_signals(const blocked_stop_signals&) = delete;
    blocked_stop_signals& operator=(const blocked_stop_signals&) = delete;
    ~blocked_stop_signals()
    {
        if (blocked_) {
            const timespec now{};
            while (sigtimedwait(&set_, nullptr, &now) > 0) {
            }
        }
        restore();
    }
    void block()
    {
        pthread_sigmask(SIG_BLOCK, &set_, &old_);
        blocked_ = true;
    }
    void restore()
    {
        if (blocked_)
            pthread_sigmask(SIG_SETMASK, &old_, nullptr);
        blocked_ = false;
    }

private:
    sigset_t set_{}, old_{};
    bool blocked_ = false;
};

/// The database as the bot uses it: its schema, a bounded queue, slow requests and the library's warnings
/// logged on stderr.
dbactor::options database_options(const config& cfg)
{
    dbactor::options o;
    o.path = cfg.db_path;
    o.synchronous = cfg.synchronous;
    o.checkpoints = cfg.checkpoints;
    o.migrations = bot_migrations();
    o.queue_capacity = 4096;
    o.readers = cfg.readers;
    o.slow_request = std::chrono::milliseconds(250);
    // At most one slow-request line per second: under overload every request is slow, and a line each
    // would bury everything else.
    struct slow_log
    {
        std::atomic<std::int64_t> last_ns{0};
        std::atomic<std::uint64_t> suppressed{0};
    };
    o.on_slow_request = [state = std::make_shared<slow_log>()](const dbactor::slow_request_info& info) {
        const std::int64_t now = steady::now().time_since_epoch().count();
        std::int64_t last = state->last_ns.load();
        if (now - last < 1'000'000'000 || !state->last_ns.compare_exchange_strong(last, now)) {
            ++state->suppressed;
            return;
        }
        log("warning",
            fmt::format("slow request {}: waited {} and ran {} ({} more slow requests not shown)",
                        info.name.empty() ? "(unnamed)" : info.name,
                        ms(static_cast<std::uint64_t>(info.queue_wait.count())),
                        ms(static_cast<std::uint64_t>(info.execution.count())),
                        state->suppressed.exchange(0)));
    };
    o.on_log = [](dbactor::log_level level, std::string_view msg) {
        if (level >= dbactor::log_level::warning)
            log(level == dbactor::log_level::error ? "error" : "warning", fmt::format("dbactor: {}", msg));
    };
    return o;
}

/// Opens (creates and migrates) the database and prints what boot did to `out`; nullopt when it cannot
/// start.
std::optional<dbactor::database> open_database(const config& cfg, std::ostream& out)
{
    dbactor::database db;
    try {
        const auto parent = std::filesystem::path(cfg.db_path).parent_path();
        if (!parent.empty())
            std::filesystem::create_directories(parent);
        log("info", fmt::format("opening {}: integrity check, pragmas, migrations", cfg.db_path));
        db = dbactor::database::open(database_options(cfg));
    }
    catch (const std::exception& e) {
        fmt::print(stderr, "[error] cannot start: {}\n", e.what());
        return std::nullopt;
    }
    const auto& boot = db.boot_report();
    const auto applied = std::count_if(
        boot.migrations.begin(), boot.migrations.end(), [](const auto& m) { return m.applied_now; });
    fmt::print(out,
               "dbactor-bot: database {} (schema version {}, {} migration(s) applied now, boot {:.1f} ms, "
               "checkpoints {})\n",
               cfg.db_path,
               boot.schema_version,
               applied,
               static_cast<double>(boot.total.count()) / 1000.0,
               boot.checkpoints);
    out.flush();
    return db;
}

} // namespace

dbactor::migration_set schema()
{
    return bot_migrations();
}
int run(const config& cfg, std::ostream& out)
{
    const unsigned threads = cfg.threads ? cfg.threads : std::max(1u, std::thread::hardware_concurrency());
    // Before any thread starts (database::open starts the actor's): a SIGINT or SIGTERM during the boot
    // waits, blocked, for the service's signal_set instead of killing the process; the bot then starts and
    // stops at once, gracefully.
    blocked_stop_signals stop_signals;
    std::optional<dbactor::database> db = open_database(cfg, out);
    if (!db)
        return 1;

    bot_service service(cfg, std::move(*db), threads);
    stop_signals.restore(); // the signal_set exists: a pending signal reaches it now
    service.run();
    // Shutting down already: a second signal during the summary and the self-check is ignored.
    stop_signals.block();
    if (service.startup_failed())
        return 1;

    const auto& c = service.count();
    print_summary(out, c, service.report());

    bool ok = c.failed == 0 && !service.close_failed();
    if (cfg.self_check) {
        try {
            ok = self_check(cfg, service.before(), service.guilds_added(), c, out) && ok;
        }
        catch (const std::exception& e) {
            fmt::print(out, "self-check: FAILED: {}\n", e.what());
            ok = false;
        }
    }
    out.flush();
    return ok ? 0 : 1;
}

} // namespace bot
