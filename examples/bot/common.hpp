// The bot's shared helpers: the Asio alias, the clocks, the log line and how a thrown value is described.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>

#include <chrono>
#include <cstdint>
#include <exception>
#include <string>
#include <string_view>

namespace bot {

namespace asio = boost::asio;
using steady = std::chrono::steady_clock;
/// A strand of the bot's io_context: the control strand, and one per shard of guilds.
using io_strand = asio::strand<asio::io_context::executor_type>;

/// Now, in Unix milliseconds.
std::int64_t unix_ms();

/// One `[level] what` line on stderr, written at once so that lines from different threads do not
/// interleave.
void log(std::string_view level, std::string_view what);

/// For a log line: what() of a std::exception, or the type of anything else thrown (which would otherwise
/// escape io_context::run and terminate the process).
std::string describe(std::exception_ptr e);

/// `ns` nanoseconds as "1.234 ms".
std::string ms(std::uint64_t ns);

} // namespace bot
