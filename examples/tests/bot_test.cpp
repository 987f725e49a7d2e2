// The bot example as tests: dbactor-bot runs as a child process, its output parsed and its database checked.
#include "support.hpp"

using namespace extest;

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
    // Commands read their guild's settings through the cache; register_guilds' 200 inserts and every
    // settings change reached it through the change feed.
    const auto cache =
        numbers(r.output,
                R"(settings cache: (\d+) hits, (\d+) misses \(hit rate [0-9.]+%\), (\d+) entries )"
                R"(invalidated by (\d+) change-feed events)");
    const auto settings_changed = numbers(r.output, R"(settings changes (\d+))")[0];
    CHECK(cache[0] > 0);
    CHECK(cache[0] + cache[1] > 0);
    CHECK(cache[3] >= 1 + (settings_changed > 0 ? 1 : 0));

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

TEST_CASE("the bot with --checkpoints external boots, says checkpoints external, and leaves its WAL to the "
          "replicator",
          "[bot]")
{
    temp_dir dir;
    const auto db_path = dir.file("bot.db");
    const auto r = run(bot_args(db_path, {"--duration", "1", "--checkpoints", "external"}));
    INFO(r.output);
    REQUIRE(r.exited_ok());
    CHECK(r.output.find("boot ") != std::string::npos);
    CHECK(r.output.find(", checkpoints external)") != std::string::npos);
    CHECK(r.output.find("self-check: ok") != std::string::npos);
    // Nobody checkpointed at exit: the writes are still in the -wal file, which the next open replays.
    CHECK(std::filesystem::exists(db_path + "-wal"));
    CHECK(std::filesystem::file_size(db_path + "-wal") > 0);

    const auto by_default = run(bot_args(db_path, {"--duration", "1"}));
    INFO(by_default.output);
    REQUIRE(by_default.exited_ok());
    CHECK(by_default.output.find(", checkpoints actor)") != std::string::npos);

    const auto wrong = run(bot_args(db_path, {"--duration", "1", "--checkpoints", "litestream"}));
    CHECK(!wrong.exited_ok());
    CHECK(wrong.output.find("--checkpoints") != std::string::npos);
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
    const auto cache = numbers(r.output, R"(settings cache: (\d+) hits, (\d+) misses)");
    REQUIRE(limited > 0);
    // Every command let through looks its settings up; the cache's misses read them from the database.
    CHECK(cache[0] + cache[1] == commands - limited);
    // Reads: the totals before the run, one settings read per cache miss, one per /rank.
    CHECK(reads == 1 + cache[1] + ranks);
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
