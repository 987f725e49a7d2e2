// bot::snowflake_generator: Discord-style snowflake ids for the simulated gateway.
#pragma once

#include <cstdint>

namespace bot {

/// Discord's epoch (2015-01-01T00:00:00Z) in Unix milliseconds.
inline constexpr std::uint64_t discord_epoch_ms = 1420070400000;

/// Snowflake ids: (ms since the Discord epoch) << 22 | worker << 17 | process << 12 | sequence.
/// Strictly increasing per generator; not thread-safe (one generator per producer).
class snowflake_generator
{
public:
    snowflake_generator(unsigned worker, unsigned process) noexcept
        : worker_(worker & 0x1f), process_(process & 0x1f)
    {}
    /// The next id at `unix_ms`; more than 4096 ids in one millisecond borrow from the next one.
    std::uint64_t next(std::uint64_t unix_ms) noexcept
    {
        std::uint64_t ms = unix_ms > discord_epoch_ms ? unix_ms - discord_epoch_ms : 0;
        if (ms <= last_ms_) {
            ms = last_ms_;
            if (++sequence_ == 0x1000) {
                sequence_ = 0;
                ++ms;
            }
        }
        else {
            sequence_ = 0;
        }
        last_ms_ = ms;
        return ms << 22 | std::uint64_t(worker_) << 17 | std::uint64_t(process_) << 12 | sequence_;
    }
    static std::uint64_t unix_ms_of(std::uint64_t id) noexcept { return (id >> 22) + discord_epoch_ms; }

private:
    unsigned worker_;
    unsigned process_;
    std::uint64_t last_ms_ = 0;
    std::uint32_t sequence_ = 0;
};

} // namespace bot
