#include <dbactor/detail/connection_state.hpp>

#include <dbactor/detail/pragmas.hpp>

#include <dbactor/detail/sql_text.hpp>
#include <dbactor/detail/statement.hpp>

#include <fmt/format.h>
#include <sqlite3.h>

#include <cctype>

namespace dbactor::detail {
namespace {

constexpr const char* readable[] = {"foreign_keys",
                                    "legacy_alter_table",
                                    "defer_foreign_keys",
                                    "recursive_triggers",
                                    "writable_schema",
                                    "trusted_schema",
                                    "query_only"};

} // namespace

connection_state read_connection_state(sqlite3* db)
{
    connection_state s;
    for (const char* name : readable)
        s.emplace_back(name, text_value(db, fmt::format("PRAGMA {}", name)));
    // LIKE is case-insensitive for ASCII unless case_sensitive_like is on.
    s.emplace_back("case_sensitive_like", text_value(db, "SELECT 'a' NOT LIKE 'A'"));
    return s;
}

std::optional<state_change> restore_connection_state(sqlite3* db, const connection_state& before)
{
    std::optional<state_change> first;
    const auto now = read_connection_state(db);
    for (std::size_t i = 0; i < before.size(); ++i) {
        if (now[i].second == before[i].second)
            continue;
        if (!first)
            first = state_change{before[i].first, before[i].second, now[i].second};
        const std::string sql = fmt::format("PRAGMA {} = {}", before[i].first, before[i].second);
        sqlite3_exec(
            db, sql.c_str(), nullptr, nullptr, nullptr); // best effort: the failure is reported anyway
    }
    return first;
}

std::string where_set(std::string_view sql, std::string_view source, std::string_view name)
{
    const std::string text = lower(std::string(sql)), wanted = lower(std::string(name));
    for (std::size_t at = text.find(wanted); at != std::string::npos; at = text.find(wanted, at + 1)) {
        const auto p = text.rfind("pragma", at);
        if (p == std::string::npos || text.find(';', p) < at)
            continue;
        const auto [line, col] = line_col(sql, p);
        return fmt::format("{}:{}:{}", source, line, col);
    }
    return std::string(source);
}

} // namespace dbactor::detail
