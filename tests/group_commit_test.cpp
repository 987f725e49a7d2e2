// Group commit: queued writes share one transaction, each in its own savepoint.
#include "support.hpp"

#include <SQLiteCpp/Exception.h>
#include <boost/asio/use_future.hpp>
#include <sqlite3.h>

namespace asio = boost::asio;
using dbactor::connection;

namespace {

/// What holds the actor while the test queues requests: a call, or a write (its batch is then running).
enum class pause_in
{
    call,
    write,
};

struct paused_db
{
    test::temp_dir dir;
    dbactor::database db;
    std::promise<void> started, release;
    std::future<void> blocker;

    explicit paused_db(std::size_t max_batch = 64, pause_in in = pause_in::call)
    {
        auto o = test::options_for(dir);
        o.max_batch = max_batch;
        db = dbactor::database::open(o);
        db.call([](connection& c) {
            c.exec("CREATE TABLE parent(id INTEGER PRIMARY KEY);"
                   "CREATE TABLE t(id INTEGER PRIMARY KEY, p INTEGER REFERENCES parent(id) "
                   "DEFERRABLE INITIALLY DEFERRED);"
                   "INSERT INTO parent VALUES (1);");
        });
        auto r = release.get_future().share();
        if (in == pause_in::call)
            blocker = db.async_call(
                [this, r](connection&) {
                    started.set_value();
                    r.wait();
                },
                asio::use_future);
        else // inserts id 1, then holds its transaction open until resume()
            blocker = db.async_write(
                [this, r](connection& c) {
                    c.execute("INSERT INTO t VALUES (1, 1)");
                    started.set_value();
                    r.wait();
                },
                asio::use_future);
        auto s = started.get_future();
        test::get_within(s, "the actor is paused");
    }
    void resume()
    {
        release.set_value();
        test::get_within(blocker, "the pause ends");
    }
    std::vector<int> ids()
    {
        return db.read([](connection& c) { return c.query<int>("SELECT id FROM t ORDER BY id"); });
    }
};

auto insert(int id, int parent = 1)
{
    return [id, parent](connection& c) { return c.execute("INSERT INTO t VALUES (?, ?)", id, parent); };
}

} // namespace

TEST_CASE("writes queued behind one another share one transaction", "[group_commit]")
{
    paused_db p;
    std::vector<std::future<std::int64_t>> replies;
    for (int i = 1; i <= 20; ++i)
        replies.push_back(p.db.async_write(insert(i), asio::use_future));
    p.resume();
    for (auto& r : replies)
        CHECK(test::get_within(r, "a batched write completes") == 1);
    CHECK(p.ids().size() == 20);
    auto s = p.db.stats();
    CHECK(s.write_batch_max == 20);
}

TEST_CASE("a failing request in a batch rolls back only its own savepoint and gets its own exception",
          "[group_commit]")
{
    paused_db p;
    auto a = p.db.async_write(insert(1), asio::use_future);
    auto bad = p.db.async_write(
        [](connection& c) -> std::int64_t {
            c.execute("INSERT INTO t VALUES (2, 1)");
            throw std::runtime_error("request 2 fails");
        },
        asio::use_future);
    auto dup = p.db.async_write(insert(1), asio::use_future); // primary key clash with request 1
    auto b = p.db.async_write(insert(3), asio::use_future);
    p.resume();
    CHECK(test::get_within(a, "a") == 1);
    CHECK_THROWS_WITH(test::get_within(bad, "bad"), "request 2 fails");
    CHECK_THROWS_AS(test::get_within(dup, "dup"), SQLite::Exception);
    CHECK(test::get_within(b, "b") == 1);
    CHECK(p.ids() == std::vector<int>{1, 3});
    CHECK(p.db.stats().write_batch_max == 4);
}

TEST_CASE(
    "a request leaving a deferred foreign-key violation fails alone instead of failing the batch's COMMIT",
    "[group_commit]")
{
    paused_db p;
    auto a = p.db.async_write(insert(1), asio::use_future);
    auto orphan = p.db.async_write(insert(2, 99), asio::use_future); // no parent 99: deferred until COMMIT
    auto b = p.db.async_write(insert(3), asio::use_future);
    p.resume();
    CHECK(test::get_within(a, "a") == 1);
    CHECK_THROWS_AS(test::get_within(orphan, "orphan"), SQLite::Exception);
    CHECK(test::get_within(b, "b") == 1);
    CHECK(p.ids() == std::vector<int>{1, 3});
}

TEST_CASE("max_batch = 1 gives every write its own transaction", "[group_commit]")
{
    paused_db p(1);
    std::vector<std::future<std::int64_t>> replies;
    for (int i = 1; i <= 5; ++i)
        replies.push_back(p.db.async_write(insert(i), asio::use_future));
    p.resume();
    for (auto& r : replies)
        test::get_within(r, "an unbatched write completes");
    auto s = p.db.stats();
    CHECK(s.write_batch_max == 1);
    CHECK(s.write_batches == 5);
}

TEST_CASE("a write with a timeout runs in a transaction of its own", "[group_commit]")
{
    paused_db p;
    auto a = p.db.async_write(insert(1), asio::use_future);
    auto timed = p.db.async_write(insert(2), {.timeout = std::chrono::seconds(30)}, asio::use_future);
    auto b = p.db.async_write(insert(3), asio::use_future);
    p.resume();
    test::get_within(a, "a");
    test::get_within(timed, "timed");
    test::get_within(b, "b");
    CHECK(p.ids() == std::vector<int>{1, 2, 3});
    CHECK(p.db.stats().write_batches == 3);
}

TEST_CASE("reads queued behind one another share one snapshot", "[group_commit]")
{
    paused_db p;
    std::vector<std::future<int>> replies;
    for (int i = 0; i < 10; ++i)
        replies.push_back(
            p.db.async_read([](connection& c) { return *c.query_one<int>("SELECT count(*) FROM parent"); },
                            asio::use_future));
    p.resume();
    for (auto& r : replies)
        CHECK(test::get_within(r, "a batched read completes") == 1);
    auto s = p.db.stats();
    CHECK(s.read_batches == 1);
    CHECK(s.read_batch_mean == 10);
}

TEST_CASE("a write that runs COMMIT itself keeps nothing and is told so, the writes batched with it are "
          "rolled back and told so",
          "[group_commit]")
{
    paused_db p;
    auto before = p.db.async_write(insert(1), asio::use_future);
    auto commits = p.db.async_write(
        [](connection& c) {
            c.execute("INSERT INTO t VALUES (2, 1)");
            try {
                c.exec("COMMIT");
            }
            catch (const SQLite::Exception&) {
                // refused by the actor (SQLITE_CONSTRAINT_COMMITHOOK); the reply says so anyway
            }
            return 2;
        },
        asio::use_future);
    auto after = p.db.async_write(insert(3), asio::use_future);
    p.resume();
    std::string what;
    try {
        test::get_within(commits, "the committing write is answered");
        FAIL("a write that ran COMMIT itself succeeded");
    }
    catch (const SQLite::Exception& e) {
        what = e.what();
    }
    CHECK_THAT(what, Catch::Contains("ran COMMIT itself"));
    try {
        test::get_within(before, "the write batched before it is answered");
        FAIL("a write rolled back with its batch succeeded");
    }
    catch (const SQLite::Exception& e) {
        CHECK(e.getErrorCode() == SQLITE_ABORT_ROLLBACK);
        CHECK_THAT(std::string(e.what()), Catch::Contains("send it again"));
    }
    CHECK(test::get_within(after, "the write after it runs in a new transaction") == 1);
    CHECK(p.ids() == std::vector<int>{3}); // nothing of 1 and 2 was kept: their callers were told so
}

TEST_CASE("a write that rolls back and begins a transaction of its own keeps nothing and is told so",
          "[group_commit]")
{
    paused_db p;
    auto own = p.db.async_write(
        [](connection& c) {
            c.execute("INSERT INTO t VALUES (1, 1)");
            c.exec("ROLLBACK; BEGIN; INSERT INTO t VALUES (2, 1)");
            return 1;
        },
        asio::use_future);
    p.resume();
    try {
        test::get_within(own, "the write is answered");
        FAIL("a write that ended the actor's transaction succeeded");
    }
    catch (const SQLite::Exception& e) {
        CHECK_THAT(std::string(e.what()), Catch::Contains("saw its write transaction end"));
    }
    CHECK(p.ids().empty());
    CHECK(p.db.call([](connection& c) { return sqlite3_get_autocommit(c.handle()); }) == 1);
}

TEST_CASE("writes queued while a batch runs join it before its COMMIT, never waited for", "[group_commit]")
{
    paused_db h(64, pause_in::write);
    std::vector<std::future<std::int64_t>> replies;
    for (int i = 2; i <= 11; ++i)
        replies.push_back(h.db.async_write(insert(i), asio::use_future));
    h.resume(); // the holding write completes (get_within rethrows if it failed)
    for (auto& r : replies)
        CHECK(test::get_within(r, "a write that joined the running batch completes") == 1);
    const auto s = h.db.stats();
    CHECK(s.write_batches == 1); // the first one's transaction took the ten queued behind it
    CHECK(s.write_batch_max == 11);
    CHECK(h.ids().size() == 11);
}

TEST_CASE("a write with a timeout does not join a running batch, and stops others joining past it",
          "[group_commit]")
{
    paused_db h(64, pause_in::write);
    auto a = h.db.async_write(insert(2), asio::use_future);
    auto timed = h.db.async_write(insert(3), {.timeout = std::chrono::seconds(30)}, asio::use_future);
    auto b = h.db.async_write(insert(4), asio::use_future);
    h.resume();
    test::get_within(a, "a");
    test::get_within(timed, "timed");
    test::get_within(b, "b");
    CHECK(h.ids() == std::vector<int>{1, 2, 3, 4});
    CHECK(h.db.stats().write_batches == 3); // {1, 2}, {3} alone, {4}
}

TEST_CASE(
    "a write alone in its transaction that fails is rolled back without taking the writes queued behind it",
    "[group_commit]")
{
    test::temp_dir dir;
    auto db = dbactor::database::open(test::options_for(dir));
    db.call([](connection& c) { c.exec("CREATE TABLE t(id INTEGER PRIMARY KEY)"); });
    std::promise<void> started, release;
    auto r = release.get_future().share();
    auto failing = db.async_write(
        [&started, r](connection& c) -> int {
            c.execute("INSERT INTO t VALUES (1)");
            started.set_value();
            r.wait();
            throw std::runtime_error("the first write fails");
        },
        asio::use_future);
    auto s = started.get_future();
    test::get_within(s, "the failing write runs");
    auto next =
        db.async_write([](connection& c) { return c.execute("INSERT INTO t VALUES (2)"); }, asio::use_future);
    release.set_value();
    CHECK_THROWS_WITH(test::get_within(failing, "the failing write is answered"), "the first write fails");
    CHECK(test::get_within(next, "the write behind it runs in its own transaction") == 1);
    CHECK(db.read([](connection& c) { return c.query<int>("SELECT id FROM t"); }) == std::vector<int>{2});
}
