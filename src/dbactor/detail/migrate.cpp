#include <dbactor/detail/migrate.hpp>

#include <dbactor/detail/connection_state.hpp>

#include <dbactor/detail/ledger.hpp>
#include <dbactor/detail/sql_failure.hpp>
#include <dbactor/detail/sql_text.hpp>
#include <dbactor/error.hpp>

#include <SQLiteCpp/Exception.h>
#include <fmt/format.h>
#include <sqlite3.h>

#include <chrono>
#include <string>

namespace dbactor::detail {
namespace {

using clock = std::chrono::steady_clock;

/// Where a script failed and what to do: `source:line:col: what. Migration label failed … on 'path'…`.
[[noreturn]] void fail_script(sqlite3* db,
                              std::string_view text,
                              std::size_t offset,
                              const std::string& what,
                              int ext,
                              errc code,
                              const std::string& source,
                              bool transactional,
                              const std::string& path,
                              const std::string& label)
{
    const auto [line, col] = line_col(text, offset);
    const std::string advice = remedy_for(db, code);
    throw error(code,
                fmt::format("{}:{}:{}: {}. Migration {} {} on '{}'{}",
                            source,
                            line,
                            col,
                            what,
                            label,
                            transactional ? "failed and was rolled back" : "failed part-way (no-transaction)",
                            path,
                            advice.empty()
                                ? fmt::format("; {}. Fix the statement and run again.",
                                              label.ends_with(".down.sql")
                                                  ? "the migrations reverted before it stay reverted"
                                                  : "migrations before it stay applied")
                                : ". " + advice),
                ext);
}

/// The tables (other than `table` itself) whose foreign keys refer to `table`, when foreign keys are on.
std::vector<std::string> referencing_tables(sqlite3* db, const std::string& table)
{
    std::vector<std::string> out;
    if (text_value(db, "PRAGMA foreign_keys") != "1")
        return out;
    statement st(db,
                 "SELECT DISTINCT m.name FROM sqlite_schema AS m, pragma_foreign_key_list(m.name) AS f "
                 "WHERE m.type = 'table' AND f.\"table\" = ?1 COLLATE NOCASE AND m.name <> ?1 COLLATE "
                 "NOCASE ORDER BY m.name");
    st.bind(1, std::string_view(table));
    while (st.step() == SQLITE_ROW)
        out.push_back(st.column_text(0));
    return out;
}

/// Why the runner refuses the statement `sql` before running it (PRAGMA foreign_keys, transaction control in
/// a transactional migration, a DROP TABLE that foreign keys would cascade through), or nullopt.
std::optional<std::string> refusal(sqlite3* db, std::string_view sql, bool transactional)
{
    if (is_pragma_foreign_keys(sql) && pragma_value_is_on(sql))
        return std::string(
            "foreign keys are already on in every migration (the runner turns them on, and off only "
            "around a migration with '-- dbactor: foreign-keys=off'). Remove the statement");
    if (is_pragma_foreign_keys(sql))
        return std::string(
            transactional
                ? "PRAGMA foreign_keys has no effect inside a transaction, and each migration runs in "
                  "one. "
                  "Remove it; for a table rebuild put '-- dbactor: foreign-keys=off' in the file's "
                  "leading "
                  "comments: the runner then turns foreign keys off around the transaction and runs "
                  "foreign_key_check before COMMIT"
                : "a migration must not switch foreign keys itself (the setting would stay for the next "
                  "migrations and the service). Remove it; for a table rebuild put '-- dbactor: "
                  "foreign-keys=off' in the file's leading comments, and the runner turns foreign keys "
                  "off "
                  "and back on around it and runs foreign_key_check");
    if (transactional && is_transaction_control(sql))
        return std::string(
            "a migration must not begin, commit or roll back the transaction it runs in (use SAVEPOINT "
            "for a nested unit, or '-- dbactor: no-transaction' for statements that cannot run in a "
            "transaction)");
    if (const auto table = dropped_table(sql))
        if (const auto children = referencing_tables(db, *table); !children.empty())
            return fmt::format("DROP TABLE {} with foreign keys on would first delete its rows, and with "
                               "them (ON DELETE CASCADE), or refuse for, the rows of {} that refer to it. "
                               "For a table rebuild (create new, copy, drop, rename) put '-- dbactor: "
                               "foreign-keys=off' in the file's leading comments: the runner turns foreign "
                               "keys off around the transaction and runs foreign_key_check before COMMIT. "
                               "To drop it for good, drop {} first",
                               *table,
                               fmt::join(children, ", "),
                               children.size() > 1 ? "those tables" : "that table");
    return std::nullopt;
}

/// Runs `text` one statement at a time, so that a failure names its line and column.
void run_script(sqlite3* db,
                std::string_view text,
                const std::string& source,
                bool transactional,
                const std::string& path,
                const std::string& label)
{
    auto fail = [&](std::size_t offset, const std::string& what, int ext, errc code) {
        fail_script(db, text, offset, what, ext, code, source, transactional, path, label);
    };
    // SQLite's error offset is relative to the statement being prepared or run, which starts at `here`.
    auto fail_at_sqlite_offset = [&](std::size_t here, std::size_t otherwise) {
        const int off = sqlite3_error_offset(db);
        const int ext = sqlite3_extended_errcode(db);
        fail(off >= 0 ? here + static_cast<std::size_t>(off) : otherwise,
             sqlite_text(db),
             ext,
             errc_for_sqlite(ext, errc::migration_failed));
    };
    std::size_t here = 0;
    while (here < text.size()) {
        statement st;
        try {
            st.prepare(db, text.substr(here));
        }
        catch (const SQLite::Exception&) {
            const std::size_t at = skip_blank(text, here);
            if (at < text.size() && text[at] == '.')
                fail(at,
                     fmt::format(
                         "'{}' is a command of the sqlite3 shell, not SQL, and only the shell "
                         "understands it. Remove it (the runner sets the busy timeout and the "
                         "pragmas itself)",
                         text.substr(at, std::min(text.find_first_of(" \t\r\n", at), text.size()) - at)),
                     sqlite3_extended_errcode(db),
                     errc::migration_failed);
            fail_at_sqlite_offset(here, at);
        }
        if (!st) // only white space, comments or empty statements were left (or a NUL byte, where SQLite
                 // stops)
            break;
        // The saved SQL runs from `here` to the prepare's tail: leading blanks and empty statements included.
        const std::size_t length = std::char_traits<char>::length(sqlite3_sql(st.get()));
        const std::size_t stmt_at = skip_blank(text, here);
        const std::string_view sql = text.substr(here, length);
        if (const auto why = refusal(db, sql, transactional))
            fail(stmt_at, *why, 0, errc::migration_failed);
        int rc;
        while ((rc = st.step()) == SQLITE_ROW) {
        }
        if (rc != SQLITE_DONE && sqlite3_extended_errcode(db) == SQLITE_CONSTRAINT_FOREIGNKEY)
            fail(stmt_at,
                 fmt::format(
                     "{}. If this is a table rebuild, put '-- dbactor: foreign-keys=off' in the file's "
                     "leading comments (foreign keys are on in every migration otherwise); if not, fix "
                     "the rows that refer to missing ones first",
                     sqlite_text(db)),
                 SQLITE_CONSTRAINT_FOREIGNKEY,
                 errc::migration_failed);
        if (rc != SQLITE_DONE) // read before any reset, which forgets the error offset
            fail_at_sqlite_offset(here, stmt_at);
        here += length;
    }
}

std::string label_of(const migration& m, bool up)
{
    return fmt::format("{:04}_{}{}", m.version, m.name, up ? ".sql" : ".down.sql");
}

std::string down_source(const migration& m)
{
    if (!m.down_source.empty())
        return m.down_source;
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
/// Fails the migration when it left a per-connection setting other than it found it (after putting it back).
void refuse_state_change(sqlite3* db,
                         const connection_state& expected,
                         std::string_view sql,
                         const std::string& source,
                         const std::string& label,
                         bool transactional,
                         const std::string& path)
{
    std::optional<state_change> change;
    try {
        change = restore_connection_state(db, expected);
    }
    catch (const SQLite::Exception& e) {
        fail_sql(db,
                 e.getErrorCode(),
                 errc::migration_failed,
                 fmt::format("Reading the connection's settings after {}", label));
    }
    if (!change)
        return;
    throw error(
        errc::migration_failed,
        fmt::format(
            "{}: migration {} changed PRAGMA {} from {} to {} and did not set it back; {} on "
            "'{}'. A migration must leave the connection as it found it, or the next migrations "
            "and the service would run with it: set it back at the end of the migration, or "
            "leave it alone{}.",
            where_set(sql, source, change->name),
            label,
            change->name,
            change->before,
            change->now,
            transactional ? "it was rolled back" : "it failed part-way (no-transaction) and was not recorded",
            path,
            change->name == "foreign_keys" ? " (for a table rebuild use '-- dbactor: foreign-keys=off')"
                                           : ""));
}

bool apply_in_transaction(sqlite3* db,
                          const migration& m,
                          bool up,
                          const std::string& path,
                          const std::string& source,
                          const std::string& sql,
                          bool run_statements,
                          bool fk_check,
                          const connection_state& expected,
                          std::optional<clock::time_point> started,
                          std::int64_t& duration_ms)
{
    const std::string label = label_of(m, up);
    exec(db,
         "BEGIN IMMEDIATE",
         fmt::format("Migration {} could not start a transaction on '{}'", label, path));
    // The duration is the migration's own work: from the lock (or its first statement, no-transaction) to
    // COMMIT included; not the wait for another connection's lock.
    const auto t0 = started.value_or(clock::now());
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
    if (run_statements) {
        run_script(db, sql, source, true, path, label);
        refuse_state_change(db, expected, sql, source, label, true, path);
    }
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
    const char* change =
        up ? "INSERT INTO dbactor_migrations (version, name, checksum, applied_at, duration_ms) "
             "VALUES (?1, ?2, ?3, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), ?4)"
           : "DELETE FROM dbactor_migrations WHERE version = ?1";
    const std::string what = fmt::format("Recording {} in the ledger", label);
    statement st = prepare_or_fail(db, change, errc::migration_failed, what);
    st.bind(1, m.version);
    if (up) {
        st.bind(2, std::string_view(m.name));
        st.bind(3, std::string_view(sum));
        st.bind(4, static_cast<std::int64_t>(ms));
    }
    if (const int rc = st.run(); rc != SQLITE_DONE)
        fail_sql(db, rc, errc::migration_failed, what);
    // user_version counts the applied migrations: the newest version when they are sequential; a timestamp
    // would not fit its 32 bits.
    const std::string uv = fmt::format("PRAGMA user_version = {}", ledger_count(db));
    exec(db, uv.c_str(), fmt::format("Setting user_version after {}", label));
    exec(db, "COMMIT", fmt::format("Committing migration {} on '{}'", label, path));
    duration_ms = std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - t0).count();
    if (up && duration_ms != ms) { // COMMIT (an fsync) took a millisecond or more: the row says so
        statement fix = prepare_or_fail(db,
                                        "UPDATE dbactor_migrations SET duration_ms = ?1 WHERE version = ?2",
                                        errc::migration_failed,
                                        what);
        fix.bind(1, static_cast<std::int64_t>(duration_ms));
        fix.bind(2, m.version);
        fix.run(); // best effort: the migration is committed; only its recorded duration would be short
    }
    return true;
}

} // namespace

std::string irreversible(const migration& m)
{
    if (!m.empty_down.empty())
        return fmt::format(
            "Migration {} is not reversible: its down file {} holds no statement, so reverting "
            "it would only remove its ledger row and leave what it built. Nothing was "
            "reverted; write the statements that undo it there, or restore a backup to go back.",
            m.source,
            m.empty_down);
    return fmt::format("Migration {} is irreversible: there is no {}. Nothing was reverted; write the down "
                       "file, or restore a backup to go back.",
                       m.source,
                       down_source(m));
}

bool run_migration(
    sqlite3* db, const migration& m, bool up, const std::string& path, std::int64_t* duration_ms)
{
    std::int64_t ms = 0;
    const std::string label = label_of(m, up);
    if (!up && !m.down_sql)
        throw error(errc::migration_failed, irreversible(m));
    const std::string& sql = up ? m.up_sql : *m.down_sql;
    const std::string source = up ? m.source : down_source(m);
    const auto d = up ? migration_directives{m.no_transaction, m.foreign_keys_off}
                      : parse_migration_directives(sql, source);
    bool done = false;
    // What the migration must leave as it is (foreign keys off while it runs with the directive).
    connection_state expected;
    try {
        expected = read_connection_state(db);
    }
    catch (const SQLite::Exception& e) {
        fail_sql(db,
                 e.getErrorCode(),
                 errc::migration_failed,
                 fmt::format("Reading the connection's settings before {}", label));
    }
    if (d.foreign_keys_off)
        for (auto& [name, value] : expected)
            if (name == "foreign_keys")
                value.assign(1, '0'); // (not = "0": GCC 12 warns -Wrestrict falsely)
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
                const auto started = clock::now();
                run_script(db, sql, source, false, path, label);
                refuse_state_change(db, expected, sql, source, label, false, path);
                done = apply_in_transaction(
                    db, m, up, path, source, sql, false, d.foreign_keys_off, expected, started, ms);
            }
        }
        else {
            done = apply_in_transaction(
                db, m, up, path, source, sql, true, d.foreign_keys_off, expected, std::nullopt, ms);
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
        *duration_ms = ms;
    return done;
}

std::int64_t foreign_key_violations(sqlite3* db, std::vector<std::string>& first, std::size_t limit)
{
    // A check that fails to run is not a violation: errc::open_failed unless SQLite's code says more.
    statement st =
        prepare_or_fail(db, "PRAGMA foreign_key_check", errc::open_failed, "PRAGMA foreign_key_check");
    std::int64_t n = 0;
    int rc;
    while ((rc = st.step()) == SQLITE_ROW) {
        if (first.size() < limit) {
            auto text_or_unknown = [&](int col) {
                return sqlite3_column_type(st.get(), col) == SQLITE_NULL ? std::string("?")
                                                                         : st.column_text(col);
            };
            first.push_back(fmt::format("{} rowid {} refers to a missing row of {}",
                                        text_or_unknown(0),
                                        sqlite3_column_type(st.get(), 1) == SQLITE_NULL
                                            ? std::string("(none)")
                                            : std::to_string(st.column_int64(1)),
                                        text_or_unknown(2)));
        }
        ++n;
    }
    if (rc != SQLITE_DONE)
        fail_sql(db, rc, errc::open_failed, "PRAGMA foreign_key_check");
    return n;
}

} // namespace dbactor::detail
