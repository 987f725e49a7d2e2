#include <dbactor/migration.hpp>

#include <dbactor/detail/migration_names.hpp>
#include <dbactor/detail/migration_sections.hpp>
#include <dbactor/detail/sql_text.hpp>
#include <dbactor/error.hpp>

#include <fmt/format.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>

namespace dbactor {
namespace {

using detail::file_kind;
using detail::has_statement;
using detail::parse_file_name;
using detail::parsed_name;
using detail::problems;
using detail::refuse_diesel_layout;
using detail::rename_advice;
using detail::timestamp_digits;

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

namespace {

/// A migration source as it is read: its migrations by version, the down files to attach, the problems.
struct set_builder
{
    struct down_file
    {
        parsed_name name;
        std::string where, text;
    };
    problems found;
    std::map<std::int64_t, migration> by_version;
    std::vector<down_file> downs;
    std::vector<std::string> sequential, timestamped;

    void add_file(const std::string& file, std::string text, std::string_view origin)
    {
        const std::string where = fmt::format("{}/{}", origin, file);
        std::optional<parsed_name> p;
        bool too_large = false;
        found.collect(0, [&] {
            too_large = true;
            p = parse_file_name(file, where);
            too_large = false;
        });
        if (too_large)
            return;
        if (!p) {
            found.add(0,
                      fmt::format("Migration file '{}' is not named as dbactor reads migrations.{}",
                                  where,
                                  rename_advice(file)));
            return;
        }
        if (p->version <= 0) {
            found.add(0, fmt::format("Migration file '{}' has version 0; versions start at 0001.", where));
            return;
        }
        // SQLite stops reading SQL at a NUL byte, so the rest of the file would silently not run. A file
        // saved as UTF-16 (every other byte NUL) is the usual cause.
        if (const auto nul = detail::first_nul(text)) {
            found.add(p->version,
                      fmt::format("{}:{}:{}: the migration file contains a NUL byte; SQL files must be UTF-8 "
                                  "text (a file saved as UTF-16 looks like this). Re-save it as UTF-8.",
                                  where,
                                  nul->first,
                                  nul->second));
            return;
        }
        text = std::string(
            detail::without_bom(text)); // an editor's BOM is not part of the SQL (nor of the checksum)
        if (p->kind == file_kind::down) {
            found.collect(p->version, [&] { parse_migration_directives(text, where); }); // applied when run
            downs.push_back({*p, where, std::move(text)});
            return;
        }
        add_up(*p, std::move(text), where);
    }

    void add_up(const parsed_name& n, std::string text, const std::string& where)
    {
        (n.digits >= timestamp_digits ? timestamped : sequential).push_back(where);
        const auto emplaced = by_version.try_emplace(n.version);
        const auto it = emplaced.first; // not a structured binding: clang 14 cannot capture one below
        if (!emplaced.second) {
            found.add(
                n.version,
                fmt::format("Migration files '{}' and '{}' both have version {}. Give each migration its "
                            "own number.",
                            it->second.source,
                            where,
                            n.version));
            return;
        }
        it->second.source = where;
        found.collect(n.version, [&] {
            auto sections = detail::read_sections(text, where); // goose and dbmate: Up and Down in one file
            const auto d = parse_migration_directives(sections.up, where);
            migration m{n.version, n.name, std::move(sections.up), std::nullopt, where};
            if (sections.down) {
                m.down_source = where;
                if (has_statement(*sections.down))
                    m.down_sql = std::move(sections.down);
                else
                    m.empty_down = where + " (its Down section)";
            }
            m.no_transaction = d.no_transaction || sections.no_transaction;
            m.foreign_keys_off = d.foreign_keys_off;
            it->second = std::move(m);
        });
    }

    void attach_downs()
    {
        for (auto& d : downs) {
            auto it = by_version.find(d.name.version);
            if (it == by_version.end() || it->second.name != d.name.name) {
                found.add(d.name.version,
                          fmt::format("Down migration '{}' has no matching up migration {:04}_{}.sql.",
                                      d.where,
                                      d.name.version,
                                      d.name.name));
                continue;
            }
            auto& m = it->second;
            if (!m.down_source.empty()) {
                found.add(
                    m.version,
                    fmt::format("Migration '{}' has a Down section of its own and also the down file '{}'. "
                                "Keep one of them.",
                                m.source,
                                d.where));
                continue;
            }
            m.down_source = d.where;
            if (has_statement(d.text))
                m.down_sql = std::move(d.text);
            else
                m.empty_down = d.where; // no statement: reverting would change nothing but the ledger
        }
    }

    /// The scheme of the versions; a mix of schemes or a gap in a sequential set is a problem.
    version_scheme check_versions(std::string_view origin)
    {
        if (!sequential.empty() && !timestamped.empty())
            found.add(
                0,
                fmt::format("The migrations of '{}' mix two version schemes: sequential ('{}'{}) and "
                            "timestamped ('{}'{}). Use one per directory: rename the sequential files to "
                            "timestamps in the order they ran (0001_a.sql → 20240101000001_a.sql, …), or "
                            "number the timestamped ones on from the last sequential one.",
                            origin,
                            sequential.front(),
                            sequential.size() > 1 ? ", …" : "",
                            timestamped.front(),
                            timestamped.size() > 1 ? ", …" : ""));
        if (!timestamped.empty())
            return version_scheme::timestamped;
        std::int64_t expected = 1;
        for (auto& [version, m] : by_version) {
            if (version != expected)
                found.add(
                    version,
                    fmt::format("Migration '{}' has version {}, but version {} is missing. Sequential "
                                "versions (four to nine digits) run 1, 2, 3, … without gaps; timestamped "
                                "ones (ten or more digits, as sqlx, goose and dbmate write them) may "
                                "have gaps.",
                                m.source,
                                version,
                                expected));
            expected = version + 1;
        }
        return version_scheme::sequential;
    }
};

} // namespace

migration_set migration_set::from_files(std::vector<std::pair<std::string, std::string>> files,
                                        std::string_view origin)
{
    set_builder b;
    for (auto& [file, text] : files)
        b.add_file(file, std::move(text), origin);
    b.attach_downs();
    migration_set set;
    set.scheme_ = b.check_versions(origin);
    b.found.throw_if_any(origin);
    for (auto& [version, m] : b.by_version)
        set.items_.push_back(std::move(m));
    return set;
}

const migration* migration_set::find(std::int64_t version) const noexcept
{
    const auto it =
        std::lower_bound(items_.begin(), items_.end(), version, [](const migration& m, std::int64_t v) {
            return m.version < v;
        });
    return it != items_.end() && it->version == version ? &*it : nullptr;
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
    std::vector<std::string> diesel; // diesel keeps each migration in a directory: NAME/up.sql, NAME/down.sql
    fs::directory_iterator it(dir, ec);
    for (const fs::directory_iterator end; !ec && it != end; it.increment(ec)) {
        const auto& entry = *it;
        if (std::error_code de; entry.is_directory(de) && fs::exists(entry.path() / "up.sql", de)) {
            diesel.push_back(entry.path().filename().string());
            continue;
        }
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
    if (!diesel.empty())
        refuse_diesel_layout(dir, std::move(diesel));
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
