// dbtool's output: printing one JSON document, and the JSON of findings and migration states.
#pragma once

#include "exit_codes.hpp"

#include <dbactor/admin.hpp>
#include <dbactor/dbactor.hpp>

#include <nlohmann/json.hpp>

#include <vector>

namespace dbtool {

nlohmann::json to_json(const std::vector<finding>& f);
const char* state_name(dbactor::migration_status::state s) noexcept;
nlohmann::json to_json(const dbactor::migration_status& m);

/// Prints one JSON document on stdout. Text that is not UTF-8 (a path, or SQLite quoting a Latin-1 migration)
/// is replaced with U+FFFD rather than failing. Never throws.
void print_json(const nlohmann::json& j) noexcept;

/// While `into` is set, print_json appends its documents there instead of printing them (run_per_shard
/// collects each shard's document into one); nullptr prints again.
void capture_json(std::vector<nlohmann::json>* into) noexcept;

} // namespace dbtool
