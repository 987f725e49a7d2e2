// options::checkpoints: who copies the WAL back into the database file (the actor, or another process).
#include "support.hpp"

#include <filesystem>

namespace {

std::uintmax_t wal_size(const test::temp_dir& d)
{
    std::error_code ec;
    const auto n = std::filesystem::file_size(d.db() + "-wal", ec);
    return ec ? 0 : n;
}

void write_rows(dbactor::database& db, int n)
{
    db.call([](dbactor::connection& c) { c.exec("CREATE TABLE IF NOT EXISTS t(x)"); });
    for (int i = 0; i < n; ++i)
        db.write([i](dbactor::connection& c) { c.execute("INSERT INTO t VALUES (?)", i); });
}

} // namespace

TEST_CASE("with checkpoints = external the actor never checkpoints, not even at close, and says so",
          "[checkpoints]")
{
    test::temp_dir d;
    auto o = test::options_for(d);
    o.checkpoints = dbactor::checkpoint_mode::external;
    o.idle_checkpoint = std::chrono::milliseconds(1);
    auto db = dbactor::database::open(o);
    CHECK(db.boot_report().checkpoints == "external");
    CHECK(db.call([](dbactor::connection& c) { return *c.query_one<int>("PRAGMA wal_autocheckpoint"); }) ==
          0);
    write_rows(db, 200);
    CHECK(db.stats().idle_checkpoints == 0);
    db.close();
    INFO("the -wal must still hold every frame: the replicator checkpoints, not the actor");
    CHECK(wal_size(d) > 0);
    auto again = dbactor::database::open(test::options_for(d)); // the next open replays it
    CHECK(again.read([](dbactor::connection& c) { return *c.query_one<int>("SELECT count(*) FROM t"); }) ==
          200);
}

TEST_CASE("with the default checkpoints = actor the WAL is copied back and removed at close", "[checkpoints]")
{
    test::temp_dir d;
    auto o = test::options_for(d);
    o.idle_checkpoint = std::chrono::milliseconds(1);
    auto db = dbactor::database::open(o);
    CHECK(db.boot_report().checkpoints == "actor");
    write_rows(db, 200);
    INFO("the idle checkpoint (options::idle_checkpoint after the last write) did not run within 10 s");
    CHECK(test::eventually([&] { return db.stats().idle_checkpoints >= 1; }));
    db.close();
    CHECK(wal_size(d) == 0);
}
