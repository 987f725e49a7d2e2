// Fuzz target: the migration source loader (file names, versions, down files, header directives).
// Input: records separated by '\0', each "file name\ntext". Property: from_files either returns a set with
// versions 1..n in order, or throws dbactor::error(migration_source_invalid); nothing else escapes.
#include <dbactor/error.hpp>
#include <dbactor/migration.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

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
        std::int64_t expected = 1;
        for (const auto& m : set.items())
            if (m.version != expected++ || m.source.rfind("fuzz/", 0) != 0)
                std::abort();
        if (set.latest_version() != expected - 1)
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
