// dbtool's shared pieces: global options, exit codes and their severity, opening the database, output.
#pragma once

#include <dbactor/admin.hpp>
#include <dbactor/dbactor.hpp>

#include <nlohmann/json.hpp>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dbtool {

/// `--db`, `--migrations`, `--json`: given before or after the command.
struct global_options
{
    std::string db;
    std::string migrations;
    bool json = false;
    std::int64_t busy_timeout_ms = 5000;
    std::optional<std::int32_t> application_id;
};

/// The exit codes of DESIGN.md.
enum exit_code : int
{
    ok = 0,
    internal = 1,
    usage = 2,
    pending = 3,
    modified = 4, ///< also: migration source invalid
    ahead = 5,
    failed = 6,
    busy = 7,
    corrupt = 8, ///< also: not a database
    foreign_keys = 9,
    wrong_application = 10,
    interrupted = 130,
};

/// The text of `dbtool --help` about exit codes.
extern const char* const exit_codes_help;

/// The exit code of a library failure.
int exit_code_for(dbactor::errc e) noexcept;

/// One thing `check` (or another command) found, with the exit code it stands for.
struct finding
{
    int code;
    std::string kind;
    std::string message;
};
nlohmann::json to_json(const std::vector<finding>& f);

/// The stable identifier of an errc in JSON `kind` fields: its enumerator name ("not_a_database", "busy", …).
using dbactor::errc_name;

/// A failure as dbtool reports it: exit code, JSON kind, and a full sentence.
struct failure
{
    int code;
    std::string kind;
    std::string message;
    finding as_finding() const { return {code, kind, message}; }
};

/// An SQLite error raised by a request (SQLite::Exception), mapped like the library's own: busy/locked → 7,
/// corrupt → 8, not a database → 8, anything else → 1; the message names --db and says what to do.
failure sqlite_failure(int extended_code, std::string_view sqlite_text, const global_options& g);

/// The most severe of several codes: 130, 8, 10, 6, 4, 5, 9, 7, 3, 1, 2, then 0.
int most_severe(const std::vector<int>& codes) noexcept;

/// Options for booting the database of `g` (`--db`), quiet below warnings. Errors: usage when --db is empty.
dbactor::options base_options(const global_options& g);

/// The migrations of `--migrations`, or nullopt when it was not given.
std::optional<dbactor::migration_set> load_migrations(const global_options& g);

const char* state_name(dbactor::migration_status::state s) noexcept;
nlohmann::json to_json(const dbactor::migration_status& m);

/// Prints one JSON document on stdout. Text that is not UTF-8 (a path, or SQLite quoting a Latin-1 migration)
/// is replaced with U+FFFD rather than failing. Never throws.
void print_json(const nlohmann::json& j) noexcept;

/// SIGINT: while a command is interruptible it sees `was_interrupted()` and stops at a safe point (exit 130);
/// otherwise the process exits with 130 at once (SQLite's transactions make that safe), printing the document
/// of prepare_interrupt_output first under --json.
void install_sigint_handler();
void set_interruptible(bool on) noexcept;
bool was_interrupted() noexcept;
/// Prepares what an immediate exit on SIGINT prints (one JSON document with --json), so that the signal
/// handler only has to write it.
void prepare_interrupt_output(const global_options& g, std::string_view command);

/// While alive, lock waits on `db` (inside the request that creates it) are interruptible: a busy handler
/// sleeps in 10 ms steps up to `g.busy_timeout_ms` and gives up at once when SIGINT was seen; the first wait
/// is announced on stderr. The connection's own busy_timeout is restored on destruction.
class interruptible_lock_wait
{
public:
    interruptible_lock_wait(dbactor::connection& c, const global_options& g);
    ~interruptible_lock_wait();
    interruptible_lock_wait(const interruptible_lock_wait&) = delete;
    interruptible_lock_wait& operator=(const interruptible_lock_wait&) = delete;

    struct state;

private:
    dbactor::connection& c_;
    std::unique_ptr<state> state_;
};

/// A command-line mistake found after parsing (exit code 2).
struct usage_error : std::runtime_error
{
    using std::runtime_error::runtime_error;
};

} // namespace dbtool
