#include <dbactor/migration.hpp>

#include <dbactor/detail/migration_sections.hpp>
#include <dbactor/detail/sql_text.hpp>
#include <dbactor/error.hpp>

#include <fmt/format.h>
#include <openssl/evp.h>

#include <cctype>
#include <charconv>
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

std::optional<parsed_name> parse_file_name(const std::string& file, const std::string& where)
{
    static const std::regex pattern(R"(^([0-9]{4,})_([A-Za-z0-9][A-Za-z0-9_\-]*?)(\.down)?\.sql$)");
    std::smatch m;
    if (!std::regex_match(file, m, pattern))
        return std::nullopt;
    const auto digits = m[1].str();
    std::int64_t version = 0;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), version);
    if (ec != std::errc{} || end != digits.data() + digits.size())
        throw error(
            errc::migration_source_invalid,
            fmt::format("Migration file '{}' has a version number ({}) too large for a 64-bit integer. "
                        "Number migrations 0001, 0002, … in order.",
                        where,
                        digits));
    return parsed_name{version, m[2].str(), m[3].matched};
}

[[noreturn]] void invalid(std::string message)
{
    throw error(errc::migration_source_invalid, std::move(message));
}

/// A comment that reads like a directive but is not written as one: "dbactor" in any case followed by a
/// colon (`-- DBACTOR: …`, `-- dbactor : …`) or by a directive's word (`-- dbactor no-transaction`).
bool looks_like_directive(std::string_view body)
{
    std::string low(body.substr(0, std::min<std::size_t>(body.size(), 40)));
    for (auto& c : low)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (!low.starts_with("dbactor"))
        return false;
    std::string_view rest(low);
    rest.remove_prefix(7);
    rest.remove_prefix(std::min(rest.find_first_not_of(" \t"), rest.size()));
    return rest.starts_with(":") || rest.starts_with("no-transaction") || rest.starts_with("foreign-keys") ||
           rest.starts_with("shard-key");
}

std::string_view trim_end(std::string_view s)
{
    const auto e = s.find_last_not_of(" \t\r");
    return e == std::string_view::npos ? std::string_view() : s.substr(0, e + 1);
}

} // namespace

migration_set migration_set::from_files(std::vector<std::pair<std::string, std::string>> files,
                                        std::string_view origin)
{
    std::map<std::int64_t, migration> by_version;
    std::vector<std::pair<parsed_name, std::pair<std::string, std::string>>> downs;
    for (auto& [file, text] : files) {
        const std::string where = fmt::format("{}/{}", origin, file);
        auto p = parse_file_name(file, where);
        if (!p)
            invalid(fmt::format("Migration file '{}' is not named NNNN_name.sql (four or more digits, an "
                                "underscore, a name of letters, digits, '_' or '-'). Rename it.",
                                where));
        if (p->version <= 0)
            invalid(fmt::format("Migration file '{}' has version 0; versions start at 0001.", where));
        // SQLite stops reading SQL at a NUL byte, so the rest of the file would silently not run. A file
        // saved as UTF-16 (every other byte NUL) is the usual cause.
        if (const auto nul = detail::first_nul(text))
            invalid(
                fmt::format("{}:{}:{}: the migration file contains a NUL byte; SQL files must be UTF-8 text "
                            "(a file saved as UTF-16 looks like this). Re-save it as UTF-8.",
                            where,
                            nul->first,
                            nul->second));
        text = std::string(
            detail::without_bom(text)); // an editor's BOM is not part of the SQL (nor of the checksum)
        if (p->down) {
            parse_migration_directives(text, where); // validated now, applied when it runs
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
        auto sections = detail::read_sections(text, where); // goose and dbmate files: Up and Down in one
        const auto d = parse_migration_directives(sections.up, where);
        it->second = migration{p->version, p->name, std::move(sections.up), std::move(sections.down), where};
        it->second.no_transaction = d.no_transaction || sections.no_transaction;
        it->second.foreign_keys_off = d.foreign_keys_off;
    }
    for (auto& [p, src] : downs) {
        auto it = by_version.find(p.version);
        if (it == by_version.end() || it->second.name != p.name)
            invalid(fmt::format("Down migration '{}' has no matching up migration {:04}_{}.sql.",
                                src.first,
                                p.version,
                                p.name));
        if (it->second.down_sql)
            invalid(
                fmt::format("Migration '{}' has a Down section of its own and also the down file '{}'. Keep "
                            "one of them.",
                            it->second.source,
                            src.first));
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
    namespace fs = std::filesystem;
    // Only error_code overloads here: a directory that cannot be read is a bad migration source
    // (errc::migration_source_invalid with a sentence), not a std::filesystem::filesystem_error.
    std::error_code ec;
    const bool is_dir = fs::is_directory(dir, ec);
    if (ec && ec != std::errc::no_such_file_or_directory && ec != std::errc::not_a_directory)
        invalid(
            fmt::format("Cannot read the migrations directory '{}': {}. Make it (and the directories above "
                        "it) readable and searchable (chmod u+rx) for the user running this program.",
                        dir.string(),
                        ec.message()));
    if (!is_dir)
        invalid(fmt::format("The migrations directory '{}' does not exist or is not a directory. Pass the "
                            "directory that holds the NNNN_name.sql files.",
                            dir.string()));
    std::vector<std::pair<std::string, std::string>> files;
    fs::directory_iterator it(dir, ec);
    for (const fs::directory_iterator end; !ec && it != end; it.increment(ec)) {
        const auto& entry = *it;
        if (entry.path().extension() != ".sql")
            continue; // README.md and the like live next to the migrations
        std::error_code fe;
        const bool regular = entry.is_regular_file(fe);
        if (fe)
            invalid(
                fmt::format("Cannot read the migration file '{}': {}. Fix it or remove it (a broken symbolic "
                            "link, or missing permissions), then run again.",
                            entry.path().string(),
                            fe.message()));
        if (!regular)
            continue;
        std::ifstream in(entry.path(), std::ios::binary);
        if (!in)
            invalid(
                fmt::format("Cannot open the migration file '{}' for reading. Make it readable (chmod u+r) "
                            "for the user running this program.",
                            entry.path().string()));
        std::ostringstream text;
        text << in.rdbuf();
        if (in.bad())
            invalid(
                fmt::format("Reading the migration file '{}' failed part-way (an I/O error). Check the disk "
                            "and run again.",
                            entry.path().string()));
        files.emplace_back(entry.path().filename().string(), text.str());
    }
    if (ec)
        invalid(fmt::format("Cannot list the migrations directory '{}': {}. Make it readable and searchable "
                            "(chmod u+rx) for the user running this program.",
                            dir.string(),
                            ec.message()));
    return from_files(std::move(files), dir.string());
}

migration_directives parse_migration_directives(std::string_view sql, std::string_view source)
{
    sql = detail::without_bom(sql);
    migration_directives d;
    std::size_t pos = 0;
    int line_no = 0;
    while (pos < sql.size()) {
        const auto nl = sql.find('\n', pos);
        std::string_view line =
            sql.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
        pos = nl == std::string_view::npos ? sql.size() : nl + 1;
        ++line_no;
        const auto first = line.find_first_not_of(" \t\r");
        if (first == std::string_view::npos)
            continue; // blank lines may separate the leading comments
        line = line.substr(first);
        if (!line.starts_with("--"))
            break; // the leading comments end at the first statement
        std::string_view body = line.substr(2);
        body.remove_prefix(std::min(body.find_first_not_of(" \t"), body.size()));
        if (!body.starts_with("dbactor:")) {
            if (looks_like_directive(body)) // silently ignoring it would run the file without it
                invalid(fmt::format("{}:{}: '{}' looks like a directive but is not one: write it exactly as "
                                    "'-- dbactor: no-transaction' or '-- dbactor: foreign-keys=off' (lower "
                                    "case, a colon after 'dbactor'), or reword the comment.",
                                    source,
                                    line_no,
                                    trim_end(line)));
            continue;
        }
        body.remove_prefix(8);
        // One or more directives, separated by spaces or commas.
        std::string word;
        auto flush = [&] {
            if (word.empty())
                return;
            if (word == "no-transaction")
                d.no_transaction = true;
            else if (word == "foreign-keys=off")
                d.foreign_keys_off = true;
            else
                invalid(fmt::format("{}:{}: unknown directive '-- dbactor: {}'. The directives are "
                                    "'-- dbactor: no-transaction' and '-- dbactor: foreign-keys=off'.",
                                    source,
                                    line_no,
                                    word));
            word.clear();
        };
        for (char ch : body) {
            if (ch == ' ' || ch == '\t' || ch == ',' || ch == '\r')
                flush();
            else
                word.push_back(ch);
        }
        flush();
    }
    return d;
}

std::string migration_checksum(std::string_view sql)
{
    sql = detail::without_bom(sql);
    std::string normal;
    normal.reserve(sql.size());
    std::size_t pos = 0;
    while (pos <= sql.size()) {
        const auto nl = sql.find('\n', pos);
        std::string_view line =
            sql.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
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
