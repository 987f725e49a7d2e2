// dbactor::connection: binding, reading, the statement cache, savepoints.
#include "support.hpp"

#include <SQLiteCpp/Exception.h>
#include <sqlite3.h>

#include <cstdint>
#include <limits>

using dbactor::connection;
using dbactor::errc;

namespace {

struct fixture
{
    test::temp_dir dir;
    dbactor::database db = dbactor::database::open(test::options_for(dir));
    fixture()
    {
        db.call([](connection& c) {
            c.exec("CREATE TABLE v(i INTEGER, r REAL, s TEXT, b BLOB, n INTEGER);"
                   "CREATE TABLE big(id INTEGER PRIMARY KEY, x INTEGER);"
                   "WITH RECURSIVE c(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM c LIMIT 5000) "
                   "INSERT INTO big SELECT k, k * 2 FROM c;");
        });
    }
};

} // namespace

TEST_CASE_METHOD(fixture, "values round-trip through bind and column reads", "[connection]")
{
    const dbactor::blob bytes{std::byte{0}, std::byte{1}, std::byte{255}};
    auto row = db.write([&](connection& c) {
        c.execute("INSERT INTO v VALUES (?, ?, ?, ?, ?)",
                  std::int64_t{-5},
                  2.5,
                  std::string("text"),
                  bytes,
                  std::nullopt);
        return *c.query_one<std::tuple<std::int64_t, double, std::string, dbactor::blob, std::optional<int>>>(
            "SELECT i, r, s, b, n FROM v");
    });
    CHECK(std::get<0>(row) == -5);
    CHECK(std::get<1>(row) == 2.5);
    CHECK(std::get<2>(row) == "text");
    CHECK(std::get<3>(row) == bytes);
    CHECK_FALSE(std::get<4>(row).has_value());
}

TEST_CASE_METHOD(fixture, "string views, C strings and optionals bind as text or NULL", "[connection]")
{
    auto got = db.write([](connection& c) {
        std::string_view sv = "view";
        c.execute("INSERT INTO v(s) VALUES (?)", sv);
        c.execute("INSERT INTO v(s) VALUES (?)", "literal");
        c.execute("INSERT INTO v(s) VALUES (?)", std::optional<std::string>("some"));
        c.execute("INSERT INTO v(s) VALUES (?)", std::optional<std::string>());
        return c.query<std::optional<std::string>>("SELECT s FROM v ORDER BY rowid");
    });
    REQUIRE(got.size() == 4);
    CHECK(got[0] == "view");
    CHECK(got[1] == "literal");
    CHECK(got[2] == "some");
    CHECK_FALSE(got[3].has_value());
}

TEST_CASE_METHOD(fixture,
                 "uint64 snowflakes up to INT64_MAX are stored, larger ones are refused",
                 "[connection]")
{
    const std::uint64_t snowflake = 1234567890123456789ull;
    auto back = db.write([&](connection& c) {
        c.execute("INSERT INTO v(i) VALUES (?)", snowflake);
        return *c.query_one<std::uint64_t>("SELECT i FROM v");
    });
    CHECK(back == snowflake);
    const std::uint64_t too_big = std::uint64_t(std::numeric_limits<std::int64_t>::max()) + 1;
    CHECK(test::errc_of([&] {
              db.write([&](connection& c) { c.execute("INSERT INTO v(i) VALUES (?)", too_big); });
          }) == errc::value_out_of_range);
    CHECK(test::errc_of([&] {
              db.read([](connection& c) { return *c.query_one<std::uint32_t>("SELECT -1"); });
          }) == errc::value_out_of_range);
}

TEST_CASE_METHOD(fixture, "a NULL read into a non-optional type fails with unexpected_null", "[connection]")
{
    CHECK(test::errc_of([&] { db.read([](connection& c) { return *c.query_one<int>("SELECT NULL"); }); }) ==
          errc::unexpected_null);
    auto none = db.read([](connection& c) { return *c.query_one<std::optional<int>>("SELECT NULL"); });
    CHECK_FALSE(none.has_value());
}

TEST_CASE_METHOD(fixture, "query_one is nullopt without a row, query returns every row", "[connection]")
{
    auto missing =
        db.read([](connection& c) { return c.query_one<int>("SELECT x FROM big WHERE id = ?", -1); });
    CHECK_FALSE(missing.has_value());
    auto rows = db.read([](connection& c) {
        return c.query<std::tuple<int, int>>("SELECT id, x FROM big WHERE id <= ?", 3);
    });
    REQUIRE(rows.size() == 3);
    CHECK(rows[2] == std::tuple{3, 6});
    std::int64_t sum = 0;
    db.read([&sum](connection& c) {
        c.for_each<std::int64_t>("SELECT x FROM big", [&sum](std::int64_t x) { sum += x; });
    });
    CHECK(sum == 5000 * 5001);
}

TEST_CASE_METHOD(fixture,
                 "statements are prepared once per SQL text and reset right after use",
                 "[connection]")
{
    auto busy_after = db.call([](connection& c) {
        const auto before = c.cached_statements();
        for (int i = 1; i <= 100; ++i)
            c.query_one<int>("SELECT x FROM big WHERE id >= ?", i); // stops after the first of many rows
        const auto after = c.cached_statements();
        int busy = 0;
        for (sqlite3_stmt* s = sqlite3_next_stmt(c.handle(), nullptr); s;
             s = sqlite3_next_stmt(c.handle(), s))
            busy += sqlite3_stmt_busy(s);
        return std::pair{after - before, busy};
    });
    CHECK(busy_after.first == 1);  // one statement for 100 calls
    CHECK(busy_after.second == 0); // none left holding a read snapshot
}

TEST_CASE_METHOD(fixture,
                 "the wrong number of values or several statements are refused with a clear error",
                 "[connection]")
{
    try {
        db.read([](connection& c) { return c.query_one<int>("SELECT ? + ?", 1); });
        FAIL("no error");
    }
    catch (const SQLite::Exception& e) {
        CHECK(std::string(e.what()).find("2 parameter(s), but 1 value(s)") != std::string::npos);
    }
    CHECK_THROWS_AS(db.write([](connection& c) { c.execute("DELETE FROM v; DELETE FROM big"); }),
                    SQLite::Exception);
    CHECK(db.read([](connection& c) { return *c.query_one<int>("SELECT count(*) FROM big"); }) == 5000);
    // Once cached, the statement is checked again on every use: no parameter keeps an earlier request's
    // value.
    CHECK(db.read([](connection& c) { return *c.query_one<int>("SELECT ? + ?", 1, 2); }) == 3);
    CHECK_THROWS_WITH(db.read([](connection& c) { return c.query_one<int>("SELECT ? + ?", 5); }),
                      Catch::Contains("2 parameter(s), but 1 value(s)"));
}

TEST_CASE_METHOD(fixture, "a savepoint that throws rolls back only its own changes", "[connection]")
{
    auto count = db.write([](connection& c) {
        c.execute("INSERT INTO v(i) VALUES (1)");
        try {
            c.savepoint([](connection& inner) {
                inner.execute("INSERT INTO v(i) VALUES (2)");
                throw std::runtime_error("undo me");
            });
        }
        catch (const std::runtime_error&) {
        }
        auto n = c.savepoint([](connection& inner) {
            inner.execute("INSERT INTO v(i) VALUES (3)");
            return inner.changes();
        });
        CHECK(n == 1);
        return c.query<int>("SELECT i FROM v ORDER BY i");
    });
    CHECK(count == std::vector<int>{1, 3});
}

TEST_CASE_METHOD(fixture,
                 "sqlite() gives the SQLiteCpp connection for what connection does not offer",
                 "[connection]")
{
    auto tables = db.read([](connection& c) {
        return c.sqlite().execAndGet("SELECT count(*) FROM sqlite_schema WHERE type = 'table'").getInt();
    });
    CHECK(tables == 2);
}

TEST_CASE_METHOD(fixture,
                 "the same SQL run again inside for_each gets a statement of its own",
                 "[connection]")
{
    // The cached statement is still stepping in the outer loop; resetting it would restart the outer query.
    auto pairs = db.read([](connection& c) {
        std::vector<std::pair<std::int64_t, std::int64_t>> out;
        c.for_each<std::int64_t>(
            "SELECT id FROM big WHERE id <= ? ORDER BY id",
            [&](std::int64_t id) {
                const auto inner = c.query<std::int64_t>("SELECT id FROM big WHERE id <= ? ORDER BY id", 2);
                out.emplace_back(id, static_cast<std::int64_t>(inner.size()));
            },
            3);
        return out;
    });
    CHECK(pairs == std::vector<std::pair<std::int64_t, std::int64_t>>{{1, 2}, {2, 2}, {3, 2}});
    CHECK(db.stats().cached_statements >= 1);
}
