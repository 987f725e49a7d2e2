#include <dbactor/detail/value_codec.hpp>

#include <SQLiteCpp/Exception.h>
#include <boost/core/demangle.hpp>
#include <fmt/format.h>
#include <sqlite3.h>

namespace dbactor::detail {
namespace {

void check_bind(sqlite3_stmt* s, int rc)
{
    if (rc != SQLITE_OK)
        throw SQLite::Exception(sqlite3_db_handle(s), rc);
}

std::string sql_excerpt(sqlite3_stmt* s)
{
    std::string_view sql = sqlite3_sql(s) ? sqlite3_sql(s) : "";
    if (sql.size() > 80)
        return std::string(sql.substr(0, 77)) + "...";
    return std::string(sql);
}

} // namespace

void bind_null(sqlite3_stmt* s, int index)
{
    check_bind(s, sqlite3_bind_null(s, index));
}
void bind_int64(sqlite3_stmt* s, int index, std::int64_t v)
{
    check_bind(s, sqlite3_bind_int64(s, index, v));
}
void bind_double(sqlite3_stmt* s, int index, double v)
{
    check_bind(s, sqlite3_bind_double(s, index, v));
}
void bind_text(sqlite3_stmt* s, int index, std::string_view v)
{
    // SQLITE_STATIC: the value outlives the statement's use (statement_use clears bindings on scope exit).
    check_bind(s, sqlite3_bind_text64(s, index, v.data(), v.size(), SQLITE_STATIC, SQLITE_UTF8));
}
void bind_blob(sqlite3_stmt* s, int index, const void* data, std::size_t size)
{
    if (size == 0)
        check_bind(s, sqlite3_bind_zeroblob(s, index, 0));
    else
        check_bind(s, sqlite3_bind_blob64(s, index, data, size, SQLITE_STATIC));
}
bool column_is_null(sqlite3_stmt* s, int index) noexcept
{
    return sqlite3_column_type(s, index) == SQLITE_NULL;
}
std::int64_t column_int64(sqlite3_stmt* s, int index) noexcept
{
    return sqlite3_column_int64(s, index);
}
double column_double(sqlite3_stmt* s, int index) noexcept
{
    return sqlite3_column_double(s, index);
}
std::string_view column_text(sqlite3_stmt* s, int index) noexcept
{
    auto p = reinterpret_cast<const char*>(sqlite3_column_text(s, index));
    return p ? std::string_view(p, static_cast<std::size_t>(sqlite3_column_bytes(s, index)))
             : std::string_view();
}
std::span<const std::byte> column_blob(sqlite3_stmt* s, int index) noexcept
{
    auto p = static_cast<const std::byte*>(sqlite3_column_blob(s, index));
    return p ? std::span<const std::byte>(p, static_cast<std::size_t>(sqlite3_column_bytes(s, index)))
             : std::span<const std::byte>();
}
int column_count(sqlite3_stmt* s) noexcept
{
    return sqlite3_column_count(s);
}

void throw_out_of_range(sqlite3_stmt* s, int index, std::string_view what)
{
    throw error(errc::value_out_of_range,
                fmt::format("Value {} of \"{}\": {}. Store such values as TEXT or BLOB, or use a signed "
                            "type.",
                            index,
                            sql_excerpt(s),
                            what));
}

void throw_unexpected_null(sqlite3_stmt* s, int index)
{
    const char* name = sqlite3_column_name(s, index);
    throw error(errc::unexpected_null,
                fmt::format("Column {} ('{}') of \"{}\" is NULL, but it is read into a type that cannot hold "
                            "NULL. Read it as std::optional<T>, or add NOT NULL / COALESCE in SQL.",
                            index,
                            name ? name : "?",
                            sql_excerpt(s)));
}

void throw_column_count(sqlite3_stmt* s, int wanted)
{
    throw error(errc::value_out_of_range,
                fmt::format("\"{}\" returns {} column(s), but {} are read. Select as many columns as the "
                            "tuple has elements.",
                            sql_excerpt(s),
                            sqlite3_column_count(s),
                            wanted));
}

void throw_field_count(sqlite3_stmt* s, int fields, const char* type)
{
    throw error(
        errc::value_out_of_range,
        fmt::format("\"{}\" returns {} column(s), but the row type {} has {} field(s); columns are read "
                    "into fields by position. Select one column per field, in the order the fields "
                    "are declared.",
                    sql_excerpt(s),
                    sqlite3_column_count(s),
                    type ? boost::core::demangle(type) : std::string("(a struct)"),
                    fields));
}

} // namespace dbactor::detail
