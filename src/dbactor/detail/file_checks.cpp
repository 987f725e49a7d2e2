#include <dbactor/detail/file_checks.hpp>

#include <dbactor/detail/statement.hpp>
#include <dbactor/error.hpp>

#include <SQLiteCpp/Database.h>
#include <fmt/format.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <fstream>

namespace dbactor::detail {

namespace fs = std::filesystem;

file_header read_header(const std::string& path)
{
    file_header h;
    std::error_code ec;
    if (!fs::is_regular_file(path, ec))
        return h;
    h.exists = true;
    h.size = fs::file_size(path, ec);
    std::array<unsigned char, 100> b{};
    std::ifstream in(path, std::ios::binary);
    in.read(reinterpret_cast<char*>(b.data()), b.size());
    const auto got = static_cast<std::size_t>(in.gcount());
    static constexpr char magic[] = "SQLite format 3";
    h.sqlite_magic = got >= 16 && std::equal(magic, magic + 16, b.begin());
    if (got < 100 || !h.sqlite_magic)
        return h;
    auto be32 = [&](int i) {
        return (std::uint32_t(b[i]) << 24) | (std::uint32_t(b[i + 1]) << 16) |
               (std::uint32_t(b[i + 2]) << 8) | std::uint32_t(b[i + 3]);
    };
    h.page_size = (std::uint32_t(b[16]) << 8) | b[17];
    if (h.page_size == 1)
        h.page_size = 65536;
    h.wal_mode = b[18] == 2 && b[19] == 2;
    if (be32(24) == be32(92)) // the in-header size is valid only when the change counters agree
        h.page_count = be32(28);
    return h;
}

std::string file_uri(const std::string& path, const char* params)
{
    std::string uri = "file:";
    for (unsigned char ch : fs::absolute(path).string()) {
        if (std::isalnum(ch) || ch == '/' || ch == '.' || ch == '-' || ch == '_' || ch == '~')
            uri.push_back(static_cast<char>(ch));
        else
            uri += fmt::format("%{:02X}", ch);
    }
    return uri + "?" + params;
}

main_file_view view_of(sqlite3* db)
{
    main_file_view v;
    v.schema_version = std::stoll(text_value(db, "PRAGMA schema_version"));
    v.has_ledger =
        !text_rows(db, "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'dbactor_migrations'", 1)
             .empty();
    return v;
}

std::optional<main_file_view> read_main_file_only(const std::string& path, const std::string& vfs)
{
    try {
        SQLite::Database alone(file_uri(path, "mode=ro&immutable=1"),
                               SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI,
                               0,
                               vfs);
        return view_of(alone.getHandle());
    }
    catch (...) {
        return std::nullopt;
    }
}

void take_snapshot(const std::string& path, immutable_open& im)
{
    std::error_code ec;
    im.size = fs::file_size(path, ec);
    im.mtime = fs::last_write_time(path, ec);
    std::ifstream in(path, std::ios::binary);
    in.read(im.header.data(), static_cast<std::streamsize>(im.header.size()));
}

bool changed_since(const std::string& path, const immutable_open& im)
{
    immutable_open now;
    take_snapshot(path, now);
    std::error_code ec;
    return fs::exists(path + "-wal", ec) || now.header != im.header || now.size != im.size ||
           now.mtime != im.mtime;
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

/// A writing boot fails fast and clearly where SQLite would say only "unable to open" or "readonly database"
/// after the first write.
void refuse_unwritable(const options& o, const file_header& header, bool plain_file)
{
    if (plain_file) {
        const fs::path dir = fs::absolute(o.path).parent_path();
        if (header.exists && ::access(o.path.c_str(), W_OK) != 0)
            throw error(errc::open_failed,
                        fmt::format("The database '{}' is read-only (no write permission). dbactor opens "
                                    "a database for writing: make the file writable (chmod u+w), or use "
                                    "options::read_only / dbtool check to inspect it.",
                                    o.path));
        if (::access(dir.c_str(), W_OK | X_OK) != 0)
            throw error(errc::open_failed,
                        fmt::format("The directory '{}' of the database '{}' is not writable (or does "
                                    "not exist). SQLite creates '{}-wal' and '{}-shm' next to the database; "
                                    "make the directory writable, or move the database.",
                                    dir.string(),
                                    o.path,
                                    o.path,
                                    o.path));
        if (!header.exists && !o.create)
            throw error(errc::open_failed,
                        fmt::format("The database '{}' does not exist and options::create is false. Check "
                                    "the path, or set create = true to make a new database.",
                                    o.path));
    }
}

} // namespace dbactor::detail
