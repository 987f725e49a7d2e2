// The identity of the actor's threads: their names (top -H, gdb, perf) and which actor they serve.
#pragma once

namespace dbactor::detail {

class actor;

/// Names the calling thread: at most 15 characters.
void name_this_thread(const char* name) noexcept;

/// Marks the calling thread as one of `a`'s (writer or reader): a blocking call made on it would deadlock.
void enter_actor_thread(const actor* a, const char* name) noexcept;

/// The actor the calling thread serves, or nullptr.
const actor* current_actor() noexcept;

} // namespace dbactor::detail
