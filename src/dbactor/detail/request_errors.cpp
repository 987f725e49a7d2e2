#include <dbactor/detail/request_base.hpp>
#include <dbactor/detail/request_errors.hpp>

#include <SQLiteCpp/Exception.h>
#include <fmt/format.h>
#include <sqlite3.h>

namespace dbactor::detail {
namespace {

std::string describe(errc code, std::string_view name)
{
    const std::string who = name.empty() ? std::string("A request") : fmt::format("Request '{}'", name);
    switch (code) {
    case errc::closed:
        return who +
               " was not run, or was interrupted and rolled back, because the database is closed or "
               "closing (past options::shutdown_grace). Send requests before close(), keep a handle open "
               "while requests are still to be sent, or raise shutdown_grace.";
    case errc::queue_full:
        return who + " was refused because the request queue is full (request_options::wait_if_full is "
                     "false). Retry later, wait for space with wait_if_full = true, or raise "
                     "options::queue_capacity.";
    case errc::timed_out:
        return who + " passed its timeout and was not run, or was interrupted and rolled back. Raise "
                     "request_options::timeout or make the request cheaper.";
    case errc::cancelled:
        return who + " was cancelled (Asio cancellation) and was not run, or was interrupted and rolled "
                     "back.";
    default: return who + " failed: " + make_error_code(code).message() + ".";
    }
}

} // namespace

std::exception_ptr make_error_ptr(errc code, std::string_view name)
{
    return std::make_exception_ptr(error(code, describe(code, name)));
}

std::string who(const request_base* r, const char* anonymous, const char* kind)
{
    return r->name_.empty() ? std::string(anonymous) : fmt::format("{} '{}'", kind, r->name_);
}

exception_view view_of(const std::exception_ptr& e) noexcept
{
    exception_view v;
    if (!e)
        return v;
    try {
        std::rethrow_exception(e);
    }
    catch (const SQLite::Exception& x) {
        v.type = exception_view::kind::sqlite;
        v.sqlite_code = x.getErrorCode();
        v.sqlite_extended = x.getExtendedErrorCode();
        v.what = x.what();
    }
    catch (const error& x) {
        v.type = exception_view::kind::library;
        v.code = x.value();
        v.sqlite_code = v.sqlite_extended = x.sqlite_code();
        v.what = x.what();
    }
    catch (const std::exception& x) {
        v.type = exception_view::kind::other;
        v.what = x.what();
    }
    catch (...) {
        v.type = exception_view::kind::unknown;
        v.what = "unknown failure";
    }
    return v;
}

std::string describe_exception(const std::exception_ptr& e)
{
    return view_of(e).what;
}

bool sqlite_rolled_back(const std::exception_ptr& e) noexcept
{
    const auto v = view_of(e);
    if (v.type == exception_view::kind::library)
        return v.code == errc::timed_out || v.code == errc::cancelled || v.code == errc::closed;
    if (v.type != exception_view::kind::sqlite)
        return false;
    switch (v.sqlite_code & 0xff) {
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_CORRUPT:
    case SQLITE_NOMEM:
    case SQLITE_INTERRUPT:
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_ABORT:
    case SQLITE_NOTADB: return true;
    default: return false;
    }
}

void translate_read_only(request_base* r) noexcept
{
    const auto v = view_of(r->error());
    if (v.type != exception_view::kind::sqlite || (v.sqlite_code & 0xff) != SQLITE_READONLY)
        return;
    try {
        r->set_error(std::make_exception_ptr(
            error(errc::read_only_violation,
                  fmt::format("{} tried to write inside a read request ({}); nothing was changed. Send "
                              "writes with async_write.",
                              who(r, "A request", "Request"),
                              v.what),
                  v.sqlite_extended)));
    }
    catch (...) { // formatting failed (out of memory): the SQLite error stays
    }
}

std::exception_ptr busy_or(std::exception_ptr e, const char* what)
{
    const auto v = view_of(e);
    if (v.type != exception_view::kind::sqlite || (v.sqlite_code & 0xff) != SQLITE_BUSY)
        return e;
    return std::make_exception_ptr(
        error(errc::busy,
              fmt::format("{} could not take the write lock: another connection "
                          "holds it ({}). The request did not run; retry, or raise "
                          "options::busy_timeout.",
                          what,
                          v.what),
              v.sqlite_extended));
}

} // namespace dbactor::detail
