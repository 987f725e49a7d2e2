#include <dbactor/detail/scratch_schema.hpp>

#include <dbactor/detail/foreign_ledger.hpp>
#include <dbactor/detail/ledger.hpp>
#include <dbactor/detail/sql_failure.hpp>
#include <dbactor/error.hpp>

#include <fmt/format.h>
#include <sqlite3.h>

#include <map>
#include <set>
#include <utility>

namespace dbactor::detail {
namespace {

/// The shadow tables of virtual tables (an FTS5 table's `_data`, `_idx`, …): made by their virtual table.
std::set<std::string> shadow_tables(sqlite3* db)
{
    std::set<std::string> out;
    statement st(db, "SELECT name FROM pragma_table_list WHERE schema = 'main' AND type = 'shadow'");
    while (st.step() == SQLITE_ROW)
        out.insert(st.column_text(0));
    return out;
}

std::string squeeze(const std::string& sql)
{
    std::string out;
    bool space = false;
    for (char ch : sql) {
        if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n') {
            space = !out.empty();
            continue;
        }
        if (space)
            out.push_back(' ');
        space = false;
        out.push_back(ch);
    }
    return out;
}

} // namespace

scratch_db::scratch_db()
{
    if (sqlite3_open_v2(":memory:", &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) != SQLITE_OK) {
        sqlite3_close(db_);
        throw error(errc::open_failed, "Opening a scratch in-memory database failed (out of memory?).");
    }
    exec(db_, "PRAGMA foreign_keys = ON", "Turning foreign keys on in a scratch database");
}

scratch_db::~scratch_db()
{
    sqlite3_close(db_);
}

void scratch_db::copy_schema_of(sqlite3* live)
{
    const auto shadow = shadow_tables(live);
    // Tables first (a view or trigger may name any of them), each kind in the order it was created.
    statement st(
        live,
        "SELECT type, name, sql FROM sqlite_schema WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite\\_%' "
        "ESCAPE '\\' ORDER BY type <> 'table', rowid");
    while (st.step() == SQLITE_ROW) {
        const std::string name = st.column_text(1);
        if (shadow.count(name))
            continue;
        exec(db_,
             st.column_text(2).c_str(),
             fmt::format("Copying the schema of {} '{}' into a scratch database", st.column_text(0), name));
    }
    if (ledger_count(live) == 0)
        return;
    exec(db_, create_ledger, "Creating the ledger in a scratch database");
    statement rows(live, "SELECT version, name, checksum, applied_at, duration_ms FROM dbactor_migrations");
    statement put(db_, "INSERT INTO dbactor_migrations VALUES (?1, ?2, ?3, ?4, ?5)");
    while (rows.step() == SQLITE_ROW) {
        put.bind(1, rows.column_int64(0));
        put.bind(2, std::string_view(rows.column_text(1)));
        put.bind(3, std::string_view(rows.column_text(2)));
        put.bind(4, std::string_view(rows.column_text(3)));
        put.bind(5, rows.column_int64(4));
        if (const int rc = put.run(); rc != SQLITE_DONE)
            fail_sql(db_, rc, errc::migration_failed, "Copying the ledger into a scratch database");
    }
}

std::vector<schema_object> user_schema(sqlite3* db)
{
    const auto shadow = shadow_tables(db);
    std::vector<schema_object> out;
    statement st(
        db,
        "SELECT type, name, sql FROM sqlite_schema WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite\\_%' "
        "ESCAPE '\\' AND name NOT LIKE '\\_litestream\\_%' ESCAPE '\\' AND name <> "
        "'dbactor_migrations' AND name <> 'dbactor_shard' ORDER BY type, name");
    while (st.step() == SQLITE_ROW) {
        schema_object o{st.column_text(0), st.column_text(1), st.column_text(2)};
        if (shadow.count(o.name) || is_foreign_ledger_table(o.name))
            continue;
        out.push_back(std::move(o));
    }
    return out;
}

std::vector<std::string> schema_differences(const std::vector<schema_object>& live,
                                            const std::vector<schema_object>& built)
{
    std::map<std::pair<std::string, std::string>, std::string> in_built;
    for (const auto& o : built)
        in_built[{o.type, o.name}] = o.sql;
    std::vector<std::string> out;
    for (const auto& o : live) {
        const auto it = in_built.find({o.type, o.name});
        if (it == in_built.end())
            out.push_back(
                fmt::format("{} {} is in the database but the migrations do not build it", o.type, o.name));
        else {
            if (squeeze(it->second) != squeeze(o.sql))
                out.push_back(fmt::format("{} {} differs:\n      database:   {}\n      migrations: {}",
                                          o.type,
                                          o.name,
                                          squeeze(o.sql),
                                          squeeze(it->second)));
            in_built.erase(it);
        }
    }
    for (const auto& [key, sql] : in_built)
        out.push_back(
            fmt::format("{} {} is built by the migrations but not in the database", key.first, key.second));
    return out;
}

} // namespace dbactor::detail
