// The change feed (database::subscribe): one event per committed batch or call, in commit order, nothing for
// what rolled back, coalescing beyond the capacity, cancellation, close, and other connections' commits.
#include "support.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <future>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
namespace asio = boost::asio;
using dbactor::connection;
using dbactor::errc;

namespace {

const dbactor::migration_set& feed_schema()
{
    static const auto set = dbactor::migration_set::from_files(
        {{"0001_tables.sql",
          "CREATE TABLE guilds(id INTEGER PRIMARY KEY, name TEXT NOT NULL);\n"
          "CREATE TABLE members(guild_id INTEGER NOT NULL, user_id INTEGER NOT NULL, PRIMARY KEY(guild_id, "
          "user_id)) WITHOUT ROWID;\n"
          "CREATE TABLE warnings(id INTEGER PRIMARY KEY, guild_id INTEGER NOT NULL REFERENCES guilds(id) "
          "DEFERRABLE INITIALLY DEFERRED, reason TEXT);\n"
          "INSERT INTO guilds(id, name) VALUES (1000, 'from the migration');\n"}},
        "feed-test");
    return set;
}

dbactor::options feed_options(const test::temp_dir& dir)
{
    auto o = test::options_for(dir);
    o.migrations = feed_schema();
    return o;
}

const dbactor::table_change* table(const dbactor::commit_event& e, const std::string& name)
{
    const auto it = std::find_if(
        e.changes.begin(), e.changes.end(), [&](const dbactor::table_change& t) { return t.table == name; });
    return it == e.changes.end() ? nullptr : &*it;
}

/// The next event within 10 s, failing the test otherwise.
dbactor::commit_event next_event(dbactor::change_feed& feed)
{
    auto f = feed.async_next(asio::use_future);
    return test::get_within(f, "the next change event");
}

void insert_guild(connection& c, std::int64_t id)
{
    c.execute("INSERT INTO guilds(id, name) VALUES (?, 'g')", id);
}

errc errc_of(std::future<dbactor::commit_event>& f)
{
    REQUIRE(f.wait_for(10s) == std::future_status::ready);
    return test::errc_of([&] { f.get(); });
}

} // namespace

TEST_CASE("each committed write is one event with its tables' counts and rowids, in commit order",
          "[change_feed]")
{
    test::temp_dir dir;
    auto db = dbactor::database::open(feed_options(dir));
    auto feed = db.subscribe();
    db.write([](connection& c) {
        insert_guild(c, 1);
        insert_guild(c, 2);
        c.execute("UPDATE guilds SET name = 'renamed' WHERE id = 1000");
        c.execute("INSERT INTO warnings(guild_id, reason) VALUES (1, 'spam')");
    });
    db.write([](connection& c) { c.execute("DELETE FROM guilds WHERE id = 2"); });

    const auto first = next_event(feed);
    CHECK(first.commit_seq == 1);
    CHECK_FALSE(first.external);
    CHECK_FALSE(first.lagged);
    const auto* guilds = table(first, "guilds");
    REQUIRE(guilds);
    CHECK(guilds->inserts == 2);
    CHECK(guilds->updates == 1);
    CHECK(guilds->deletes == 0);
    CHECK(guilds->rowids == std::vector<std::int64_t>{1, 2, 1000});
    CHECK(guilds->rowids_complete);
    REQUIRE(table(first, "warnings"));
    CHECK(table(first, "warnings")->inserts == 1);

    const auto second = next_event(feed);
    CHECK(second.commit_seq == 2);
    REQUIRE(second.changes.size() == 1);
    CHECK(second.changes[0].table == "guilds");
    CHECK(second.changes[0].deletes == 1);
    CHECK(second.changes[0].rowids == std::vector<std::int64_t>{2});
    CHECK_FALSE(feed.try_next()); // the migration's INSERT was no event
}

TEST_CASE("a group commit is one event, and the request that failed inside it contributes nothing",
          "[change_feed]")
{
    test::temp_dir dir;
    auto db = dbactor::database::open(feed_options(dir));
    auto feed = db.subscribe();
    // A call holds the writer while three writes queue behind it: they run as one batch.
    std::promise<void> release;
    auto released = release.get_future().share();
    std::promise<void> holding;
    auto call = db.async_call(
        [&, released](connection&) {
            holding.set_value();
            released.wait();
        },
        asio::use_future);
    auto held = holding.get_future();
    test::get_within(held, "the call that holds the writer started");
    auto a = db.async_write([](connection& c) { insert_guild(c, 1); }, asio::use_future);
    auto b = db.async_write(
        [](connection& c) {
            insert_guild(c, 2);
            throw std::runtime_error("refused");
        },
        asio::use_future);
    auto d = db.async_write([](connection& c) { insert_guild(c, 3); }, asio::use_future);
    const auto batches_before = db.stats().write_batches;
    release.set_value();
    test::get_within(call, "the holding call");
    test::get_within(a, "the first write");
    REQUIRE(b.wait_for(10s) == std::future_status::ready);
    CHECK_THROWS_WITH(b.get(), "refused");
    test::get_within(d, "the third write");
    REQUIRE(db.stats().write_batches == batches_before + 1); // the three shared one transaction

    const auto e = next_event(feed);
    CHECK(e.commit_seq == 1);
    REQUIRE(e.changes.size() == 1);
    CHECK(e.changes[0].inserts == 2);
    CHECK(e.changes[0].rowids == std::vector<std::int64_t>{1, 3});
    CHECK_FALSE(feed.try_next());
}

TEST_CASE("a failed COMMIT and a rolled-back savepoint produce nothing", "[change_feed]")
{
    test::temp_dir dir;
    auto db = dbactor::database::open(feed_options(dir));
    auto feed = db.subscribe();
    // Alone in its transaction, a deferred foreign-key violation fails the COMMIT itself.
    CHECK_THROWS(db.write([](connection& c) { c.execute("INSERT INTO warnings(guild_id) VALUES (777)"); }));
    db.write([](connection& c) {
        insert_guild(c, 5);
        try {
            c.savepoint([](connection& inner) {
                insert_guild(inner, 6);
                throw std::runtime_error("undo the inner unit");
            });
        }
        catch (const std::runtime_error&) {
        }
    });
    const auto e = next_event(feed);
    CHECK(e.commit_seq == 1);
    REQUIRE(e.changes.size() == 1);
    CHECK(e.changes[0].table == "guilds");
    CHECK(e.changes[0].rowids == std::vector<std::int64_t>{5});
    CHECK_FALSE(feed.try_next());
}

TEST_CASE("a call is one event of what it committed, without what it rolled back", "[change_feed]")
{
    test::temp_dir dir;
    auto db = dbactor::database::open(feed_options(dir));
    auto feed = db.subscribe();
    const bool duplicate_failed = db.call([](connection& c) {
        insert_guild(c, 1); // autocommit
        c.exec("BEGIN");
        insert_guild(c, 2);
        c.exec("ROLLBACK");
        c.exec("BEGIN");
        insert_guild(c, 3);
        c.exec("COMMIT");
        try {
            insert_guild(c, 3); // a failing autocommit statement rolls back only itself
            return false;
        }
        catch (const std::exception&) {
            return true;
        }
    });
    CHECK(duplicate_failed);
    db.call([](connection& c) { c.query<std::int64_t>("SELECT count(*) FROM guilds"); }); // no change
    const auto e = next_event(feed);
    REQUIRE(e.changes.size() == 1);
    CHECK(e.changes[0].inserts == 2);
    CHECK(e.changes[0].rowids == std::vector<std::int64_t>{1, 3});
    CHECK_FALSE(feed.try_next());
}

TEST_CASE("a filter delivers only its tables, WITHOUT ROWID tables and DELETE without WHERE are counted",
          "[change_feed]")
{
    test::temp_dir dir;
    auto db = dbactor::database::open(feed_options(dir));
    auto members = db.subscribe({.tables = {"members"}});
    auto guilds = db.subscribe({.tables = {"guilds"}});
    db.write([](connection& c) { insert_guild(c, 1); });
    db.write(
        [](connection& c) { c.execute("INSERT INTO members(guild_id, user_id) VALUES (1, 10), (1, 11)"); });
    db.write([](connection& c) { c.execute("DELETE FROM guilds"); }); // the truncate optimisation's shape

    const auto m = next_event(members);
    CHECK(m.commit_seq == 2); // the first commit touched no member
    REQUIRE(m.changes.size() == 1);
    CHECK(m.changes[0].inserts == 2);
    CHECK(m.changes[0].rowids.empty()); // a WITHOUT ROWID table has no rowids to give
    CHECK_FALSE(m.changes[0].rowids_complete);
    CHECK_FALSE(members.try_next());

    CHECK(next_event(guilds).commit_seq == 1);
    const auto all = next_event(guilds);
    CHECK(all.commit_seq == 3);
    REQUIRE(all.changes.size() == 1);
    CHECK(all.changes[0].deletes == 2); // guild 1 and the migration's guild 1000
    CHECK(all.changes[0].rowids == std::vector<std::int64_t>{1, 1000});
}

TEST_CASE("a feed that falls behind keeps capacity events, the last one coalescing the rest as lagged",
          "[change_feed]")
{
    test::temp_dir dir;
    auto db = dbactor::database::open(feed_options(dir));
    auto feed = db.subscribe({.capacity = 2, .max_rowids = 3});
    for (std::int64_t id = 1; id <= 6; ++id)
        db.write([id](connection& c) { insert_guild(c, id); });
    const auto first = feed.try_next();
    REQUIRE(first);
    CHECK(first->commit_seq == 1);
    CHECK_FALSE(first->lagged);
    const auto rest = feed.try_next();
    REQUIRE(rest);
    CHECK(rest->lagged);
    CHECK(rest->commit_seq == 6);
    REQUIRE(rest->changes.size() == 1);
    CHECK(rest->changes[0].inserts == 5);
    CHECK(rest->changes[0].rowids == std::vector<std::int64_t>{2, 3, 4});
    CHECK_FALSE(rest->changes[0].rowids_complete);
    CHECK_FALSE(feed.try_next());
    // The writer never waited for the feed: the sixth write was acknowledged with the feed full.
    CHECK(db.read([](connection& c) { return c.query_one<std::int64_t>("SELECT count(*) FROM guilds"); }) ==
          7);
}

TEST_CASE("events from many writer threads arrive once each, commit_seq increasing without gaps",
          "[change_feed]")
{
    test::temp_dir dir;
    auto db = dbactor::database::open(feed_options(dir));
    auto feed = db.subscribe({.capacity = 100000});
    constexpr int threads = 4, per_thread = 50;
    std::vector<std::thread> writers;
    for (int t = 0; t < threads; ++t)
        writers.emplace_back([&db, t] {
            for (int i = 0; i < per_thread; ++i)
                db.write([id = t * 1000 + i + 1](connection& c) { insert_guild(c, id); });
        });
    for (auto& w : writers)
        w.join();
    std::uint64_t expected_seq = 1, inserts = 0;
    while (auto e = feed.try_next()) {
        CHECK(e->commit_seq == expected_seq++);
        CHECK_FALSE(e->lagged);
        REQUIRE(e->changes.size() == 1);
        inserts += e->changes[0].inserts;
    }
    CHECK(inserts == threads * per_thread);
}

TEST_CASE("async_next: cancellation loses no event, a second waiter is refused, close ends the feed",
          "[change_feed]")
{
    test::temp_dir dir;
    auto db = dbactor::database::open(feed_options(dir));
    auto feed = db.subscribe();

    asio::cancellation_signal signal;
    std::promise<errc> cancelled;
    feed.async_next(
        asio::bind_cancellation_slot(signal.slot(), [&](std::exception_ptr e, dbactor::commit_event) {
            try {
                if (e)
                    std::rethrow_exception(e);
                cancelled.set_value(errc{});
            }
            catch (const dbactor::error& err) {
                cancelled.set_value(err.value());
            }
        }));
    signal.emit(asio::cancellation_type::terminal);
    auto c = cancelled.get_future();
    CHECK(test::get_within(c, "the cancelled async_next") == errc::cancelled);

    db.write([](connection& c2) { insert_guild(c2, 1); });
    auto waiting = feed.async_next(asio::use_future);
    REQUIRE(waiting.wait_for(10s) == std::future_status::ready);
    CHECK(waiting.get().commit_seq == 1); // the event after the cancellation is there

    auto first = feed.async_next(asio::use_future);
    auto second = feed.async_next(asio::use_future);
    REQUIRE(second.wait_for(10s) == std::future_status::ready);
    CHECK_THROWS_AS(second.get(), std::logic_error);

    db.write([](connection& c2) { insert_guild(c2, 2); });
    CHECK(test::get_within(first, "the waiting async_next").commit_seq == 2);

    db.write([](connection& c2) { insert_guild(c2, 3); });
    auto after_close = feed.async_next(asio::use_future);
    CHECK(test::get_within(after_close, "the event buffered before close").commit_seq == 3);
    auto pending = feed.async_next(asio::use_future);
    db.close();
    CHECK(errc_of(pending) == errc::closed);
    auto later = feed.async_next(asio::use_future);
    CHECK(errc_of(later) == errc::closed);
    CHECK_THROWS_AS(db.subscribe(), dbactor::error);

    dbactor::change_feed none;
    auto nothing = none.async_next(asio::use_future);
    CHECK(errc_of(nothing) == errc::closed);
}

TEST_CASE("a feed destroyed inside its own handler unsubscribes, and the io_context runs out of work",
          "[change_feed]")
{
    test::temp_dir dir;
    auto db = dbactor::database::open(feed_options(dir));
    asio::io_context io;
    auto feed = std::make_unique<dbactor::change_feed>(db.subscribe());
    std::uint64_t seen = 0;
    bool failed = true;
    feed->async_next(asio::bind_executor(io, [&](std::exception_ptr e, dbactor::commit_event ev) {
        failed = e != nullptr;
        seen = ev.commit_seq;
        feed.reset(); // unsubscribes from inside the handler
    }));
    db.write([](connection& c) { insert_guild(c, 1); });
    auto ran = std::async(std::launch::async, [&] { return io.run_for(10s); });
    REQUIRE(ran.wait_for(15s) == std::future_status::ready);
    CHECK(ran.get() == 1); // one handler, then nothing kept the io_context busy
    CHECK_FALSE(failed);
    CHECK(seen == 1);
    CHECK_FALSE(feed);
    db.write([](connection& c) { insert_guild(c, 2); }); // nobody to deliver to: no crash, no wait
}

TEST_CASE("another connection's commit arrives as an external event", "[change_feed]")
{
    test::temp_dir dir;
    auto o = feed_options(dir);
    o.external_poll = 10ms;
    auto db = dbactor::database::open(o);
    auto feed = db.subscribe();
    db.write([](connection& c) { insert_guild(c, 1); }); // the actor has read data_version by now
    CHECK(next_event(feed).commit_seq == 1);

    auto waiting = feed.async_next(asio::use_future);
    sqlite3* other = nullptr;
    REQUIRE(sqlite3_open(dir.db().c_str(), &other) == SQLITE_OK);
    sqlite3_busy_timeout(other, 5000);
    CHECK(sqlite3_exec(
              other, "INSERT INTO guilds(id, name) VALUES (50, 'elsewhere')", nullptr, nullptr, nullptr) ==
          SQLITE_OK);
    sqlite3_close(other);
    const auto e = test::get_within(waiting, "the external event (data_version polled while idle)");
    CHECK(e.external);
    CHECK(e.commit_seq == 2);
    CHECK(e.changes.empty());
}

TEST_CASE("subscribing and unsubscribing from many threads under write load", "[change_feed]")
{
    test::temp_dir dir;
    auto db = dbactor::database::open(feed_options(dir));
    std::atomic<bool> stop{false};
    std::thread writer([&] {
        for (std::int64_t id = 1; !stop.load(); ++id)
            db.write([id](connection& c) { insert_guild(c, id); });
    });
    std::vector<std::thread> subscribers;
    std::atomic<int> events{0};
    for (int t = 0; t < 3; ++t)
        subscribers.emplace_back([&] {
            for (int i = 0; i < 40; ++i) {
                auto feed = db.subscribe({.capacity = 4});
                auto f = feed.async_next(asio::use_future);
                if (f.wait_for(10s) == std::future_status::ready && f.get().commit_seq > 0)
                    ++events;
                if (i % 2)
                    feed.unsubscribe();
            }
        });
    for (auto& s : subscribers)
        s.join();
    stop = true;
    writer.join();
    CHECK(events == 3 * 40); // every subscription saw a commit while the writer kept writing
}
