// RAW, the floor: the SQLite C API on one thread, each SQL text prepared once and reused (raw_conn).
#pragma once

#include "common.hpp"

#include <sqlite3.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace dbactor_bench {

[[noreturn]] inline void throw_sqlite(sqlite3* db, const char* what)
{
    throw std::runtime_error(
        fmt::format("{}: {} (extended code {})", what, sqlite3_errmsg(db), sqlite3_extended_errcode(db)));
}

class raw_conn
{
public:
    raw_conn(const fs::path& path, bool full)
    {
        if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) {
            const std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
            sqlite3_close(db_);
            throw std::runtime_error(fmt::format("cannot open {}: {}", path.string(), msg));
        }
        sqlite3_extended_result_codes(db_, 1);
        exec(common_pragmas);
        exec(full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
        if (!cache_pragma_value.empty())
            exec(("PRAGMA cache_size=" + cache_pragma_value).c_str());
    }
    raw_conn(const raw_conn&) = delete;
    raw_conn& operator=(const raw_conn&) = delete;
    ~raw_conn()
    {
        for (auto& e : cache_)
            sqlite3_finalize(e.second);
        sqlite3_close(db_);
    }

    void exec(const char* sql)
    {
        char* err = nullptr;
        if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
            std::string msg = err ? err : "unknown error";
            sqlite3_free(err);
            throw std::runtime_error(fmt::format("{}: {}", sql, msg));
        }
    }

    template <class... A>
    std::int64_t execute(const char* sql, const A&... a)
    {
        sqlite3_stmt* s = bound(sql, a...);
        int rc;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        }
        sqlite3_reset(s);
        if (rc != SQLITE_DONE)
            throw_sqlite(db_, sql);
        return sqlite3_changes(db_);
    }

    template <class T, class... A>
    std::optional<T> query_one(const char* sql, const A&... a)
    {
        sqlite3_stmt* s = bound(sql, a...);
        const int rc = sqlite3_step(s);
        std::optional<T> r;
        if (rc == SQLITE_ROW)
            r = row<T>(s);
        sqlite3_reset(s);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE)
            throw_sqlite(db_, sql);
        return r;
    }

    template <class T, class... A>
    std::vector<T> query(const char* sql, const A&... a)
    {
        sqlite3_stmt* s = bound(sql, a...);
        std::vector<T> rows;
        int rc;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW)
            rows.push_back(row<T>(s));
        sqlite3_reset(s);
        if (rc != SQLITE_DONE)
            throw_sqlite(db_, sql);
        return rows;
    }

    std::int64_t last_insert_rowid() const { return sqlite3_last_insert_rowid(db_); }

private:
    template <class... A>
    sqlite3_stmt* bound(const char* sql, const A&... a)
    {
        sqlite3_stmt* s = nullptr;
        for (auto& e : cache_)
            if (e.first == sql)
                s = e.second;
        if (!s) {
            if (sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr) != SQLITE_OK)
                throw_sqlite(db_, sql);
            cache_.emplace_back(sql, s);
        }
        int i = 0;
        (bind(s, ++i, a), ...);
        return s;
    }
    static void bind(sqlite3_stmt* s, int i, std::int64_t v) { sqlite3_bind_int64(s, i, v); }
    static void bind(sqlite3_stmt* s, int i, const std::optional<std::int64_t>& v)
    {
        if (v)
            sqlite3_bind_int64(s, i, *v);
        else
            sqlite3_bind_null(s, i);
    }
    static void bind(sqlite3_stmt* s, int i, const std::string& v)
    {
        sqlite3_bind_text(s, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
    }
    template <class T>
    static T column(sqlite3_stmt* s, int i)
    {
        if constexpr (std::is_same_v<T, std::int64_t>)
            return sqlite3_column_int64(s, i);
        else {
            const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s, i));
            return std::string(p ? p : "", static_cast<std::size_t>(sqlite3_column_bytes(s, i)));
        }
    }
    template <class T>
    static T row(sqlite3_stmt* s)
    {
        if constexpr (is_tuple<T>::value)
            return [&]<std::size_t... I>(std::index_sequence<I...>)
            {
                return T{column<std::tuple_element_t<I, T>>(s, static_cast<int>(I))...};
            }
        (std::make_index_sequence<std::tuple_size_v<T>>{});
        else return column<T>(s, 0);
    }

    sqlite3* db_ = nullptr;
    std::vector<std::pair<const char*, sqlite3_stmt*>> cache_;
};

/// One figure from a database (the totals checked after W3/W4/W5), through RAW.
inline std::int64_t scalar(const fs::path& path, const char* sql)
{
    raw_conn c(path, true);
    return c.query_one<std::int64_t>(sql).value_or(-1);
}

} // namespace dbactor_bench
