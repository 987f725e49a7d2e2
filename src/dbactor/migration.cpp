#include <dbactor/migration.hpp>

#include <dbactor/admin.hpp>
#include <dbactor/detail/migrate.hpp>
#include <dbactor/error.hpp>

#include <fmt/format.h>
#include <openssl/evp.h>
#include <sqlite3.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <fcntl.h>
#include <fstream>
#include <map>
#include <memory>
#include <regex>
#include <sstream>
#include <stdio.h> // renameat2, RENAME_NOREPLACE
#include <unistd.h>

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

/// 1-based line and column (in bytes) of `offset` in `text`.
std::pair<int, int> line_col(std::string_view text, std::size_t offset)
{
    offset = std::min(offset, text.size());
    int line = 1;
    std::size_t line_start = 0;
    for (std::size_t i = 0; i < offset; ++i)
        if (text[i] == '\n') {
            ++line;
            line_start = i + 1;
        }
    return {line, static_cast<int>(offset - line_start) + 1};
}

/// 1-based line and column (in bytes) of the first NUL byte in `text`, if any.
std::optional<std::pair<int, int>> first_nul(std::string_view text)
{
    const auto at = text.find('\0');
    if (at == std::string_view::npos)
        return std::nullopt;
    return line_col(text, at);
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
        auto p = parse_file_name(file, where);
        if (!p)
            invalid(fmt::format("Migration file '{}' is not named NNNN_name.sql (four or more digits, an "
                                "underscore, a name of letters, digits, '_' or '-'). Rename it.",
                                where));
        if (p->version <= 0)
            invalid(fmt::format("Migration file '{}' has version 0; versions start at 0001.", where));
        // SQLite stops reading SQL at a NUL byte, so the rest of the file would silently not run. A file
        // saved as UTF-16 (every other byte NUL) is the usual cause.
        if (const auto nul = first_nul(text))
            invalid(
                fmt::format("{}:{}:{}: the migration file contains a NUL byte; SQL files must be UTF-8 text "
                            "(a file saved as UTF-16 looks like this). Re-save it as UTF-8.",
                            where,
                            nul->first,
                            nul->second));
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
        const auto d = parse_migration_directives(text, where);
        it->second = migration{p->version, p->name, std::move(text), std::nullopt, where};
        it->second.no_transaction = d.no_transaction;
        it->second.foreign_keys_off = d.foreign_keys_off;
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
        if (!body.starts_with("dbactor:"))
            continue;
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

namespace dbactor::detail {
namespace {

using clock = std::chrono::steady_clock;

/// A finalizing owner of one prepared statement.
struct stmt
{
    sqlite3_stmt* s = nullptr;
    stmt() = default;
    stmt(const stmt&) = delete;
    stmt& operator=(const stmt&) = delete;
    ~stmt() { sqlite3_finalize(s); }
};

std::string sqlite_text(sqlite3* db)
{
    const char* m = sqlite3_errmsg(db);
    return m ? m : "unknown error";
}

[[noreturn]] void fail_sql(sqlite3* db, int rc, errc otherwise, const std::string& what)
{
    const int ext = sqlite3_extended_errcode(db) ? sqlite3_extended_errcode(db) : rc;
    const errc code = errc_for_sqlite(ext, otherwise);
    std::string advice;
    if (code == errc::busy)
        advice = " Another connection holds the write lock longer than busy_timeout; retry when it is done.";
    else if (code == errc::integrity_check_failed)
        advice =
            " The database file is damaged: `dbtool check --full` shows where; restore it from a backup.";
    else if (code == errc::not_a_database)
        advice = " The file is not a SQLite database (or is encrypted); check the path.";
    throw error(code, fmt::format("{}: {} (SQLite code {}).{}", what, sqlite_text(db), ext, advice), ext);
}

/// Runs statements without results (BEGIN, COMMIT, pragmas); throws with `what` on failure.
void exec(sqlite3* db, const char* sql, const std::string& what, errc otherwise = errc::migration_failed)
{
    const int rc = sqlite3_exec(db, sql, nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK)
        fail_sql(db, rc, otherwise, what);
}

void rollback_quietly(sqlite3* db) noexcept
{
    if (sqlite3_get_autocommit(db) == 0)
        sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
}

/// The offset of the first character at or after `pos` that is neither white space nor inside a comment.
std::size_t skip_blank(std::string_view text, std::size_t pos)
{
    while (pos < text.size()) {
        const char ch = text[pos];
        if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n' || ch == '\f')
            ++pos;
        else if (text.substr(pos, 2) == "--") {
            const auto nl = text.find('\n', pos);
            pos = nl == std::string_view::npos ? text.size() : nl + 1;
        }
        else if (text.substr(pos, 2) == "/*") {
            const auto end = text.find("*/", pos + 2);
            pos = end == std::string_view::npos ? text.size() : end + 2;
        }
        else
            break;
    }
    return pos;
}

std::string upper_words(std::string_view sql, int words)
{
    std::string out;
    std::size_t i = skip_blank(sql, 0);
    for (int w = 0; w < words && i < sql.size(); ++w) {
        if (w)
            out.push_back(' ');
        while (i < sql.size() &&
               (std::isalnum(static_cast<unsigned char>(sql[i])) || sql[i] == '_' || sql[i] == '.'))
            out.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(sql[i++]))));
        i = skip_blank(sql, i);
        if (i < sql.size() && sql[i] == '=')
            break;
    }
    return out;
}

bool is_pragma_foreign_keys(std::string_view sql)
{
    const std::string w = upper_words(sql, 2);
    return w == "PRAGMA FOREIGN_KEYS" || w == "PRAGMA MAIN.FOREIGN_KEYS";
}

bool is_transaction_control(std::string_view sql)
{
    const std::string w = upper_words(sql, 2);
    const std::string first = w.substr(0, w.find(' '));
    if (first == "BEGIN" || first == "COMMIT" || first == "END")
        return true;
    return first == "ROLLBACK" && w != "ROLLBACK TO";
}

/// Runs `text` one statement at a time, so that a failure names its line and column.
void run_script(sqlite3* db,
                std::string_view text,
                const std::string& source,
                bool transactional,
                const std::string& path,
                const std::string& label)
{
    const char* const start = text.data();
    const char* const end = start + text.size();
    const char* p = start;
    auto fail = [&](std::size_t offset, const std::string& what, int ext, errc code) {
        const auto [line, col] = line_col(text, offset);
        throw error(
            code,
            fmt::format("{}:{}:{}: {}. Migration {} {} on '{}'{}.",
                        source,
                        line,
                        col,
                        what,
                        label,
                        transactional ? "failed and was rolled back" : "failed part-way (no-transaction)",
                        path,
                        code == errc::busy ? "; the database stayed locked longer than busy_timeout, retry "
                                             "when the other writer is done"
                                           : "; migrations before it stay applied. Fix the statement and "
                                             "run again"),
            ext);
    };
    while (p < end) {
        stmt st;
        const char* tail = nullptr;
        const int rc = sqlite3_prepare_v2(db, p, static_cast<int>(end - p), &st.s, &tail);
        const std::size_t here = static_cast<std::size_t>(p - start);
        if (rc != SQLITE_OK) {
            const int off = sqlite3_error_offset(db);
            const std::size_t at = off >= 0 ? here + static_cast<std::size_t>(off) : skip_blank(text, here);
            const int ext = sqlite3_extended_errcode(db);
            fail(at, sqlite_text(db), ext, errc_for_sqlite(ext, errc::migration_failed));
        }
        if (!st.s) { // only white space or comments were left (or a NUL byte, where SQLite stops reading)
            if (!tail || tail <= p)
                break;
            p = tail;
            continue;
        }
        const std::size_t stmt_at = skip_blank(text, here);
        const std::string_view sql(p, static_cast<std::size_t>(tail - p));
        if (transactional && is_pragma_foreign_keys(sql))
            fail(stmt_at,
                 "PRAGMA foreign_keys has no effect inside a transaction, and each migration runs in one. "
                 "Remove "
                 "it and put '-- dbactor: foreign-keys=off' in the file's leading comments: the runner then "
                 "turns foreign keys off around the transaction and runs foreign_key_check before COMMIT",
                 0,
                 errc::migration_failed);
        if (transactional && is_transaction_control(sql))
            fail(stmt_at,
                 "a migration must not begin, commit or roll back the transaction it runs in (use SAVEPOINT "
                 "for a nested unit, or '-- dbactor: no-transaction' for statements that cannot run in a "
                 "transaction)",
                 0,
                 errc::migration_failed);
        int step;
        while ((step = sqlite3_step(st.s)) == SQLITE_ROW) {
        }
        if (step != SQLITE_DONE) {
            const int off = sqlite3_error_offset(db);
            const std::size_t at = off >= 0 ? here + static_cast<std::size_t>(off) : stmt_at;
            const int ext = sqlite3_extended_errcode(db);
            fail(at, sqlite_text(db), ext, errc_for_sqlite(ext, errc::migration_failed));
        }
        p = tail;
    }
}

std::string label_of(const migration& m, bool up)
{
    return fmt::format("{:04}_{}{}", m.version, m.name, up ? ".sql" : ".down.sql");
}

std::string down_source(const migration& m)
{
    const auto slash = m.source.find_last_of('/');
    const std::string dir = slash == std::string::npos ? std::string() : m.source.substr(0, slash + 1);
    return fmt::format("{}{:04}_{}.down.sql", dir, m.version, m.name);
}

constexpr const char* create_ledger =
    "CREATE TABLE IF NOT EXISTS dbactor_migrations ("
    "version INTEGER PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL, "
    "applied_at TEXT NOT NULL, duration_ms INTEGER NOT NULL)";

/// The ledger's checksum of `version`, re-read inside the migration's transaction.
std::optional<std::string> ledger_checksum(sqlite3* db, std::int64_t version, const std::string& path)
{
    stmt st;
    if (sqlite3_prepare_v2(
            db, "SELECT checksum FROM dbactor_migrations WHERE version = ?", -1, &st.s, nullptr) != SQLITE_OK)
        fail_sql(
            db, sqlite3_errcode(db), errc::migration_failed, fmt::format("Reading the ledger of '{}'", path));
    sqlite3_bind_int64(st.s, 1, version);
    const int rc = sqlite3_step(st.s);
    if (rc == SQLITE_ROW)
        return std::string(reinterpret_cast<const char*>(sqlite3_column_text(st.s, 0)));
    if (rc != SQLITE_DONE)
        fail_sql(db, rc, errc::migration_failed, fmt::format("Reading the ledger of '{}'", path));
    return std::nullopt;
}

std::int64_t ledger_max(sqlite3* db)
{
    stmt st;
    if (sqlite3_prepare_v2(
            db, "SELECT coalesce(max(version), 0) FROM dbactor_migrations", -1, &st.s, nullptr) != SQLITE_OK)
        return 0;
    return sqlite3_step(st.s) == SQLITE_ROW ? sqlite3_column_int64(st.s, 0) : 0;
}

[[noreturn]] void throw_modified(const migration& m, const std::string& ledger, const std::string& path)
{
    throw error(
        errc::migration_modified,
        fmt::format("Migration {} was changed after it was applied to '{}' (ledger checksum {}, file "
                    "checksum {}). Never edit an applied migration: restore the file as it was applied "
                    "(e.g. from version control) and put the change in a new migration.",
                    m.source,
                    path,
                    ledger.substr(0, 12),
                    migration_checksum(m.up_sql).substr(0, 12)));
}

/// The body of one migration inside BEGIN IMMEDIATE: returns false (and rolls back) when already done.
bool apply_in_transaction(sqlite3* db,
                          const migration& m,
                          bool up,
                          const std::string& path,
                          const std::string& source,
                          const std::string& sql,
                          bool run_statements,
                          bool fk_check,
                          clock::time_point t0)
{
    const std::string label = label_of(m, up);
    exec(db,
         "BEGIN IMMEDIATE",
         fmt::format("Migration {} could not start a transaction on '{}'", label, path));
    exec(db, create_ledger, fmt::format("Creating the migration ledger in '{}'", path));
    const auto recorded = ledger_checksum(db, m.version, path);
    const std::string sum = migration_checksum(m.up_sql);
    if (up ? recorded.has_value() : !recorded.has_value()) {
        rollback_quietly(db); // another migrator did it while this one waited for the lock
        if (up && *recorded != sum)
            throw_modified(m, *recorded, path);
        return false;
    }
    if (!up && *recorded != sum)
        throw_modified(m, *recorded, path);
    if (run_statements)
        run_script(db, sql, source, true, path, label);
    if (fk_check) {
        std::vector<std::string> rows;
        if (const auto n = foreign_key_violations(db, rows); n > 0)
            throw error(
                errc::foreign_key_violation,
                fmt::format("Migration {} (foreign-keys=off) leaves {} foreign-key violation(s) in '{}': "
                            "{}. It was rolled back. Fix the data the rebuilt table refers to, within "
                            "the migration, before its end.",
                            source,
                            n,
                            path,
                            fmt::join(rows, "; ")));
    }
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - t0).count();
    stmt st;
    const char* change =
        up ? "INSERT INTO dbactor_migrations (version, name, checksum, applied_at, duration_ms) "
             "VALUES (?1, ?2, ?3, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), ?4)"
           : "DELETE FROM dbactor_migrations WHERE version = ?1";
    if (sqlite3_prepare_v2(db, change, -1, &st.s, nullptr) != SQLITE_OK)
        fail_sql(db,
                 sqlite3_errcode(db),
                 errc::migration_failed,
                 fmt::format("Recording {} in the ledger", label));
    sqlite3_bind_int64(st.s, 1, m.version);
    if (up) {
        sqlite3_bind_text(st.s, 2, m.name.c_str(), -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st.s, 3, sum.c_str(), -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st.s, 4, ms);
    }
    if (const int rc = sqlite3_step(st.s); rc != SQLITE_DONE)
        fail_sql(db, rc, errc::migration_failed, fmt::format("Recording {} in the ledger", label));
    const std::string uv = fmt::format("PRAGMA user_version = {}", ledger_max(db));
    exec(db, uv.c_str(), fmt::format("Setting user_version after {}", label));
    exec(db, "COMMIT", fmt::format("Committing migration {} on '{}'", label, path));
    return true;
}

} // namespace

std::vector<ledger_row> read_ledger(sqlite3* db, const std::string& path)
{
    std::vector<ledger_row> rows;
    stmt st;
    int rc =
        sqlite3_prepare_v2(db,
                           "SELECT version, name, checksum, applied_at, duration_ms FROM dbactor_migrations "
                           "ORDER BY version",
                           -1,
                           &st.s,
                           nullptr);
    if (rc != SQLITE_OK) {
        const std::string msg = sqlite_text(db);
        if (msg.starts_with("no such table"))
            return rows; // a database no migration has touched yet
        fail_sql(db, rc, errc::migration_failed, fmt::format("Reading the migration ledger of '{}'", path));
    }
    auto text = [&](int i) {
        const auto* t = sqlite3_column_text(st.s, i);
        return t ? std::string(reinterpret_cast<const char*>(t)) : std::string();
    };
    while ((rc = sqlite3_step(st.s)) == SQLITE_ROW)
        rows.push_back(
            {sqlite3_column_int64(st.s, 0), text(1), text(2), text(3), sqlite3_column_int64(st.s, 4)});
    if (rc != SQLITE_DONE)
        fail_sql(db, rc, errc::migration_failed, fmt::format("Reading the migration ledger of '{}'", path));
    return rows;
}

std::vector<migration_status> compare_state(const migration_set& set, const std::vector<ledger_row>& ledger)
{
    std::map<std::int64_t, const ledger_row*> by_version;
    for (const auto& r : ledger)
        by_version[r.version] = &r;
    std::vector<migration_status> out;
    for (const auto& m : set.items()) {
        migration_status st;
        st.version = m.version;
        st.name = m.name;
        st.checksum = migration_checksum(m.up_sql);
        st.reversible = m.down_sql.has_value();
        if (auto it = by_version.find(m.version); it != by_version.end()) {
            st.status = it->second->checksum == st.checksum ? migration_status::state::applied
                                                            : migration_status::state::modified;
            st.applied_at = it->second->applied_at;
            st.duration_ms = it->second->duration_ms;
            by_version.erase(it);
        }
        out.push_back(std::move(st));
    }
    for (const auto& [version, r] : by_version) {
        migration_status st;
        st.version = version;
        st.name = r->name;
        st.status = migration_status::state::unknown;
        st.checksum = r->checksum;
        st.applied_at = r->applied_at;
        st.duration_ms = r->duration_ms;
        out.push_back(std::move(st));
    }
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.version < b.version; });
    return out;
}

void refuse_inconsistent(const std::vector<migration_status>& state,
                         const migration_set& set,
                         const std::string& path)
{
    for (const auto& s : state)
        if (s.status == migration_status::state::modified) {
            const auto& m = *std::find_if(set.items().begin(), set.items().end(), [&](const migration& x) {
                return x.version == s.version;
            });
            throw error(
                errc::migration_modified,
                fmt::format("Migration {} was changed after it was applied to '{}' (the ledger's checksum "
                            "differs from the file's). Never edit an applied migration: restore the file "
                            "as it was applied (e.g. from version control) and put the change in a new "
                            "migration {:04}_name.sql.",
                            m.source,
                            path,
                            set.latest_version() + 1));
        }
    std::vector<std::string> unknown;
    for (const auto& s : state)
        if (s.status == migration_status::state::unknown)
            unknown.push_back(fmt::format("{:04}_{}", s.version, s.name));
    if (!unknown.empty())
        throw error(
            errc::database_ahead,
            fmt::format("'{}' has migration(s) {} that this build does not know (its newest is {}): the "
                        "database was migrated by a newer build. Run that build, or revert with its "
                        "`dbtool migrate --to {}`.",
                        path,
                        fmt::join(unknown, ", "),
                        set.latest_version(),
                        set.latest_version()));
}

bool run_migration(
    sqlite3* db, const migration& m, bool up, const std::string& path, std::int64_t* duration_ms)
{
    const auto t0 = clock::now();
    const std::string label = label_of(m, up);
    if (!up && !m.down_sql)
        throw error(
            errc::migration_failed,
            fmt::format("Migration {} is irreversible: there is no {}. Nothing was reverted; write the down "
                        "file, or restore a backup to go back.",
                        m.source,
                        down_source(m)));
    const std::string& sql = up ? m.up_sql : *m.down_sql;
    const std::string source = up ? m.source : down_source(m);
    const auto d = up ? migration_directives{m.no_transaction, m.foreign_keys_off}
                      : parse_migration_directives(sql, source);
    bool done = false;
    try {
        if (d.foreign_keys_off) // only outside a transaction does this take effect
            exec(db, "PRAGMA foreign_keys = OFF", fmt::format("Turning foreign keys off for {}", label));
        if (d.no_transaction) {
            // Checked first so that a migration another process recorded is not run again; the statements
            // then run in autocommit mode and the ledger row is written in a transaction of its own.
            exec(db,
                 "BEGIN IMMEDIATE",
                 fmt::format("Migration {} could not start a transaction on '{}'", label, path));
            exec(db, create_ledger, fmt::format("Creating the migration ledger in '{}'", path));
            const bool recorded = ledger_checksum(db, m.version, path).has_value();
            exec(db, "COMMIT", fmt::format("Reading the ledger of '{}'", path));
            if (recorded == up) {
                done = false;
            }
            else {
                run_script(db, sql, source, false, path, label);
                done = apply_in_transaction(db, m, up, path, source, sql, false, d.foreign_keys_off, t0);
            }
        }
        else {
            done = apply_in_transaction(db, m, up, path, source, sql, true, d.foreign_keys_off, t0);
        }
    }
    catch (...) {
        rollback_quietly(db);
        if (d.foreign_keys_off)
            sqlite3_exec(db, "PRAGMA foreign_keys = ON", nullptr, nullptr, nullptr);
        throw;
    }
    if (d.foreign_keys_off)
        exec(db, "PRAGMA foreign_keys = ON", fmt::format("Turning foreign keys back on after {}", label));
    if (duration_ms)
        *duration_ms = std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - t0).count();
    return done;
}

std::int64_t foreign_key_violations(sqlite3* db, std::vector<std::string>& first, std::size_t limit)
{
    stmt st;
    int rc = sqlite3_prepare_v2(db, "PRAGMA foreign_key_check", -1, &st.s, nullptr);
    if (rc != SQLITE_OK)
        fail_sql(db, rc, errc::open_failed, "PRAGMA foreign_key_check"); // it failed to run: not a violation
    std::int64_t n = 0;
    while ((rc = sqlite3_step(st.s)) == SQLITE_ROW) {
        if (first.size() < limit) {
            const auto* table = sqlite3_column_text(st.s, 0);
            const auto* parent = sqlite3_column_text(st.s, 2);
            first.push_back(fmt::format("{} rowid {} refers to a missing row of {}",
                                        table ? reinterpret_cast<const char*>(table) : "?",
                                        sqlite3_column_type(st.s, 1) == SQLITE_NULL
                                            ? std::string("(none)")
                                            : std::to_string(sqlite3_column_int64(st.s, 1)),
                                        parent ? reinterpret_cast<const char*>(parent) : "?"));
        }
        ++n;
    }
    if (rc != SQLITE_DONE)
        fail_sql(db, rc, errc::open_failed, "PRAGMA foreign_key_check"); // it failed to run: not a violation
    return n;
}

} // namespace dbactor::detail

namespace dbactor::admin {
namespace {

std::string db_path(connection& c)
{
    const char* f = sqlite3_db_filename(c.handle(), "main");
    return f && *f ? f : ":memory:";
}

std::int64_t file_size(const std::string& path)
{
    std::error_code ec;
    const auto n = std::filesystem::file_size(path, ec);
    if (ec == std::errc::no_such_file_or_directory)
        return 0; // no -wal: nothing in it
    if (ec)
        throw error(errc::open_failed,
                    fmt::format("Cannot read the size of '{}': {}. Check the permissions of the file and its "
                                "directory.",
                                path,
                                ec.message()));
    return static_cast<std::int64_t>(n);
}

sqlite3_stmt* step_one(sqlite3* db, detail::stmt& st, const char* sql, const std::string& path)
{
    int rc = sqlite3_prepare_v2(db, sql, -1, &st.s, nullptr);
    if (rc == SQLITE_OK && (rc = sqlite3_step(st.s)) == SQLITE_ROW)
        return st.s;
    detail::fail_sql(db,
                     rc == SQLITE_DONE ? SQLITE_ERROR : rc,
                     errc::open_failed,
                     fmt::format("Reading {} of '{}' failed", sql, path));
}

std::int64_t pragma_int(sqlite3* db, const char* sql, const std::string& path)
{
    detail::stmt st;
    return sqlite3_column_int64(step_one(db, st, sql, path), 0);
}

void remove_quietly(const std::string& path) noexcept
{
    std::error_code ec;
    std::filesystem::remove(path, ec);
}

/// Moves `from` to `to` unless `to` exists (then false, errno EEXIST): never replaces a file.
bool publish_no_replace(const std::string& from, const std::string& to)
{
    if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0)
        return true;
    if (errno != EINVAL && errno != ENOSYS)
        return false;
    // A file system without RENAME_NOREPLACE: link() refuses an existing target as well.
    if (::link(from.c_str(), to.c_str()) != 0)
        return false;
    ::unlink(from.c_str());
    return true;
}

} // namespace

std::vector<migration_status> migration_state(connection& c, const migration_set& set)
{
    return detail::compare_state(set, detail::read_ledger(c.handle(), db_path(c)));
}

std::vector<migration_step> plan_migration(connection& c, const migration_set& set, std::int64_t target)
{
    const std::string path = db_path(c);
    const auto state = migration_state(c, set);
    detail::refuse_inconsistent(state, set, path);
    if (target < 0)
        target = set.latest_version();
    if (target > set.latest_version())
        throw error(errc::migration_failed,
                    fmt::format("Cannot migrate '{}' to version {}: the newest migration is {}. Nothing was "
                                "changed.",
                                path,
                                target,
                                set.latest_version()));
    std::vector<migration_step> plan;
    for (const auto& s : state) // up, oldest first
        if (s.status == migration_status::state::pending && s.version <= target)
            plan.push_back({s.version, s.name, true});
    for (auto it = state.rbegin(); it != state.rend(); ++it) // down, newest first
        if (it->status == migration_status::state::applied && it->version > target) {
            const auto& m = set.items()[static_cast<std::size_t>(it->version - 1)];
            if (!m.down_sql)
                throw error(
                    errc::migration_failed,
                    fmt::format("Cannot migrate '{}' down to version {}: migration {} is irreversible "
                                "(there is no {:04}_{}.down.sql). Nothing was changed; write the down file, "
                                "or restore a backup.",
                                path,
                                target,
                                m.source,
                                m.version,
                                m.name));
            plan.push_back({it->version, it->name, false});
        }
    return plan;
}

std::vector<migration_step> migrate_to(connection& c,
                                       const migration_set& set,
                                       std::int64_t target,
                                       const std::function<bool()>& keep_going)
{
    std::vector<migration_step> steps;
    migrate_to(c, set, target, steps, keep_going);
    return steps;
}

void migrate_to(connection& c,
                const migration_set& set,
                std::int64_t target,
                std::vector<migration_step>& steps,
                const std::function<bool()>& keep_going)
{
    steps.clear();
    steps = plan_migration(c, set, target);
    const std::string path = db_path(c);
    for (auto& step : steps) {
        if (keep_going && !keep_going())
            break;
        const auto& m = set.items()[static_cast<std::size_t>(step.version - 1)];
        try {
            step.done = detail::run_migration(c.handle(), m, step.up, path, &step.duration_ms);
        }
        catch (...) {
            step.failed = true;
            throw;
        }
    }
}

foreign_key_report foreign_key_check(connection& c, std::size_t limit)
{
    foreign_key_report r;
    r.violations = detail::foreign_key_violations(c.handle(), r.first, limit);
    return r;
}

file_info inspect(connection& c)
{
    sqlite3* db = c.handle();
    const std::string path = db_path(c);
    file_info f;
    {
        detail::stmt st;
        const auto* mode = sqlite3_column_text(step_one(db, st, "PRAGMA journal_mode", path), 0);
        f.journal_mode = mode ? reinterpret_cast<const char*>(mode) : "";
    }
    f.user_version = pragma_int(db, "PRAGMA user_version", path);
    f.page_size = pragma_int(db, "PRAGMA page_size", path);
    f.page_count = pragma_int(db, "PRAGMA page_count", path);
    f.freelist_count = pragma_int(db, "PRAGMA freelist_count", path);
    f.file_bytes = file_size(path);
    f.wal_bytes = file_size(path + "-wal");
    return f;
}

backup_result backup(connection& c,
                     const std::string& to,
                     const std::function<bool(std::int64_t, std::int64_t)>& progress,
                     int pages_per_step)
{
    const std::string from = db_path(c);
    std::error_code ec;
    if (std::filesystem::exists(to, ec))
        throw error(
            errc::open_failed,
            fmt::format("The backup target '{}' already exists. Choose a new file name (a backup never "
                        "overwrites a file).",
                        to));
    const std::string partial = to + ".partial";
    sqlite3* dest = nullptr;
    // The copy is a WAL database (the mode is in the copied header), so its connection may leave -wal and
    // -shm files beside it as well as a -journal while the backup writes.
    auto remove_partial = [&] {
        for (const char* suffix : {"", "-journal", "-wal", "-shm"})
            remove_quietly(partial + suffix);
    };
    auto cleanup = [&] {
        if (dest)
            sqlite3_close(dest);
        dest = nullptr;
        remove_partial();
    };
    remove_partial(); // left over by a backup that was killed
    if (sqlite3_open_v2(partial.c_str(), &dest, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) !=
        SQLITE_OK) {
        const std::string msg = dest ? detail::sqlite_text(dest) : "out of memory";
        cleanup();
        throw error(
            errc::open_failed,
            fmt::format("Cannot create the backup file '{}': {}. Check that its directory exists and is "
                        "writable.",
                        partial,
                        msg));
    }
    sqlite3* src = c.handle();
    // One read transaction around every step: the copy is one snapshot, a writer elsewhere goes on (WAL),
    // and the copy is never restarted by its commits.
    const bool own_txn = sqlite3_get_autocommit(src) != 0;
    if (own_txn) {
        if (sqlite3_exec(src, "BEGIN; SELECT count(*) FROM sqlite_schema", nullptr, nullptr, nullptr) !=
            SQLITE_OK) {
            const int ext = sqlite3_extended_errcode(src);
            const std::string msg = detail::sqlite_text(src);
            detail::rollback_quietly(src);
            cleanup();
            throw error(
                errc_for_sqlite(ext, errc::open_failed),
                fmt::format("Cannot read '{}' for the backup: {} (SQLite code {}). Nothing was written; "
                            "check the database with `dbtool check`.",
                            from,
                            msg,
                            ext),
                ext);
        }
    }
    sqlite3_backup* b = sqlite3_backup_init(dest, "main", src, "main");
    if (!b) {
        const std::string msg = detail::sqlite_text(dest);
        if (own_txn)
            detail::rollback_quietly(src);
        cleanup();
        throw error(
            errc::open_failed,
            fmt::format("Cannot start the backup of '{}' to '{}': {}. Nothing was written; check that the "
                        "target directory is writable.",
                        from,
                        to,
                        msg));
    }
    int rc = SQLITE_OK;
    bool stopped = false;
    while (rc == SQLITE_OK || rc == SQLITE_BUSY || rc == SQLITE_LOCKED) {
        rc = sqlite3_backup_step(b, pages_per_step);
        const std::int64_t total = sqlite3_backup_pagecount(b);
        const std::int64_t done = total - sqlite3_backup_remaining(b);
        if (progress && !progress(done, total) && rc != SQLITE_DONE) {
            stopped = true;
            break;
        }
        if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
            sqlite3_sleep(10); // the destination is ours alone; this only happens under a foreign lock
    }
    const std::int64_t pages = sqlite3_backup_pagecount(b);
    sqlite3_backup_finish(b);
    if (own_txn)
        detail::rollback_quietly(src);
    if (stopped) {
        cleanup();
        throw error(
            errc::cancelled,
            fmt::format("The backup of '{}' was stopped; the partial copy was removed and '{}' was not "
                        "created.",
                        from,
                        to));
    }
    if (rc != SQLITE_DONE) {
        const std::string msg = sqlite3_errstr(rc);
        cleanup();
        throw error(
            errc_for_sqlite(rc, errc::open_failed),
            fmt::format("The backup of '{}' to '{}' failed: {} (SQLite code {}). The partial copy was "
                        "removed; {}.",
                        from,
                        to,
                        msg,
                        rc,
                        errc_for_sqlite(rc, errc::open_failed) == errc::integrity_check_failed
                            ? "the source is damaged, run `dbtool check --full` on it"
                            : "check the free space and permissions of the target directory, then retry"),
            rc);
    }
    backup_result r;
    r.pages = pages;
    {
        detail::stmt st;
        if (sqlite3_prepare_v2(dest, "PRAGMA quick_check", -1, &st.s, nullptr) == SQLITE_OK) {
            int step;
            while ((step = sqlite3_step(st.s)) == SQLITE_ROW) {
                const auto* t = sqlite3_column_text(st.s, 0);
                r.quick_check.emplace_back(t ? reinterpret_cast<const char*>(t) : "");
            }
            if (step != SQLITE_DONE)
                r.quick_check.push_back(detail::sqlite_text(dest));
        }
        else
            r.quick_check.push_back(detail::sqlite_text(dest));
    }
    const bool sound = r.quick_check.size() == 1 && r.quick_check.front() == "ok";
    if (!sound) {
        // A row may hold several problems, one per line, under a "*** in database main ***" heading.
        std::vector<std::string> problems;
        for (const auto& row : r.quick_check) {
            std::istringstream lines(row);
            for (std::string line; std::getline(lines, line) && problems.size() < 3;)
                if (!line.empty() && !line.starts_with("*** in database"))
                    problems.push_back(line);
        }
        const std::string first = fmt::format("{}", fmt::join(problems, "; "));
        cleanup();
        throw error(
            errc::integrity_check_failed,
            fmt::format("The backup copy of '{}' fails quick_check ({}), so it was removed and '{}' was not "
                        "created. The source database is probably damaged: run `dbtool check --full` on "
                        "it, and restore it from an older backup.",
                        from,
                        first.empty() ? std::string("no result") : first,
                        to),
            SQLITE_CORRUPT);
    }
    // Closing the last connection checkpoints the copy's -wal into it: only then is the file complete.
    if (const int close_rc = sqlite3_close(dest); close_rc != SQLITE_OK) {
        const std::string msg = sqlite3_errstr(close_rc);
        cleanup();
        throw error(
            errc::open_failed,
            fmt::format("Closing the backup copy '{}' failed: {}. It was removed and '{}' was not created; "
                        "check the free space of the target directory, then retry.",
                        partial,
                        msg,
                        to));
    }
    dest = nullptr;
    if (file_size(partial + "-wal") > 0) {
        remove_partial();
        throw error(
            errc::open_failed,
            fmt::format("The backup copy '{}' kept pages in '{}-wal' after it was closed, so it was removed "
                        "and '{}' was not created. Check the free space of the target directory, then retry.",
                        partial,
                        partial,
                        to));
    }
    if (!publish_no_replace(partial, to)) {
        const int err = errno;
        remove_partial();
        if (err == EEXIST)
            throw error(
                errc::open_failed,
                fmt::format("The backup target '{}' was created by someone else while the backup ran; it "
                            "was left as it is and the copy was removed. Choose a new file name.",
                            to));
        throw error(
            errc::open_failed,
            fmt::format("Cannot move the checked copy '{}' to '{}': {}. The copy was removed; check the "
                        "permissions of the target directory, then retry.",
                        partial,
                        to,
                        std::generic_category().message(err)));
    }
    remove_partial(); // -wal / -shm of the partial name, if the copy's connection left any
    return r;
}

} // namespace dbactor::admin
