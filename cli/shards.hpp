// dbtool --shards N: one command over every file of a shard set ({shard} in --db), one report per shard.
#pragma once

#include "options.hpp"

#include <functional>
#include <string>
#include <string_view>

namespace dbtool {

/// Runs `one` once per shard when --shards was given (else once, as it is): `g.db` (and `*to`, a backup's
/// TO, when given) become shard i's paths and `g.shard` its place, so that a file recorded at another place
/// is refused (exit 10). `one` returns the shard's exit code and reports its own failures (it must not
/// throw). Text output: each shard's report under a "shard I of N: PATH" line. JSON: one document,
/// `{"command", "pattern", "shards": [each shard's document], "exit_code"}`. The most severe shard decides
/// the exit code; SIGINT (130) stops at the shard it interrupted.
/// Errors: usage_error for --shards 0, a pattern without "{shard}" (or "{shard}" without --shards), and a
/// backup TO without "{shard}".
int run_per_shard(global_options& g,
                  std::string_view command,
                  std::string* to,
                  const std::function<int()>& one);

} // namespace dbtool
