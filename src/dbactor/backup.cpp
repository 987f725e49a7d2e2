// admin::backup: an online copy through SQLite's backup API, checked, then published without replacing a
// file. Every resource it takes is owned by a guard, so each failure path only throws: the backup handle is
// finished, the source's read transaction ended, the copy's connection closed and the partial files removed,
// in that order, by the destructors.
#include <dbactor/admin.hpp>

#include <dbactor/detail/file_checks.hpp>
#include <dbactor/detail/pragmas.hpp>
#include <dbactor/detail/sql_failure.hpp>
#include <dbactor/error.hpp>

#include <SQLiteCpp/Exception.h>
#include <fmt/format.h>
#include <sqlite3.h>

#include <cerrno>
#include <fcntl.h>
#include <filesystem>
#include <stdio.h> // renameat2, RENAME_NOREPLACE
#include <unistd.h>

namespace dbactor::admin {
namespace {

void remove_quietly(const std::string& path) noexcept
{
    std::error_code ec;
    std::filesystem::remove(path, ec);
}

/// The partial copy `to + ".partial"` and the -journal, -wal and -shm its connection may leave beside it (the
/// copy is a WAL database: the mode is in the copied header). Removed when the guard is made (left over by a
/// backup that was killed) and when it goes away: on every failure, and after publishing, when only a stray
/// -wal or -shm of the partial name can be left.
class partial_files
{
public:
    explicit partial_files(std::string path) : path_(std::move(path)) { remove(); }
    partial_files(const partial_files&) = delete;
    partial_files& operator=(const partial_files&) = delete;
    ~partial_files() { remove(); }

    const std::string& path() const noexcept { return path_; }

    void remove() const noexcept
    {
        for (const char* suffix : {"", "-journal", "-wal", "-shm"})
            remove_quietly(path_ + suffix);
    }

private:
    std::string path_;
};

/// The copy's own connection, closed when the owner goes away unless close() already did.
class copy_connection
{
public:
    copy_connection() = default;
    copy_connection(const copy_connection&) = delete;
    copy_connection& operator=(const copy_connection&) = delete;
    ~copy_connection() { close(); }

    sqlite3** out() noexcept { return &db_; }
    sqlite3* get() const noexcept { return db_; }

    /// sqlite3_close; SQLITE_OK when there was nothing to close. A connection that failed to close stays
    /// owned, and the destructor tries again.
    int close() noexcept
    {
        const int rc = sqlite3_close(db_);
        if (rc == SQLITE_OK)
            db_ = nullptr;
        return rc;
    }

private:
    sqlite3* db_ = nullptr;
};

/// One read transaction on the source around every step: the copy is one snapshot, a writer elsewhere goes
/// on (WAL), and the copy is never restarted by its commits. A caller's open transaction is left alone.
class read_snapshot
{
public:
    explicit read_snapshot(sqlite3* src) : src_(src) {}
    read_snapshot(const read_snapshot&) = delete;
    read_snapshot& operator=(const read_snapshot&) = delete;
    ~read_snapshot() { end(); }

    /// Errors: SQLite's extended code (SQLITE_OK on success; nothing begun when the caller has a
    /// transaction).
    int begin() noexcept
    {
        if (sqlite3_get_autocommit(src_) == 0)
            return SQLITE_OK;
        owned_ = true;
        if (sqlite3_exec(src_, "BEGIN; SELECT count(*) FROM sqlite_schema", nullptr, nullptr, nullptr) ==
            SQLITE_OK)
            return SQLITE_OK;
        return sqlite3_extended_errcode(src_);
    }

    void end() noexcept
    {
        if (owned_)
            detail::rollback_quietly(src_);
        owned_ = false;
    }

private:
    sqlite3* src_;
    bool owned_ = false;
};

/// The sqlite3_backup handle, finished when the owner goes away unless finish() already did.
class backup_handle
{
public:
    explicit backup_handle(sqlite3_backup* b) noexcept : b_(b) {}
    backup_handle(const backup_handle&) = delete;
    backup_handle& operator=(const backup_handle&) = delete;
    ~backup_handle() { finish(); }

    sqlite3_backup* get() const noexcept { return b_; }
    explicit operator bool() const noexcept { return b_ != nullptr; }

    void finish() noexcept
    {
        if (b_)
            sqlite3_backup_finish(b_);
        b_ = nullptr;
    }

private:
    sqlite3_backup* b_;
};

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

struct copy_outcome
{
    int rc = SQLITE_OK;
    bool stopped = false; ///< `progress` returned false before the copy was done
    std::int64_t pages = 0;
};

/// Steps the backup `pages_per_step` pages at a time to its end, or until `progress` says stop.
copy_outcome copy_pages(sqlite3_backup* b,
                        const std::function<bool(std::int64_t, std::int64_t)>& progress,
                        int pages_per_step)
{
    copy_outcome out;
    while (out.rc == SQLITE_OK || out.rc == SQLITE_BUSY || out.rc == SQLITE_LOCKED) {
        out.rc = sqlite3_backup_step(b, pages_per_step);
        const std::int64_t total = sqlite3_backup_pagecount(b);
        const std::int64_t done = total - sqlite3_backup_remaining(b);
        if (progress && !progress(done, total) && out.rc != SQLITE_DONE) {
            out.stopped = true;
            break;
        }
        if (out.rc == SQLITE_BUSY || out.rc == SQLITE_LOCKED)
            sqlite3_sleep(10); // the destination is ours alone; this only happens under a foreign lock
    }
    out.pages = sqlite3_backup_pagecount(b);
    return out;
}

/// The copy's quick_check rows; a failure to run it is a row of its own (the copy is then not sound).
std::vector<std::string> quick_check_of(sqlite3* dest)
{
    std::vector<std::string> rows;
    try {
        detail::statement st(dest, "PRAGMA quick_check");
        int step;
        while ((step = st.step()) == SQLITE_ROW)
            rows.push_back(st.column_text(0));
        if (step != SQLITE_DONE)
            rows.push_back(detail::sqlite_text(dest));
    }
    catch (const SQLite::Exception&) {
        rows.push_back(detail::sqlite_text(dest));
    }
    return rows;
}

[[noreturn]] void throw_copy_failed(const std::string& from, const std::string& to, int rc)
{
    const errc code = errc_for_sqlite(rc, errc::open_failed);
    throw error(code,
                fmt::format("The backup of '{}' to '{}' failed: {} (SQLite code {}). The partial copy was "
                            "removed; {}.",
                            from,
                            to,
                            sqlite3_errstr(rc),
                            rc,
                            code == errc::integrity_check_failed
                                ? "the source is damaged, run `dbtool check --full` on it"
                                : "check the free space and permissions of the target directory, then retry"),
                rc);
}

[[noreturn]] void throw_unsound(const std::string& from, const std::string& to, const backup_result& r)
{
    const std::string first = fmt::format("{}", fmt::join(detail::problem_lines(r.quick_check, 3), "; "));
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

/// Closes the checked copy (which checkpoints its -wal into it) and moves it to `to` without replacing a
/// file.
void close_and_publish(copy_connection& dest, const partial_files& partial, const std::string& to)
{
    const std::string& path = partial.path();
    // Closing the last connection checkpoints the copy's -wal into it: only then is the file complete.
    if (const int close_rc = dest.close(); close_rc != SQLITE_OK)
        throw error(
            errc::open_failed,
            fmt::format("Closing the backup copy '{}' failed: {}. It was removed and '{}' was not created; "
                        "check the free space of the target directory, then retry.",
                        path,
                        sqlite3_errstr(close_rc),
                        to));
    if (detail::file_size(path + "-wal") > 0)
        throw error(
            errc::open_failed,
            fmt::format("The backup copy '{}' kept pages in '{}-wal' after it was closed, so it was removed "
                        "and '{}' was not created. Check the free space of the target directory, then retry.",
                        path,
                        path,
                        to));
    if (!publish_no_replace(path, to)) {
        const int err = errno;
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
                        path,
                        to,
                        std::generic_category().message(err)));
    }
}

} // namespace

backup_result backup(connection& c,
                     const std::string& to,
                     const std::function<bool(std::int64_t, std::int64_t)>& progress,
                     int pages_per_step)
{
    sqlite3* src = c.handle();
    const std::string from = detail::database_path(src);
    std::error_code ec;
    if (std::filesystem::exists(to, ec))
        throw error(
            errc::open_failed,
            fmt::format("The backup target '{}' already exists. Choose a new file name (a backup never "
                        "overwrites a file).",
                        to));
    // Declared in the order they are taken; destroyed in reverse: the backup handle is finished, the read
    // transaction ended, the copy's connection closed, and only then are the partial files removed.
    const partial_files partial(to + ".partial");
    copy_connection dest;
    if (sqlite3_open_v2(
            partial.path().c_str(), dest.out(), SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) !=
        SQLITE_OK)
        throw error(
            errc::open_failed,
            fmt::format("Cannot create the backup file '{}': {}. Check that its directory exists and is "
                        "writable.",
                        partial.path(),
                        dest.get() ? detail::sqlite_text(dest.get()) : "out of memory"));
    read_snapshot snapshot(src);
    if (const int ext = snapshot.begin(); ext != SQLITE_OK)
        throw error(errc_for_sqlite(ext, errc::open_failed),
                    fmt::format("Cannot read '{}' for the backup: {} (SQLite code {}). Nothing was written; "
                                "check the database with `dbtool check`.",
                                from,
                                detail::sqlite_text(src),
                                ext),
                    ext);
    backup_handle b(sqlite3_backup_init(dest.get(), "main", src, "main"));
    if (!b)
        throw error(
            errc::open_failed,
            fmt::format("Cannot start the backup of '{}' to '{}': {}. Nothing was written; check that the "
                        "target directory is writable.",
                        from,
                        to,
                        detail::sqlite_text(dest.get())));
    const copy_outcome copied = copy_pages(b.get(), progress, pages_per_step);
    b.finish();
    snapshot.end();
    if (copied.stopped)
        throw error(
            errc::cancelled,
            fmt::format("The backup of '{}' was stopped; the partial copy was removed and '{}' was not "
                        "created.",
                        from,
                        to));
    if (copied.rc != SQLITE_DONE)
        throw_copy_failed(from, to, copied.rc);
    backup_result r;
    r.pages = copied.pages;
    r.quick_check = quick_check_of(dest.get());
    if (r.quick_check.size() != 1 || r.quick_check.front() != "ok")
        throw_unsound(from, to, r);
    close_and_publish(dest, partial, to);
    return r; // `partial` removes a -wal / -shm of the partial name, if the copy's connection left any
}

} // namespace dbactor::admin
