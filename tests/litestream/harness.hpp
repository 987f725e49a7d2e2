// The litestream tests' harness: Litestream and the writer as child processes, the machine's loss, the
// restore and the check of the restored file through dbactor's boot gate.
#pragma once

#include "../support.hpp"
#include "groups.hpp"

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <sys/types.h>

namespace lstest {

using steady = std::chrono::steady_clock;

/// The Litestream binary the build was configured with (DBACTOR_LITESTREAM); fails the test, saying how to
/// get it, when it is not there or not Litestream 0.3.x.
std::string litestream();

/// A child process with stdout and stderr appended to a log file, stdin /dev/null. Killed (SIGKILL) and
/// reaped on destruction if still running.
class process
{
public:
    process(std::vector<std::string> argv, std::string log_path);
    process(const process&) = delete;
    process& operator=(const process&) = delete;
    ~process();
    bool running();
    void kill();
    /// The exit code (128 + signal when killed), or nullopt when it did not end within `limit`.
    std::optional<int> wait(std::chrono::milliseconds limit);
    std::string log() const;
    const std::string& log_path() const { return log_; }

private:
    pid_t pid_ = -1;
    bool reaped_ = false;
    int status_ = 0;
    std::string log_;
};

/// Runs a program to its end (at most `limit`); its exit code and its output.
struct run_result
{
    int code = -1;
    std::string output;
    double seconds = 0;
};
run_result run(std::vector<std::string> argv, const std::string& log_path, std::chrono::seconds limit);

/// Polls `cond` every 20 ms until it holds or `limit` passed; false on timeout.
template <class Cond>
bool poll_until(Cond cond, std::chrono::milliseconds limit)
{
    const auto until = steady::now() + limit;
    while (!cond()) {
        if (steady::now() > until)
            return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return true;
}

/// One acknowledged group: the writer's record of the reply after COMMIT.
struct ack
{
    std::int64_t group;
    steady::time_point at;
};

/// What the restored file holds, and how it compares with the acknowledgements.
struct verdict
{
    std::string integrity;
    std::string checkpoints;
    std::int64_t acked = 0;       ///< groups acknowledged before the loss
    std::int64_t present = 0;     ///< groups in the restored file
    std::int64_t incomplete = 0;  ///< present groups missing rows (must be 0)
    std::int64_t lost_old = 0;    ///< acknowledged more than 1.5 s before the loss, not restored (must be 0)
    std::int64_t lost_recent = 0; ///< acknowledged within 1.5 s of the loss, not restored (allowed)
    std::int64_t unacked_present = 0; ///< restored but never acknowledged (the one in flight: at most 1)
    double lost_tail_ms = 0;     ///< loss minus the ack time of the oldest acknowledged group not restored
    std::int64_t old_window = 0; ///< groups acknowledged more than 1.5 s before the loss
};

struct writer_setup
{
    bool bot_schema = false;
    bool external = true;
    int pace_us = 2000;
    int burst_ms = 0, pause_ms = 0;
};

/// A primary file written by the writer and replicated by Litestream to a file replica, in a temp dir.
class scenario
{
public:
    explicit scenario(writer_setup w, std::string replica_path = "");
    ~scenario();

    std::string db() const { return dir_.db(); }
    const std::string& config() const { return config_; }
    const std::string& replica() const { return replica_; }
    const std::string& restored() const { return restored_; }
    std::string file(const std::string& name) const { return dir_.file(name); }

    /// Starts the writer and waits until it acknowledged its first group (booted, the file exists).
    void start_writer();
    /// Starts `litestream replicate -config`; returns at once.
    void start_litestream();
    /// Waits until the replica holds a snapshot of a generation; fails with Litestream's log when it exits
    /// first or 15 s pass.
    void wait_replicated();
    /// Waits until at least `groups` more groups are acknowledged and the newest ack is `span` after `from`.
    void wait_acks(std::int64_t groups, steady::duration span, steady::time_point from);
    void kill_litestream();
    bool litestream_running() { return litestream_ && litestream_->running(); }
    std::vector<ack> acks() const;
    std::string litestream_log() const;
    std::string writer_log() const;
    /// The writer's last "idle_checkpoints N" line (written after each pause of a bursty writer), or 0.
    std::uint64_t idle_checkpoints() const;
    /// Generation directories in the replica.
    std::vector<std::string> generations() const;

    /// The machine is lost: Litestream and the writer are SIGKILLed, the primary and its -wal/-shm deleted.
    void lose_machine();
    steady::time_point loss() const { return loss_; }
    /// `litestream restore -config … -o restored DB`; its wall time in seconds (fails the test on an error).
    double restore();
    /// Boots the restored file through dbactor::database::open (integrity_check full) and compares.
    verdict verify();

private:
    test::temp_dir dir_;
    writer_setup setup_;
    std::string config_, replica_, restored_, acks_;
    std::unique_ptr<process> writer_, litestream_;
    int litestream_starts_ = 0;
    steady::time_point loss_{};
};

/// Prints `LITESTREAM <test> k=v …` and appends a JSON line to litestream.json in the build tree.
void report(const std::string& test, const std::vector<std::pair<std::string, double>>& figures);

} // namespace lstest
