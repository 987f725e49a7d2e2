// Crashes and power loss: SIGKILL of a writer process under load and during shutdown, and simulated power
// loss through the crash VFS. Each case prints one line of figures and appends it to reliability.json.
#include "common.hpp"
#include "vfs.hpp"

#include <fmt/format.h>

#include <atomic>
#include <map>
#include <mutex>
#include <thread>

#include <signal.h>
#include <sys/wait.h>

using namespace std::chrono_literals;

namespace {

struct content
{
    std::map<std::int64_t, std::int64_t> rows_per_req;
    std::string integrity;
    std::int64_t partial = 0;
};

/// Boots the database through the library (the boot gate must accept it) and reads what it holds.
content boot_and_read(const std::string& path, dbactor::synchronous_mode sync)
{
    dbactor::options o;
    o.path = path;
    o.synchronous = sync;
    o.migrations = rel::schema();
    o.on_log = [](dbactor::log_level, std::string_view) {};
    auto db = dbactor::database::open(std::move(o));
    content c;
    c.integrity = db.call([](dbactor::connection& conn) {
        std::string all;
        for (auto& r : conn.query<std::string>("PRAGMA integrity_check"))
            all += (all.empty() ? "" : "; ") + r;
        return all;
    });
    for (auto [req, n] : db.read([](dbactor::connection& conn) {
             return conn.query<std::tuple<std::int64_t, std::int64_t>>("SELECT req, count(*) FROM acks GROUP BY req");
         })) {
        c.rows_per_req[req] = n;
        c.partial += n != rel::rows_per_request;
    }
    db.close();
    return c;
}

struct kill_totals
{
    int kills = 0, boots_failed = 0, integrity_failed = 0, clean_exits = 0;
    std::int64_t acked = 0, lost = 0, partial = 0, rows = 0;
};

/// Spawns the writer `kills` times on one database, kills it at a random point, and checks after each kill.
kill_totals kill_writer(bool full, int kills, bool during_shutdown)
{
    test::temp_dir dir;
    kill_totals t;
    std::set<std::int64_t> acked;
    const auto sync = full ? dbactor::synchronous_mode::full : dbactor::synchronous_mode::normal;
    for (int i = 0; i < kills; ++i) {
        const long shutdown_after = 20 + static_cast<long>(rel::rng()() % 200);
        rel::child w(DBACTOR_RELIABILITY_WRITER,
                     {dir.db(),
                      full ? "full" : "normal",
                      "4",
                      during_shutdown ? "shutdown" : "load",
                      std::to_string(i + 1),
                      std::to_string(shutdown_after)});
        auto ready = w.read_line(20s);
        INFO("kill " << i << ": the writer did not report boot (a boot after the previous kill failed)");
        if (!ready || *ready != "R") {
            ++t.boots_failed;
            FAIL("writer boot failed after kill " << i);
        }
        // The kill point is chosen by the test's clock: a random point of the load (or of the shutdown).
        // Under load: 20-250 ms after boot. During shutdown: 0-40 ms after close() began draining its burst.
        std::uniform_int_distribution<int> delay_us(during_shutdown ? 0 : 20000, during_shutdown ? 40000 : 250000);
        auto deadline = std::chrono::steady_clock::now() + std::chrono::microseconds(delay_us(rel::rng()));
        bool shutting_down = !during_shutdown;
        bool exited = false;
        auto take = [&](const std::string& line) {
            if (line.rfind("A ", 0) == 0)
                acked.insert(std::stoll(line.substr(2)));
            else if (line == "S") {
                shutting_down = true;
                deadline = std::chrono::steady_clock::now() + std::chrono::microseconds(delay_us(rel::rng()));
            }
            else if (line == "C")
                exited = true;
        };
        for (;;) {
            const auto now = std::chrono::steady_clock::now();
            if (shutting_down && now >= deadline)
                break;
            auto left = shutting_down ? std::chrono::ceil<std::chrono::milliseconds>(deadline - now) : 10000ms;
            auto line = w.read_line(left);
            if (!line) {
                if (w.timed_out() && !shutting_down)
                    FAIL("the writer went silent for 10 s before shutdown");
                if (!w.timed_out())
                    exited = true; // EOF: it finished its shutdown before the kill
                break;
            }
            take(*line);
        }
        w.kill(SIGKILL);
        for (const auto& line : w.drain(5s)) // acks written before the kill are still in the pipe
            take(line);
        auto st = w.wait(5s);
        REQUIRE(st);
        t.clean_exits += exited;
        ++t.kills;

        content c;
        try {
            c = boot_and_read(dir.db(), sync);
        }
        catch (const std::exception& e) {
            ++t.boots_failed;
            FAIL("boot after kill " << i << " failed: " << e.what());
        }
        t.integrity_failed += c.integrity != "ok";
        CHECK(c.integrity == "ok");
        std::int64_t lost = 0;
        for (auto req : acked)
            lost += !c.rows_per_req.contains(req);
        t.lost = lost;
        t.partial = c.partial;
        t.rows = static_cast<std::int64_t>(c.rows_per_req.size());
        CHECK(lost == 0);
        CHECK(c.partial == 0);
    }
    t.acked = static_cast<std::int64_t>(acked.size());
    return t;
}

void report_kills(const std::string& name, bool full, const kill_totals& t, double seconds)
{
    rel::report(name,
                {rel::str("synchronous", full ? "FULL" : "NORMAL"),
                 rel::num("kills", std::int64_t(t.kills)),
                 rel::num("finished_before_kill", std::int64_t(t.clean_exits)),
                 rel::num("acked_writes", t.acked),
                 rel::num("lost_acked", t.lost),
                 rel::num("partial_requests", t.partial),
                 rel::num("integrity_failures", std::int64_t(t.integrity_failed)),
                 rel::num("boot_failures", std::int64_t(t.boots_failed)),
                 rel::num("seconds", seconds)});
}

double since(std::chrono::steady_clock::time_point t0)
{
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

} // namespace

TEST_CASE("SIGKILL of a writer under load with synchronous FULL loses no acknowledged write", "[crash][kill]")
{
    const auto t0 = std::chrono::steady_clock::now();
    auto t = kill_writer(true, rel::scaled(20), false);
    report_kills("kill_under_load_full", true, t, since(t0));
    CHECK(t.lost == 0);
    CHECK(t.partial == 0);
    CHECK(t.integrity_failed == 0);
}

TEST_CASE("SIGKILL of a writer under load with synchronous NORMAL loses no acknowledged write", "[crash][kill]")
{
    const auto t0 = std::chrono::steady_clock::now();
    auto t = kill_writer(false, rel::scaled(20), false);
    report_kills("kill_under_load_normal", false, t, since(t0));
    CHECK(t.lost == 0);
    CHECK(t.partial == 0);
    CHECK(t.integrity_failed == 0);
}

TEST_CASE("SIGKILL of a writer during shutdown loses no acknowledged write", "[crash][kill]")
{
    const auto t0 = std::chrono::steady_clock::now();
    auto full = kill_writer(true, rel::scaled(5), true);
    auto normal = kill_writer(false, rel::scaled(5), true);
    report_kills("kill_during_shutdown_full", true, full, since(t0));
    report_kills("kill_during_shutdown_normal", false, normal, since(t0));
    CHECK(full.lost + normal.lost == 0);
    CHECK(full.partial + normal.partial == 0);
}

// ---- power loss -------------------------------------------------------------------------------------------

namespace {

struct power_totals
{
    int runs = 0, corrupt = 0, boot_failed = 0;
    std::int64_t acked = 0, lost = 0, partial = 0;
    long unsynced_ops = 0, unsynced_kept = 0;
};

power_totals power_loss(bool full, int runs)
{
    rel::crash_vfs::install();
    power_totals t;
    const auto sync = full ? dbactor::synchronous_mode::full : dbactor::synchronous_mode::normal;
    for (int run = 0; run < runs; ++run) {
        test::temp_dir dir;
        rel::crash_vfs::reset();
        dbactor::options o;
        o.path = dir.db();
        o.vfs = rel::crash_vfs::name;
        o.synchronous = sync;
        o.migrations = rel::schema();
        o.journal_size_limit = 128 * 1024;
        o.pragmas = {{"wal_autocheckpoint", "50"}};
        o.on_log = [](dbactor::log_level, std::string_view) {};
        auto db = dbactor::database::open(std::move(o));

        std::mutex m;
        std::vector<std::int64_t> acked;
        std::atomic<bool> stop{false};
        std::vector<std::thread> producers;
        for (int p = 0; p < 4; ++p)
            producers.emplace_back([&, p] {
                for (std::int64_t seq = 0; !stop.load(); ++seq) {
                    const std::int64_t req = std::int64_t(p) << 32 | seq;
                    try {
                        db.write([req](dbactor::connection& c) {
                            for (int part = 0; part < rel::rows_per_request; ++part)
                                c.execute("INSERT INTO acks VALUES (?, ?, ?)", req, part, std::string(100, 'p'));
                        });
                    }
                    catch (...) {
                        return;
                    }
                    std::lock_guard lock(m);
                    acked.push_back(req);
                }
            });
        // The acks seen before the power goes out were synced before it (a reply follows its COMMIT).
        std::uniform_int_distribution<int> ms(20, 200);
        const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms(rel::rng()));
        while (std::chrono::steady_clock::now() < until)
            std::this_thread::yield();
        std::vector<std::int64_t> durable_acks;
        {
            std::lock_guard lock(m);
            durable_acks = acked;
        }
        rel::crash_vfs::power_off();
        stop = true;
        for (auto& p : producers)
            p.join();
        db.close();

        test::temp_dir after;
        for (const char* suffix : {"", "-wal"}) {
            auto img = rel::crash_vfs::after_power_loss(dir.db() + suffix, 0.5, rel::rng());
            t.unsynced_ops += img.unsynced_ops;
            t.unsynced_kept += img.unsynced_kept;
            if (img.existed)
                rel::spit(after.db() + suffix, img.bytes);
        }
        ++t.runs;
        content c;
        try {
            c = boot_and_read(after.db(), sync);
        }
        catch (const std::exception& e) {
            ++t.boot_failed;
            FAIL_CHECK("boot after power loss " << run << " failed: " << e.what());
            continue;
        }
        t.corrupt += c.integrity != "ok";
        t.partial += c.partial;
        t.acked += static_cast<std::int64_t>(durable_acks.size());
        for (auto req : durable_acks)
            t.lost += !c.rows_per_req.contains(req);
    }
    return t;
}

void report_power(const std::string& name, bool full, const power_totals& t, double seconds)
{
    rel::report(name,
                {rel::str("synchronous", full ? "FULL" : "NORMAL"),
                 rel::num("power_losses", std::int64_t(t.runs)),
                 rel::num("acked_writes", t.acked),
                 rel::num("lost_acked", t.lost),
                 rel::num("loss_rate", t.acked ? double(t.lost) / double(t.acked) : 0.0),
                 rel::num("partial_requests", t.partial),
                 rel::num("corrupt", std::int64_t(t.corrupt)),
                 rel::num("boot_failures", std::int64_t(t.boot_failed)),
                 rel::num("unsynced_writes", std::int64_t(t.unsynced_ops)),
                 rel::num("unsynced_writes_kept", std::int64_t(t.unsynced_kept)),
                 rel::num("seconds", seconds)});
}

} // namespace

TEST_CASE("power loss with synchronous FULL loses no acknowledged write", "[crash][power]")
{
    const auto t0 = std::chrono::steady_clock::now();
    auto t = power_loss(true, rel::scaled(15, 2));
    report_power("power_loss_full", true, t, since(t0));
    CHECK(t.lost == 0);
    CHECK(t.partial == 0);
    CHECK(t.corrupt == 0);
    CHECK(t.boot_failed == 0);
}

TEST_CASE("power loss with synchronous NORMAL never corrupts and reports its loss rate", "[crash][power]")
{
    const auto t0 = std::chrono::steady_clock::now();
    auto t = power_loss(false, rel::scaled(15, 2));
    report_power("power_loss_normal", false, t, since(t0));
    CHECK(t.partial == 0);
    CHECK(t.corrupt == 0);
    CHECK(t.boot_failed == 0);
}
