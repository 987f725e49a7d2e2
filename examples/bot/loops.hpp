// bot::supervised_loops: the bot's background loops, each one supervised (a failing iteration is logged).
#pragma once

#include "common.hpp"
#include "in_flight.hpp"
#include "summary.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace bot {

/// Background loops on the control strand, each running its body every period until the bot stops.
/// Thread safety: none (the control strand only).
class supervised_loops
{
public:
    using loop_body = std::function<asio::awaitable<void>(std::uint64_t iteration)>;

    /// `stopping` turns true when the bot shuts down; each loop holds `in_flight` until it exits.
    supervised_loops(const io_strand& control,
                     const std::atomic<bool>& stopping,
                     in_flight_tracker& in_flight)
        : control_(control), stopping_(stopping), in_flight_(in_flight)
    {}

    /// Runs `body` every `period` until shutdown. An exception in one iteration is logged with the loop's
    /// name and the loop goes on; a loop that exits is reported (an error unless the bot is stopping).
    void start(std::string name, steady::duration period, loop_body body);
    /// Wakes every loop from its timer (at shutdown).
    void cancel()
    {
        for (auto& t : loop_timers_)
            t->cancel();
    }
    const std::vector<loop_report>& reports() const noexcept { return loop_reports_; }

private:
    asio::awaitable<void> supervised(std::size_t index, steady::duration period, loop_body body);

    io_strand control_;
    const std::atomic<bool>& stopping_;
    in_flight_tracker& in_flight_;
    std::vector<std::unique_ptr<asio::steady_timer>> loop_timers_;
    std::vector<loop_report> loop_reports_;
};

} // namespace bot
