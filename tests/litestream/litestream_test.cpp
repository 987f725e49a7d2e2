// Litestream keeps a copy of a dbactor database (DESIGN.md "Other processes on the same file, and
// replication", docs/SCALING.md): the machine is lost at a kill point (the writer and Litestream SIGKILLed,
// the primary file deleted with its -wal and -shm), `litestream restore` brings it back, and dbactor's boot
// gate accepts it with every acknowledged group older than 1.5 s and no group half there.
#include "harness.hpp"

#include <filesystem>
#include <fstream>

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

TEST_CASE("with checkpoints = actor the actor's idle checkpoints do not lose an acknowledged group",
          "[litestream]")
{
    // Bursts of 400 ms and pauses of 1.3 s: each pause lets the actor's idle checkpoint (after 1 s) run while
    // Litestream replicates: a checkpoint Litestream did not make.
    lstest::scenario s({.external = false, .burst_ms = 400, .pause_ms = 1300});
    s.start_writer();
    s.start_litestream();
    s.wait_replicated();
    s.wait_acks(50, 5500ms, steady::now());
    const auto generations = s.generations().size();
    const auto log = s.litestream_log();
    s.lose_machine();
    const double restore_s = s.restore();
    INFO("Litestream's log:\n" << log);
    // What Litestream does about it, as the figures: new generations, and its own log's words.
    const bool new_generation_after_checkpoint = generations > 1;
    check_restored(s,
                   "checkpoints = actor under litestream",
                   restore_s,
                   {{"generations", double(generations)},
                    {"new_generation_after_checkpoint", new_generation_after_checkpoint ? 1.0 : 0.0}});
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
