// detail::deadline_watcher's scan and detail::expiry_reason, driven directly without threads.
#include "detail_nodes.hpp"

#include <dbactor/detail/close_clock.hpp>
#include <dbactor/detail/deadline_watcher.hpp>
#include <dbactor/detail/request_queue.hpp>
#include <dbactor/detail/stats.hpp>

using dbactor::errc;
using dbactor::detail::expiry_reason;
using dbactor::detail::lane;
using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

test::node::fn_type seven()
{
    return [](dbactor::connection&) { return 7; };
}

void start_closing(dbactor::detail::close_clock& c, clock_type::time_point grace_end)
{
    c.deadline = grace_end;
    c.requested.store(true);
}

} // namespace

TEST_CASE("a scan answers the requests of both queues past their deadline and returns the next deadline",
          "[deadline_watcher]")
{
    dbactor::options o;
    dbactor::detail::request_queue writer(8), readers(8);
    dbactor::detail::actor_stats stats;
    dbactor::detail::deadline_watcher watcher(o, writer, readers, stats);
    const auto now = clock_type::now();
    test::node late_write(lane::write, seven(), now - 1ms), late_read(lane::read, seven(), now - 1ms);
    test::node soon(lane::write, seven(), now + 1h), plain(lane::read);
    writer.push(late_write.r, true);
    writer.push(soon.r, true);
    readers.push(late_read.r, true);
    readers.push(plain.r, true);
    CHECK(watcher.scan(now) == now + 1h);
    CHECK(stats.timed_out.load() == 2);
    CHECK(late_write.reply() == "errc:timed_out");
    CHECK(late_read.reply() == "errc:timed_out");
    CHECK(writer.depth() == 1);
    CHECK(readers.depth() == 1);
    CHECK(watcher.scan(now) == now + 1h); // nothing more to answer
    CHECK(stats.timed_out.load() == 2);
}

TEST_CASE("a request may run while neither its deadline nor the shutdown grace has passed", "[expiry]")
{
    dbactor::detail::close_clock c;
    const auto now = clock_type::now();
    test::node plain(lane::write), timed(lane::write, seven(), now + 1s);
    CHECK(expiry_reason(*plain.r, c, now) == errc{});
    CHECK(expiry_reason(*timed.r, c, now) == errc{});
    start_closing(c, now + 1s);
    CHECK(expiry_reason(*plain.r, c, now) == errc{});
}

TEST_CASE("past its deadline alone a request is timed_out, past the shutdown grace alone it is closed",
          "[expiry]")
{
    dbactor::detail::close_clock c;
    const auto now = clock_type::now();
    test::node plain(lane::write), timed(lane::write, seven(), now - 1ms);
    CHECK(expiry_reason(*timed.r, c, now) == errc::timed_out);
    start_closing(c, now - 1ms);
    CHECK(expiry_reason(*plain.r, c, now) == errc::closed);
}

TEST_CASE("when a deadline and the shutdown grace have both passed, the one that passed first decides",
          "[expiry]")
{
    const auto now = clock_type::now();
    SECTION("the deadline first: timed_out")
    {
        dbactor::detail::close_clock c;
        start_closing(c, now - 1ms);
        test::node r(lane::write, seven(), now - 2ms);
        CHECK(expiry_reason(*r.r, c, now) == errc::timed_out);
    }
    SECTION("the grace first: closed")
    {
        dbactor::detail::close_clock c;
        start_closing(c, now - 2ms);
        test::node r(lane::write, seven(), now - 1ms);
        CHECK(expiry_reason(*r.r, c, now) == errc::closed);
    }
    SECTION("at the same moment: timed_out (the request's own limit)")
    {
        dbactor::detail::close_clock c;
        start_closing(c, now - 1ms);
        test::node r(lane::write, seven(), now - 1ms);
        CHECK(expiry_reason(*r.r, c, now) == errc::timed_out);
    }
}
