// detail::shard_record: the table `dbactor_shard(shard, shards)` in which a shard's file records its place.
#pragma once

#include <dbactor/options.hpp>

struct sqlite3;

namespace dbactor::detail {

class lock_waiter;

/// Boot step 4: a file that records another place than `o.shard` is refused with errc::shard_mismatch
/// (before anything is written). No record, or no `o.shard`: nothing to check.
/// Errors: dbactor::error(shard_mismatch); SQLite::Exception reading the table.
void check_shard_record(sqlite3* db, const options& o);

/// After the migrations: records `o.shard` when the file has no record yet (its first boot as a shard), in
/// its own transaction. Does nothing for a read-only boot or without `o.shard`.
/// Errors: SQLite::Exception (busy after busy_timeout, I/O).
void write_shard_record(sqlite3* db, const options& o, lock_waiter& waits);

} // namespace dbactor::detail
