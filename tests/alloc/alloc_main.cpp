// Heap allocations per request made by dbactor and Asio, counted at malloc level (Asio allocates with
// aligned_alloc, not new). Steady state: after a warm-up, so Asio's per-thread caches are filled.
#include <dbactor/dbactor.hpp>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <functional>

extern "C" void* __libc_malloc(std::size_t);
extern "C" void* __libc_memalign(std::size_t, std::size_t);

namespace {
std::atomic<long> allocations{0};
}

extern "C" void* malloc(std::size_t n)
{
    allocations.fetch_add(1, std::memory_order_relaxed);
    return __libc_malloc(n);
}
extern "C" void* aligned_alloc(std::size_t align, std::size_t n)
{
    allocations.fetch_add(1, std::memory_order_relaxed);
    return __libc_memalign(align, n);
}
extern "C" int posix_memalign(void** p, std::size_t align, std::size_t n)
{
    allocations.fetch_add(1, std::memory_order_relaxed);
    *p = __libc_memalign(align, n);
    return *p ? 0 : 12; // ENOMEM
}

namespace asio = boost::asio;

namespace {

constexpr int warm_up = 1000;
constexpr int measured = 20000;

/// A request that costs SQLite nothing: what is counted is dbactor's own cost (SQLite allocates for a
/// table cursor on its own, the same for every caller, RAW included).
struct point_read
{
    std::int64_t id;
    std::int64_t operator()(dbactor::connection&) const { return id; }
};

int failures = 0;

void report(const char* how, long allocs, double limit)
{
    const double per = static_cast<double>(allocs) / measured;
    const bool ok = per <= limit;
    std::printf(
        "ALLOC %s allocations_per_request=%.3f limit=%.0f %s\n", how, per, limit, ok ? "ok" : "FAILED");
    if (!ok)
        ++failures;
}

} // namespace

int main()
{
    dbactor::options o;
    o.path = ":memory:";
    o.on_log = [](dbactor::log_level, std::string_view) {};
    auto db = dbactor::database::open(o);
    const point_read read{1};

    { // a coroutine awaiting each request
        asio::io_context io;
        long before = 0, after = 0;
        asio::co_spawn(
            io,
            [&]() -> asio::awaitable<void> {
                for (int i = 0; i < warm_up; ++i)
                    co_await db.async_read(read, asio::use_awaitable);
                before = allocations.load();
                for (int i = 0; i < measured; ++i)
                    co_await db.async_read(read, asio::use_awaitable);
                after = allocations.load();
            },
            asio::detached);
        io.run();
        report("use_awaitable", after - before, 1);
    }
    { // a callback bound to an io_context executor, each sending the next request
        asio::io_context io;
        long before = 0, after = 0;
        int left = warm_up + measured;
        std::function<void()> next = [&] {
            if (left == measured)
                before = allocations.load();
            if (left-- == 0) {
                after = allocations.load();
                return;
            }
            db.async_read(read, asio::bind_executor(io, [&](std::exception_ptr, std::int64_t) { next(); }));
        };
        asio::post(io, next);
        io.run();
        report("bound_callback", after - before, 1);
    }
    { // the blocking twin
        for (int i = 0; i < warm_up; ++i)
            db.read(read);
        const long before = allocations.load();
        for (int i = 0; i < measured; ++i)
            db.read(read);
        report("blocking", allocations.load() - before, 1);
    }
    { // use_future: std::promise's shared state and Asio's promise handler come on top (reported only)
        for (int i = 0; i < warm_up; ++i)
            db.async_read(read, asio::use_future).get();
        const long before = allocations.load();
        for (int i = 0; i < measured; ++i)
            db.async_read(read, asio::use_future).get();
        report("use_future", allocations.load() - before, 8);
    }
    return failures == 0 ? 0 : 1;
}
