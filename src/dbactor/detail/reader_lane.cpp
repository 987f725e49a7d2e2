#include <dbactor/detail/reader_lane.hpp>

#include <dbactor/detail/actor_thread.hpp>
#include <dbactor/detail/boot.hpp>
#include <dbactor/detail/request_errors.hpp>
#include <dbactor/detail/request_queue.hpp>
#include <dbactor/detail/serve.hpp>
#include <dbactor/detail/session.hpp>
#include <dbactor/error.hpp>

#include <fmt/format.h>
#include <sqlite3.h>

namespace dbactor::detail {

void reader_lane::start(const actor* owner)
{
    if (opts_.readers == 0)
        return;
    const bool memory = is_memory(opts_.path);
    if (memory || opts_.read_only)
        throw error(errc::open_failed,
                    fmt::format("options::readers = {} needs a database file in WAL mode, but '{}' is {}. "
                                "Set readers = 0.",
                                opts_.readers,
                                opts_.path,
                                memory ? "in memory (each connection would see its own database)"
                                       : "opened read-only"));
    for (unsigned i = 0; i < opts_.readers; ++i) {
        auto s = std::make_unique<session>();
        s->reader = true;
        s->stats = &server_.stats();
        s->start(open_reader(opts_), closing_, queue_, opts_.max_batch);
        if (opts_.checkpoints == checkpoint_mode::external)
            sqlite3_db_config(s->handle(), SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, nullptr);
        sessions_.push_back(std::move(s));
    }
    for (auto& s : sessions_)
        threads_.emplace_back([this, s = s.get(), owner] { main(*s, owner); });
}

void reader_lane::main(session& s, const actor* owner) noexcept
{
    enter_actor_thread(owner, "dbactor-reader");
    while (queue_.pop_group(s.group, opts_.max_batch) == request_queue::pop_result::group)
        server_.process(s);
    if (auto failure = s.close(opts_.path))
        log(opts_, log_level::error, describe_exception(failure));
}

void reader_lane::stop() noexcept
{
    queue_.close();
    for (auto& t : threads_)
        t.join();
    threads_.clear();
    for (auto& s : sessions_)
        s->close(opts_.path); // no-op after main closed it; closes it when boot failed
    sessions_.clear();
}

} // namespace dbactor::detail
