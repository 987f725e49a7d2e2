// litestream_writer: a service on dbactor writing groups of rows, one transaction per group, until it is
// killed; each acknowledgement (the reply after COMMIT) goes to an ack log before the next group is sent.
// Usage: litestream_writer DB ACK_LOG external|actor groups|bot [PACE_US [BURST_MS PAUSE_MS]]
//   external|actor  options::checkpoints (external: Litestream owns checkpoints)
//   groups          table `items`: group g is GROUP_ROWS rows (group_id = g, part 0..GROUP_ROWS-1)
//   bot             the example bot's schema (migrations/bot): group g is guild g in guild_settings,
//   GROUP_ROWS
//                   members of that guild and one warning
//   PACE_US         microseconds between groups (default 2000): a service's rate, not a synchronisation
//   BURST_MS PAUSE_MS  write for BURST_MS, then stay idle for PAUSE_MS (long enough for the actor's idle
//                   checkpoint), and again
// Ack log lines: "<group> <steady_ns> <unix_ms>\n", steady_ns on CLOCK_MONOTONIC (std::chrono::steady_clock),
// the clock the test reads too. One write(2) per line on an O_APPEND descriptor: a SIGKILL cannot lose a line
// that was written, and no line is written before its COMMIT returned.
#include "groups.hpp"

#include <dbactor/dbactor.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>

#include <fcntl.h>
#include <unistd.h>

namespace {

int ack_fd = -1;

void ack(std::int64_t group)
{
    const auto steady = std::chrono::steady_clock::now().time_since_epoch();
    const auto wall = std::chrono::system_clock::now().time_since_epoch();
    const std::string line =
        std::to_string(group) + " " +
        std::to_string(std::chrono::duration_cast<std::chrono::nanoseconds>(steady).count()) + " " +
        std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(wall).count()) + "\n";
    if (::write(ack_fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
        std::perror("litestream_writer: writing the ack log");
        std::_Exit(3);
    }
}

/// One group in one transaction: what a complete group is, lsgroups::complete says.
struct write_group
{
    std::int64_t group;
    bool bot_schema;
    std::string payload;
    void operator()(dbactor::connection& c) const
    {
        const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
        if (!bot_schema) {
            for (int part = 0; part < lsgroups::group_rows; ++part)
                c.execute(
                    "INSERT INTO items(group_id, part, payload) VALUES (?, ?, ?)", group, part, payload);
            return;
        }
        c.execute(
            "INSERT INTO guild_settings(guild_id, created_at, updated_at) VALUES (?, ?, ?)", group, now, now);
        for (int part = 0; part < lsgroups::group_rows; ++part)
            c.execute("INSERT INTO members(guild_id, user_id, joined_at, messages) VALUES (?, ?, ?, 1)",
                      group,
                      1000 + part,
                      now);
        c.execute("INSERT INTO warnings(guild_id, user_id, moderator_id, reason, created_at) VALUES (?, ?, "
                  "1, ?, ?)",
                  group,
                  1000,
                  payload,
                  now);
    }
};

} // namespace

int main(int argc, char** argv)
{
    if (argc < 5) {
        std::fprintf(stderr,
                     "usage: %s DB ACK_LOG external|actor groups|bot [PACE_US [BURST_MS PAUSE_MS]]\n",
                     argv[0]);
        return 2;
    }
    const bool external = std::strcmp(argv[3], "external") == 0;
    const bool bot_schema = std::strcmp(argv[4], "bot") == 0;
    const auto pace = std::chrono::microseconds(argc > 5 ? std::atol(argv[5]) : 2000);
    const auto burst = std::chrono::milliseconds(argc > 7 ? std::atol(argv[6]) : 0);
    const auto pause = std::chrono::milliseconds(argc > 7 ? std::atol(argv[7]) : 0);

    ack_fd = ::open(argv[2], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (ack_fd < 0) {
        std::perror("litestream_writer: opening the ack log");
        return 3;
    }

    dbactor::options o;
    o.path = argv[1];
    o.busy_timeout = std::chrono::milliseconds(5000); // Litestream takes the write lock for its own tables
    o.checkpoints = external ? dbactor::checkpoint_mode::external : dbactor::checkpoint_mode::actor;
    o.migrations = lsgroups::schema(bot_schema);
    o.on_log = [](dbactor::log_level level, std::string_view msg) {
        if (level >= dbactor::log_level::warning)
            std::fprintf(stderr, "litestream_writer: %.*s\n", static_cast<int>(msg.size()), msg.data());
    };
    dbactor::database db;
    try {
        db = dbactor::database::open(std::move(o));
    }
    catch (const std::exception& e) {
        std::fprintf(stderr, "litestream_writer: boot failed: %s\n", e.what());
        return 4;
    }
    std::fprintf(stderr, "litestream_writer: booted, checkpoints %s\n", db.boot_report().checkpoints.c_str());

    std::mt19937_64 rng(static_cast<std::uint64_t>(::getpid()));
    auto burst_start = std::chrono::steady_clock::now();
    for (std::int64_t group = 1;; ++group) {
        std::string payload(100 + rng() % 200, 'x');
        for (auto& ch : payload)
            ch = static_cast<char>('a' + rng() % 26);
        const write_group request{group, bot_schema, std::move(payload)};
        try {
            db.write(request);
        }
        catch (const std::exception& e) {
            std::fprintf(stderr,
                         "litestream_writer: group %lld failed: %s\n",
                         static_cast<long long>(group),
                         e.what());
            return 5;
        }
        ack(group);
        std::this_thread::sleep_for(pace);
        if (burst.count() > 0 && std::chrono::steady_clock::now() - burst_start >= burst) {
            std::this_thread::sleep_for(pause);
            // After the pause, for the test's log: how many idle checkpoints the actor has made so far.
            std::fprintf(stderr,
                         "litestream_writer: idle_checkpoints %llu\n",
                         static_cast<unsigned long long>(db.stats().idle_checkpoints));
            burst_start = std::chrono::steady_clock::now();
        }
    }
}
