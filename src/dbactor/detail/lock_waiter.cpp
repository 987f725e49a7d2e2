#include <dbactor/detail/lock_waiter.hpp>

#include <sqlite3.h>

#include <algorithm>
#include <thread>

namespace dbactor::detail {

using clock = std::chrono::steady_clock;

clock::duration busy_step(int count, clock::duration left) noexcept
{
    const clock::duration step = count < 10 ? std::chrono::milliseconds(1) : std::chrono::milliseconds(5);
    return std::min(step, std::max<clock::duration>(left, std::chrono::microseconds(100)));
}

void lock_waiter::install(sqlite3* db) noexcept
{
    sqlite3_busy_handler(db, &lock_waiter::on_busy, this);
}

void lock_waiter::hand_back(sqlite3* db) noexcept
{
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db, "PRAGMA busy_timeout", -1, &st, nullptr) != SQLITE_OK)
        return;
    const bool ours = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int64(st, 0) == 0;
    sqlite3_finalize(st);
    if (ours)
        sqlite3_busy_timeout(db, static_cast<int>(limit_.count()));
}

bool lock_waiter::sleep_step(int count, clock::time_point start) noexcept
{
    const auto now = clock::now();
    if (now >= start + limit_)
        return false;
    if (count == 0)
        ++waits_;
    const auto step = busy_step(count, start + limit_ - now);
    std::this_thread::sleep_for(step);
    total_ += std::chrono::duration_cast<std::chrono::nanoseconds>(clock::now() - now);
    return true;
}

int lock_waiter::on_busy(void* p, int count) noexcept
{
    auto* w = static_cast<lock_waiter*>(p);
    if (count == 0)
        w->start_ = clock::now();
    return w->sleep_step(count, w->start_) ? 1 : 0;
}

int lock_waiter::exec(sqlite3* db, const std::string& sql)
{
    const auto start = clock::now();
    for (int count = 0;; ++count) {
        const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr);
        if ((rc & 0xff) != SQLITE_BUSY || !sleep_step(count, start))
            return rc;
    }
}

} // namespace dbactor::detail
