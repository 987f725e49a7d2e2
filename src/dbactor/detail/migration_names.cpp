#include <dbactor/detail/migration_names.hpp>

#include <dbactor/detail/sql_text.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <regex>

namespace dbactor::detail {
namespace {

[[noreturn]] void invalid(std::string message)
{
    throw error(errc::migration_source_invalid, std::move(message));
}

constexpr const char* names_we_read =
    " The names dbactor reads:\n"
    "    0001_create_users.sql             sequential: 1, 2, 3, … without gaps (four to nine digits)\n"
    "    20210422143411_create_users.sql   timestamped: ten or more digits, gaps allowed (sqlx, goose, "
    "dbmate)\n"
    "    V_name.up.sql + V_name.down.sql   an up file with its down file (sqlx -r, golang-migrate)\n"
    "    V_name.sql + V_name.down.sql      the same";

/// What to rename a file that is not named as dbactor reads to, as a sentence.
} // namespace

std::string rename_advice(const std::string& file)
{
    static const std::regex flyway(R"(^[VvUu]([0-9]+)(?:[._][0-9]+)*__(.+)\.sql$)");
    static const std::regex few_digits(R"(^([0-9]{1,3})_(.+)\.sql$)");
    static const std::regex dashed(R"(^([0-9]{4})-([0-9]{2})-([0-9]{2})-?([0-9]{6})_(.+)\.sql$)");
    auto safe = [](std::string name) {
        for (auto& ch : name)
            if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '_' && ch != '-' && ch != '.')
                ch = '_';
        return name;
    };
    // The version as at least four digits, from its text: a Flyway version may not fit in an integer.
    auto four_digits = [](std::string digits) {
        digits.erase(0, std::min(digits.find_first_not_of('0'), digits.size()));
        return digits.size() < 4 ? std::string(4 - digits.size(), '0') + digits : digits;
    };
    std::smatch m;
    if (std::regex_match(file, m, flyway))
        return fmt::format(" It looks like a Flyway/refinery name: rename it to '{}_{}' (sequential).",
                           four_digits(m[1].str()),
                           safe(m[2].str()) + ".sql");
    if (std::regex_match(file, m, few_digits))
        return fmt::format(" Rename it to '{}_{}' (at least four digits).",
                           four_digits(m[1].str()),
                           safe(m[2].str()) + ".sql");
    if (std::regex_match(file, m, dashed))
        return fmt::format(" Rename it to '{}{}{}{}_{}' (a timestamp of digits only).",
                           m[1].str(),
                           m[2].str(),
                           m[3].str(),
                           m[4].str(),
                           safe(m[5].str()) + ".sql");
    return names_we_read;
}

std::optional<parsed_name> parse_file_name(const std::string& file, const std::string& where)
{
    static const std::regex pattern(R"(^([0-9]{4,})_([A-Za-z0-9][A-Za-z0-9_\-]*?)(\.up|\.down)?\.sql$)");
    std::smatch m;
    if (!std::regex_match(file, m, pattern))
        return std::nullopt;
    const auto digits = m[1].str();
    std::int64_t version = 0;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), version);
    if (ec != std::errc{} || end != digits.data() + digits.size())
        throw error(errc::migration_source_invalid,
                    fmt::format("Migration file '{}' has a version number ({}) too large for a 64-bit "
                                "integer. Number migrations 0001, 0002, … or with a timestamp "
                                "YYYYMMDDHHMMSS (14 digits).",
                                where,
                                digits));
    const auto kind = !m[3].matched         ? file_kind::up
                      : m[3].str() == ".up" ? file_kind::up_pair
                                            : file_kind::down;
    return parsed_name{version, m[2].str(), kind, digits.size()};
}

bool has_statement(std::string_view sql)
{
    std::size_t pos = 0;
    while ((pos = skip_blank(sql, pos)) < sql.size()) {
        if (sql[pos] != ';')
            return true;
        ++pos;
    }
    return false;
}

[[noreturn]] void refuse_diesel_layout(const std::filesystem::path& dir, std::vector<std::string> names)
{
    std::sort(names.begin(), names.end());
    std::vector<std::string> moves;
    for (const auto& n : names) {
        const auto us = n.find('_');
        std::string version;
        for (char ch : n.substr(0, us))
            if (std::isdigit(static_cast<unsigned char>(ch)))
                version.push_back(ch);
        const std::string stem =
            fmt::format("{}_{}", version, us == std::string::npos ? std::string("name") : n.substr(us + 1));
        moves.push_back(fmt::format("mv '{0}/up.sql' '{1}.sql'; mv '{0}/down.sql' '{1}.down.sql'", n, stem));
    }
    invalid(fmt::format("The migrations directory '{}' holds diesel-style migration directories ({} of them, "
                        "each with up.sql and down.sql), which dbactor does not read. Put each migration in "
                        "two files of the directory itself, named by its timestamp; in '{}':\n    {}",
                        dir.string(),
                        names.size(),
                        dir.string(),
                        fmt::join(moves, "\n    ")));
}

void problems::throw_if_any(std::string_view origin)
{
    if (list_.empty())
        return;
    std::stable_sort(
        list_.begin(), list_.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    if (list_.size() == 1)
        throw error(errc::migration_source_invalid, list_.front().second);
    std::string all = fmt::format(
        "{} problems in the migrations of '{}' (fix them all, then run again):", list_.size(), origin);
    for (const auto& [version, message] : list_)
        all += "\n  - " + message;
    throw error(errc::migration_source_invalid, std::move(all));
}

} // namespace dbactor::detail
