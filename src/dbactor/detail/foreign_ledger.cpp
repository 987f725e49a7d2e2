#include <dbactor/detail/foreign_ledger.hpp>

#include <dbactor/detail/statement.hpp>
#include <dbactor/error.hpp>

#include <fmt/format.h>

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
