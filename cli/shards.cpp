// dbtool --shards N: the loop over a shard set's files, and the one JSON document of their reports.
#include "shards.hpp"

#include "exit_codes.hpp"
#include "output.hpp"

#include <dbactor/shard_set.hpp>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <iostream>
#include <vector>

namespace dbtool {
namespace {

constexpr std::string_view placeholder = "{shard}";

void check_patterns(const global_options& g, std::string_view command, const std::string* to)
{
    const bool pattern = g.db.find(placeholder) != std::string::npos;
    if (g.shards == 0 && pattern)
        throw usage_error(fmt::format("--db '{}' holds {{shard}} but --shards N was not given: say how many "
                                      "shards the set has (`dbtool --shards 4 --db '{}' {}`).",
                                      g.db,
                                      g.db,
                                      command));
    if (g.shards == 0)
        return;
    if (g.shards > 1 && !pattern)
        throw usage_error(fmt::format("--shards {} needs a {{shard}} pattern in --db (e.g. "
                                      "'var/bot-{{shard}}.db'); '{}' names one file.",
                                      g.shards,
                                      g.db));
    if (to && g.shards > 1 && to->find(placeholder) == std::string::npos)
        throw usage_error(fmt::format("With --shards {} the backup's TO needs a {{shard}} pattern too (e.g. "
                                      "'backup/bot-{{shard}}.db'); '{}' would be written {} times.",
                                      g.shards,
                                      *to,
                                      g.shards));
}

} // namespace

int run_per_shard(global_options& g,
                  std::string_view command,
                  std::string* to,
                  const std::function<int()>& one)
{
    check_patterns(g, command, to);
    if (g.shards == 0)
        return one();
    const std::string db_pattern = g.db;
    const std::string to_pattern = to ? *to : std::string();
    std::vector<nlohmann::json> documents;
    if (g.json)
        capture_json(&documents);
    std::vector<int> codes;
    for (std::size_t i = 0; i < g.shards; ++i) {
        g.db = dbactor::shard_path(db_pattern, i);
        g.shard = dbactor::shard_identity{i, g.shards};
        if (to)
            *to = dbactor::shard_path(to_pattern, i);
        if (!g.json)
            std::cout << fmt::format("{}shard {} of {}: {}\n", i ? "\n" : "", i, g.shards, g.db)
                      << std::flush;
        const std::size_t before = documents.size();
        codes.push_back(one());
        if (g.json && documents.size() == before) // a command that printed nothing still has a place
            documents.push_back({{"path", g.db}, {"exit_code", codes.back()}});
        if (g.json)
            documents.back()["shard"] = i;
        if (codes.back() == exit_code::interrupted)
            break;
    }
    g.db = db_pattern;
    g.shard.reset();
    if (to)
        *to = to_pattern;
    const int code = most_severe(codes);
    if (g.json) {
        capture_json(nullptr);
        print_json({{"command", command},
                    {"pattern", db_pattern},
                    {"shard_count", g.shards},
                    {"shards", documents},
                    {"exit_code", code}});
    }
    else if (g.shards > 1) {
        std::size_t worst = 0;
        for (std::size_t i = 0; i < codes.size(); ++i)
            if (codes[i] == code) {
                worst = i;
                break;
            }
        std::cout << fmt::format("\n{} shards: exit code {}{}\n",
                                 g.shards,
                                 code,
                                 code == 0 ? " (all ok)"
                                           : fmt::format(" (the most severe, first from shard {}: {})",
                                                         worst,
                                                         dbactor::shard_path(db_pattern, worst)));
    }
    return code;
}

} // namespace dbtool
