// The pragmas boot sets on the writer, and how each one reads back.
#pragma once

#include <dbactor/options.hpp>
#include <dbactor/report.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

struct sqlite3;

namespace dbactor::detail {

/// `s` in lower case (ASCII).
std::string lower(std::string s);

/// The pragmas of DESIGN.md's boot step 4, in the order they are set, then options::pragmas.
std::vector<std::pair<std::string, std::string>> boot_pragmas(const options& o);

/// What `PRAGMA name` reads back as when it was set to `value` (synchronous reads back as a number).
std::string expected_readback(const std::string& name, const std::string& value);

/// After the migrations: every pragma boot set reads back as it did then (`report.pragmas`), or
/// errc::pragma_mismatch naming the pragma (a migration changed it and did not set it back).
void verify_pragmas_unchanged(sqlite3* db, const boot_summary& report);

/// The problems in the rows of `PRAGMA quick_check` / `integrity_check`, up to `limit`: a row may hold
/// several, one per line, under a "*** in database main ***" heading.
std::vector<std::string> problem_lines(const std::vector<std::string>& rows, std::size_t limit = SIZE_MAX);

} // namespace dbactor::detail
