// detail::run_write_batch (group commit) driven directly on one connection, without the actor's threads.
#include "detail_nodes.hpp"
#include "support.hpp"

#include <dbactor/detail/close_clock.hpp>
#include <dbactor/detail/request_queue.hpp>
#include <dbactor/detail/session.hpp>
#include <dbactor/detail/write_batch.hpp>

#include <SQLiteCpp/Database.h>

#include <memory>
#include <stdexcept>
#include <vector>

using dbactor::detail::lane;
using dbactor::detail::request_base;

namespace {

/// A session on a fresh file database with table t(x), as the writer thread would hold it.
struct bench_session
{
    test::temp_dir dir;
    dbactor::detail::close_clock closing;
    dbactor::detail::request_queue queue{64};
    dbactor::detail::session s;

    explicit bench_session(int busy_timeout_ms = 5000)
    {
        auto db = std::make_unique<SQLite::Database>(dir.db(), SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
        db->exec("PRAGMA journal_mode = WAL; CREATE TABLE t(x INTEGER NOT NULL)");
        db->setBusyTimeout(busy_timeout_ms);
        s.start(std::move(db), closing, queue, 64);
    }
    ~bench_session() { s.close(dir.db()); }

    std::int64_t rows() { return s.conn->query_one<std::int64_t>("SELECT count(*) FROM t").value_or(-1); }
    std::vector<std::int64_t> values() { return s.conn->query<std::int64_t>("SELECT x FROM t ORDER BY x"); }
};

/// Runs each request as the group server does (current set for the hooks); `extra` joins at the first extend.
struct direct_host final : dbactor::detail::batch_host
{
    std::vector<request_base*> extra;
    int extends = 0;

    void run_one(dbactor::detail::session& s, request_base* r) noexcept override
    {
        s.current = r;
        r->run(*s.conn);
        s.current = nullptr;
    }
    bool extend(dbactor::detail::session& s) noexcept override
    {
        ++extends;
        if (extra.empty())
            return false;
        for (auto* r : extra) {
            r->try_start();
            s.group.push_back(r);
        }
        extra.clear();
        return true;
    }
};

test::node::fn_type insert(int x)
{
    return [x](dbactor::connection& c) { return static_cast<int>(c.execute("INSERT INTO t VALUES (?)", x)); };
}

/// Claims the nodes into the session's group, as the group server does.
void claim(dbactor::detail::session& s, std::initializer_list<test::node*> nodes)
{
    s.group.clear();
    for (auto* n : nodes) {
        REQUIRE(n->r->try_start());
        s.group.push_back(n->r);
    }
}

} // namespace

TEST_CASE("a write that fails inside a shared batch loses only its own changes and the others commit",
          "[write_batch]")
{
    bench_session b;
    test::node a(lane::write, insert(1));
    test::node bad(lane::write, [](dbactor::connection& c) -> int {
        c.execute("INSERT INTO t VALUES (2)");
        throw std::runtime_error("refused by the request");
    });
    test::node d(lane::write, insert(3));
    claim(b.s, {&a, &bad, &d});
    direct_host host;
    const auto result = dbactor::detail::run_write_batch(b.s, 0, host);
    CHECK(result.began);
    CHECK(result.end == 3);
    for (auto* n : {&a, &bad, &d})
        n->finish();
    CHECK(a.reply() == "1");
    CHECK(bad.reply() == "exception:refused by the request");
    CHECK(d.reply() == "1");
    CHECK(b.values() == std::vector<std::int64_t>{1, 3});
}

TEST_CASE(
    "a write alone in its transaction runs without a savepoint and its failure rolls the transaction back",
    "[write_batch]")
{
    bench_session b;
    test::node bad(lane::write, [](dbactor::connection& c) -> int {
        c.execute("INSERT INTO t VALUES (1)");
        throw std::runtime_error("no");
    });
    claim(b.s, {&bad});
    direct_host host;
    const auto result = dbactor::detail::run_write_batch(b.s, 0, host);
    CHECK(result.end == 1);
    CHECK(host.extends == 0); // a failed lone request closes its transaction at once
    bad.finish();
    CHECK(bad.reply() == "exception:no");
    CHECK(b.rows() == 0);
    CHECK_FALSE(b.s.in_transaction());
}

TEST_CASE(
    "a write that commits by itself ends the batch: it and the writes before it are rolled back and told "
    "why, the rest go to the next batch",
    "[write_batch]")
{
    bench_session b;
    test::node a(lane::write, insert(1));
    test::node committer(lane::write, [](dbactor::connection& c) {
        c.execute("INSERT INTO t VALUES (2)");
        c.exec("COMMIT");
        return 0;
    });
    test::node after(lane::write, insert(3));
    claim(b.s, {&a, &committer, &after});
    direct_host host;
    const auto first = dbactor::detail::run_write_batch(b.s, 0, host);
    CHECK(first.end == 2);
    CHECK(b.rows() == 0);
    const auto second = dbactor::detail::run_write_batch(b.s, first.end, host);
    CHECK(second.end == 3);
    for (auto* n : {&a, &committer, &after})
        n->finish();
    CHECK_THAT(a.reply(), Catch::Contains("rolled back with the group commit it shared"));
    CHECK_THAT(committer.reply(), Catch::Contains("ran COMMIT itself"));
    CHECK(after.reply() == "1");
    CHECK(b.values() == std::vector<std::int64_t>{3});
}

TEST_CASE("writes queued while a batch runs join it before its COMMIT", "[write_batch]")
{
    bench_session b;
    test::node a(lane::write, insert(1));
    test::node late(lane::write, insert(2));
    claim(b.s, {&a});
    direct_host host;
    host.extra = {late.r};
    const auto result = dbactor::detail::run_write_batch(b.s, 0, host);
    CHECK(result.end == 2);
    CHECK(host.extends == 2); // once to take `late`, once more to find nothing
    a.finish();
    late.finish();
    CHECK(a.reply() == "1");
    CHECK(late.reply() == "1");
    CHECK(b.values() == std::vector<std::int64_t>{1, 2});
}

TEST_CASE("a BEGIN IMMEDIATE that cannot take the lock fails every request of the group with errc::busy",
          "[write_batch]")
{
    bench_session b(0);
    SQLite::Database other(b.dir.db(), SQLite::OPEN_READWRITE);
    other.exec("BEGIN IMMEDIATE");
    test::node a(lane::write, insert(1)), c(lane::write, insert(2));
    claim(b.s, {&a, &c});
    direct_host host;
    const auto result = dbactor::detail::run_write_batch(b.s, 0, host);
    CHECK_FALSE(result.began);
    CHECK(result.end == 2);
    a.finish();
    c.finish();
    CHECK(a.reply() == "errc:busy");
    CHECK(c.reply() == "errc:busy");
    other.exec("ROLLBACK");
    CHECK(b.rows() == 0);
}
