// The value codec: how C++ values bind to statement parameters and columns read into C++ values (scalars,
// std::optional for NULL, std::tuple rows, aggregate structs through Boost.PFR), over out-of-line primitives
// that keep <sqlite3.h> out of headers.
#pragma once

#include <dbactor/error.hpp>

#include <boost/pfr/core.hpp>

#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

struct sqlite3_stmt;

namespace dbactor {

/// A BLOB value: bind it, or read a column into it.
using blob = std::vector<std::byte>;

namespace detail {

// Out-of-line primitives over the C API, so that <sqlite3.h> stays out of this header. Each throws
// SQLite::Exception (with the extended code) when SQLite reports an error.
void bind_null(sqlite3_stmt* s, int index);
void bind_int64(sqlite3_stmt* s, int index, std::int64_t v);
void bind_double(sqlite3_stmt* s, int index, double v);
void bind_text(sqlite3_stmt* s, int index, std::string_view v);
void bind_blob(sqlite3_stmt* s, int index, const void* data, std::size_t size);
bool column_is_null(sqlite3_stmt* s, int index) noexcept;
std::int64_t column_int64(sqlite3_stmt* s, int index) noexcept;
double column_double(sqlite3_stmt* s, int index) noexcept;
std::string_view column_text(sqlite3_stmt* s, int index) noexcept;
std::span<const std::byte> column_blob(sqlite3_stmt* s, int index) noexcept;
[[noreturn]] void throw_out_of_range(sqlite3_stmt* s, int index, std::string_view what);
[[noreturn]] void throw_unexpected_null(sqlite3_stmt* s, int index);
[[noreturn]] void throw_column_count(sqlite3_stmt* s, int wanted);
// `type` is a mangled name from typeid (nullptr without RTTI); the message demangles it.
[[noreturn]] void throw_field_count(sqlite3_stmt* s, int fields, const char* type);

template <class T>
struct is_optional : std::false_type
{};
template <class T>
struct is_optional<std::optional<T>> : std::true_type
{};

template <class T>
struct is_tuple : std::false_type
{};
template <class... T>
struct is_tuple<std::tuple<T...>> : std::true_type
{};

/// A row read field by field: a plain struct (an aggregate class; std::tuple has its own branch).
template <class T>
concept row_struct = !is_tuple<T>::value && std::is_class_v<T> && std::is_aggregate_v<T>;

template <class T>
const char* row_type_name() noexcept
{
#if defined(__cpp_rtti) || defined(__GXX_RTTI)
    return typeid(T).name();
#else
    return nullptr;
#endif
}

template <class T>
void bind_one(sqlite3_stmt* s, int i, const T& v)
{
    using U = std::remove_cvref_t<T>;
    if constexpr (std::is_same_v<U, std::nullptr_t> || std::is_same_v<U, std::nullopt_t>) {
        bind_null(s, i);
    }
    else if constexpr (is_optional<U>::value) {
        if (v)
            bind_one(s, i, *v);
        else
            bind_null(s, i);
    }
    else if constexpr (std::is_same_v<U, bool>) {
        bind_int64(s, i, v ? 1 : 0);
    }
    else if constexpr (std::is_integral_v<U>) {
        if constexpr (std::is_unsigned_v<U> && sizeof(U) >= sizeof(std::int64_t)) {
            if (v > static_cast<U>(std::numeric_limits<std::int64_t>::max()))
                throw_out_of_range(s, i, "an unsigned value above INT64_MAX cannot be stored in SQLite");
        }
        bind_int64(s, i, static_cast<std::int64_t>(v));
    }
    else if constexpr (std::is_enum_v<U>) {
        bind_one(s, i, static_cast<std::underlying_type_t<U>>(v));
    }
    else if constexpr (std::is_floating_point_v<U>) {
        bind_double(s, i, static_cast<double>(v));
    }
    else if constexpr (std::is_convertible_v<const U&, std::string_view>) {
        bind_text(s, i, std::string_view(v));
    }
    else if constexpr (std::is_convertible_v<const U&, std::span<const std::byte>>) {
        std::span<const std::byte> b(v);
        bind_blob(s, i, b.data(), b.size());
    }
    else if constexpr (std::is_same_v<U, std::vector<std::uint8_t>> ||
                       std::is_same_v<U, std::span<const std::uint8_t>>) {
        bind_blob(s, i, v.data(), v.size());
    }
    else {
        static_assert(sizeof(U) == 0, "dbactor: this type cannot be bound to a statement parameter");
    }
}

template <class T>
T read_one(sqlite3_stmt* s, int i)
{
    using U = std::remove_cvref_t<T>;
    if constexpr (is_optional<U>::value) {
        if (column_is_null(s, i))
            return std::nullopt;
        return read_one<typename U::value_type>(s, i);
    }
    else {
        if (column_is_null(s, i))
            throw_unexpected_null(s, i);
        if constexpr (std::is_same_v<U, bool>) {
            return column_int64(s, i) != 0;
        }
        else if constexpr (std::is_integral_v<U>) {
            const std::int64_t v = column_int64(s, i);
            if constexpr (std::is_unsigned_v<U>) {
                if (v < 0 || static_cast<std::uint64_t>(v) > std::numeric_limits<U>::max())
                    throw_out_of_range(s, i, "the column's value does not fit the requested unsigned type");
            }
            else if constexpr (sizeof(U) < sizeof(std::int64_t)) {
                if (v < std::numeric_limits<U>::min() || v > std::numeric_limits<U>::max())
                    throw_out_of_range(s, i, "the column's value does not fit the requested integer type");
            }
            return static_cast<U>(v);
        }
        else if constexpr (std::is_enum_v<U>) {
            return static_cast<U>(read_one<std::underlying_type_t<U>>(s, i));
        }
        else if constexpr (std::is_floating_point_v<U>) {
            return static_cast<U>(column_double(s, i));
        }
        else if constexpr (std::is_same_v<U, std::string>) {
            return std::string(column_text(s, i));
        }
        else if constexpr (std::is_same_v<U, blob>) {
            auto b = column_blob(s, i);
            return blob(b.begin(), b.end());
        }
        else if constexpr (std::is_same_v<U, std::vector<std::uint8_t>>) {
            auto b = column_blob(s, i);
            auto p = reinterpret_cast<const std::uint8_t*>(b.data());
            return std::vector<std::uint8_t>(p, p + b.size());
        }
        else {
            static_assert(sizeof(U) == 0, "dbactor: a column cannot be read into this type");
        }
    }
}

int column_count(sqlite3_stmt* s) noexcept;

template <class T>
T read_row(sqlite3_stmt* s)
{
    if constexpr (is_tuple<T>::value) {
        constexpr int n = static_cast<int>(std::tuple_size_v<T>);
        if (column_count(s) < n)
            throw_column_count(s, n);
        return [&]<std::size_t... I>(std::index_sequence<I...>)
        {
            return T{read_one<std::tuple_element_t<I, T>>(s, static_cast<int>(I))...};
        }
        (std::make_index_sequence<std::tuple_size_v<T>>{});
    }
    else if constexpr (row_struct<T>) {
        // Unlike a tuple, a struct must match exactly: a column too many is as likely a mistake as one too
        // few, and a struct's fields are read by position only.
        constexpr std::size_t n = boost::pfr::tuple_size_v<T>;
        if (column_count(s) != static_cast<int>(n))
            throw_field_count(s, static_cast<int>(n), row_type_name<T>());
        return [&]<std::size_t... I>(std::index_sequence<I...>)
        {
            return T{read_one<boost::pfr::tuple_element_t<I, T>>(s, static_cast<int>(I))...};
        }
        (std::make_index_sequence<n>{});
    }
    else {
        if (column_count(s) < 1)
            throw_column_count(s, 1);
        return read_one<T>(s, 0);
    }
}

} // namespace detail
} // namespace dbactor
