#include <dbactor/connection.hpp>

#include <dbactor/detail/change_log.hpp>

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Exception.h>
#include <fmt/format.h>
#include <sqlite3.h>

#include <string>
#include <unordered_map>

namespace dbactor {
namespace detail {

namespace {

[[noreturn]] void throw_parameter_count(std::string_view sql, int wanted, int given)
{
    throw SQLite::Exception(
        fmt::format("\"{}\" has {} parameter(s), but {} value(s) were given.", sql, wanted, given),
        SQLITE_RANGE);
}

struct string_hash
{
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

} // namespace

statement_use::~statement_use()
{
    if (owned_) {
        sqlite3_finalize(s_);
        return;
    }
    // No sqlite3_clear_bindings: prepare() checks on every use that all parameters are bound again, so a
    // value bound by an earlier request (SQLITE_STATIC, into memory that is gone) is never read.
    sqlite3_reset(s_);
}

bool statement_use::step()
{
    const int rc = sqlite3_step(s_);
    if (rc == SQLITE_ROW)
        return true;
    if (rc == SQLITE_DONE)
        return false;
    // sqlite3_step's own code may be the generic one; the connection's extended code is more precise.
    sqlite3* db = sqlite3_db_handle(s_);
    throw SQLite::Exception(db, sqlite3_extended_errcode(db) ? sqlite3_extended_errcode(db) : rc);
}

class statement_cache
{
public:
    ~statement_cache() { clear(); }
    void clear() noexcept
    {
        for (auto& [sql, s] : map_)
            sqlite3_finalize(s);
        map_.clear();
    }
    std::unordered_map<std::string, sqlite3_stmt*, string_hash, std::equal_to<>> map_;
};

} // namespace detail

connection::connection(SQLite::Database& db) : db_(&db), cache_(std::make_unique<detail::statement_cache>())
{}

connection::~connection() = default;

sqlite3* connection::handle() const noexcept
{
    return db_->getHandle();
}

void connection::clear_cache() noexcept
{
    cache_->clear();
}

std::size_t connection::cached_statements() const noexcept
{
    return cache_->map_.size();
}

detail::prepared connection::prepare(std::string_view sql, int args)
{
    auto& map = cache_->map_;
    const auto it = map.find(sql);
    // The cached statement is busy when an enclosing query still steps it (the same SQL again inside
    // for_each, or inside a savepoint callback of a query): resetting it would restart that query.
    const bool busy = it != map.end() && sqlite3_stmt_busy(it->second);
    if (it != map.end() && !busy) {
        if (const int wanted = sqlite3_bind_parameter_count(it->second); wanted != args)
            detail::throw_parameter_count(sql, wanted, args);
        return {it->second, false};
    }

    sqlite3* db = handle();
    sqlite3_stmt* s = nullptr;
    const char* tail = nullptr;
    const int rc = sqlite3_prepare_v3(
        db, sql.data(), static_cast<int>(sql.size()), busy ? 0 : SQLITE_PREPARE_PERSISTENT, &s, &tail);
    if (rc != SQLITE_OK)
        throw SQLite::Exception(db, rc);
    if (s == nullptr)
        throw SQLite::Exception(fmt::format("\"{}\" contains no SQL statement.", sql), SQLITE_MISUSE);
    std::string_view rest(tail, static_cast<std::size_t>(sql.data() + sql.size() - tail));
    if (rest.find_first_not_of(" \t\r\n;") != std::string_view::npos) {
        sqlite3_finalize(s);
        throw SQLite::Exception(
            fmt::format("\"{}\" holds more than one statement; execute/query run one statement. Use "
                        "connection::exec for a script.",
                        sql),
            SQLITE_MISUSE);
    }
    if (const int wanted = sqlite3_bind_parameter_count(s); wanted != args) {
        sqlite3_finalize(s);
        detail::throw_parameter_count(sql, wanted, args);
    }
    if (busy)
        return {s, true};
    map.emplace(std::string(sql), s);
    return {s, false};
}

void connection::exec(std::string_view script)
{
    std::string text(script);
    char* msg = nullptr;
    const int rc = sqlite3_exec(handle(), text.c_str(), nullptr, nullptr, &msg);
    if (msg)
        sqlite3_free(msg);
    if (rc != SQLITE_OK)
        throw SQLite::Exception(handle(), rc);
}

std::int64_t connection::last_insert_rowid() const noexcept
{
    return sqlite3_last_insert_rowid(handle());
}

std::int64_t connection::changes() const noexcept
{
    return sqlite3_changes64(handle());
}

int connection::begin_savepoint()
{
    const int depth = ++savepoint_depth_;
    try {
        exec(fmt::format("SAVEPOINT dbactor_user_{}", depth));
        if (changes_)
            changes_->push_level();
    }
    catch (...) {
        --savepoint_depth_;
        throw;
    }
    return depth;
}

void connection::end_savepoint(int depth, bool release)
{
    savepoint_depth_ = depth - 1;
    // Before the SQL: releasing or rolling back the outermost savepoint commits, and the commit hook then
    // takes every level as it is.
    if (changes_) {
        try {
            if (!release)
                changes_->rollback_level();
            changes_->release_level();
        }
        catch (...) { // out of memory: the feed drops this transaction's changes rather than misreport them
            changes_->on_rollback();
        }
    }
    if (release) {
        exec(fmt::format("RELEASE dbactor_user_{}", depth));
    }
    else {
        // Best effort: the original exception is what the caller needs to see.
        sqlite3_exec(handle(),
                     fmt::format("ROLLBACK TO dbactor_user_{0}; RELEASE dbactor_user_{0}", depth).c_str(),
                     nullptr,
                     nullptr,
                     nullptr);
    }
}

} // namespace dbactor
