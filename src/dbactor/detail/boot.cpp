#include <dbactor/detail/boot.hpp>

#include <dbactor/error.hpp>

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Exception.h>
#include <fmt/format.h>
#include <sqlite3.h>

#include <chrono>
#include <cstdio>
#include <string>

namespace dbactor::detail {
namespace {

using clock = std::chrono::steady_clock;

std::string lower(std::string s)
{
    for (auto& c : s)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

std::string pragma_value(SQLite::Database& db, const std::string& name)
{
    sqlite3_stmt* s = nullptr;
    const std::string sql = "PRAGMA " + name;
    if (sqlite3_prepare_v2(db.getHandle(), sql.c_str(), -1, &s, nullptr) != SQLITE_OK)
        throw SQLite::Exception(db.getHandle(), sqlite3_errcode(db.getHandle()));
    std::string v;
    if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 0))
        v = reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
    sqlite3_finalize(s);
    return v;
}

/// What `PRAGMA name` reads back as when it was set to `value` (synchronous reads back as a number).
std::string expected_readback(const std::string& name, const std::string& value)
{
    const std::string n = lower(name), v = lower(value);
    if (n == "synchronous") {
        if (v == "off")
            return "0";
        if (v == "normal")
            return "1";
        if (v == "full")
            return "2";
        if (v == "extra")
            return "3";
    }
    if (v == "on" || v == "true" || v == "yes")
        return "1";
    if (v == "off" || v == "false" || v == "no")
        return "0";
    return v;
}

} // namespace

void log(const options& o, log_level level, std::string_view message) noexcept
{
    try {
        if (o.on_log)
            o.on_log(level, message);
        else if (level >= log_level::warning)
            std::fprintf(stderr, "dbactor: %.*s\n", static_cast<int>(message.size()), message.data());
    }
    catch (...) {
        // A logging hook must not take the actor down.
    }
}

std::unique_ptr<SQLite::Database> boot(const options& o, boot_summary& report)
{
    const auto t0 = clock::now();
    report.path = o.path;
    report.sqlite_version = sqlite3_libversion();

    int flags = o.read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE;
    if (o.create && !o.read_only)
        flags |= SQLITE_OPEN_CREATE;
    flags |= SQLITE_OPEN_NOMUTEX;

    std::unique_ptr<SQLite::Database> db;
    try {
        db = std::make_unique<SQLite::Database>(o.path, flags, 0, o.vfs);
    }
    catch (const SQLite::Exception& e) {
        throw error(errc::open_failed,
                    fmt::format("Cannot open the database '{}': {}. Check that the path exists and is "
                                "writable{}.",
                                o.path,
                                e.what(),
                                o.create ? "" : " (options::create is false, so the file must exist)"),
                    e.getExtendedErrorCode());
    }
    sqlite3_extended_result_codes(db->getHandle(), 1);
    db->setBusyTimeout(static_cast<int>(o.busy_timeout.count()));

    std::vector<std::pair<std::string, std::string>> pragmas = {
        {"journal_mode", "wal"},
        {"synchronous", o.synchronous == synchronous_mode::full ? "full" : "normal"},
        {"foreign_keys", "on"},
        {"busy_timeout", std::to_string(o.busy_timeout.count())},
        {"journal_size_limit", std::to_string(o.journal_size_limit)},
    };
    pragmas.insert(pragmas.end(), o.pragmas.begin(), o.pragmas.end());
    const bool memory = o.path == ":memory:" || o.path.empty();
    for (const auto& [name, value] : pragmas) {
        try {
            if (!o.read_only)
                db->exec(fmt::format("PRAGMA {} = {}", name, value));
            std::string actual = lower(pragma_value(*db, name));
            std::string expected = expected_readback(name, value);
            report.pragmas.push_back({name, value, actual});
            if (o.read_only)
                continue;
            if (lower(name) == "journal_mode" && memory && actual == "memory")
                continue;
            if (actual != expected)
                throw error(errc::pragma_mismatch,
                            fmt::format("PRAGMA {} was set to '{}' on '{}' but reads back '{}'. The file "
                                        "system or VFS may not support it; choose another value.",
                                        name,
                                        value,
                                        o.path,
                                        actual));
        }
        catch (const SQLite::Exception& e) {
            throw error(errc::pragma_mismatch,
                        fmt::format("PRAGMA {} = {} failed on '{}': {}.", name, value, o.path, e.what()),
                        e.getExtendedErrorCode());
        }
    }
    report.total = std::chrono::duration_cast<std::chrono::microseconds>(clock::now() - t0);
    return db;
}

std::unique_ptr<SQLite::Database> open_reader(const options& o)
{
    auto db = std::make_unique<SQLite::Database>(
        o.path, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, static_cast<int>(o.busy_timeout.count()), o.vfs);
    sqlite3_extended_result_codes(db->getHandle(), 1);
    return db;
}

} // namespace dbactor::detail
