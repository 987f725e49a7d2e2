// The bot's shared helpers: the wall clock, the log line, describing what was thrown, milliseconds.
#include "common.hpp"

#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <typeinfo>

#include <cxxabi.h>

namespace bot {

std::int64_t unix_ms()
{
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

void log(std::string_view level, std::string_view what)
{
    // One write per line, so lines from different threads do not interleave.
    std::string line = fmt::format("[{}] {}\n", level, what);
    std::fwrite(line.data(), 1, line.size(), stderr);
}

std::string describe(std::exception_ptr e)
{
    try {
        std::rethrow_exception(e);
    }
    catch (const std::exception& ex) {
        return ex.what();
    }
    catch (...) {
        std::string type = "unknown";
        if (const std::type_info* t = abi::__cxa_current_exception_type()) {
            int status = 0;
            char* name = abi::__cxa_demangle(t->name(), nullptr, nullptr, &status);
            type = status == 0 && name ? name : t->name();
            std::free(name);
        }
        return fmt::format("an exception of type {}, not derived from std::exception", type);
    }
}

std::string ms(std::uint64_t ns)
{
    return fmt::format("{:.3f} ms", static_cast<double>(ns) / 1e6);
}

} // namespace bot
