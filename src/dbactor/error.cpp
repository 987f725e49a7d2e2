#include <dbactor/error.hpp>

#include <fmt/format.h>
#include <sqlite3.h>

namespace dbactor {
namespace {

class category_impl final : public std::error_category
{
public:
    const char* name() const noexcept override { return "dbactor"; }

    std::string message(int ev) const override
    {
        switch (static_cast<errc>(ev)) {
        case errc::closed: return "the database is closed";
        case errc::queue_full: return "the request queue is full";
        case errc::timed_out: return "the request timed out";
        case errc::cancelled: return "the request was cancelled";
        case errc::transaction_leaked: return "a call left a transaction open";
        case errc::read_only_violation: return "a read request tried to write";
        case errc::would_deadlock: return "a blocking call was made on the actor thread";
        case errc::value_out_of_range: return "a value does not fit its type";
        case errc::unexpected_null: return "a NULL value was read into a non-optional type";
        case errc::close_failed: return "closing the database did not complete cleanly";
        case errc::open_failed: return "the database could not be opened";
        case errc::not_a_database: return "the file is not a SQLite database";
        case errc::wrong_application: return "the database belongs to another application";
        case errc::pragma_mismatch: return "a pragma did not take the requested value";
        case errc::integrity_check_failed: return "the database failed its integrity check";
        case errc::foreign_key_violation: return "the database has foreign-key violations";
        case errc::migration_failed: return "a migration failed and was rolled back";
        case errc::migration_modified: return "an applied migration was modified";
        case errc::database_ahead: return "the database has migrations this build does not know";
        case errc::migration_source_invalid: return "the migration files are invalid";
        case errc::busy: return "the database is locked by another connection";
        case errc::not_managed: return "the database is managed by another migration tool";
        case errc::shard_mismatch: return "the file is another shard, or of a shard set of another size";
        }
        return "unknown dbactor error";
    }
};

} // namespace

const std::error_category& category() noexcept
{
    static const category_impl instance;
    return instance;
}

std::error_code make_error_code(errc e) noexcept
{
    return {static_cast<int>(e), category()};
}

const char* errc_name(errc e) noexcept
{
    switch (e) {
    case errc::closed: return "closed";
    case errc::queue_full: return "queue_full";
    case errc::timed_out: return "timed_out";
    case errc::cancelled: return "cancelled";
    case errc::transaction_leaked: return "transaction_leaked";
    case errc::read_only_violation: return "read_only_violation";
    case errc::would_deadlock: return "would_deadlock";
    case errc::value_out_of_range: return "value_out_of_range";
    case errc::unexpected_null: return "unexpected_null";
    case errc::close_failed: return "close_failed";
    case errc::open_failed: return "open_failed";
    case errc::not_a_database: return "not_a_database";
    case errc::wrong_application: return "wrong_application";
    case errc::pragma_mismatch: return "pragma_mismatch";
    case errc::integrity_check_failed: return "integrity_check_failed";
    case errc::foreign_key_violation: return "foreign_key_violation";
    case errc::migration_failed: return "migration_failed";
    case errc::migration_modified: return "migration_modified";
    case errc::database_ahead: return "database_ahead";
    case errc::migration_source_invalid: return "migration_source_invalid";
    case errc::busy: return "busy";
    case errc::not_managed: return "not_managed";
    case errc::shard_mismatch: return "shard_mismatch";
    }
    return "internal";
}

errc errc_for_sqlite(int extended_code, errc otherwise) noexcept
{
    switch (extended_code & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return errc::busy;
    case SQLITE_CORRUPT: return errc::integrity_check_failed;
    case SQLITE_NOTADB: return errc::not_a_database;
    default: return otherwise;
    }
}

std::string remedy(errc code, const remedy_context& where)
{
    switch (code) {
    case errc::busy:
        return fmt::format(
            "Another connection held a lock for longer than the busy timeout ({} ms); retry when it "
            "is done, or raise {}.",
            where.busy_timeout_ms,
            where.busy_knob);
    case errc::integrity_check_failed:
        return fmt::format(
            "The database is damaged and was not modified: `dbtool --db {} check --full` shows "
            "where; restore it from a backup, or salvage it with `sqlite3 {} .recover`.",
            where.path,
            where.path);
    case errc::not_a_database: return "The file is not a SQLite database (or is encrypted); check the path.";
    default: return {};
    }
}

error::error(errc code, std::string message, int sqlite_extended_code)
    : std::system_error(make_error_code(code)), message_(std::move(message)),
      sqlite_code_(sqlite_extended_code)
{}

const char* error::what() const noexcept
{
    return message_.c_str();
}

} // namespace dbactor
