// Test helpers: unique temporary databases, bounded waits, and small request types.
#pragma once

#include <dbactor/dbactor.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <stdexcept>
#include <string>
#include <thread>

namespace test {

/// A fresh directory under $TMPDIR (or /tmp) holding `db.sqlite`; removed with everything in it.
class temp_dir
{
public:
    temp_dir()
    {
        const char* base = std::getenv("TMPDIR");
        std::string tmpl = std::string(base && *base ? base : "/tmp") + "/dbactor-test-XXXXXX";
        if (!mkdtemp(tmpl.data()))
            throw std::runtime_error("mkdtemp failed for " + tmpl);
        dir_ = tmpl;
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
    ~temp_dir()
    {
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }
    const std::filesystem::path& path() const { return dir_; }
    std::string db() const { return (dir_ / "db.sqlite").string(); }
    std::string file(const std::string& name) const { return (dir_ / name).string(); }

private:
    std::filesystem::path dir_;
};

/// Options for a test database in `dir`: a file on disk, synchronous NORMAL (faster, same semantics).
inline dbactor::options options_for(const temp_dir& dir)
{
    dbactor::options o;
    o.path = dir.db();
    o.synchronous = dbactor::synchronous_mode::normal;
    o.on_log = [](dbactor::log_level, std::string_view) {};
    return o;
}

/// Waits for a future for at most `limit`, failing the test with `what` when it does not become ready.
template <class T>
T get_within(std::future<T>& f, const char* what, std::chrono::seconds limit = std::chrono::seconds(10))
{
    INFO(what);
    REQUIRE(f.wait_for(limit) == std::future_status::ready);
    return f.get();
}

/// Polls `cond` (yielding between tries) until it holds or `limit` passed; false on timeout. For states
/// that another thread reaches without telling this one (a queue length, a file disappearing).
template <class Cond>
bool eventually(Cond cond, std::chrono::seconds limit = std::chrono::seconds(10))
{
    const auto until = std::chrono::steady_clock::now() + limit;
    while (!cond()) {
        if (std::chrono::steady_clock::now() > until)
            return false;
        std::this_thread::yield();
    }
    return true;
}

/// The error of opening with `o`, failing the test when open succeeds.
inline dbactor::error open_error(dbactor::options o)
{
    try {
        dbactor::database::open(std::move(o));
    }
    catch (const dbactor::error& e) {
        return e;
    }
    FAIL("database::open succeeded but was expected to fail");
    throw std::logic_error("unreachable");
}

/// The errc of a dbactor::error thrown by `fn`, failing when fn throws something else or nothing.
template <class Fn>
dbactor::errc errc_of(Fn&& fn)
{
    try {
        fn();
    }
    catch (const dbactor::error& e) {
        return e.value();
    }
    FAIL("expected a dbactor::error");
    return {};
}

} // namespace test
