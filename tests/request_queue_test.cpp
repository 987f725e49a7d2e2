// detail::request_queue driven directly, without threads: groups, bounds, order, deadlines.
#include "detail_nodes.hpp"

#include <dbactor/detail/request_queue.hpp>

#include <vector>

using dbactor::detail::lane;
using dbactor::detail::request_base;
using dbactor::detail::request_queue;
using clock_type = std::chrono::steady_clock;

namespace {

/// pop_group that never waits: `idle` when the queue is empty.
request_queue::pop_result pop_now(request_queue& q, std::vector<request_base*>& out, std::size_t max_batch)
{
    return q.pop_group(out, max_batch, clock_type::now());
}

/// What actor::reject does with a request the queue refused: answers it and drops the queue's reference.
void reject(test::node& n, dbactor::errc code)
{
    n.r->abandon(code, true);
    n.r->release();
}

} // namespace

TEST_CASE("the queue hands out the run of one lane at its head as a group, up to max_batch, in order",
          "[request_queue]")
{
    request_queue q(16);
    test::node w1(lane::write), w2(lane::write), w3(lane::write), r1(lane::read), w4(lane::write);
    for (auto* n : {&w1, &w2, &w3, &r1, &w4})
        REQUIRE(q.push(n->r, true) == request_queue::push_result::ok);
    std::vector<request_base*> out;
    REQUIRE(pop_now(q, out, 2) == request_queue::pop_result::group);
    CHECK(out == std::vector<request_base*>{w1.r, w2.r});
    REQUIRE(pop_now(q, out, 2) == request_queue::pop_result::group);
    CHECK(out == std::vector<request_base*>{w3.r});
    REQUIRE(pop_now(q, out, 2) == request_queue::pop_result::group);
    CHECK(out == std::vector<request_base*>{r1.r});
    REQUIRE(pop_now(q, out, 2) == request_queue::pop_result::group);
    CHECK(out == std::vector<request_base*>{w4.r});
    CHECK(pop_now(q, out, 2) == request_queue::pop_result::idle);
}

TEST_CASE("a call, or a request with a deadline, is a group of its own", "[request_queue]")
{
    request_queue q(16);
    test::node w1(lane::write), c(lane::call), w3(lane::write);
    test::node timed(
        lane::write, [](dbactor::connection&) { return 1; }, clock_type::now() + std::chrono::hours(1));
    for (auto* n : {&w1, &c, &timed, &w3})
        REQUIRE(q.push(n->r, true) == request_queue::push_result::ok);
    std::vector<request_base*> out;
    for (auto* expected : {w1.r, c.r, timed.r, w3.r}) {
        REQUIRE(pop_now(q, out, 64) == request_queue::pop_result::group);
        CHECK(out == std::vector<request_base*>{expected});
    }
}

TEST_CASE("pop_more adds the plain writes queued behind a running batch and stops at an interruptible one",
          "[request_queue]")
{
    request_queue q(16);
    test::node w1(lane::write), w2(lane::write), w4(lane::write);
    test::node timed(
        lane::write, [](dbactor::connection&) { return 1; }, clock_type::now() + std::chrono::hours(1));
    for (auto* n : {&w1, &w2, &timed, &w4})
        REQUIRE(q.push(n->r, true) == request_queue::push_result::ok);
    std::vector<request_base*> out;
    q.pop_more(out, lane::write, 64);
    CHECK(out == std::vector<request_base*>{w1.r, w2.r});
    q.pop_more(out, lane::write, 64);
    CHECK(out.size() == 2); // the timed write waits at the head for a group of its own
}

TEST_CASE("at capacity a request sent with wait_if_full = false is refused and one with true stands in line",
          "[request_queue]")
{
    request_queue q(2);
    test::node a(lane::write), b(lane::write), c(lane::write), d(lane::write);
    REQUIRE(q.push(a.r, false) == request_queue::push_result::ok);
    REQUIRE(q.push(b.r, false) == request_queue::push_result::ok);
    CHECK(q.push(c.r, false) == request_queue::push_result::full);
    reject(c, dbactor::errc::queue_full);
    CHECK(c.reply() == "errc:queue_full");
    REQUIRE(q.push(d.r, true) == request_queue::push_result::ok);
    CHECK(q.depth() == 2);
    CHECK(q.waiting() == 1);
    std::vector<request_base*> out;
    REQUIRE(pop_now(q, out, 1) == request_queue::pop_result::group);
    q.done_one(); // a popped request that starts no longer counts against the capacity
    CHECK(q.depth() == 2);
    CHECK(q.waiting() == 0);
    CHECK(q.depth_max() == 2);
    CHECK(q.waiting_max() == 1);
}

TEST_CASE(
    "expire answers the queued requests past their deadline in queue order and reports the next deadline",
    "[request_queue]")
{
    request_queue q(16);
    const auto now = clock_type::now();
    const auto later = now + std::chrono::hours(1);
    test::node late1(
        lane::write, [](dbactor::connection&) { return 1; }, now - std::chrono::milliseconds(2));
    test::node plain(lane::write);
    test::node future(
        lane::read, [](dbactor::connection&) { return 1; }, later);
    test::node late2(
        lane::read, [](dbactor::connection&) { return 1; }, now);
    for (auto* n : {&late1, &plain, &future, &late2})
        REQUIRE(q.push(n->r, true) == request_queue::push_result::ok);
    request_queue::expired e;
    q.expire(now, e);
    CHECK(e.timed_out == 2);
    CHECK(e.cancelled == 0);
    CHECK(e.next == later);
    REQUIRE(e.to_answer == late1.r);
    CHECK(e.to_answer->next_ == late2.r);
    request_queue::deliver_expired(e);
    CHECK(late1.reply() == "errc:timed_out");
    CHECK(late2.reply() == "errc:timed_out");
    CHECK(q.depth() == 2);
    std::vector<request_base*> out;
    REQUIRE(pop_now(q, out, 64) == request_queue::pop_result::group);
    CHECK(out == std::vector<request_base*>{plain.r});
}

TEST_CASE("a request cancelled while queued leaves the line at the next expire, counted as cancelled",
          "[request_queue]")
{
    request_queue q(16);
    test::node a(lane::write), b(lane::write);
    REQUIRE(q.push(a.r, true) == request_queue::push_result::ok);
    REQUIRE(q.push(b.r, true) == request_queue::push_result::ok);
    REQUIRE(a.r->abandon(dbactor::errc::cancelled, true)); // what the cancellation slot does
    request_queue::expired e;
    q.expire(clock_type::now(), e);
    CHECK(e.cancelled == 1);
    CHECK(e.answered == a.r);
    request_queue::deliver_expired(e);
    CHECK(a.reply() == "errc:cancelled");
    CHECK(q.depth() == 1);
}

TEST_CASE("a closed queue refuses new requests and, once empty, tells its consumer it is closed",
          "[request_queue]")
{
    request_queue q(4);
    test::node a(lane::write), b(lane::write);
    REQUIRE(q.push(a.r, true) == request_queue::push_result::ok);
    q.close();
    CHECK(q.closed());
    CHECK(q.push(b.r, true) == request_queue::push_result::closed);
    reject(b, dbactor::errc::closed);
    CHECK(b.reply() == "errc:closed");
    std::vector<request_base*> out;
    REQUIRE(q.pop_group(out, 4) == request_queue::pop_result::group); // what was queued is still served
    CHECK(out == std::vector<request_base*>{a.r});
    CHECK(q.pop_group(out, 4) == request_queue::pop_result::closed);
}
