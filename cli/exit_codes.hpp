// dbtool's exit codes, their severity, and the findings and failures that carry them.
#pragma once

#include "options.hpp"

#include <dbactor/dbactor.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace dbtool {

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

} // namespace dbtool
