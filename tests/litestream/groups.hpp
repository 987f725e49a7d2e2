// The litestream tests' data: the two schemas the writer uses and what a complete group is in each.
#pragma once

#include <dbactor/dbactor.hpp>

#include <cstdint>
#include <map>
#include <string>

namespace lsgroups {

/// Rows per group (members per guild with the bot's schema).
inline constexpr int group_rows = 10;

/// The `groups` schema (one table), or the example bot's migrations (migrations/bot).
inline dbactor::migration_set schema(bool bot)
{
    if (bot)
        return dbactor::migration_set::from_directory(DBACTOR_SOURCE_DIR "/migrations/bot");
    return dbactor::migration_set::from_files(
        {{"0001_items.sql",
          "CREATE TABLE items(group_id INTEGER NOT NULL, part INTEGER NOT NULL, payload TEXT NOT NULL, "
          "PRIMARY KEY (group_id, part));"}});
}

/// For each group present in the database, how complete it is: the rows it holds; a group is complete when
/// it holds group_rows (+ its guild row and its warning with the bot's schema, counted as one each).
inline std::string per_group_query(bool bot)
{
    if (!bot)
        return "SELECT group_id, count(*) FROM items GROUP BY group_id";
    return "SELECT g.guild_id, (SELECT count(*) FROM members AS m WHERE m.guild_id = g.guild_id) + "
           "(SELECT count(*) FROM warnings AS w WHERE w.guild_id = g.guild_id) + 1 FROM guild_settings AS g "
           "UNION ALL SELECT m.guild_id, count(*) FROM members AS m WHERE m.guild_id NOT IN (SELECT guild_id "
           "FROM guild_settings) GROUP BY m.guild_id";
}

/// The rows a complete group holds, as per_group_query counts them.
inline std::int64_t complete(bool bot)
{
    return bot ? group_rows + 2 : group_rows;
}

} // namespace lsgroups
