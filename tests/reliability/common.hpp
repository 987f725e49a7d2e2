// Reliability suite helpers: figures (one line + reliability.json), scale, spawned helper processes.
#pragma once

#include "../support.hpp"
#include "schema.hpp"

#include <sqlite3.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <sys/types.h>

namespace rel {

/// Seconds since `t0`, for the figures.
inline double since(std::chrono::steady_clock::time_point t0)
{
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

/// DBACTOR_RELIABILITY_SCALE (env) times the build's default (1, or 0.25 in sanitizer builds).
double scale();
/// `n` scaled, at least `min`.
int scaled(int n, int min = 1);

/// One figure of a test's result line.
struct figure
{
    std::string key;
    std::string value; // already JSON: a number, true/false, or a quoted string
};
figure num(std::string key, double v);
figure num(std::string key, std::int64_t v);
figure str(std::string key, std::string v);
figure flag(std::string key, bool v);

/// Prints `RELIABILITY <test> k=v ...` and appends `{"test":..., k: v, ...}` to reliability.json
/// (DBACTOR_RELIABILITY_JSON env, else the build tree's).
void report(const std::string& test, const std::vector<figure>& figures);

/// A child process started with posix_spawn; its stdout and stdin may be pipes. Killed (SIGKILL) and
/// reaped on destruction if still running.
class child
{
public:
    child(const std::string& program, const std::vector<std::string>& args, bool pipe_stdin = false);
    child(const child&) = delete;
    child& operator=(const child&) = delete;
    ~child();

    pid_t pid() const noexcept { return pid_; }
    /// The next line of stdout (without '\n') within `limit`; nullopt on EOF or timeout (timed_out() says).
    std::optional<std::string> read_line(std::chrono::milliseconds limit);
    bool timed_out() const noexcept { return timed_out_; }
    /// Every complete line until EOF (the child died or closed stdout), within `limit`.
    std::vector<std::string> drain(std::chrono::milliseconds limit);
    /// Writes a line to the child's stdin.
    void send(const std::string& line);
    void close_stdin();
    void kill(int sig);
    /// Waits for exit for at most `limit`; the raw wait status, or nullopt on timeout.
    std::optional<int> wait(std::chrono::milliseconds limit);

private:
    pid_t pid_ = -1;
    int out_ = -1, in_ = -1;
    bool reaped_ = false, timed_out_ = false;
    std::string buf_;
};

/// A raw SQLite connection for checks made beside the actor (default VFS unless given).
class raw_db
{
public:
    explicit raw_db(const std::string& path, int flags = SQLITE_OPEN_READWRITE, const char* vfs = nullptr);
    raw_db(const raw_db&) = delete;
    raw_db& operator=(const raw_db&) = delete;
    ~raw_db();
    sqlite3* get() const noexcept { return db_; }
    /// The first column of each row as text.
    std::vector<std::string> column(const std::string& sql);
    std::int64_t scalar(const std::string& sql);
    int exec(const std::string& sql);

private:
    sqlite3* db_ = nullptr;
};

/// `PRAGMA integrity_check` joined into one string ("ok" when healthy).
std::string integrity(const std::string& path, const char* vfs = nullptr);

/// Reads a whole file (empty when missing).
std::string slurp(const std::string& path);
void spit(const std::string& path, const std::string& bytes);
bool exists(const std::string& path);

/// Peak and current resident memory of this process, in KiB (VmHWM, VmRSS).
std::pair<std::int64_t, std::int64_t> memory_kib();

/// A random engine seeded from DBACTOR_RELIABILITY_SEED or the clock; the seed is reported.
std::mt19937_64& rng();
std::uint64_t seed();

} // namespace rel
