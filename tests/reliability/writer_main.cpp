// reliability_writer: boots the real library, runs concurrent producers and reports every acknowledged
// write on stdout, one line each, written before the next request is sent ("A <req>").
// Usage: reliability_writer DB full|normal PRODUCERS MODE RUN [ARG...], MODE one of:
//   load:     "R" once booted, then write until killed.
//   shutdown: "R", then after SHUTDOWN_AFTER_ACKS acks a burst of 2000 async writes, "S" and close()
//             while producers keep sending;
//             "C" once close() returned (exit 0).
//   boot:     boots with the migrations of directory argv[6] instead of the suite's schema; prints "R", or
//             "E <errc> <message>" when open throws, and exits.
//   probe:    boots the suite's schema, argv[6] = rw|ro (ro: options::read_only, migrations not applied);
//             argv[7], when given, is a uid to switch to first (as root: setgid + setuid, so that file
//             permissions apply); prints "R <rows>" (a read of the acks table) or "E <errc> <message>",
//             exits.
//   fsize:    RLIMIT_FSIZE = current size + 256 KiB, SIGXFSZ ignored; writes 16 KiB requests until one fails
//             ("F <what>"), then a read ("READ <rows>"), then lifts the limit and writes again ("W ok"), exit
//             0.
// A request `req` writes rows (req, 0..rows_per_request-1); req = RUN << 32 | producer << 24 | seq.
#include "schema.hpp"

#include <dbactor/dbactor.hpp>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <grp.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

namespace {

void say(const std::string& line)
{
    const std::string s = line + "\n";
    // One write(2) per line: under PIPE_BUF, so lines never interleave and nothing waits in a buffer.
    if (::write(1, s.data(), s.size()) != static_cast<ssize_t>(s.size()))
        std::_Exit(3);
}

void write_request(dbactor::database& db, std::int64_t req, std::size_t payload)
{
    db.write([req, payload](dbactor::connection& c) {
        for (int part = 0; part < rel::rows_per_request; ++part)
            c.execute("INSERT INTO acks(req, part, payload) VALUES (?, ?, ?)",
                      req,
                      part,
                      std::string(payload, 'z'));
    });
}

int fsize_mode(dbactor::database& db, const std::string& path)
{
    signal(SIGXFSZ, SIG_IGN); // the write fails with EFBIG instead of killing us
    struct stat st
    {};
    ::stat((path + "-wal").c_str(), &st);
    struct stat main_st
    {};
    ::stat(path.c_str(), &main_st);
    rlimit lim{};
    getrlimit(RLIMIT_FSIZE, &lim);
    const rlimit saved = lim;
    lim.rlim_cur = static_cast<rlim_t>(std::max(st.st_size, main_st.st_size) + 256 * 1024);
    setrlimit(RLIMIT_FSIZE, &lim);
    std::int64_t req = 1;
    for (;; ++req) {
        try {
            write_request(db, req, 16 * 1024);
            say("A " + std::to_string(req));
        }
        catch (const std::exception& e) {
            std::string msg = e.what();
            for (auto& c : msg)
                if (c == '\n')
                    c = ' ';
            say("F " + msg);
            break;
        }
        if (req > 10000) {
            say("F never failed");
            return 6;
        }
    }
    try {
        auto n = db.read(
            [](dbactor::connection& c) { return *c.query_one<std::int64_t>("SELECT count(*) FROM acks"); });
        say("READ " + std::to_string(n));
    }
    catch (const std::exception& e) {
        say(std::string("READFAIL ") + e.what());
    }
    setrlimit(RLIMIT_FSIZE, &saved);
    try {
        write_request(db, -1, 16 * 1024);
        say("W ok");
    }
    catch (const std::exception& e) {
        say(std::string("WFAIL ") + e.what());
    }
    db.close();
    say("C");
    return 0;
}

} // namespace

int main(int argc, char** argv)
{
    if (argc < 6) {
        std::fprintf(stderr,
                     "usage: %s DB full|normal PRODUCERS load|shutdown|boot|probe|fsize RUN [ARG...]\n",
                     argv[0]);
        return 2;
    }
    const std::string path = argv[1];
    const bool full = std::strcmp(argv[2], "full") == 0;
    const int producers = std::atoi(argv[3]);
    const std::string mode = argv[4];
    const std::uint64_t run = std::strtoull(argv[5], nullptr, 10);
    const long shutdown_after = argc > 6 ? std::atol(argv[6]) : 50;
    const bool probe = mode == "probe";
    if (probe && argc > 7) {
        // Still single-threaded: drop every privilege before the library starts a thread.
        const auto uid = static_cast<uid_t>(std::strtoul(argv[7], nullptr, 10));
        if (setgroups(0, nullptr) != 0 || setgid(uid) != 0 || setuid(uid) != 0) {
            std::perror("reliability_writer: dropping privileges");
            return 7;
        }
    }

    dbactor::options o;
    o.path = path;
    o.synchronous = full ? dbactor::synchronous_mode::full : dbactor::synchronous_mode::normal;
    o.migrations = mode == "boot" && argc > 6 ? dbactor::migration_set{} : rel::schema();
    try {
        if (mode == "boot" && argc > 6)
            o.migrations = dbactor::migration_set::from_directory(argv[6]);
    }
    catch (const dbactor::error& e) {
        say("E " + std::to_string(static_cast<int>(e.value())) + " " + e.what());
        return 0;
    }
    if (probe && argc > 6 && std::strcmp(argv[6], "ro") == 0) {
        o.read_only = true;
        o.apply_migrations = false;
    }
    if (!probe) {
        o.journal_size_limit = 256 * 1024; // small: checkpoints and WAL truncation happen while we kill
        o.pragmas = {{"wal_autocheckpoint", "100"}};
    }
    o.on_log = [](dbactor::log_level, std::string_view) {};
    dbactor::database db;
    try {
        db = dbactor::database::open(std::move(o));
    }
    catch (const dbactor::error& e) {
        if (mode == "boot" || probe) {
            std::string msg = e.what();
            for (auto& c : msg)
                if (c == '\n')
                    c = ' ';
            say("E " + std::to_string(static_cast<int>(e.value())) + " " + msg);
            return 0;
        }
        std::fprintf(stderr, "boot failed: %s\n", e.what());
        return 4;
    }
    catch (const std::exception& e) {
        std::fprintf(stderr, "boot failed: %s\n", e.what());
        return 4;
    }
    if (probe) {
        try {
            const auto rows = db.read([](dbactor::connection& c) {
                return *c.query_one<std::int64_t>("SELECT count(*) FROM acks");
            });
            say("R " + std::to_string(rows));
        }
        catch (const std::exception& e) {
            say(std::string("READFAIL ") + e.what());
        }
        return 0;
    }
    say("R");
    if (mode == "boot")
        return 0;
    if (mode == "fsize")
        return fsize_mode(db, path);

    std::atomic<long> acks{0};
    std::vector<std::thread> threads;
    for (int p = 0; p < producers; ++p) {
        threads.emplace_back([&, p] {
            std::mt19937_64 r(run * 1000 + static_cast<unsigned>(p));
            for (std::uint64_t seq = 0;; ++seq) {
                const std::int64_t req = static_cast<std::int64_t>(run << 32 | std::uint64_t(p) << 24 | seq);
                std::string payload(64 + r() % 192, 'x');
                for (auto& c : payload)
                    c = static_cast<char>('a' + r() % 26);
                try {
                    db.write([req, &payload](dbactor::connection& c) {
                        for (int part = 0; part < rel::rows_per_request; ++part)
                            c.execute(
                                "INSERT INTO acks(req, part, payload) VALUES (?, ?, ?)", req, part, payload);
                    });
                }
                catch (const dbactor::error& e) {
                    if (e.value() == dbactor::errc::closed)
                        return;
                    std::fprintf(stderr, "write failed: %s\n", e.what());
                    std::_Exit(5);
                }
                catch (const std::exception& e) {
                    std::fprintf(stderr, "write failed: %s\n", e.what());
                    std::_Exit(5);
                }
                say("A " + std::to_string(req));
                acks.fetch_add(1);
            }
        });
    }
    if (mode == "shutdown") {
        while (acks.load() < shutdown_after)
            std::this_thread::yield();
        // A burst in flight, so that close() has a queue to drain when the kill comes.
        for (std::uint64_t k = 0; k < 2000; ++k) {
            const std::int64_t req = static_cast<std::int64_t>(run << 32 | std::uint64_t(255) << 24 | k);
            db.async_write(
                [req](dbactor::connection& c) {
                    for (int part = 0; part < rel::rows_per_request; ++part)
                        c.execute("INSERT INTO acks(req, part, payload) VALUES (?, ?, 'burst')", req, part);
                },
                [req](std::exception_ptr e) {
                    if (!e)
                        say("A " + std::to_string(req));
                });
        }
        say("S");
        db.close();
        say("C");
    }
    for (auto& t : threads)
        t.join();
    return 0;
}
