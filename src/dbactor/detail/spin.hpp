// detail::spin_until: the one short busy-wait of the library (before parking a thread, or while a caller
// waits for its reply on its own io_context): waking a parked thread costs about 10 µs on the VMs measured.
#pragma once

#include <chrono>

namespace dbactor::detail {

/// Spins until `done()` is true or `budget` has passed, reading the clock every 16 rounds. True when done.
template <class Pred>
bool spin_until(Pred&& done, std::chrono::nanoseconds budget) noexcept
{
    const auto until = std::chrono::steady_clock::now() + budget;
    for (unsigned i = 1;; ++i) {
        if (done())
            return true;
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
        if ((i & 15) == 0 && std::chrono::steady_clock::now() >= until)
            return false;
    }
}

} // namespace dbactor::detail
