// dbtool's SIGINT handling and the lock waits it can interrupt.
#include "interrupt.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <unistd.h>

namespace dbtool {

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

} // namespace

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

void mark_output_started() noexcept
{
    g_output_started.store(true);
}

namespace {
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
