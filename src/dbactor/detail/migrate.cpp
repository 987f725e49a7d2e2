#include <dbactor/detail/migrate.hpp>

#include <dbactor/detail/ledger.hpp>
#include <dbactor/detail/sql_failure.hpp>
#include <dbactor/detail/sql_text.hpp>
#include <dbactor/error.hpp>

#include <fmt/format.h>
#include <sqlite3.h>

#include <chrono>

namespace dbactor::detail {
namespace {

using clock = std::chrono::steady_clock;

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
