// Fuzz target: the migration runner. The input is the text of migration 0001 (and, after a '\0', of 0002);
// the set is applied to ":memory:" through database::open. Property: open succeeds, or throws
// dbactor::error; a migration_failed error names the migration (file:line:column for a failing
// statement); nothing else escapes.
#include <dbactor/dbactor.hpp>

#include <algorithm>
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <regex>
#include <string>
#include <string_view>

namespace {

/// Statements that touch files or run without bound are kept out: the target is the runner, not SQLite.
bool acceptable(std::string_view text)
{
    std::string lower(text);
    std::transform(
        lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
    for (const char* banned : {"attach",
                               "vacuum",
                               "recursive",
                               "zeroblob",
                               "randomblob",
                               "printf",
                               "format",
                               "load_extension",
                               "temp_store_directory",
                               "data_store_directory"})
        if (lower.find(banned) != std::string::npos)
            return false;
    return true;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    if (size > 4096)
        return 0;
    const std::string_view in(reinterpret_cast<const char*>(data), size);
    if (!acceptable(in))
        return 0;
    std::vector<std::pair<std::string, std::string>> files;
    const auto sep = in.find('\0');
    files.emplace_back("0001_fuzz.sql", std::string(in.substr(0, sep)));
    if (sep != std::string_view::npos)
        files.emplace_back("0002_more.sql", std::string(in.substr(sep + 1)));

    dbactor::options o;
    o.path = ":memory:";
    o.integrity_check = dbactor::check_level::none;
    o.on_log = [](dbactor::log_level, std::string_view) {};
    try {
        o.migrations = dbactor::migration_set::from_files(std::move(files), "fuzz");
    }
    catch (const dbactor::error& e) {
        if (e.value() != dbactor::errc::migration_source_invalid)
            std::abort();
        return 0;
    }
    try {
        auto db = dbactor::database::open(std::move(o));
        // Booted: the ledger says every migration is applied.
        const auto applied = db.read([](dbactor::connection& c) {
            return c.query_one<std::int64_t>("SELECT count(*) FROM dbactor_migrations");
        });
        if (!applied || *applied != static_cast<std::int64_t>(sep == std::string_view::npos ? 1 : 2))
            std::abort();
        db.close();
    }
    catch (const dbactor::error& e) {
        if (e.value() == dbactor::errc::migration_failed) {
            // A failing statement is named by file:line:column; a failure around it (the ledger) by file.
            static const std::regex where(
                R"(fuzz/000[12]_(fuzz|more)\.sql:[0-9]+:[0-9]+: |000[12]_(fuzz|more)\.sql)");
            if (!std::regex_search(std::string(e.what()), where)) {
                std::fprintf(stderr, "migration_failed without naming the migration: %s\n", e.what());
                std::abort();
            }
        }
    }
    return 0;
}
