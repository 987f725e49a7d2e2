// dbtool's exit codes, their severity, and failures mapped to them.
#include "exit_codes.hpp"

#include <fmt/format.h>

namespace dbtool {

const char* const exit_codes_help = R"(Exit codes:
  0    ok
  1    internal or I/O error (also: cannot open, pragma refused)
  2    usage error
  3    pending migrations (check)
  4    a migration was modified after it was applied, or the migration files are invalid
  5    the database is ahead of this build (versions it does not know)
  6    a migration failed (it was rolled back, also when it would leave foreign-key
       violations; earlier ones stay applied)
  7    busy: the database stayed locked longer than busy_timeout
  8    corruption, or not a database
  9    foreign-key violations
  10   the database belongs to another application (application_id), another
       migration tool manages it (adopt it first), or it is another shard
       (or of a shard set of another size)
  130  interrupted (SIGINT)
When several findings apply, the most severe decides the code, in this order:
8, 10, 6, 4, 5, 9, 7, 3 (130 first, 1 right after 8). The report (text or --json)
lists all of them.)";

int exit_code_for(dbactor::errc e) noexcept
{
    using dbactor::errc;
    switch (e) {
    case errc::not_a_database:
    case errc::integrity_check_failed: return corrupt;
    case errc::wrong_application:
    case errc::not_managed:
    case errc::shard_mismatch: return wrong_application;
    case errc::migration_failed: return failed;
    case errc::migration_modified:
    case errc::migration_source_invalid: return modified;
    case errc::database_ahead: return ahead;
    case errc::foreign_key_violation: return foreign_keys;
    case errc::busy: return busy;
    case errc::cancelled: return interrupted;
    default: return internal;
    }
}

failure sqlite_failure(int extended_code, std::string_view sqlite_text, const global_options& g)
{
    const auto e = dbactor::errc_for_sqlite(extended_code, dbactor::errc::open_failed);
    // The busy, corrupt and not-a-database advice is the library's, so dbtool and a service say the same.
    std::string advice =
        dbactor::remedy(e, dbactor::remedy_context{g.db, g.busy_timeout_ms, "--busy-timeout"});
    if (advice.empty())
        advice = "Check the file, its directory and the free space, then retry.";
    const bool mapped = e != dbactor::errc::open_failed;
    return {mapped ? exit_code_for(e) : internal,
            mapped ? errc_name(e) : "sqlite_error",
            fmt::format(
                "SQLite failed on '{}': {} (SQLite code {}). {}", g.db, sqlite_text, extended_code, advice)};
}

int most_severe(const std::vector<int>& codes) noexcept
{
    // DESIGN.md's order (8, 10, 6, 4, 5, 9, 7, 3), with an interruption first and an internal or I/O error
    // (which may have cut the other checks short) right after corruption.
    static constexpr int order[] = {interrupted,
                                    corrupt,
                                    internal,
                                    wrong_application,
                                    failed,
                                    modified,
                                    ahead,
                                    foreign_keys,
                                    busy,
                                    pending,
                                    usage};
    for (int c : order)
        for (int x : codes)
            if (x == c)
                return c;
    return ok;
}

} // namespace dbtool
