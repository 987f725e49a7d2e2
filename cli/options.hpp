// dbtool's global options (--db, --migrations, --json, …) and the library options they give.
#pragma once

#include <dbactor/dbactor.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
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
    /// --shards N (0: not given): --db is a {shard} pattern; run_per_shard sets `db` and `shard` per file.
    std::size_t shards = 0;
    std::optional<dbactor::shard_identity> shard;
};

/// Options for booting the database of `g` (`--db`), quiet below warnings. A database with a replicator's
/// tables (replicator_tables) is opened with `checkpoints = external`: dbtool never checkpoints under
/// Litestream, not even when it closes. Errors: usage when --db is empty.
dbactor::options base_options(const global_options& g);

/// The tables of a replicator that owns the file's checkpoints (Litestream's `_litestream_seq`,
/// `_litestream_lock`) found in `path`, read without writing; empty when there are none or the file cannot
/// be read (boot then says why).
std::vector<std::string> replicator_tables(const std::string& path);

/// The migrations of `--migrations`, or nullopt when it was not given.
std::optional<dbactor::migration_set> load_migrations(const global_options& g);

/// A command-line mistake found after parsing (exit code 2).
struct usage_error : std::runtime_error
{
    using std::runtime_error::runtime_error;
};

} // namespace dbtool
