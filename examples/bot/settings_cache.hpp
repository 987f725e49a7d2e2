// bot::settings_cache: guild settings kept in memory, invalidated through the database's change feed.
#pragma once

#include "requests.hpp"
#include "summary.hpp"

#include <dbactor/change_feed.hpp>

#include <cstdint>
#include <mutex>
#include <optional>
#include <unordered_map>

namespace bot {

/// Guild settings read once and kept until the change feed says their row changed (guild_settings' rowid
/// is the guild id). A read that raced with a change is not kept: the generation moves with every
/// invalidation, and put() refuses a value read before the last one.
/// Thread safety: every member from any thread (one mutex; handlers of many strands share it).
class settings_cache
{
public:
    explicit settings_cache(counters& c) : counters_(c) {}

    struct lookup
    {
        std::optional<guild_settings> value;
        std::uint64_t generation = 0; ///< pass to put() with the value read from the database on a miss
    };

    lookup get(std::uint64_t guild)
    {
        std::lock_guard lock(m_);
        const auto it = entries_.find(guild);
        if (it == entries_.end()) {
            ++counters_.settings_misses;
            return {std::nullopt, generation_};
        }
        ++counters_.settings_hits;
        return {it->second, generation_};
    }

    void put(std::uint64_t guild, const guild_settings& s, std::uint64_t read_at)
    {
        std::lock_guard lock(m_);
        if (read_at == generation_)
            entries_.insert_or_assign(guild, s);
    }

    /// One event of the feed on guild_settings: the rows it names are dropped; everything when it cannot say
    /// which (coalesced, another process's commit, more rows than it lists).
    void apply(const dbactor::commit_event& ev)
    {
        std::lock_guard lock(m_);
        ++generation_;
        bool all = ev.lagged || ev.external;
        for (const auto& t : ev.changes) {
            all = all || !t.rowids_complete;
            for (const std::int64_t rowid : t.rowids)
                counters_.settings_invalidated += entries_.erase(static_cast<std::uint64_t>(rowid));
        }
        if (all) {
            counters_.settings_invalidated += entries_.size();
            entries_.clear();
        }
    }

private:
    counters& counters_;
    std::mutex m_;
    std::unordered_map<std::uint64_t, guild_settings> entries_;
    std::uint64_t generation_ = 0;
};

} // namespace bot
