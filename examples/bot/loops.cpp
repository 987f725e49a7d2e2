// The supervised background loops: an iteration's failure is logged with the loop's name, the loop goes on.
#include "loops.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <fmt/format.h>

#include <exception>
#include <utility>

namespace bot {

using asio::use_awaitable;

void supervised_loops::start(std::string name, steady::duration period, loop_body body)
{
    const std::size_t index = loop_reports_.size();
    loop_reports_.push_back({name, 0, 0});
    loop_timers_.push_back(std::make_unique<asio::steady_timer>(control_));
    in_flight_.acquire();
    asio::co_spawn(control_, supervised(index, period, std::move(body)), [this, name](std::exception_ptr e) {
        if (e) {
            log("error", fmt::format("loop {}: exited with an exception: {}", name, describe(e)));
        }
        else if (!stopping_) {
            log("error", fmt::format("loop {}: exited while the bot is running", name));
        }
        else {
            log("info", fmt::format("loop {}: stopped", name));
        }
        in_flight_.release();
    });
}

asio::awaitable<void> supervised_loops::supervised(std::size_t index, steady::duration period, loop_body body)
{
    auto& timer = *loop_timers_[index];
    while (!stopping_) {
        auto& report = loop_reports_[index];
        const auto iteration = ++report.iterations;
        try {
            co_await body(iteration);
        }
        catch (...) {
            // Anything thrown, not only std::exception: whatever escaped here would end io_context::run.
            ++loop_reports_[index].failures;
            log("error",
                fmt::format("loop {}: iteration {} failed: {}",
                            report.name,
                            iteration,
                            describe(std::current_exception())));
        }
        if (stopping_)
            break;
        timer.expires_after(period);
        co_await timer.async_wait(asio::as_tuple(use_awaitable));
    }
}

} // namespace bot
