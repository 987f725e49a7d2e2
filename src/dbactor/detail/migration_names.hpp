// Migration file names as dbactor reads them (both version schemes, `.up.sql` pairs), the advice for names it
// does not read, and the list of problems a migration source collects before it reports them all.
#pragma once

#include <dbactor/error.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace dbactor::detail {

enum class file_kind
{
    up,      ///< V_name.sql
    up_pair, ///< V_name.up.sql (sqlx, golang-migrate)
    down,    ///< V_name.down.sql
};

struct parsed_name
{
    std::int64_t version;
    std::string name;
    file_kind kind;
    std::size_t digits;
};

/// Versions of this many digits or more are timestamps (sqlx, goose, dbmate, golang-migrate, diesel).
constexpr std::size_t timestamp_digits = 10;

/// What to rename a file that is not named as dbactor reads to, as a sentence (or the table of names).
std::string rename_advice(const std::string& file);

/// The version, name and kind of `file`, or nullopt when it is not named `V_name[.up|.down].sql`.
/// Errors: errc::migration_source_invalid for a version too large for 64 bits (`where` names it).
std::optional<parsed_name> parse_file_name(const std::string& file, const std::string& where);

/// True when `sql` holds a statement, not only white space, comments and empty statements.
bool has_statement(std::string_view sql);

/// Diesel's layout (`2021-04-22-143411_create_history/up.sql` and `down.sql`), refused with the renames that
/// turn it into dbactor's (the directory name's digits are the timestamp).
[[noreturn]] void refuse_diesel_layout(const std::filesystem::path& dir, std::vector<std::string> names);

/// The problems of one migration source, reported together (sorted by version) once all files were read.
class problems
{
public:
    void add(std::int64_t version, std::string message) { list_.push_back({version, std::move(message)}); }

    /// Runs `f`, keeping its errc::migration_source_invalid as a problem of `version`.
    template <class F>
    void collect(std::int64_t version, F&& f)
    {
        try {
            f();
        }
        catch (const error& e) {
            if (e.value() != errc::migration_source_invalid)
                throw;
            add(version, e.what());
        }
    }

    /// Throws one errc::migration_source_invalid with every problem, one per line, sorted by version
    /// (a single problem keeps its own message); does nothing when there is none.
    void throw_if_any(std::string_view origin);

private:
    std::vector<std::pair<std::int64_t, std::string>> list_;
};

} // namespace dbactor::detail
