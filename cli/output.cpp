// dbtool's output: JSON documents and the names they use.
#include "output.hpp"

#include "interrupt.hpp"

#include <iostream>
#include <unistd.h>

namespace dbtool {

nlohmann::json to_json(const std::vector<finding>& f)
{
    auto a = nlohmann::json::array();
    for (const auto& x : f)
        a.push_back({{"code", x.code}, {"kind", x.kind}, {"message", x.message}});
    return a;
}

const char* state_name(dbactor::migration_status::state s) noexcept
{
    using st = dbactor::migration_status::state;
    switch (s) {
    case st::applied: return "applied";
    case st::pending: return "pending";
    case st::modified: return "modified";
    case st::unknown: return "unknown";
    }
    return "?";
}

nlohmann::json to_json(const dbactor::migration_status& m)
{
    nlohmann::json j = {{"version", m.version},
                        {"name", m.name},
                        {"state", state_name(m.status)},
                        {"checksum", m.checksum},
                        {"reversible", m.reversible}};
    if (!m.applied_at.empty()) {
        j["applied_at"] = m.applied_at;
        j["duration_ms"] = m.duration_ms;
    }
    if (!m.ledger_name.empty())
        j["applied_as"] = m.ledger_name; // renamed after it was applied
    return j;
}

namespace {
std::vector<nlohmann::json>* g_captured = nullptr;
} // namespace

void capture_json(std::vector<nlohmann::json>* into) noexcept
{
    g_captured = into;
}

void print_json(const nlohmann::json& j) noexcept
{
    if (g_captured) {
        try {
            g_captured->push_back(j);
            return;
        }
        catch (...) {
            // Out of memory: print it after all, so that the shard's report is not lost.
        }
    }
    mark_output_started();
    try {
        std::cout << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << std::endl;
    }
    catch (...) {
        // Only allocation can fail here; still leave exactly one document.
        static constexpr char fallback[] =
            "{\"error\": {\"kind\": \"internal\", \"message\": \"dbtool could not "
            "format its output.\"}, \"exit_code\": 1}\n";
        std::cout.clear();
        write_all(STDOUT_FILENO, fallback, sizeof fallback - 1);
    }
}

} // namespace dbtool
