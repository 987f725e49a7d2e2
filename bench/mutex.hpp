// MUTEX, the baseline users write instead of an actor: one SQLiteCpp connection behind a std::mutex.
#pragma once

#include "common.hpp"

#include <SQLiteCpp/SQLiteCpp.h>

#include <boost/asio/async_result.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace dbactor_bench {

// MUTEX: what users write instead of an actor. One SQLiteCpp connection behind a std::mutex; each call is
// posted to an asio::thread_pool, runs under the lock and posts its reply back to the caller's executor.
// Its statements are cached under the mutex (the strongest form of this baseline: re-preparing per call,
// the common SQLiteCpp idiom, is slower still).

class mutex_conn
{
public:
    explicit mutex_conn(SQLite::Database& db) : db_(db) {}

    template <class... A>
    std::int64_t execute(const char* sql, const A&... a)
    {
        auto& st = bound(sql, a...);
        reset_on_exit guard{st};
        return st.exec();
    }

    template <class T, class... A>
    std::optional<T> query_one(const char* sql, const A&... a)
    {
        auto& st = bound(sql, a...);
        reset_on_exit guard{st};
        if (!st.executeStep())
            return std::nullopt;
        return row<T>(st);
    }

    template <class T, class... A>
    std::vector<T> query(const char* sql, const A&... a)
    {
        auto& st = bound(sql, a...);
        reset_on_exit guard{st};
        std::vector<T> rows;
        while (st.executeStep())
            rows.push_back(row<T>(st));
        return rows;
    }

    std::int64_t last_insert_rowid() const { return db_.getLastInsertRowid(); }

private:
    struct reset_on_exit
    {
        SQLite::Statement& st;
        ~reset_on_exit() { st.tryReset(); }
    };

    template <class... A>
    SQLite::Statement& bound(const char* sql, const A&... a)
    {
        SQLite::Statement* s = nullptr;
        for (auto& e : cache_)
            if (e.first == sql)
                s = e.second.get();
        if (!s)
            s = cache_.emplace_back(sql, std::make_unique<SQLite::Statement>(db_, sql)).second.get();
        int i = 0;
        (bind(*s, ++i, a), ...);
        return *s;
    }
    template <class T>
    static void bind(SQLite::Statement& s, int i, const T& v)
    {
        s.bind(i, v);
    }
    static void bind(SQLite::Statement& s, int i, const std::optional<std::int64_t>& v)
    {
        if (v)
            s.bind(i, *v);
        else
            s.bind(i);
    }
    template <class T>
    static T column(SQLite::Statement& st, int i)
    {
        if constexpr (std::is_same_v<T, std::int64_t>)
            return st.getColumn(i).getInt64();
        else
            return st.getColumn(i).getString();
    }
    template <class T>
    static T row(SQLite::Statement& st)
    {
        if constexpr (is_tuple<T>::value)
            return [&]<std::size_t... I>(std::index_sequence<I...>)
            {
                return T{column<std::tuple_element_t<I, T>>(st, static_cast<int>(I))...};
            }
        (std::make_index_sequence<std::tuple_size_v<T>>{});
        else return column<T>(st, 0);
    }

    SQLite::Database& db_;
    std::vector<std::pair<const char*, std::unique_ptr<SQLite::Statement>>> cache_;
};

class mutex_db
{
public:
    mutex_db(const fs::path& path, bool full, std::size_t threads)
        : db_(path.string(), SQLite::OPEN_READWRITE), conn_(db_), pool_(threads)
    {
        db_.exec(common_pragmas);
        db_.exec(full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
        if (!cache_pragma_value.empty())
            db_.exec("PRAGMA cache_size=" + cache_pragma_value);
    }
    mutex_db(const mutex_db&) = delete;
    mutex_db& operator=(const mutex_db&) = delete;
    ~mutex_db() { pool_.join(); }

    /// Runs fn(conn) on the pool under the lock (inside BEGIN IMMEDIATE … COMMIT when `tx`); the coroutine
    /// resumes on its own executor.
    template <class Fn>
    auto run(const Fn& fn, bool tx)
    {
        using R = std::invoke_result_t<const Fn&, mutex_conn&>;
        return asio::async_initiate<const asio::use_awaitable_t<>&, void(std::exception_ptr, R)>(
            [this, tx](auto handler, Fn f) {
                auto work = asio::make_work_guard(handler);
                asio::post(pool_, [this, tx, f, h = std::move(handler), work = std::move(work)]() mutable {
                    std::exception_ptr e;
                    R r{};
                    {
                        std::lock_guard lock(m_);
                        try {
                            if (tx)
                                db_.exec("BEGIN IMMEDIATE");
                            r = f(conn_);
                            if (tx)
                                db_.exec("COMMIT");
                        }
                        catch (...) {
                            e = std::current_exception();
                            if (tx)
                                db_.tryExec("ROLLBACK");
                        }
                    }
                    auto ex = work.get_executor();
                    asio::post(ex, [h = std::move(h), e = std::move(e), r = std::move(r)]() mutable {
                        std::move(h)(std::move(e), std::move(r));
                    });
                    work.reset();
                });
            },
            asio::use_awaitable,
            fn);
    }

private:
    std::mutex m_;
    SQLite::Database db_;
    mutex_conn conn_;
    asio::thread_pool pool_;
};

struct mutex_system
{
    mutex_db* db;
    template <class Fn>
    auto read(const Fn& fn)
    {
        return db->run(fn, false);
    }
    template <class Fn>
    auto write(const Fn& fn)
    {
        return db->run(fn, false);
    } // one statement: its own autocommit transaction
    template <class Fn>
    auto write_tx(const Fn& fn)
    {
        return db->run(fn, true);
    }
};

} // namespace dbactor_bench
