// The examples as tests: dbactor-bot and dbactor-emulator run as child processes (posix_spawn; never fork a
// threaded process), their output parsed and their databases opened and checked.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>

#include "bot_core.hpp"
#include "emulator_core.hpp"

#include <dbactor/dbactor.hpp>

#include <boost/asio/use_future.hpp>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <regex>
#include <stdexcept>
#include <string>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

/// A fresh directory under $TMPDIR (or /tmp), removed with everything in it.
class temp_dir
{
public:
    temp_dir()
    {
        const char* base = std::getenv("TMPDIR");
        std::string tmpl = std::string(base && *base ? base : "/tmp") + "/dbactor-example-XXXXXX";
        if (!mkdtemp(tmpl.data()))
            throw std::runtime_error("mkdtemp failed for " + tmpl);
        dir_ = tmpl;
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
    ~temp_dir()
    {
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }
    std::string file(const std::string& name) const { return (dir_ / name).string(); }

private:
    std::filesystem::path dir_;
};

/// A child process whose stdout and stderr both go to one pipe.
class child
{
public:
    explicit child(std::vector<std::string> args)
    {
        int fds[2];
        if (pipe2(fds, O_CLOEXEC) != 0)
            throw std::runtime_error("pipe2 failed");
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
        posix_spawn_file_actions_adddup2(&actions, fds[1], 2);
        std::vector<char*> argv;
        for (auto& a : args)
            argv.push_back(a.data());
        argv.push_back(nullptr);
        const int rc = posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
        posix_spawn_file_actions_destroy(&actions);
        ::close(fds[1]);
        fd_ = fds[0];
        if (rc != 0) {
            ::close(fd_);
            throw std::runtime_error("posix_spawn failed for " + args[0]);
        }
    }
    child(const child&) = delete;
    child& operator=(const child&) = delete;
    ~child()
    {
        if (fd_ >= 0)
            ::close(fd_);
        if (pid_ > 0 && !reaped_) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
    }

    /// Reads output until `needle` appears; false if the child ends or `limit` passes first.
    bool read_until(const std::string& needle, std::chrono::seconds limit = 15s)
    {
        const auto deadline = steady::now() + limit;
        while (output_.find(needle) == std::string::npos) {
            if (!read_some(deadline))
                return false;
        }
        return true;
    }

    /// Reads to the end of the output and waits for the child; returns its wait status.
    int finish(std::chrono::seconds limit = 25s)
    {
        const auto deadline = steady::now() + limit;
        while (read_some(deadline)) {
        }
        INFO("output so far:\n" << output_);
        REQUIRE(eof_); // the child did not finish within the limit
        int status = 0;
        REQUIRE(::waitpid(pid_, &status, 0) == pid_);
        reaped_ = true;
        return status;
    }

    void signal(int sig) { ::kill(pid_, sig); }
    const std::string& output() const { return output_; }

private:
    bool read_some(steady::time_point deadline)
    {
        if (eof_)
            return false;
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now()).count();
        if (left <= 0)
            return false;
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(left)) <= 0)
            return false;
        char buf[4096];
        const auto n = ::read(fd_, buf, sizeof buf);
        if (n <= 0) {
            eof_ = true;
            return false;
        }
        output_.append(buf, static_cast<std::size_t>(n));
        return true;
    }

    pid_t pid_ = -1;
    int fd_ = -1;
    bool eof_ = false, reaped_ = false;
    std::string output_;
};

struct run_result
{
    int status;
    std::string output;
    bool exited_ok() const { return WIFEXITED(status) && WEXITSTATUS(status) == 0; }
};

run_result run(std::vector<std::string> args)
{
    child c(std::move(args));
    const int status = c.finish();
    return {status, c.output()};
}

/// The integer groups of the first match of `pattern` in `text`; fails the test when there is none.
std::vector<std::int64_t> numbers(const std::string& text, const std::string& pattern)
{
    std::smatch m;
    INFO("looking for /" << pattern << "/ in:\n" << text);
    REQUIRE(std::regex_search(text, m, std::regex(pattern)));
    std::vector<std::int64_t> out;
    for (std::size_t i = 1; i < m.size(); ++i)
        out.push_back(std::stoll(m[i].str()));
    return out;
}

std::vector<std::string> bot_args(const std::string& db, std::vector<std::string> extra)
{
    std::vector<std::string> a = {DBACTOR_BOT_EXE, "--db", db, "--guilds", "200", "--events-per-sec", "2000",
                                  "--synchronous-normal", "--self-check"};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
}

dbactor::database open_bot_db(const std::string& path)
{
    dbactor::options o;
    o.path = path;
    o.create = false;
    o.migrations = bot::schema();
    return dbactor::database::open(std::move(o));
}

} // namespace

TEST_CASE("snowflakes carry their millisecond and increase strictly, even past 4096 in one millisecond", "[bot]")
{
    bot::snowflake_generator gen(3, 1);
    const std::uint64_t t = 1700000000123;
    const auto first = gen.next(t);
    CHECK(bot::snowflake_generator::unix_ms_of(first) == t);
    CHECK(((first >> 17) & 0x1f) == 3);
    CHECK(((first >> 12) & 0x1f) == 1);
    auto prev = first;
    for (int i = 0; i < 5000; ++i) {
        const auto id = gen.next(t);
        REQUIRE(id > prev);
        prev = id;
    }
    CHECK(bot::snowflake_generator::unix_ms_of(prev) == t + 1);
}

TEST_CASE("the sliding-window limiter allows max requests per window and cleanup drops only empty buckets", "[bot]")
{
    using clock = bot::sliding_window_limiter::clock;
    bot::sliding_window_limiter commands("commands", 15, 30s);
    const auto t0 = clock::time_point{} + 1h;
    for (int i = 0; i < 15; ++i)
        REQUIRE(commands.check(1, t0 + i * 1s) == clock::duration::zero());
    CHECK(commands.check(1, t0 + 15s) == 15s); // the first one leaves the window at t0 + 30 s
    CHECK(commands.check(2, t0 + 15s) == clock::duration::zero());
    CHECK(commands.check(1, t0 + 30s) == clock::duration::zero());
    CHECK(commands.buckets() == 2);
    CHECK(commands.cleanup(t0 + 40s) == 0); // both still hold requests inside the window
    CHECK(commands.cleanup(t0 + 46s) == 1); // user 2's only request left the window at t0 + 45 s
    CHECK(commands.buckets() == 1);
    CHECK(commands.cleanup(t0 + 61s) == 1);
    CHECK(commands.buckets() == 0);
}

TEST_CASE("the bot's short run prints its summary and its database holds what the gateway emitted", "[bot]")
{
    temp_dir dir;
    const auto db_path = dir.file("bot.db");
    const auto r = run(bot_args(db_path, {"--duration", "2"}));
    INFO(r.output);
    REQUIRE(r.exited_ok());
    const auto emitted = numbers(r.output, R"(gateway: emitted (\d+) events \(messages (\d+), commands (\d+), joins (\d+)\))");
    const auto handled = numbers(r.output, R"(handled: (\d+) events \((\d+) failed\), (\d+) events/s)");
    CHECK(emitted[0] >= 1000);
    CHECK(emitted[0] == emitted[1] + emitted[2] + emitted[3]);
    CHECK(handled[0] == emitted[0]);
    CHECK(handled[1] == 0);
    CHECK(numbers(r.output, R"(loop tempban-sweep: (\d+) iterations, (\d+) failed)") [1] == 0);
    CHECK(numbers(r.output, R"(database write: (\d+) requests)")[0] >= emitted[1]);
    CHECK(std::regex_search(r.output, std::regex(R"(handler latency p50 [0-9.]+ ms p99 [0-9.]+ ms)")));
    CHECK(std::regex_search(r.output, std::regex(R"(queue wait p50 [0-9.]+ ms p99 [0-9.]+ ms; execution p50)")));
    CHECK(r.output.find("self-check: ok") != std::string::npos);

    {
        auto db = open_bot_db(db_path);
        const auto [guilds, members, messages, version] =
            db.read([](dbactor::connection& c) {
                  return c.query_one<std::tuple<std::int64_t, std::int64_t, std::int64_t, std::int64_t>>(
                      "SELECT (SELECT count(*) FROM guild_settings), (SELECT count(*) FROM members), "
                      "(SELECT coalesce(sum(messages), 0) FROM members), (SELECT user_version FROM pragma_user_version)");
              }).value();
        CHECK(guilds == 200);
        CHECK(members == emitted[3]);
        CHECK(messages == emitted[1]);
        CHECK(version == bot::schema().latest_version());
        // Every active tempban has exactly one unlifted entry in the ban log.
        CHECK(db.read([](dbactor::connection& c) {
                  return c.query_one<std::int64_t>("SELECT count(*) FROM tempbans AS t JOIN ban_log AS b ON "
                                                   "b.id = t.ban_id WHERE b.lifted_at IS NULL");
              }) == db.read([](dbactor::connection& c) {
                  return c.query_one<std::int64_t>("SELECT count(*) FROM ban_log WHERE lifted_at IS NULL");
              }));
        db.close();
    }

    // A second run finds the database migrated, adds to it, and still checks out.
    const auto again = run(bot_args(db_path, {"--duration", "1"}));
    INFO(again.output);
    REQUIRE(again.exited_ok());
    CHECK(again.output.find(" 0 migration(s) applied now") != std::string::npos);
    CHECK(again.output.find("self-check: ok (members +") != std::string::npos);
}

TEST_CASE("SIGTERM stops the bot gracefully: the gateway stops, handlers drain, the database closes, exit 0", "[bot]")
{
    temp_dir dir;
    child bot(bot_args(dir.file("bot.db"), {"--duration", "0"}));
    REQUIRE(bot.read_until("gateway: running"));
    bot.signal(SIGTERM);
    const int status = bot.finish();
    INFO(bot.output());
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    CHECK(bot.output().find("stopped: SIGTERM") != std::string::npos);
    CHECK(bot.output().find("database closed") != std::string::npos);
    CHECK(bot.output().find("self-check: ok") != std::string::npos);
}

TEST_CASE("an exception in one iteration of a background loop is logged with the loop's name and the loop goes on",
          "[bot]")
{
    temp_dir dir;
    const auto r = run(bot_args(dir.file("bot.db"), {"--duration", "2", "--fault-every", "2"}));
    INFO(r.output);
    REQUIRE(r.exited_ok());
    CHECK(r.output.find("loop tempban-sweep: iteration 2 failed: injected fault") != std::string::npos);
    const auto sweep = numbers(r.output, R"(loop tempban-sweep: (\d+) iterations, (\d+) failed)");
    CHECK(sweep[0] >= 4);                // it kept going after the first failure
    CHECK(sweep[1] == sweep[0] / 2);     // every second iteration failed, the others ran
    CHECK(numbers(r.output, R"(loop ratelimit-cleanup: (\d+) iterations, (\d+) failed)")[1] == 0);
    CHECK(r.output.find("exited while the bot is running") == std::string::npos);
    CHECK(r.output.find("self-check: ok") != std::string::npos); // failed sweeps were rolled back
}

TEST_CASE("the emulator's short run reports play time per game as its database records it", "[emulator]")
{
    temp_dir dir;
    const auto db_path = dir.file("emu.db");
    const auto r = run({DBACTOR_EMULATOR_EXE, "--db", db_path, "--players", "3", "--sessions", "4",
                        "--synchronous-normal", "--self-check"});
    INFO(r.output);
    REQUIRE(r.exited_ok());
    CHECK(r.output.find("play time per game (all runs):") != std::string::npos);
    CHECK(r.output.find("self-check: ok") != std::string::npos);
    const auto run_line = numbers(r.output, R"(this run: (\d+) players, (\d+) sessions, (\d+) saves)");
    CHECK(run_line[1] == 12);
    CHECK(run_line[2] == 36);

    auto db = emu::open_database(db_path);
    const auto report = db.read(emu::play_time_report{});
    std::int64_t sessions = 0;
    for (const auto& row : report) {
        sessions += row.sessions;
        // The printed line of each game shows the sessions the database holds.
        CHECK(std::regex_search(r.output, std::regex(row.title + R"(\s+)" + std::to_string(row.sessions) + " sessions")));
    }
    CHECK(sessions == 12);
    CHECK(db.read(emu::verify_slots{}).empty());
    db.close();
}

TEST_CASE("a save that throws midway is rolled back and the slot keeps its previous version whole", "[emulator]")
{
    temp_dir dir;
    auto db = emu::open_database(dir.file("emu.db"), dbactor::synchronous_mode::normal);
    const auto rom = db.write(emu::register_rom{"Test Cart", "nes", std::string(40, 'a'), 1024});
    dbactor::blob v1(10 * emu::chunk_size + 100);
    for (std::size_t i = 0; i < v1.size(); ++i)
        v1[i] = static_cast<std::byte>(i * 7);
    auto first = db.async_write(emu::save_state{rom, "p", 0, v1, 1, {}}, boost::asio::use_future);
    REQUIRE(first.get() == 1);

    struct power_cut : std::runtime_error
    {
        using std::runtime_error::runtime_error;
    };
    dbactor::blob v2(12 * emu::chunk_size, std::byte{0x5a});
    emu::save_state failing{rom, "p", 0, v2, 2, [](std::size_t written, std::size_t) {
                                if (written == 5)
                                    throw power_cut("the save failed after 5 of 12 chunks");
                            }};
    auto second = db.async_write(failing, boost::asio::use_future);
    CHECK_THROWS_AS(second.get(), power_cut);

    const auto loaded = db.read(emu::load_state{rom, "p", 0});
    REQUIRE(loaded.has_value());
    CHECK(loaded->version == 1);
    CHECK(loaded->state == v1);
    CHECK(db.read(emu::verify_slots{}).empty());
    // The actor keeps serving: the next save succeeds as version 2.
    CHECK(db.write(emu::save_state{rom, "p", 0, v2, 3, {}}) == 2);
    CHECK(db.read(emu::load_state{rom, "p", 0})->state == v2);
    db.close();
}

TEST_CASE("a process killed in the middle of a save leaves the previous version of the slot whole", "[emulator]")
{
    temp_dir dir;
    const auto db_path = dir.file("emu.db");
    // The 5th save raises SIGKILL from inside the write request, after half its chunks are written.
    const auto r = run({DBACTOR_EMULATOR_EXE, "--db", db_path, "--sessions", "3", "--crash-in-save", "5"});
    INFO(r.output);
    REQUIRE(WIFSIGNALED(r.status));
    REQUIRE(WTERMSIG(r.status) == SIGKILL);
    std::smatch m;
    REQUIRE(std::regex_search(
        r.output, m, std::regex(R"(rom (\d+) player (\S+) slot (\d+) committed version (\d+))")));
    const std::int64_t rom = std::stoll(m[1]);
    const std::string player = m[2];
    const int slot = std::stoi(m[3]);
    const std::int64_t committed = std::stoll(m[4]);
    REQUIRE(committed >= 1);

    {
        auto db = emu::open_database(db_path); // boot runs quick_check: the file is intact
        CHECK(db.boot_report().integrity == "ok");
        const auto loaded = db.read(emu::load_state{rom, player, slot}); // throws if the chunks do not match
        REQUIRE(loaded.has_value());
        CHECK(loaded->version == committed);
        CHECK(db.read(emu::verify_slots{}).empty());
        db.close();
    }

    // The service starts again on the same file, closes the session the crash left open, and checks out.
    const auto again = run({DBACTOR_EMULATOR_EXE, "--db", db_path, "--players", "2", "--sessions", "2", "--self-check"});
    INFO(again.output);
    REQUIRE(again.exited_ok());
    CHECK(again.output.find("recovered: 1 session(s) left open by a crash") != std::string::npos);
    CHECK(again.output.find("self-check: ok") != std::string::npos);
}
