// The errors the actor gives requests: the sentence for each errc, and what an exception of a request says.
#pragma once

#include <dbactor/error.hpp>

#include <exception>
#include <string>
#include <string_view>

namespace dbactor::detail {

class request_base;

/// dbactor::error(code) with the sentence for a request named `name` (closed, queue_full, timed_out, …).
std::exception_ptr make_error_ptr(errc code, std::string_view name);

/// "A write" for an unnamed request, "Write 'add_warning'" for a named one.
std::string who(const request_base* r, const char* anonymous, const char* kind);

/// What an exception is, read once: the one place that rethrows an exception_ptr to look at it.
struct exception_view
{
    enum class kind
    {
        none,    ///< no exception
        sqlite,  ///< SQLite::Exception
        library, ///< dbactor::error
        other,   ///< another std::exception
        unknown, ///< not a std::exception
    };
    kind type = kind::none;
    int sqlite_code = 0;     ///< SQLite::Exception's result code (compare `& 0xff`), or dbactor::error's
    int sqlite_extended = 0; ///< SQLite::Exception's extended code (-1 when it had none)
    errc code{};             ///< dbactor::error's code
    const char* what = "";   ///< valid while the exception_ptr holds the exception
};
exception_view view_of(const std::exception_ptr& e) noexcept;

/// The exception's what(), or "unknown failure".
std::string describe_exception(const std::exception_ptr& e);

/// True when SQLite's own rollback of the transaction explains `e` (an I/O error, disk full, corruption, out
/// of memory, an interrupt, a lock) or it is the actor's own interruption (timed_out, cancelled, closed).
bool sqlite_rolled_back(const std::exception_ptr& e) noexcept;

/// A read request's SQLITE_READONLY failure becomes errc::read_only_violation (stored in `r`).
void translate_read_only(request_base* r) noexcept;

/// An SQLITE_BUSY failure of `what` (BEGIN IMMEDIATE) becomes errc::busy with the remedy; others unchanged.
std::exception_ptr busy_or(std::exception_ptr e, const char* what);

} // namespace dbactor::detail
