// W1–W4's SQL and requests (a point read, a single-row insert, every row in one request), and tally().
#pragma once

#include "dataset.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace dbactor_bench {

// Every request is written once, for any connection type C with execute / query_one / query: dbactor's
// connection, and the RAW and MUTEX adapters (raw.hpp, mutex.hpp). A request has count() and step(k) (its
// requests in order; one here), writes() and operator()(C&).

constexpr const char* kv_schema =
    "CREATE TABLE kv(id INTEGER PRIMARY KEY, guild INTEGER NOT NULL, val TEXT NOT NULL)";
constexpr const char* kv_select = "SELECT val FROM kv WHERE id = ?";
constexpr const char* kv_insert = "INSERT INTO kv(id, guild, val) VALUES (?, ?, ?)";

/// W1/W2: one point read.
struct kv_get
{
    std::int64_t id;
    std::size_t count() const { return 1; }
    const kv_get& step(std::size_t) const { return *this; }
    bool writes() const { return false; }
    template <class C>
    std::optional<std::string> operator()(C& c) const
    {
        return c.template query_one<std::string>(kv_select, id);
    }
};

/// W3: one single-row insert.
struct kv_put
{
    const kv_row* row;
    std::size_t count() const { return 1; }
    const kv_put& step(std::size_t) const { return *this; }
    bool writes() const { return true; }
    template <class C>
    std::int64_t operator()(C& c) const
    {
        return c.execute(kv_insert, row->id, row->guild, row->val);
    }
};

/// W4: every row in one request.
struct kv_put_all
{
    const std::vector<kv_row>* rows;
    std::size_t count() const { return 1; }
    const kv_put_all& step(std::size_t) const { return *this; }
    bool writes() const { return true; }
    template <class C>
    std::int64_t operator()(C& c) const
    {
        std::int64_t n = 0;
        for (const auto& r : *rows)
            n += c.execute(kv_insert, r.id, r.guild, r.val);
        return n;
    }
};

/// What a request's result adds to run_state::acc (rows found, rows changed, ...).
inline std::int64_t tally(const std::optional<std::string>& v)
{
    return v ? 1 : 0;
}
inline std::int64_t tally(std::int64_t v)
{
    return v;
}

} // namespace dbactor_bench
