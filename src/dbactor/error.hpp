// dbactor::error and dbactor::errc: the library's own failures, as std::system_error.
#pragma once

#include <string>
#include <string_view>
#include <system_error>

namespace dbactor {

/// The library's own error codes. A request's own exceptions are never translated into these.
enum class errc
{
    // Request lifecycle.
    closed = 1,          ///< the database is closed or closing; the request did not run
    queue_full,          ///< `wait_if_full = false` and the queue was at capacity; the request did not run
    timed_out,           ///< the request passed its `timeout`; it did not run, or it was rolled back
    cancelled,           ///< Asio per-operation cancellation; it did not run, or it was rolled back
    transaction_leaked,  ///< a `call` returned with a transaction open; it was rolled back
    read_only_violation, ///< a `read` tried to write; nothing changed
    would_deadlock,      ///< a blocking call (`write`, `read`, `call`) made on the actor's own thread
    value_out_of_range,  ///< a bound or read value does not fit its type (a uint64 above INT64_MAX)
    unexpected_null,     ///< a NULL column read into a type that is not std::optional
    close_failed, ///< close() found statements left open, or its final checkpoint failed (nothing lost)

    // Boot failures (database::open).
    open_failed,
    not_a_database,
    wrong_application,
    pragma_mismatch,
    integrity_check_failed,
    foreign_key_violation,
    migration_failed,
    migration_modified,
    database_ahead,
    migration_source_invalid,
    busy,
    not_managed, ///< another tool's migrations manage the database (its ledger, or user_version without ours)
    shard_mismatch, ///< the file is another shard of the set, or of a set of another size (dbactor_shard)
};

/// The category of dbactor::errc; its name is "dbactor".
const std::error_category& category() noexcept;

std::error_code make_error_code(errc e) noexcept;

/// The stable name of `e`: its enumerator ("queue_full", "not_a_database"), as dbtool's JSON `kind` prints
/// it.
const char* errc_name(errc e) noexcept;

/// The errc an SQLite (extended) result code stands for: BUSY and LOCKED → busy, CORRUPT →
/// integrity_check_failed, NOTADB → not_a_database; `otherwise` for every other code.
errc errc_for_sqlite(int extended_code, errc otherwise) noexcept;

/// Where a remedy sentence points the reader: the database's path and the name of the busy-timeout knob as
/// the reader knows it ("options::busy_timeout" in the library, "--busy-timeout" in dbtool).
struct remedy_context
{
    std::string_view path;
    long long busy_timeout_ms = 5000;
    std::string_view busy_knob = "options::busy_timeout";
};

/// One sentence saying what to do about a failure of class `code` (busy, integrity_check_failed,
/// not_a_database; empty for any other): the one wording of that advice in the library and in dbtool.
std::string remedy(errc code, const remedy_context& where);

/// The library's own failure: a code, a full-sentence message (what happened, where, what to do), and the
/// SQLite extended result code behind it when there is one.
class error : public std::system_error
{
public:
    error(errc code, std::string message, int sqlite_extended_code = 0);

    /// The message alone, without the category's text appended.
    const char* what() const noexcept override;

    errc value() const noexcept { return static_cast<errc>(code().value()); }

    /// SQLite's extended result code (e.g. 5 = SQLITE_BUSY, 11 = SQLITE_CORRUPT), or 0.
    int sqlite_code() const noexcept { return sqlite_code_; }

private:
    std::string message_;
    int sqlite_code_;
};

} // namespace dbactor

template <>
struct std::is_error_code_enum<dbactor::errc> : std::true_type
{};
