#include <dbactor/admin.hpp>

#include <dbactor/detail/file_checks.hpp>
#include <dbactor/detail/sql_failure.hpp>
#include <dbactor/error.hpp>

#include <SQLiteCpp/Exception.h>
#include <fmt/format.h>
#include <sqlite3.h>

#include <cerrno>
#include <fcntl.h>
#include <filesystem>
#include <sstream>
#include <stdio.h> // renameat2, RENAME_NOREPLACE
#include <unistd.h>

namespace dbactor::admin {
namespace {

std::string db_path(connection& c)
{
    return detail::database_path(c.handle());
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
        detail::statement st;
        try {
            st.prepare(dest, "PRAGMA quick_check");
            int step;
            while ((step = st.step()) == SQLITE_ROW)
                r.quick_check.push_back(st.column_text(0));
            if (step != SQLITE_DONE)
                r.quick_check.push_back(detail::sqlite_text(dest));
        }
        catch (const SQLite::Exception&) {
            r.quick_check.push_back(detail::sqlite_text(dest));
        }
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
    if (detail::file_size(partial + "-wal") > 0) {
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
