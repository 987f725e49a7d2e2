// The examples as tests: dbactor-bot and dbactor-emulator run as child processes (posix_spawn; never fork a
// threaded process), their output parsed and their databases opened and checked.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>

#include "bot_core.hpp"
#include "emulator_core.hpp"

#include <dbactor/dbactor.hpp>

#include <boost/asio/use_future.hpp>

#include <SQLiteCpp/Database.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <random>
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
        return read_until([&](const std::string& out) { return out.find(needle) != std::string::npos; },
                          limit);
    }
    /// Reads output until `done(output so far)`; false if the child ends or `limit` passes first.
    bool read_until(const std::function<bool(const std::string&)>& done, std::chrono::seconds limit = 15s)
    {
        const auto deadline = steady::now() + limit;
        while (!done(output_)) {
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
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now()).count();
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
    std::vector<std::string> a = {DBACTOR_BOT_EXE,
                                  "--db",
                                  db,
                                  "--guilds",
                                  "200",
                                  "--events-per-sec",
                                  "2000",
                                  "--synchronous-normal",
                                  "--self-check"};
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

/// The largest N of the `[info] progress: N events handled` lines in `out` (0 before the first one).
std::int64_t progress_handled(const std::string& out)
{
    static const std::regex line(R"(progress: (\d+) events handled)");
    std::int64_t last = 0;
    for (std::sregex_iterator it(out.begin(), out.end(), line), end; it != end; ++it)
        last = std::max<std::int64_t>(last, std::stoll((*it)[1].str()));
    return last;
}

/// Checks a bot's summary against its database: handled = emitted with none failed, members = joins,
/// messages and XP as counted, and the self-check's verdict.
void check_summary_matches_database(const std::string& out, const std::string& db_path)
{
    INFO(out);
    const auto emitted =
        numbers(out, R"(gateway: emitted (\d+) events \(messages (\d+), commands (\d+), joins (\d+)\))");
    const auto handled = numbers(out, R"(handled: (\d+) events \((\d+) failed\))");
    const auto xp = numbers(out, R"(outcomes: xp \+(\d+), warnings (\d+))");
    CHECK(handled[0] == emitted[0]); // nothing in flight was dropped
    CHECK(handled[1] == 0);
    CHECK(out.find("self-check: ok") != std::string::npos);
    auto db = open_bot_db(db_path);
    const auto [members, messages, total_xp, warnings] =
        db.read([](dbactor::connection& c) {
              return c.query_one<std::tuple<std::int64_t, std::int64_t, std::int64_t, std::int64_t>>(
                  "SELECT (SELECT count(*) FROM members), (SELECT coalesce(sum(messages), 0) FROM members), "
                  "(SELECT coalesce(sum(xp), 0) FROM members), (SELECT count(*) FROM warnings)");
          }).value();
    db.close();
    CHECK(members == emitted[3]);
    CHECK(messages == emitted[1]);
    CHECK(total_xp == xp[0]);
    CHECK(warnings == xp[1]);
}

/// Runs the bot until it has handled at least `events`, sends `sig`, and checks the graceful stop.
void check_graceful_stop_on(int sig, const std::string& name, std::int64_t events)
{
    temp_dir dir;
    const auto db_path = dir.file("bot.db");
    // 10,000 events/s arrive as bursts of 100 every 10 ms: whenever the signal comes, handlers are in flight.
    child bot(bot_args(db_path, {"--duration", "0", "--events-per-sec", "10000", "--progress-every", "0.1"}));
    INFO("waiting for " << events << " handled events before " << name);
    // 10 s + 15 s: one budget under ctest's 30 s, so that a hang fails here, with the output.
    const bool busy =
        bot.read_until([&](const std::string& out) { return progress_handled(out) >= events; }, 10s);
    INFO(bot.output());
    REQUIRE(busy); // the bot handled that many events within 10 s
    bot.signal(sig);
    const int status = bot.finish(15s);
    INFO(bot.output());
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    CHECK(bot.output().find("stopped: " + name + " after") != std::string::npos);
    CHECK(bot.output().find("in-flight handlers drained in") != std::string::npos);
    CHECK(bot.output().find("handlers drained, database closed") != std::string::npos);
    CHECK(numbers(bot.output(), R"(handled: (\d+) events)")[0] >= events);
    check_summary_matches_database(bot.output(), db_path);
}

/// What the -wal holds. Frames of its current generation carry the header's salts; recovery reads them in
/// order while their cumulative checksums hold and keeps those up to the last commit frame. A transaction
/// that spills pages before its COMMIT appends frames after that commit frame. Once it has rewritten one of
/// its own frames in place (a page spilled twice), SQLite writes the following frames with zero salts and
/// checksums and fixes them up at COMMIT (wal.c, iReCksum): they are counted too.
struct wal_contents
{
    std::uint32_t page_size = 0;
    std::size_t frames = 0;           ///< frames of the current generation, committed or not
    std::size_t committed_frames = 0; ///< the frames recovery keeps: up to the last valid commit frame
};

wal_contents scan_wal(const std::string& path)
{
    std::ifstream f(path, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    auto be32 = [&](std::size_t at) {
        std::uint32_t v = 0;
        for (std::size_t i = 0; i < 4; ++i)
            v = v << 8 | static_cast<unsigned char>(bytes[at + i]);
        return v;
    };
    wal_contents w;
    if (bytes.size() < 32)
        return w;
    const std::uint32_t magic = be32(0);
    REQUIRE((magic & 0xfffffffe) == 0x377f0682);
    const bool big_endian_words = magic & 1;
    auto checksum = [&](std::size_t at, std::size_t n, std::uint32_t& s1, std::uint32_t& s2) {
        for (std::size_t i = at; i < at + n; i += 8) {
            std::uint32_t x0, x1;
            if (big_endian_words) {
                x0 = be32(i);
                x1 = be32(i + 4);
            }
            else {
                std::memcpy(&x0, bytes.data() + i, 4); // little-endian host (x86-64, aarch64)
                std::memcpy(&x1, bytes.data() + i + 4, 4);
            }
            s1 += x0 + s2;
            s2 += x1 + s1;
        }
    };
    w.page_size = be32(8);
    std::uint32_t s1 = 0, s2 = 0;
    checksum(0, 24, s1, s2);
    REQUIRE(s1 == be32(24));
    REQUIRE(s2 == be32(28));
    const std::uint32_t salt1 = be32(16), salt2 = be32(20);
    bool chained = true;
    for (std::size_t at = 32; at + 24 + w.page_size <= bytes.size(); at += 24 + w.page_size) {
        const bool current = be32(at + 8) == salt1 && be32(at + 12) == salt2;
        const bool awaiting_checksum = be32(at) != 0 && be32(at + 8) == 0 && be32(at + 12) == 0 &&
                                       be32(at + 16) == 0 && be32(at + 20) == 0;
        if (!current && !awaiting_checksum)
            break; // a frame of an older generation: SQLite is writing the -wal again from its start
        ++w.frames;
        if (!chained)
            continue;
        checksum(at, 8, s1, s2);
        checksum(at + 24, w.page_size, s1, s2);
        chained = current && s1 == be32(at + 16) && s2 == be32(at + 20);
        if (chained && be32(at + 4) != 0) // a commit frame: the database size in pages after the commit
            w.committed_frames = w.frames;
    }
    return w;
}

} // namespace

TEST_CASE("snowflakes carry their millisecond and increase strictly, even past 4096 in one millisecond",
          "[bot]")
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

TEST_CASE("the sliding-window limiter allows max requests per window and cleanup drops only empty buckets",
          "[bot]")
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
    const auto emitted =
        numbers(r.output, R"(gateway: emitted (\d+) events \(messages (\d+), commands (\d+), joins (\d+)\))");
    const auto handled = numbers(r.output, R"(handled: (\d+) events \((\d+) failed\), (\d+) events/s)");
    CHECK(emitted[0] >= 1000);
    CHECK(emitted[0] == emitted[1] + emitted[2] + emitted[3]);
    CHECK(handled[0] == emitted[0]);
    CHECK(handled[1] == 0);
    CHECK(numbers(r.output, R"(loop tempban-sweep: (\d+) iterations, (\d+) failed)")[1] == 0);
    CHECK(numbers(r.output, R"(database write: (\d+) requests)")[0] >= emitted[1]);
    CHECK(std::regex_search(r.output, std::regex(R"(handler latency p50 [0-9.]+ ms p99 [0-9.]+ ms)")));
    CHECK(std::regex_search(r.output,
                            std::regex(R"(queue wait p50 [0-9.]+ ms p99 [0-9.]+ ms; execution p50)")));
    CHECK(r.output.find("self-check: ok") != std::string::npos);

    {
        auto db = open_bot_db(db_path);
        const auto [guilds, members, messages, version] =
            db.read([](dbactor::connection& c) {
                  return c.query_one<std::tuple<std::int64_t, std::int64_t, std::int64_t, std::int64_t>>(
                      "SELECT (SELECT count(*) FROM guild_settings), (SELECT count(*) FROM members), "
                      "(SELECT coalesce(sum(messages), 0) FROM members), (SELECT user_version FROM "
                      "pragma_user_version)");
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

TEST_CASE("the latency histogram gives percentiles within 1/32 of the exact ones in a fixed size", "[bot]")
{
    bot::latency_histogram h;
    CHECK(h.percentile(0.5) == 0);
    std::mt19937_64 rng(1);
    std::lognormal_distribution<double> dist(7.0, 1.5); // microseconds: a median near 1 ms, a long tail
    std::vector<std::uint32_t> exact;
    for (int i = 0; i < 200000; ++i) {
        const auto v = static_cast<std::uint32_t>(std::min(dist(rng), 4e9));
        exact.push_back(v);
        h.record(v);
    }
    std::sort(exact.begin(), exact.end());
    for (double q : {0.0, 0.5, 0.9, 0.99, 0.999, 1.0}) {
        const double want = exact[std::min(exact.size() - 1, static_cast<std::size_t>(q * exact.size()))];
        INFO("quantile " << q);
        CHECK(std::abs(static_cast<double>(h.percentile(q)) - want) <= want / 32 + 1);
    }
    CHECK(h.count() == exact.size());
    CHECK(h.max() == exact.back());
    for (std::uint32_t v : {0u, 1u, 15u}) // exact below 16 us
        CHECK(bot::latency_histogram::middle_of(bot::latency_histogram::index_of(v)) == v);
    CHECK(bot::latency_histogram::index_of(UINT32_MAX) == bot::latency_histogram::bucket_count - 1);
    // Merging the shards' histograms is the same as one histogram of all samples.
    bot::latency_histogram a, b;
    for (std::size_t i = 0; i < exact.size(); ++i)
        (i % 2 ? a : b).record(exact[i]);
    a.merge(b);
    CHECK(a.count() == h.count());
    CHECK(a.percentile(0.99) == h.percentile(0.99));
    static_assert(sizeof(bot::latency_histogram) < 4096, "a histogram per shard, not a vector per sample");
}

TEST_CASE("a guild's roster stays at its cap however many join, and keeps its busy members", "[bot]")
{
    bot::member_roster roster(64);
    std::mt19937_64 rng(3);
    for (std::uint64_t id = 1; id <= 100000; ++id)
        roster.add(id, rng());
    CHECK(roster.size() == 64);
    // The first half (where pick() draws most authors) is the first members to join; new ones replace quiet
    // ones.
    for (std::uint64_t i = 0; i < 32; ++i)
        CHECK(roster.ids()[i] == i + 1);
    CHECK(std::count_if(roster.ids().begin() + 32, roster.ids().end(), [](auto id) { return id > 99000; }) >
          0);
    CHECK(roster.pick(0.0) == 1);
    CHECK(roster.pick(0.999) == roster.ids().back());
}

TEST_CASE("an option given twice takes its last value, so ./run.sh --duration N overrides run.sh's own",
          "[bot]")
{
    temp_dir dir;
    const auto r = run(bot_args(dir.file("bot.db"), {"--duration", "30", "--duration", "0.5"}));
    INFO(r.output);
    REQUIRE(r.exited_ok());
    CHECK(r.output.find("stopped: duration elapsed after 0.5") != std::string::npos);
}

TEST_CASE(
    "SIGTERM while handlers are in flight stops the bot gracefully: exit 0, the summary matches the database",
    "[bot]")
{
    check_graceful_stop_on(SIGTERM, "SIGTERM", 2000);
}

TEST_CASE(
    "SIGINT while handlers are in flight stops the bot gracefully: exit 0, the summary matches the database",
    "[bot]")
{
    check_graceful_stop_on(SIGINT, "SIGINT", 2000);
}

TEST_CASE("a signal that arrives while the database boots does not kill the bot: it starts, stops, exits 0",
          "[bot]")
{
    temp_dir dir;
    const auto db_path = dir.file("bot.db");
    // Another connection holds the write lock, so the bot's boot waits at PRAGMA journal_mode=WAL (up to its
    // busy_timeout of 5 s) for as long as this test keeps it.
    SQLite::Database holder(db_path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    holder.exec("CREATE TABLE lock_holder (x)");
    holder.exec("BEGIN IMMEDIATE; INSERT INTO lock_holder VALUES (1)");
    child bot(bot_args(db_path, {"--duration", "0"}));
    REQUIRE(bot.read_until("[info] opening " + db_path));
    bot.signal(SIGINT); // database::open has not returned: it cannot without the lock
    {
        INFO(bot.output());
        // Still booting (no boot line yet), and still alive: the signal waits for the service's signal_set.
        CHECK(bot.output().find("dbactor-bot: database") == std::string::npos);
    }
    holder.exec("ROLLBACK");
    const int status = bot.finish();
    INFO(bot.output());
    REQUIRE(WIFEXITED(status)); // not killed by the signal
    CHECK(WEXITSTATUS(status) == 0);
    CHECK(bot.output().find("3 migration(s) applied now") != std::string::npos);
    CHECK(bot.output().find("stopped: SIGINT after") != std::string::npos);
    CHECK(bot.output().find("self-check: ok") != std::string::npos);
}

TEST_CASE("a rate-limited command costs no database request: the limiter is checked before the settings read",
          "[bot]")
{
    // One guild: its busiest members send enough commands to hit their limiters.
    temp_dir dir;
    const auto r = run(bot_args(dir.file("bot.db"), {"--duration", "2", "--guilds", "1"}));
    INFO(r.output);
    REQUIRE(r.exited_ok());
    const auto commands = numbers(r.output, R"(commands (\d+), joins)")[0];
    const auto ranks = numbers(r.output, R"(ranks (\d+))")[0];
    const auto limited = numbers(r.output, R"(rate limited (\d+))")[0];
    const auto reads = numbers(r.output, R"(database read : (\d+) requests)")[0];
    REQUIRE(limited > 0);
    // Reads: the totals before the run, one settings read per command let through, one per /rank.
    CHECK(reads == 1 + (commands - limited) + ranks);
}

TEST_CASE(
    "a value not derived from std::exception thrown in a loop iteration is logged with the loop's name and "
    "the loop goes on",
    "[bot]")
{
    temp_dir dir;
    const auto r = run(
        bot_args(dir.file("bot.db"),
                 {"--duration", "2", "--events-per-sec", "100", "--fault-every", "2", "--fault-non-std"}));
    INFO(r.output);
    REQUIRE(r.exited_ok()); // it did not escape io_context::run (that would terminate the process)
    CHECK(std::regex_search(
        r.output,
        std::regex(R"(\[error\] loop tempban-sweep: iteration 2 failed: an exception of type )"
                   R"(bot::injected_fault, not derived from std::exception)")));
    const auto sweep = numbers(r.output, R"(loop tempban-sweep: (\d+) iterations, (\d+) failed)");
    CHECK(sweep[0] >= 3); // an iteration after the failed second one
    CHECK(sweep[1] == sweep[0] / 2);
    CHECK(r.output.find("exited") == std::string::npos);
    CHECK(r.output.find("self-check: ok") != std::string::npos);
}

TEST_CASE(
    "an exception in one iteration of a background loop is logged with the loop's name and the loop goes on",
    "[bot]")
{
    temp_dir dir;
    // A light event rate: the sweep's own requests must not wait behind a saturated queue (a loaded CI
    // machine under TSan), or fewer iterations fit in the run.
    const auto r = run(
        bot_args(dir.file("bot.db"), {"--duration", "2", "--events-per-sec", "100", "--fault-every", "2"}));
    INFO(r.output);
    REQUIRE(r.exited_ok());
    CHECK(r.output.find("loop tempban-sweep: iteration 2 failed: injected fault") != std::string::npos);
    const auto sweep = numbers(r.output, R"(loop tempban-sweep: (\d+) iterations, (\d+) failed)");
    CHECK(sweep[0] >= 3);            // it kept going after the first failure (iteration 2)
    CHECK(sweep[1] == sweep[0] / 2); // every second iteration failed, the others ran
    CHECK(numbers(r.output, R"(loop ratelimit-cleanup: (\d+) iterations, (\d+) failed)")[1] == 0);
    CHECK(r.output.find("exited while the bot is running") == std::string::npos);
    CHECK(r.output.find("self-check: ok") != std::string::npos); // failed sweeps were rolled back
}

TEST_CASE("the emulator's short run reports play time per game as its database records it", "[emulator]")
{
    temp_dir dir;
    const auto db_path = dir.file("emu.db");
    const auto r = run({DBACTOR_EMULATOR_EXE,
                        "--db",
                        db_path,
                        "--players",
                        "3",
                        "--sessions",
                        "4",
                        "--synchronous-normal",
                        "--self-check"});
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
        CHECK(std::regex_search(
            r.output, std::regex(row.title + R"(\s+)" + std::to_string(row.sessions) + " sessions")));
    }
    CHECK(sessions == 12);
    CHECK(db.read(emu::verify_slots{}).empty());
    // The catalog's sha1 column holds the SHA-1 of each ROM's stand-in image.
    for (const auto& [title, system, size, sha1] : db.read([](dbactor::connection& c) {
             return c.query<std::tuple<std::string, std::string, std::int64_t, std::string>>(
                 "SELECT title, system, size_bytes, sha1 FROM roms");
         })) {
        INFO(title);
        CHECK(sha1 == emu::rom_sha1(title, system, size));
    }
    db.close();
}

TEST_CASE("the ROM catalog's sha1 is a real SHA-1", "[emulator]")
{
    const std::string abc = "abc";
    CHECK(emu::sha1_hex(std::as_bytes(std::span(abc.data(), abc.size()))) ==
          "a9993e364706816aba3e25717850c26c9cd0d89d"); // FIPS 180-2, appendix A
    CHECK(emu::sha1_hex({}) == "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    const std::string image = "Star Courier\nsnes\n1048576\n";
    CHECK(emu::rom_sha1("Star Courier", "snes", 1048576) ==
          emu::sha1_hex(std::as_bytes(std::span(image.data(), image.size()))));
}

TEST_CASE("a save that throws midway is rolled back and the slot keeps its previous version whole",
          "[emulator]")
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

TEST_CASE("a process killed in the middle of a save leaves the previous version of the slot whole",
          "[emulator]")
{
    temp_dir dir;
    const auto db_path = dir.file("emu.db");
    // One session saving slots 0, 1, 2, 0, 1, 2: the 5th save (slot 1's second version) raises SIGKILL from
    // inside the write request, after half its chunks are written. States are 1 MiB (256 chunks) and, in
    // this mode, the page cache 16 pages: the half-written save cannot stay in memory, its pages spill into
    // the -wal before the kill.
    const auto r = run({DBACTOR_EMULATOR_EXE,
                        "--db",
                        db_path,
                        "--sessions",
                        "1",
                        "--saves-per-session",
                        "6",
                        "--state-kib",
                        "1024",
                        "--crash-in-save",
                        "5"});
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
    REQUIRE(slot == 1);
    REQUIRE(committed == 1);
    CHECK(r.output.find("crash-test: SIGKILL after 128 of 256 chunks") != std::string::npos);

    // Before anything opens the file again: the -wal grew past its last commit frame with frames of the
    // half-written save (the current generation's salts, no commit frame after them), which recovery must
    // ignore. The file's size alone would not show it: after a checkpoint SQLite writes the -wal again from
    // its start.
    const auto wal = scan_wal(db_path + "-wal");
    INFO("-wal: " << wal.frames << " frames, " << wal.committed_frames << " up to the last commit, page "
                  << wal.page_size);
    CHECK(wal.frames >= wal.committed_frames + 64); // 128 chunks of 4 KiB: well over 64 pages spilled

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
    const auto again =
        run({DBACTOR_EMULATOR_EXE, "--db", db_path, "--players", "2", "--sessions", "2", "--self-check"});
    INFO(again.output);
    REQUIRE(again.exited_ok());
    CHECK(again.output.find("recovered: 1 session(s) left open by a crash") != std::string::npos);
    CHECK(again.output.find("self-check: ok") != std::string::npos);
}
