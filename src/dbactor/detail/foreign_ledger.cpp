#include <dbactor/detail/foreign_ledger.hpp>

#include <dbactor/detail/statement.hpp>
#include <dbactor/error.hpp>

#include <fmt/format.h>
#include <sqlite3.h>

#include <algorithm>
#include <string_view>

namespace dbactor::detail {
namespace {

struct known_ledger
{
    std::string_view table, tool;
};

constexpr known_ledger known[] = {
    {"_sqlx_migrations", "sqlx"},
    {"goose_db_version", "goose"},
    {"schema_migrations", "dbmate or golang-migrate"},
    {"__diesel_schema_migrations", "diesel"},
    {"refinery_schema_history", "refinery"},
};

bool has_table(sqlite3* db, std::string_view name)
{
    return !text_rows(
                db, fmt::format("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = '{}'", name), 1)
                .empty();
}

} // namespace

std::optional<foreign_management> managed_elsewhere(sqlite3* db)
{
    if (has_table(db, "dbactor_migrations"))
        return std::nullopt;
    foreign_management f;
    f.user_version = std::stoll(text_value(db, "PRAGMA user_version"));
    for (const auto& k : known)
        if (has_table(db, k.table)) {
            f.tool = k.tool;
            f.table = k.table;
            return f;
        }
    if (f.user_version != 0)
        return f;
    return std::nullopt;
}

bool is_foreign_ledger_table(std::string_view name) noexcept
{
    for (const auto& k : known)
        if (k.table == name)
            return true;
    return false;
}

namespace {

/// A version as another tool writes it: digits, perhaps with separators ("2021-04-22-143411" of diesel).
std::int64_t version_of(const std::string& text, const foreign_management& f, const std::string& path)
{
    std::string digits;
    for (char ch : text)
        if (ch >= '0' && ch <= '9')
            digits.push_back(ch);
    if (digits.empty() || digits.size() > 18)
        throw error(errc::migration_failed,
                    fmt::format("The {} ledger '{}' of '{}' holds the version '{}', which is not a number "
                                "dbactor can match with a migration file. Adopt with `--version V` instead.",
                                f.tool,
                                f.table,
                                path,
                                text));
    return std::stoll(digits);
}

[[noreturn]] void dirty(const foreign_management& f, const std::string& path, const std::string& version)
{
    throw error(
        errc::migration_failed,
        fmt::format("The {} ledger '{}' of '{}' says migration {} failed part-way (dirty). Nothing was "
                    "written. Repair the database with {} first (or restore a backup), then adopt it.",
                    f.tool,
                    f.table,
                    path,
                    version,
                    f.tool));
}

} // namespace

foreign_applied applied_elsewhere(sqlite3* db, const foreign_management& f, const std::string& path)
{
    foreign_applied out;
    auto each = [&](const char* sql, auto&& row) {
        statement st(db, sql);
        while (st.step() == SQLITE_ROW)
            row(st);
    };
    if (f.table == "_sqlx_migrations") {
        each("SELECT version, success FROM _sqlx_migrations ORDER BY version", [&](statement& st) {
            if (st.column_int64(1) == 0)
                dirty(f, path, st.column_text(0));
            out.versions.push_back(st.column_int64(0));
        });
    }
    else if (f.table == "goose_db_version") {
        // One row per apply and per rollback; a version is applied when its newest row says so.
        each("SELECT version_id FROM goose_db_version AS g WHERE version_id > 0 AND is_applied AND id = "
             "(SELECT max(id) FROM goose_db_version WHERE version_id = g.version_id) ORDER BY version_id",
             [&](statement& st) { out.versions.push_back(st.column_int64(0)); });
    }
    else if (f.table == "schema_migrations" &&
             !text_rows(db, "SELECT 1 FROM pragma_table_info('schema_migrations') WHERE name = 'dirty'", 1)
                  .empty()) {
        out.up_to = 0; // golang-migrate: one row, the newest version applied
        each("SELECT version, dirty FROM schema_migrations", [&](statement& st) {
            if (st.column_int64(1) != 0)
                dirty(f, path, st.column_text(0));
            out.up_to = std::max(out.up_to, st.column_int64(0));
        });
    }
    else {
        // dbmate, diesel, refinery: one row per applied version.
        const std::string sql = fmt::format("SELECT version FROM \"{}\" ORDER BY version", f.table);
        each(sql.c_str(),
             [&](statement& st) { out.versions.push_back(version_of(st.column_text(0), f, path)); });
    }
    return out;
}

void refuse_unmanaged(const foreign_management& f, const std::string& path)
{
    const std::string what =
        f.table.empty()
            ? fmt::format(
                  "its PRAGMA user_version is {} but it has no dbactor_migrations ledger, so another tool "
                  "(or a hand-written upgrade script) manages its schema",
                  f.user_version)
            : fmt::format(
                  "it has the migration ledger '{}' of {} and no dbactor_migrations", f.table, f.tool);
    throw error(
        errc::not_managed,
        fmt::format("The database '{}' is managed by another migration tool: {}. Nothing was written to "
                    "it. To let dbactor manage it, adopt it once: `dbtool --db {} --migrations DIR adopt` "
                    "records the migrations the other ledger says are applied (or `adopt --version V`: "
                    "all up to V) after checking that the schema is what they build; the other ledger is "
                    "left as it is.",
                    path,
                    what,
                    path));
}

} // namespace dbactor::detail
