// Fuzz target: the migration source loader (file names, both version schemes, `.up.sql`/`.down.sql` pairs,
// goose and dbmate sections, BOMs, header directives). Input: records separated by '\0', each "file
// name\ntext". Property: from_files either returns a set whose versions increase strictly (1..n without gaps
// when sequential) with up sections that hold no Down marker, or throws
// dbactor::error(migration_source_invalid); nothing else escapes.
#include <dbactor/error.hpp>
#include <dbactor/migration.hpp>

#include <algorithm>
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

/// Lowercased `text` without its leading blanks.
std::string lower_trimmed(std::string_view text)
{
    text.remove_prefix(std::min(text.find_first_not_of(" \t\r\v\f"), text.size()));
    std::string out(text);
    for (auto& ch : out)
        ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    return out;
}

/// A line that reads as a Down marker (`-- +goose Down`, `-- +goose down`, `-- migrate:down`); the same
/// text inside a line, or `-- +Goose Down`, is no marker.
bool has_down_marker_line(std::string_view sql)
{
    std::size_t pos = 0;
    while (pos < sql.size()) {
        const auto end = std::min(sql.find('\n', pos), sql.size());
        std::string_view line = sql.substr(pos, end - pos);
        pos = end + 1;
        line.remove_prefix(std::min(line.find_first_not_of(" \t\r\v\f"), line.size()));
        if (!line.starts_with("--"))
            continue;
        line.remove_prefix(2);
        line.remove_prefix(std::min(line.find_first_not_of(" \t\r\v\f"), line.size()));
        // Both tools spell their prefix in lower case ('-- +Goose Down' is a comment to goose); goose reads
        // the word after it in any case.
        if (line.starts_with("migrate:down") ||
            (line.starts_with("+goose") && lower_trimmed(line.substr(6)).starts_with("down")))
            return true;
    }
    return false;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    if (size > 8192)
        return 0;
    const std::string_view in(reinterpret_cast<const char*>(data), size);
    std::vector<std::pair<std::string, std::string>> files;
    std::size_t pos = 0;
    while (pos <= in.size() && files.size() < 32) {
        auto end = in.find('\0', pos);
        if (end == std::string_view::npos)
            end = in.size();
        const auto record = in.substr(pos, end - pos);
        const auto nl = record.find('\n');
        files.emplace_back(std::string(record.substr(0, nl)),
                           nl == std::string_view::npos ? std::string() : std::string(record.substr(nl + 1)));
        pos = end + 1;
    }
    try {
        auto set = dbactor::migration_set::from_files(files, "fuzz");
        const bool sequential = set.scheme() == dbactor::version_scheme::sequential;
        std::int64_t previous = 0;
        for (const auto& m : set.items()) {
            if (m.version <= previous || (sequential && m.version != previous + 1) ||
                m.source.rfind("fuzz/", 0) != 0)
                std::abort();
            if (set.find(m.version) != &m)
                std::abort();
            if (m.down_sql && !m.empty_down.empty())
                std::abort(); // a down file is either a down migration or one without statements
            if (has_down_marker_line(m.up_sql) && m.down_sql)
                std::abort(); // a file is never run with its Down section
            previous = m.version;
        }
        if (set.latest_version() != previous)
            std::abort();
        for (const auto& [name, text] : files)
            (void)dbactor::migration_checksum(text);
    }
    catch (const dbactor::error& e) {
        if (e.value() != dbactor::errc::migration_source_invalid) {
            std::fprintf(stderr, "unexpected errc %d: %s\n", static_cast<int>(e.value()), e.what());
            std::abort();
        }
    }
    // Anything else (std::out_of_range, std::regex_error, ...) escapes: libFuzzer reports it as a crash.
    try {
        (void)dbactor::parse_migration_directives(in, "fuzz/0001_x.sql");
    }
    catch (const dbactor::error& e) {
        if (e.value() != dbactor::errc::migration_source_invalid)
            std::abort();
    }
    return 0;
}
