#include <dbactor/detail/pragmas.hpp>

#include <dbactor/detail/statement.hpp>
#include <dbactor/error.hpp>

#include <fmt/format.h>
#include <sqlite3.h>

#include <cctype>

namespace dbactor::detail {

std::string lower(std::string s)
{
    for (auto& c : s)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

std::string expected_readback(const std::string& name, const std::string& value)
{
    const std::string n = lower(name), v = lower(value);
    if (n == "synchronous") {
        if (v == "off")
            return "0";
        if (v == "normal")
            return "1";
        if (v == "full")
            return "2";
        if (v == "extra")
            return "3";
    }
    if (v == "on" || v == "true" || v == "yes")
        return "1";
    if (v == "off" || v == "false" || v == "no")
        return "0";
    return v;
}

std::vector<std::pair<std::string, std::string>> boot_pragmas(const options& o)
{
    std::vector<std::pair<std::string, std::string>> pragmas = {
        {"journal_mode", "wal"},
        {"synchronous", o.synchronous == synchronous_mode::full ? "full" : "normal"},
        {"foreign_keys", "on"},
        {"busy_timeout", std::to_string(o.busy_timeout.count())},
        {"journal_size_limit", std::to_string(o.journal_size_limit)},
    };
    pragmas.insert(pragmas.end(), o.pragmas.begin(), o.pragmas.end());
    return pragmas;
}

std::vector<std::string> problem_lines(const std::vector<std::string>& rows, std::size_t limit)
{
    std::vector<std::string> lines;
    for (const auto& row : rows) {
        std::size_t pos = 0;
        while (pos <= row.size() && lines.size() < limit) {
            const auto nl = row.find('\n', pos);
            auto line = row.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
            if (!line.empty() && !line.starts_with("*** in database"))
                lines.push_back(std::move(line));
            if (nl == std::string::npos)
                break;
            pos = nl + 1;
        }
    }
    return lines;
}

void verify_pragmas_unchanged(sqlite3* db, const boot_summary& report)
{
    for (const auto& p : report.pragmas) {
        std::string now;
        try {
            now = lower(text_value(db, "PRAGMA " + p.name));
        }
        catch (const std::exception& e) {
            throw error(errc::pragma_mismatch,
                        fmt::format("Boot of '{}': reading PRAGMA {} back after the migrations failed: {}.",
                                    report.path,
                                    p.name,
                                    e.what()));
        }
        if (now != p.actual)
            throw error(
                errc::pragma_mismatch,
                fmt::format("Boot of '{}' failed after the migrations: PRAGMA {} reads '{}', but boot had "
                            "set it to '{}' (read back as '{}'). A migration changed it and did not set "
                            "it back; find it with `dbtool status`, and leave the pragma alone there (or "
                            "set it in options::pragmas).",
                            report.path,
                            p.name,
                            now,
                            p.requested,
                            p.actual));
    }
}

} // namespace dbactor::detail
