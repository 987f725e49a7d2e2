// The reliability suite's helpers (figures, spawned processes, raw checks); Catch2's main is tests/main.cpp.
#include "common.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>
#include <stdexcept>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace rel {

double scale()
{
    static const double s = [] {
        double v = DBACTOR_RELIABILITY_DEFAULT_SCALE;
        if (const char* e = std::getenv("DBACTOR_RELIABILITY_SCALE"); e && *e)
            v *= std::strtod(e, nullptr);
        return v > 0 ? v : 1.0;
    }();
    return s;
}

int scaled(int n, int min)
{
    return std::max(min, static_cast<int>(n * scale() + 0.5));
}

figure num(std::string key, double v)
{
    return {std::move(key), fmt::format("{:.4g}", v)};
}
figure num(std::string key, std::int64_t v)
{
    return {std::move(key), std::to_string(v)};
}
figure str(std::string key, std::string v)
{
    std::string q = "\"";
    for (char c : v) {
        if (c == '"' || c == '\\')
            q += '\\';
        if (static_cast<unsigned char>(c) < 0x20)
            c = ' ';
        q += c;
    }
    return {std::move(key), q + "\""};
}
figure flag(std::string key, bool v)
{
    return {std::move(key), v ? "true" : "false"};
}

void report(const std::string& test, const std::vector<figure>& figures)
{
    static std::mutex m;
    std::lock_guard lock(m);
    std::string line = "RELIABILITY " + test;
    std::string json = "{\"test\":" + str("", test).value;
    for (const auto& f : figures) {
        line += " " + f.key + "=" + f.value;
        json += ",\"" + f.key + "\":" + f.value;
    }
    json += fmt::format(",\"scale\":{},\"seed\":{}}}", scale(), seed());
    std::printf("%s\n", line.c_str());
    std::fflush(stdout);
    const char* path = std::getenv("DBACTOR_RELIABILITY_JSON");
    std::ofstream out(path && *path ? path : DBACTOR_RELIABILITY_JSON, std::ios::app);
    out << json << '\n';
}

std::uint64_t seed()
{
    static const std::uint64_t s = [] {
        if (const char* e = std::getenv("DBACTOR_RELIABILITY_SEED"); e && *e)
            return static_cast<std::uint64_t>(std::strtoull(e, nullptr, 10));
        return static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
    }();
    return s;
}

std::mt19937_64& rng()
{
    static std::mt19937_64 r(seed());
    return r;
}

child::child(const std::string& program, const std::vector<std::string>& args, bool pipe_stdin)
{
    int out[2], in[2] = {-1, -1};
    if (pipe2(out, O_CLOEXEC) != 0 || (pipe_stdin && pipe2(in, O_CLOEXEC) != 0))
        throw std::runtime_error("pipe2 failed");
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    if (pipe_stdin)
        posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(program.c_str()));
    for (const auto& a : args)
        argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    const int rc = posix_spawn(&pid_, program.c_str(), &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    ::close(out[1]);
    if (pipe_stdin)
        ::close(in[0]);
    if (rc != 0)
        throw std::runtime_error(fmt::format("posix_spawn {} failed: {}", program, std::strerror(rc)));
    out_ = out[0];
    in_ = in[1];
}

child::~child()
{
    if (!reaped_ && pid_ > 0) {
        ::kill(pid_, SIGKILL);
        int st;
        waitpid(pid_, &st, 0);
    }
    if (out_ >= 0)
        ::close(out_);
    if (in_ >= 0)
        ::close(in_);
}

std::optional<std::string> child::read_line(std::chrono::milliseconds limit)
{
    timed_out_ = false;
    const auto until = std::chrono::steady_clock::now() + limit;
    for (;;) {
        if (auto nl = buf_.find('\n'); nl != std::string::npos) {
            std::string line = buf_.substr(0, nl);
            buf_.erase(0, nl + 1);
            return line;
        }
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
        if (left.count() < 0) {
            timed_out_ = true;
            return std::nullopt;
        }
        pollfd p{out_, POLLIN, 0};
        const int n = poll(&p, 1, static_cast<int>(left.count()) + 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0)
            continue;
        char chunk[4096];
        const ssize_t got = ::read(out_, chunk, sizeof chunk);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return std::nullopt; // EOF: a partial last line is dropped (never acknowledged)
        buf_.append(chunk, static_cast<std::size_t>(got));
    }
}

std::vector<std::string> child::drain(std::chrono::milliseconds limit)
{
    std::vector<std::string> lines;
    const auto until = std::chrono::steady_clock::now() + limit;
    while (auto l = read_line(std::chrono::duration_cast<std::chrono::milliseconds>(std::max(
               std::chrono::steady_clock::duration::zero(), until - std::chrono::steady_clock::now()))))
        lines.push_back(std::move(*l));
    return lines;
}

void child::send(const std::string& line)
{
    const std::string s = line + "\n";
    if (::write(in_, s.data(), s.size()) != static_cast<ssize_t>(s.size()))
        throw std::runtime_error("write to child stdin failed");
}

void child::close_stdin()
{
    if (in_ >= 0)
        ::close(in_);
    in_ = -1;
}

void child::kill(int sig)
{
    if (!reaped_)
        ::kill(pid_, sig);
}

std::optional<int> child::wait(std::chrono::milliseconds limit)
{
    if (reaped_)
        return 0;
    const auto until = std::chrono::steady_clock::now() + limit;
    for (;;) {
        int st = 0;
        const pid_t r = waitpid(pid_, &st, WNOHANG);
        if (r == pid_) {
            reaped_ = true;
            return st;
        }
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
        if (left.count() <= 0)
            return std::nullopt;
        // A pidfd becomes readable when the child exits.
        const int fd = static_cast<int>(syscall(SYS_pidfd_open, pid_, 0));
        if (fd < 0)
            return std::nullopt;
        pollfd p{fd, POLLIN, 0};
        poll(&p, 1, static_cast<int>(left.count()) + 1);
        ::close(fd);
    }
}

raw_db::raw_db(const std::string& path, int flags, const char* vfs)
{
    if (sqlite3_open_v2(path.c_str(), &db_, flags, vfs) != SQLITE_OK) {
        std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
        sqlite3_close(db_);
        db_ = nullptr;
        throw std::runtime_error("open " + path + ": " + msg);
    }
    sqlite3_busy_timeout(db_, 5000);
}

raw_db::~raw_db()
{
    sqlite3_close_v2(db_);
}

std::vector<std::string> raw_db::column(const std::string& sql)
{
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &s, nullptr) != SQLITE_OK)
        throw std::runtime_error(sql + ": " + sqlite3_errmsg(db_));
    std::vector<std::string> out;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const auto* t = sqlite3_column_text(s, 0);
        out.emplace_back(t ? reinterpret_cast<const char*>(t) : "NULL");
    }
    sqlite3_finalize(s);
    if (rc != SQLITE_DONE)
        throw std::runtime_error(sql + ": " + sqlite3_errmsg(db_));
    return out;
}

std::int64_t raw_db::scalar(const std::string& sql)
{
    auto c = column(sql);
    return c.empty() ? 0 : std::strtoll(c.front().c_str(), nullptr, 10);
}

int raw_db::exec(const std::string& sql)
{
    return sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, nullptr);
}

std::string integrity(const std::string& path, const char* vfs)
{
    raw_db db(path, SQLITE_OPEN_READWRITE, vfs);
    std::string all;
    for (const auto& r : db.column("PRAGMA integrity_check"))
        all += (all.empty() ? "" : "; ") + r;
    return all;
}

std::string slurp(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

void spit(const std::string& path, const std::string& bytes)
{
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

bool exists(const std::string& path)
{
    return ::access(path.c_str(), F_OK) == 0;
}

std::pair<std::int64_t, std::int64_t> memory_kib()
{
    std::ifstream in("/proc/self/status");
    std::string line;
    std::int64_t hwm = 0, rss = 0;
    while (std::getline(in, line)) {
        if (line.rfind("VmHWM:", 0) == 0)
            hwm = std::strtoll(line.c_str() + 6, nullptr, 10);
        else if (line.rfind("VmRSS:", 0) == 0)
            rss = std::strtoll(line.c_str() + 6, nullptr, 10);
    }
    return {hwm, rss};
}

} // namespace rel
