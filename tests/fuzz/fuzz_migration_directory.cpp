// Fuzz target: the migration directory loader. Input: records separated by '\x1e' (ASCII record separator),
// each "file name\ntext", so that a text may hold any byte, NUL included. The records are written as files
// into a scratch directory and loaded with migration_set::from_directory. Property: it returns the same set
// as from_files given the same (name, text) pairs, or both throw dbactor::error(migration_source_invalid);
// nothing else escapes (no std::filesystem_error, no std::out_of_range).
#include <dbactor/error.hpp>
#include <dbactor/migration.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <unistd.h>

namespace fs = std::filesystem;

namespace {

/// One scratch directory per process, emptied before each input and removed at exit.
const fs::path& scratch()
{
    static const fs::path dir = [] {
        const char* base = std::getenv("TMPDIR");
        std::string tmpl = std::string(base && *base ? base : "/tmp") + "/dbactor-fuzz-dir-XXXXXX";
        if (!mkdtemp(tmpl.data()))
            std::abort();
        std::atexit([] {
            std::error_code ec;
            fs::remove_all(scratch(), ec);
        });
        return fs::path(tmpl);
    }();
    return dir;
}

/// A name the file system can hold as one file of this directory (no '/', no NUL, not "." or "..").
bool writable_name(const std::string& name)
{
    return !name.empty() && name.size() <= 200 && name != "." && name != ".." &&
           name.find('/') == std::string::npos && name.find('\0') == std::string::npos;
}

struct outcome
{
    std::optional<dbactor::migration_set> set;
    std::string error;
};

template <class Fn>
outcome load(Fn&& fn)
{
    outcome o;
    try {
        o.set = fn();
    }
    catch (const dbactor::error& e) {
        if (e.value() != dbactor::errc::migration_source_invalid) {
            std::fprintf(stderr, "unexpected errc %d: %s\n", static_cast<int>(e.value()), e.what());
            std::abort();
        }
        o.error = e.what();
    }
    // Anything else escapes: libFuzzer reports it as a crash, the replay test fails.
    return o;
}

bool same(const dbactor::migration& a, const dbactor::migration& b)
{
    return a.version == b.version && a.name == b.name && a.up_sql == b.up_sql && a.down_sql == b.down_sql &&
           a.source == b.source && a.no_transaction == b.no_transaction &&
           a.foreign_keys_off == b.foreign_keys_off;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    if (size > 8192)
        return 0;
    const std::string_view in(reinterpret_cast<const char*>(data), size);
    const fs::path& dir = scratch();
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec))
        fs::remove_all(e.path(), ec);

    // The pairs from_directory should see: every written file whose extension is .sql, each name once.
    std::vector<std::pair<std::string, std::string>> expected;
    std::set<std::string> names;
    std::size_t pos = 0;
    while (pos <= in.size() && names.size() < 32) {
        auto end = in.find('\x1e', pos);
        if (end == std::string_view::npos)
            end = in.size();
        const auto record = in.substr(pos, end - pos);
        pos = end + 1;
        const auto nl = record.find('\n');
        std::string name(record.substr(0, nl));
        std::string text = nl == std::string_view::npos ? std::string() : std::string(record.substr(nl + 1));
        if (!writable_name(name) || !names.insert(name).second)
            continue;
        {
            std::ofstream out(dir / name, std::ios::binary);
            out.write(text.data(), static_cast<std::streamsize>(text.size()));
            if (!out)
                std::abort(); // the scratch directory must take every file we give it
        }
        if (fs::path(name).extension() == ".sql") // what from_directory reads; README.md etc. are skipped
            expected.emplace_back(std::move(name), std::move(text));
    }

    const auto from_dir = load([&] { return dbactor::migration_set::from_directory(dir); });
    const auto from_pairs = load([&] { return dbactor::migration_set::from_files(expected, dir.string()); });
    if (from_dir.set.has_value() != from_pairs.set.has_value()) {
        std::fprintf(stderr,
                     "from_directory and from_files disagree: directory %s, files %s\n",
                     from_dir.set ? "loaded" : from_dir.error.c_str(),
                     from_pairs.set ? "loaded" : from_pairs.error.c_str());
        std::abort();
    }
    if (from_dir.set) {
        const auto& a = from_dir.set->items();
        const auto& b = from_pairs.set->items();
        if (a.size() != b.size())
            std::abort();
        // Sequential sets run 1, 2, 3...; timestamped ones only rise (gaps are their nature).
        const bool sequential = from_dir.set->scheme() == dbactor::version_scheme::sequential;
        if (from_dir.set->scheme() != from_pairs.set->scheme())
            std::abort();
        std::int64_t previous = 0;
        for (std::size_t i = 0; i < a.size(); ++i) {
            const bool in_order = sequential ? a[i].version == previous + 1 : a[i].version > previous;
            if (!same(a[i], b[i]) || !in_order)
                std::abort();
            previous = a[i].version;
        }
    }
    return 0;
}
