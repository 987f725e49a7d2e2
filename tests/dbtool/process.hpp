// A child process for tests (posix_spawn, never fork of a threaded process) with pipes on stdin/out/err.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

extern char** environ;

namespace test {

class process
{
public:
    explicit process(std::vector<std::string> args)
    {
        int in[2], out[2], err[2];
        if (::pipe2(in, O_CLOEXEC) || ::pipe2(out, O_CLOEXEC) || ::pipe2(err, O_CLOEXEC))
            throw std::runtime_error("pipe failed");
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, in[0], 0);
        posix_spawn_file_actions_adddup2(&fa, out[1], 1);
        posix_spawn_file_actions_adddup2(&fa, err[1], 2);
        std::vector<char*> argv;
        for (auto& a : args)
            argv.push_back(a.data());
        argv.push_back(nullptr);
        const int rc = ::posix_spawn(&pid_, argv[0], &fa, nullptr, argv.data(), environ);
        posix_spawn_file_actions_destroy(&fa);
        ::close(in[0]);
        ::close(out[1]);
        ::close(err[1]);
        in_ = in[1];
        out_ = out[0];
        err_ = err[0];
        if (rc != 0)
            throw std::runtime_error("posix_spawn failed for " + args[0]);
    }
    process(const process&) = delete;
    process& operator=(const process&) = delete;
    ~process()
    {
        close_stdin();
        if (pid_ > 0 && !reaped_) {
            ::kill(pid_, SIGKILL);
            int st;
            ::waitpid(pid_, &st, 0);
        }
        ::close(out_);
        ::close(err_);
    }

    pid_t pid() const { return pid_; }

    void write_line(const std::string& line)
    {
        const std::string s = line + "\n";
        if (::write(in_, s.data(), s.size()) != static_cast<ssize_t>(s.size()))
            throw std::runtime_error("write to child failed");
    }

    void close_stdin()
    {
        if (in_ >= 0)
            ::close(in_);
        in_ = -1;
    }

    /// The next line of stdout, or "" when the child closed it or `limit` passed.
    std::string read_line(std::chrono::milliseconds limit = std::chrono::seconds(10))
    {
        const auto until = std::chrono::steady_clock::now() + limit;
        for (;;) {
            if (const auto nl = out_buf_.find('\n'); nl != std::string::npos) {
                std::string line = out_buf_.substr(0, nl);
                out_buf_.erase(0, nl + 1);
                return line;
            }
            if (!pump(until))
                return "";
        }
    }

    /// Waits until stderr contains `text`; false when the child closed it or `limit` passed first.
    bool wait_for_stderr(const std::string& text, std::chrono::milliseconds limit = std::chrono::seconds(10))
    {
        const auto until = std::chrono::steady_clock::now() + limit;
        while (err_buf_.find(text) == std::string::npos)
            if (!pump(until))
                return false;
        return true;
    }

    /// Closes stdin, collects the rest of the output and waits for the exit; the exit code, 128 + signal when
    /// killed, or -1 when it did not finish within `limit` (then it is killed).
    int finish(std::chrono::milliseconds limit = std::chrono::seconds(20))
    {
        close_stdin();
        const auto until = std::chrono::steady_clock::now() + limit;
        while (out_ >= 0 || err_ >= 0) {
            if (!pump(until) && std::chrono::steady_clock::now() >= until) {
                ::kill(pid_, SIGKILL);
                break;
            }
        }
        int st = 0;
        ::waitpid(pid_, &st, 0);
        reaped_ = true;
        if (std::chrono::steady_clock::now() >= until)
            return -1;
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    }

    const std::string& out() const { return out_buf_; }
    const std::string& err() const { return err_buf_; }

private:
    /// Reads what is available; false when nothing more can come (both closed) or the deadline passed.
    bool pump(std::chrono::steady_clock::time_point until)
    {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
        if (left.count() <= 0 || (out_ < 0 && err_ < 0))
            return false;
        pollfd fds[2] = {{out_, POLLIN, 0}, {err_, POLLIN, 0}};
        if (::poll(fds, 2, static_cast<int>(left.count())) <= 0)
            return false;
        auto drain = [](int& fd, short revents, std::string& buf) {
            if (fd < 0 || !(revents & (POLLIN | POLLHUP | POLLERR)))
                return;
            char chunk[4096];
            const auto n = ::read(fd, chunk, sizeof chunk);
            if (n > 0)
                buf.append(chunk, static_cast<std::size_t>(n));
            else {
                ::close(fd);
                fd = -1;
            }
        };
        drain(out_, fds[0].revents, out_buf_);
        drain(err_, fds[1].revents, err_buf_);
        return true;
    }

    pid_t pid_ = -1;
    int in_ = -1, out_ = -1, err_ = -1;
    bool reaped_ = false;
    std::string out_buf_, err_buf_;
};

} // namespace test
