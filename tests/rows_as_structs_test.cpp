// Rows as structs: query, query_one and for_each read an aggregate T field by field (Boost.PFR).
#include "support.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

namespace asio = boost::asio;
using namespace std::chrono_literals;
using dbactor::connection;
using dbactor::errc;

namespace rows {

struct value_row
{
    std::int64_t id;
    int small;
    double ratio;
    std::string name;
    dbactor::blob data;
};

struct nullable_row
{
    std::int64_t id;
    std::optional<std::string> note;
    std::optional<double> score;
    std::optional<dbactor::blob> data;
};

enum class level : int
{
    low = 1,
    high = 2
};

// Default member initializers and bool/enum/uint64 fields, as a user's settings struct has them.
struct settings
{
    std::uint64_t guild = 0;
    std::string prefix = "!";
    bool enabled = true;
    level lvl = level::low;
};

struct pair_row
{
    std::int64_t id;
    std::int64_t x;
};

struct warning
{
    std::uint64_t guild;
    std::uint64_t user;
    std::string reason;
    std::optional<std::int64_t> expires_at;
    bool operator==(const warning&) const = default;
};

/// A typed write request whose argument is a row struct.
struct add_warning
{
    warning w;
    std::int64_t operator()(connection& c) const
    {
        c.execute("INSERT INTO warnings(guild, user, reason, expires_at) VALUES (?, ?, ?, ?)",
                  w.guild,
                  w.user,
                  w.reason,
                  w.expires_at);
        return c.last_insert_rowid();
    }
};

/// A typed read request that returns row structs.
struct warnings_of
{
    std::uint64_t guild;
    std::vector<warning> operator()(connection& c) const
    {
        return c.query<warning>(
            "SELECT guild, user, reason, expires_at FROM warnings WHERE guild = ? ORDER BY id", guild);
    }
};

struct fixture
{
    test::temp_dir dir;
    dbactor::database db = dbactor::database::open(test::options_for(dir));
    fixture()
    {
        db.call([](connection& c) {
            c.exec("CREATE TABLE v(id INTEGER PRIMARY KEY, small INTEGER, ratio REAL, name TEXT, data BLOB);"
                   "CREATE TABLE big(id INTEGER PRIMARY KEY, x INTEGER);"
                   "WITH RECURSIVE c(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM c LIMIT 100) "
                   "INSERT INTO big SELECT k, k * 2 FROM c;"
                   "CREATE TABLE warnings(id INTEGER PRIMARY KEY, guild INTEGER NOT NULL, user INTEGER NOT "
                   "NULL, "
                   "reason TEXT NOT NULL, expires_at INTEGER);");
        });
    }
};

/// The dbactor::error thrown by `fn`, failing the test when fn throws something else or nothing.
template <class Fn>
dbactor::error error_of(Fn&& fn)
{
    try {
        fn();
    }
    catch (const dbactor::error& e) {
        return e;
    }
    FAIL("expected a dbactor::error");
    throw std::logic_error("unreachable");
}

} // namespace rows

using rows::fixture;

TEST_CASE_METHOD(fixture,
                 "an aggregate's fields take the columns by position: integers, doubles, text and blobs",
                 "[rows]")
{
    const dbactor::blob bytes{std::byte{0}, std::byte{7}, std::byte{255}};
    auto row = db.write([&](connection& c) {
        c.execute("INSERT INTO v VALUES (?, ?, ?, ?, ?)", 41, -3, 0.25, "forty-one", bytes);
        return c.query_one<rows::value_row>("SELECT id, small, ratio, name, data FROM v");
    });
    REQUIRE(row.has_value());
    CHECK(row->id == 41);
    CHECK(row->small == -3);
    CHECK(row->ratio == 0.25);
    CHECK(row->name == "forty-one");
    CHECK(row->data == bytes);
}

TEST_CASE_METHOD(fixture, "std::optional fields take NULL as nullopt and a value as itself", "[rows]")
{
    const dbactor::blob bytes{std::byte{1}, std::byte{2}};
    auto got = db.write([&](connection& c) {
        c.execute("INSERT INTO v(id, name, ratio, data) VALUES (1, NULL, NULL, NULL)");
        c.execute("INSERT INTO v(id, name, ratio, data) VALUES (2, ?, ?, ?)", "noted", 1.5, bytes);
        return c.query<rows::nullable_row>("SELECT id, name, ratio, data FROM v ORDER BY id");
    });
    REQUIRE(got.size() == 2);
    CHECK(got[0].id == 1);
    CHECK_FALSE(got[0].note.has_value());
    CHECK_FALSE(got[0].score.has_value());
    CHECK_FALSE(got[0].data.has_value());
    CHECK(got[1].id == 2);
    CHECK(got[1].note == "noted");
    CHECK(got[1].score == 1.5);
    CHECK(got[1].data == bytes);
}

TEST_CASE_METHOD(fixture,
                 "fields with default initializers, bool, enum and uint64 snowflakes read like scalars",
                 "[rows]")
{
    const std::uint64_t snowflake = 1234567890123456789ull;
    auto s = db.read([&](connection& c) {
        return c.query_one<rows::settings>("SELECT ?, ?, ?, ?", snowflake, "?", 0, 2);
    });
    REQUIRE(s.has_value());
    CHECK(s->guild == snowflake);
    CHECK(s->prefix == "?");
    CHECK_FALSE(s->enabled);
    CHECK(s->lvl == rows::level::high);
}

TEST_CASE_METHOD(fixture, "query, query_one and for_each all read struct rows", "[rows]")
{
    auto all = db.read([](connection& c) {
        return c.query<rows::pair_row>("SELECT id, x FROM big WHERE id <= ? ORDER BY id", 3);
    });
    REQUIRE(all.size() == 3);
    CHECK(all[2].id == 3);
    CHECK(all[2].x == 6);

    auto missing = db.read(
        [](connection& c) { return c.query_one<rows::pair_row>("SELECT id, x FROM big WHERE id = ?", -1); });
    CHECK_FALSE(missing.has_value());

    std::int64_t sum = 0;
    std::int64_t count = 0;
    db.read([&](connection& c) {
        c.for_each<rows::pair_row>("SELECT id, x FROM big", [&](const rows::pair_row& r) {
            sum += r.x;
            ++count;
        });
    });
    CHECK(count == 100);
    CHECK(sum == 100 * 101);
}

TEST_CASE_METHOD(fixture, "a struct query nested inside a struct for_each reads both correctly", "[rows]")
{
    // The inner query runs the same SQL while the outer statement is still stepping.
    auto out = db.read([](connection& c) {
        std::vector<std::tuple<std::int64_t, std::int64_t, std::size_t>> seen;
        c.for_each<rows::pair_row>(
            "SELECT id, x FROM big WHERE id <= ? ORDER BY id",
            [&](const rows::pair_row& outer) {
                const auto inner =
                    c.query<rows::pair_row>("SELECT id, x FROM big WHERE id <= ? ORDER BY id", 2);
                seen.emplace_back(outer.id, outer.x, inner.size());
            },
            3);
        return seen;
    });
    using row = std::tuple<std::int64_t, std::int64_t, std::size_t>;
    CHECK(out == std::vector<row>{{1, 2, 2}, {2, 4, 2}, {3, 6, 2}});
}

TEST_CASE_METHOD(
    fixture,
    "a column too few for the struct's fields is value_out_of_range naming both counts and the SQL",
    "[rows]")
{
    const auto e = rows::error_of([&] {
        db.read([](connection& c) { return c.query_one<rows::value_row>("SELECT id, x FROM big"); });
    });
    CHECK(e.value() == errc::value_out_of_range);
    const std::string what = e.what();
    CHECK_THAT(what, Catch::Contains("\"SELECT id, x FROM big\""));
    CHECK_THAT(what, Catch::Contains("returns 2 column(s)"));
    CHECK_THAT(what, Catch::Contains("has 5 field(s)"));
    CHECK_THAT(what, Catch::Contains("rows::value_row"));
    CHECK_THAT(what, Catch::Contains("Select one column per field"));
}

TEST_CASE_METHOD(
    fixture,
    "a column too many for the struct's fields is value_out_of_range naming both counts and the SQL",
    "[rows]")
{
    const auto e = rows::error_of([&] {
        db.read([](connection& c) { return c.query<rows::pair_row>("SELECT id, x, x + 1 FROM big"); });
    });
    CHECK(e.value() == errc::value_out_of_range);
    const std::string what = e.what();
    CHECK_THAT(what, Catch::Contains("\"SELECT id, x, x + 1 FROM big\""));
    CHECK_THAT(what, Catch::Contains("returns 3 column(s)"));
    CHECK_THAT(what, Catch::Contains("has 2 field(s)"));
    // for_each checks every row the same way, and the actor keeps serving afterwards.
    CHECK(test::errc_of([&] {
              db.read([](connection& c) {
                  c.for_each<rows::pair_row>("SELECT id FROM big", [](const rows::pair_row&) {});
              });
          }) == errc::value_out_of_range);
    CHECK(db.read([](connection& c) { return *c.query_one<std::int64_t>("SELECT count(*) FROM big"); }) ==
          100);
}

TEST_CASE_METHOD(fixture, "a NULL read into a non-optional field fails with unexpected_null", "[rows]")
{
    CHECK(test::errc_of([&] {
              db.read([](connection& c) { return c.query_one<rows::pair_row>("SELECT 1, NULL"); });
          }) == errc::unexpected_null);
}

TEST_CASE_METHOD(fixture, "a struct row written and read back through the actor's typed requests", "[rows]")
{
    const rows::warning first{1001, 7, "spam", std::nullopt};
    const rows::warning second{1001, 8, "flood", 1700000000};
    const rows::warning other{2002, 7, "caps", 5};
    auto a = db.async_write(rows::add_warning{first}, asio::use_future);
    auto b = db.async_write(rows::add_warning{second}, asio::use_future);
    auto c = db.async_write(rows::add_warning{other}, asio::use_future);
    CHECK(test::get_within(a, "the first write is acknowledged") == 1);
    CHECK(test::get_within(b, "the second write is acknowledged") == 2);
    CHECK(test::get_within(c, "the third write is acknowledged") == 3);

    auto read = db.async_read(rows::warnings_of{1001}, asio::use_future);
    CHECK(test::get_within(read, "the read is answered") == std::vector<rows::warning>{first, second});

    asio::io_context io;
    const rows::warnings_of of_other{2002};
    auto f = asio::co_spawn(
        io,
        [&]() -> asio::awaitable<std::vector<rows::warning>> {
            co_return co_await db.async_read(of_other, asio::use_awaitable);
        },
        asio::use_future);
    io.run_for(10s);
    CHECK(test::get_within(f, "the awaited read is answered", std::chrono::seconds(1)) ==
          std::vector<rows::warning>{other});
}

TEST_CASE_METHOD(fixture,
                 "scalars and tuples read as before: a tuple may take fewer columns than returned",
                 "[rows]")
{
    auto t = db.read([](connection& c) {
        return c.query_one<std::tuple<std::int64_t, std::int64_t>>(
            "SELECT id, x, x + 1 FROM big WHERE id = 2");
    });
    CHECK(t == std::tuple<std::int64_t, std::int64_t>{2, 4});
    auto n = db.read(
        [](connection& c) { return c.query_one<std::int64_t>("SELECT x, id FROM big WHERE id = 3"); });
    CHECK(n == 6);
    CHECK(test::errc_of([&] {
              db.read([](connection& c) {
                  return c.query_one<std::tuple<int, int, int>>("SELECT id, x FROM big WHERE id = 1");
              });
          }) == errc::value_out_of_range);
}
