// Litestream keeps a copy of a dbactor database (DESIGN.md "Other processes on the same file, and
// replication", docs/SCALING.md): the machine is lost at a kill point (the writer and Litestream SIGKILLed,
// the primary file deleted with its -wal and -shm), `litestream restore` brings it back, and dbactor's boot
// gate accepts it with every acknowledged group older than 1.5 s and no group half there.
#include "harness.hpp"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

using namespace std::chrono_literals;
using lstest::steady;

namespace {

/// The checks every restore must pass, with the figures of the run.
void check_restored(lstest::scenario& s,
                    const std::string& name,
                    double restore_s,
                    std::vector<std::pair<std::string, double>> extra = {})
{
    const auto v = s.verify();
    INFO("restored " << v.present << " groups of " << v.acked << " acknowledged; " << v.old_window
                     << " acknowledged more than 1.5 s before the loss");
    CHECK(v.integrity == "ok");
    CHECK(v.incomplete == 0);
    CHECK(v.lost_old == 0);
    CHECK(v.unacked_present <= 1); // the group in flight: committed, its ack not yet written
    CHECK(v.old_window > 0);       // the run was long enough to say something
    std::vector<std::pair<std::string, double>> figures{{"acked", double(v.acked)},
                                                        {"restored", double(v.present)},
                                                        {"lost_recent", double(v.lost_recent)},
                                                        {"lost_tail_ms", v.lost_tail_ms},
                                                        {"restore_s", restore_s}};
    figures.insert(figures.end(), extra.begin(), extra.end());
    lstest::report(name, figures);
}

/// One kill point: replicate, write for `span` after the first snapshot, lose the machine, restore, check.
void kill_point(bool bot_schema, steady::duration span, const std::string& name)
{
    lstest::scenario s({.bot_schema = bot_schema});
    s.start_writer();
    s.start_litestream();
    s.wait_replicated();
    const auto replicated = steady::now();
    s.wait_acks(50, span, replicated);
    s.lose_machine();
    const double restore_s = s.restore();
    check_restored(s, name, restore_s, {{"generations", double(s.generations().size())}});
}

} // namespace

TEST_CASE("kill point 1 (2 s of writes): every group acknowledged 1.5 s before the loss is restored, "
          "none half there",
          "[litestream]")
{
    kill_point(false, 2s, "kill point 1, groups schema");
}

TEST_CASE("kill point 2 (3 s of writes): every group acknowledged 1.5 s before the loss is restored, "
          "none half there",
          "[litestream]")
{
    kill_point(false, 3s, "kill point 2, groups schema");
}

TEST_CASE("kill point 3 (4.5 s of writes): every group acknowledged 1.5 s before the loss is "
          "restored, none half there",
          "[litestream]")
{
    kill_point(false, 4500ms, "kill point 3, groups schema");
}

TEST_CASE("the bot's schema, kill point 1 (2 s): every guild acknowledged 1.5 s before the loss is "
          "restored with all its members",
          "[litestream]")
{
    kill_point(true, 2s, "kill point 1, bot schema");
}

TEST_CASE("the bot's schema, kill point 2 (3 s): every guild acknowledged 1.5 s before the loss is "
          "restored with all its members",
          "[litestream]")
{
    kill_point(true, 3s, "kill point 2, bot schema");
}

TEST_CASE("the bot's schema, kill point 3 (4.5 s): every guild acknowledged 1.5 s before the loss "
          "is restored with all its members",
          "[litestream]")
{
    kill_point(true, 4500ms, "kill point 3, bot schema");
}

TEST_CASE("Litestream killed and started again while the writer writes loses nothing acknowledged "
          "1.5 s before the loss",
          "[litestream]")
{
    lstest::scenario s({});
    s.start_writer();
    s.start_litestream();
    s.wait_replicated();
    s.wait_acks(50, 1s, steady::now());
    s.kill_litestream();
    const auto down = steady::now();
    s.wait_acks(100, 1s, down); // the writer goes on alone: the WAL grows, nobody checkpoints
    s.start_litestream();
    const auto restarted = steady::now();
    s.wait_acks(50, 2500ms, restarted);
    const auto generations = s.generations().size();
    s.lose_machine();
    const double restore_s = s.restore();
    INFO("Litestream's log:\n" << s.litestream_log());
    check_restored(
        s, "litestream restarted while the writer writes", restore_s, {{"generations", double(generations)}});
}

TEST_CASE("with checkpoints = actor the actor's checkpoints, also while Litestream is down, lose no "
          "acknowledged group",
          "[litestream]")
{
    // Bursts of 400 ms and pauses of 1.3 s: in each pause the actor's idle checkpoint (after 1 s) runs, a
    // checkpoint Litestream did not make. While Litestream runs, its read transaction keeps the WAL from
    // being reset; while it is down, the actor's TRUNCATE checkpoint empties the WAL, and Litestream finds on
    // its next start a WAL it has not seen.
    lstest::scenario s({.external = false, .burst_ms = 400, .pause_ms = 1300});
    s.start_writer();
    s.start_litestream();
    s.wait_replicated();
    s.wait_acks(50, 2s, steady::now());
    const auto before = s.generations().size();
    s.kill_litestream();
    const auto checkpoints_at_kill = s.idle_checkpoints();
    const bool checkpointed =
        lstest::poll_until([&] { return s.idle_checkpoints() > checkpoints_at_kill; }, 10s);
    INFO("the writer's log:\n" << s.writer_log());
    REQUIRE(checkpointed); // an idle checkpoint ran while Litestream was down
    s.start_litestream();
    const auto restarted = steady::now();
    s.wait_acks(50, 3s, restarted);
    const auto generations = s.generations().size();
    const auto log = s.litestream_log();
    s.lose_machine();
    const double restore_s = s.restore();
    INFO("Litestream's log:\n" << log);
    const bool new_generation = log.find("new generation") != log.rfind("new generation");
    // Litestream's own words for it, for docs/SCALING.md.
    std::istringstream lines(log);
    for (std::string line; std::getline(lines, line);)
        if (line.find("generation") != std::string::npos || line.find("WARN") != std::string::npos)
            std::printf("LITESTREAM-LOG %s\n", line.c_str());
    check_restored(s,
                   "checkpoints = actor under litestream",
                   restore_s,
                   {{"generations_before_restart", double(before)},
                    {"generations", double(generations)},
                    {"new_generation_after_restart", new_generation ? 1.0 : 0.0},
                    {"idle_checkpoints", double(s.idle_checkpoints())}});
}

TEST_CASE("a replica path that is not a writable directory: Litestream keeps running, logs the "
          "error on every sync, and there is nothing to restore",
          "[litestream]")
{
    test::temp_dir other;
    const auto blocker = other.file("not-a-directory");
    {
        std::ofstream(blocker) << "a file where the replica's directory should be\n";
    }
    lstest::scenario s({}, blocker + "/replica");
    s.start_writer();
    s.start_litestream();
    const bool said = lstest::poll_until(
        [&] { return s.litestream_log().find("not a directory") != std::string::npos; }, 10s);
    INFO("Litestream's log:\n" << s.litestream_log());
    REQUIRE(said);
    CHECK(s.litestream_running()); // it does not exit: only its log says that nothing is replicated
    CHECK(s.litestream_log().find("level=ERROR") != std::string::npos);
    CHECK(s.generations().empty());
    s.lose_machine();
    const auto r =
        lstest::run({lstest::litestream(), "restore", "-config", s.config(), "-o", s.restored(), s.db()},
                    "/dev/null",
                    20s);
    INFO("litestream restore said:\n" << r.output);
    CHECK(r.code != 0);
    CHECK(r.output.find("not a directory") != std::string::npos);
    CHECK(!std::filesystem::exists(s.restored()));
}
