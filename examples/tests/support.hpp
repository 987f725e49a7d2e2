// Shared by the examples' tests: temporary directories, child processes (posix_spawn), output parsing.
#pragma once

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

namespace extest {

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

inline run_result run(std::vector<std::string> args)
{
    child c(std::move(args));
    const int status = c.finish();
    return {status, c.output()};
}

/// The integer groups of the first match of `pattern` in `text`; fails the test when there is none.
inline std::vector<std::int64_t> numbers(const std::string& text, const std::string& pattern)
{
    std::smatch m;
    INFO("looking for /" << pattern << "/ in:\n" << text);
    REQUIRE(std::regex_search(text, m, std::regex(pattern)));
    std::vector<std::int64_t> out;
    for (std::size_t i = 1; i < m.size(); ++i)
        out.push_back(std::stoll(m[i].str()));
    return out;
}

inline std::vector<std::string> bot_args(const std::string& db, std::vector<std::string> extra)
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

inline dbactor::database open_bot_db(const std::string& path)
{
    dbactor::options o;
    o.path = path;
    o.create = false;
    o.migrations = bot::schema();
    return dbactor::database::open(std::move(o));
}

/// The largest N of the `[info] progress: N events handled` lines in `out` (0 before the first one).
inline std::int64_t progress_handled(const std::string& out)
{
    static const std::regex line(R"(progress: (\d+) events handled)");
    std::int64_t last = 0;
    for (std::sregex_iterator it(out.begin(), out.end(), line), end; it != end; ++it)
        last = std::max<std::int64_t>(last, std::stoll((*it)[1].str()));
    return last;
}

/// Checks a bot's summary against its database: handled = emitted with none failed, members = joins,
/// messages and XP as counted, and the self-check's verdict.
inline void check_summary_matches_database(const std::string& out, const std::string& db_path)
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
inline void check_graceful_stop_on(int sig, const std::string& name, std::int64_t events)
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

inline wal_contents scan_wal(const std::string& path)
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

} // namespace extest
