#include <dbactor/migration.hpp>

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

enum class file_kind
{
    up,      ///< V_name.sql
    up_pair, ///< V_name.up.sql (sqlx, golang-migrate)
    down,    ///< V_name.down.sql
};

struct parsed_name
{
    std::int64_t version;
    std::string name;
    file_kind kind;
    std::size_t digits;
};

/// Versions of this many digits or more are timestamps (sqlx, goose, dbmate, golang-migrate, diesel).
constexpr std::size_t timestamp_digits = 10;

constexpr const char* names_we_read =
    " The names dbactor reads:\n"
    "    0001_create_users.sql             sequential: 1, 2, 3, … without gaps (four to nine digits)\n"
    "    20210422143411_create_users.sql   timestamped: ten or more digits, gaps allowed (sqlx, goose, "
    "dbmate)\n"
    "    V_name.up.sql + V_name.down.sql   an up file with its down file (sqlx -r, golang-migrate)\n"
    "    V_name.sql + V_name.down.sql      the same";

/// What to rename a file that is not named as dbactor reads to, as a sentence.
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
    std::smatch m;
    if (std::regex_match(file, m, flyway))
        return fmt::format(" It looks like a Flyway/refinery name: rename it to '{:04}_{}' (sequential).",
                           std::stoll(m[1].str()),
                           safe(m[2].str()) + ".sql");
    if (std::regex_match(file, m, few_digits))
        return fmt::format(" Rename it to '{:04}_{}' (at least four digits).",
                           std::stoll(m[1].str()),
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

/// True when `sql` holds a statement, not only white space, comments and empty statements.
bool has_statement(std::string_view sql)
{
    std::size_t pos = 0;
    while ((pos = detail::skip_blank(sql, pos)) < sql.size()) {
        if (sql[pos] != ';')
            return true;
        ++pos;
    }
    return false;
}

/// The problems of one migration source, reported together (sorted by version) once all files were read.
class problems
{
public:
    void add(std::int64_t version, std::string message) { list_.push_back({version, std::move(message)}); }

    /// Runs `f`, keeping its errc::migration_source_invalid as a problem of `version`.
    template <class F>
    void collect(std::int64_t version, F&& f)
    {
        try {
            f();
        }
        catch (const error& e) {
            if (e.value() != errc::migration_source_invalid)
                throw;
            add(version, e.what());
        }
    }

    void throw_if_any(std::string_view origin)
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

private:
    std::vector<std::pair<std::int64_t, std::string>> list_;
};

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

/// Diesel's layout (`2021-04-22-143411_create_history/up.sql` and `down.sql`), refused with the renames that
/// turn it into dbactor's (the directory name's digits are the timestamp).
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

} // namespace

migration_set migration_set::from_files(std::vector<std::pair<std::string, std::string>> files,
                                        std::string_view origin)
{
    problems found;
    std::map<std::int64_t, migration> by_version;
    struct down_file
    {
        parsed_name name;
        std::string where, text;
    };
    std::vector<down_file> downs;
    std::vector<std::string> sequential, timestamped;
    for (auto& [file, text] : files) {
        const std::string where = fmt::format("{}/{}", origin, file);
        std::optional<parsed_name> p;
        bool too_large = false;
        found.collect(0, [&] {
            too_large = true;
            p = parse_file_name(file, where);
            too_large = false;
        });
        if (too_large)
            continue;
        if (!p) {
            found.add(0,
                      fmt::format("Migration file '{}' is not named as dbactor reads migrations.{}",
                                  where,
                                  rename_advice(file)));
            continue;
        }
        if (p->version <= 0) {
            found.add(0, fmt::format("Migration file '{}' has version 0; versions start at 0001.", where));
            continue;
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
            continue;
        }
        text = std::string(
            detail::without_bom(text)); // an editor's BOM is not part of the SQL (nor of the checksum)
        if (p->kind == file_kind::down) {
            found.collect(p->version, [&] { parse_migration_directives(text, where); }); // applied when run
            downs.push_back({*p, where, std::move(text)});
            continue;
        }
        (p->digits >= timestamp_digits ? timestamped : sequential).push_back(where);
        auto [it, inserted] = by_version.try_emplace(p->version);
        if (!inserted) {
            found.add(
                p->version,
                fmt::format("Migration files '{}' and '{}' both have version {}. Give each migration its "
                            "own number.",
                            it->second.source,
                            where,
                            p->version));
            continue;
        }
        it->second.source = where;
        found.collect(p->version, [&] {
            auto sections = detail::read_sections(text, where); // goose and dbmate: Up and Down in one file
            const auto d = parse_migration_directives(sections.up, where);
            migration m{p->version, p->name, std::move(sections.up), std::nullopt, where};
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
            found.add(m.version,
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
    migration_set set;
    if (!sequential.empty() && !timestamped.empty())
        found.add(0,
                  fmt::format("The migrations of '{}' mix two version schemes: sequential ('{}'{}) and "
                              "timestamped ('{}'{}). Use one per directory: rename the sequential files to "
                              "timestamps in the order they ran (0001_a.sql → 20240101000001_a.sql, …), or "
                              "number the timestamped ones on from the last sequential one.",
                              origin,
                              sequential.front(),
                              sequential.size() > 1 ? ", …" : "",
                              timestamped.front(),
                              timestamped.size() > 1 ? ", …" : ""));
    set.scheme_ = timestamped.empty() ? version_scheme::sequential : version_scheme::timestamped;
    if (set.scheme_ == version_scheme::sequential) {
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
    }
    found.throw_if_any(origin);
    for (auto& [version, m] : by_version)
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
