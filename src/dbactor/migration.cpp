#include <dbactor/migration.hpp>

#include <dbactor/error.hpp>

#include <fmt/format.h>
#include <openssl/evp.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>

namespace dbactor {
namespace {

struct parsed_name
{
    std::int64_t version;
    std::string name;
    bool down;
};

std::optional<parsed_name> parse_file_name(const std::string& file)
{
    static const std::regex pattern(R"(^([0-9]{4,})_([A-Za-z0-9][A-Za-z0-9_\-]*?)(\.down)?\.sql$)");
    std::smatch m;
    if (!std::regex_match(file, m, pattern))
        return std::nullopt;
    return parsed_name{std::stoll(m[1].str()), m[2].str(), m[3].matched};
}

[[noreturn]] void invalid(std::string message)
{
    throw error(errc::migration_source_invalid, std::move(message));
}

} // namespace

migration_set migration_set::from_files(std::vector<std::pair<std::string, std::string>> files,
                                        std::string_view origin)
{
    std::map<std::int64_t, migration> by_version;
    std::vector<std::pair<parsed_name, std::pair<std::string, std::string>>> downs;
    for (auto& [file, text] : files) {
        const std::string where = fmt::format("{}/{}", origin, file);
        auto p = parse_file_name(file);
        if (!p)
            invalid(fmt::format("Migration file '{}' is not named NNNN_name.sql (four or more digits, an "
                                "underscore, a name of letters, digits, '_' or '-'). Rename it.",
                                where));
        if (p->version <= 0)
            invalid(fmt::format("Migration file '{}' has version 0; versions start at 0001.", where));
        if (p->down) {
            downs.push_back({*p, {where, std::move(text)}});
            continue;
        }
        auto [it, inserted] = by_version.try_emplace(p->version);
        if (!inserted)
            invalid(fmt::format("Migration files '{}' and '{}' both have version {}. Give each migration its "
                                "own number.",
                                it->second.source,
                                where,
                                p->version));
        it->second = migration{p->version, p->name, std::move(text), std::nullopt, where};
    }
    for (auto& [p, src] : downs) {
        auto it = by_version.find(p.version);
        if (it == by_version.end() || it->second.name != p.name)
            invalid(fmt::format("Down migration '{}' has no matching up migration {:04}_{}.sql.",
                                src.first,
                                p.version,
                                p.name));
        it->second.down_sql = std::move(src.second);
    }
    migration_set set;
    std::int64_t expected = 1;
    for (auto& [version, m] : by_version) {
        if (version != expected)
            invalid(fmt::format("Migration '{}' has version {}, but version {} is missing. Versions must "
                                "run 1, 2, 3, … without gaps.",
                                m.source,
                                version,
                                expected));
        ++expected;
        set.items_.push_back(std::move(m));
    }
    return set;
}

migration_set migration_set::from_directory(const std::filesystem::path& dir)
{
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec))
        invalid(fmt::format("The migrations directory '{}' does not exist or is not a directory. Pass the "
                            "directory that holds the NNNN_name.sql files.",
                            dir.string()));
    std::vector<std::pair<std::string, std::string>> files;
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
        if (!entry.is_regular_file() || entry.path().extension() != ".sql")
            continue;
        std::ifstream in(entry.path(), std::ios::binary);
        if (!in)
            invalid(fmt::format("Cannot read migration file '{}'. Check its permissions.",
                                entry.path().string()));
        std::ostringstream text;
        text << in.rdbuf();
        files.emplace_back(entry.path().filename().string(), text.str());
    }
    return from_files(std::move(files), dir.string());
}

std::string migration_checksum(std::string_view sql)
{
    std::string normal;
    normal.reserve(sql.size());
    std::size_t pos = 0;
    while (pos <= sql.size()) {
        const auto nl = sql.find('\n', pos);
        std::string_view line = sql.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
        const auto end = line.find_last_not_of(" \t\r\f\v");
        line = end == std::string_view::npos ? std::string_view() : line.substr(0, end + 1);
        normal.append(line);
        if (nl == std::string_view::npos)
            break;
        normal.push_back('\n');
        pos = nl + 1;
    }
    while (!normal.empty() && normal.back() == '\n')
        normal.pop_back();

    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_Digest(normal.data(), normal.size(), digest, &len, EVP_sha256(), nullptr);
    std::string hex;
    hex.reserve(len * 2);
    for (unsigned int i = 0; i < len; ++i)
        hex += fmt::format("{:02x}", digest[i]);
    return hex;
}

} // namespace dbactor
