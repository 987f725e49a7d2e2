// dbactor::database: the public handle over detail::actor (see docs/ARCHITECTURE.md).
#include <dbactor/database.hpp>

#include <dbactor/detail/actor.hpp>
#include <dbactor/detail/actor_thread.hpp>

#include <fmt/format.h>

namespace dbactor {
namespace detail {

/// What a database handle owns: the last one closes the actor.
class handle
{
public:
    explicit handle(std::shared_ptr<actor> a) noexcept : actor_(std::move(a)) {}
    handle(const handle&) = delete;
    handle& operator=(const handle&) = delete;
    ~handle()
    {
        actor_->begin_close();
        if (!actor_->on_own_thread())
            actor_->join();
    }
    std::shared_ptr<actor> actor_;
};

void submit(const std::shared_ptr<actor>& a, request_base* r, const request_options& ro) noexcept
{
    if (!a) {
        if (!ro.name.empty())
            r->name_ = ro.name;
        actor::reject(r, errc::closed);
        return;
    }
    a->submit(r, ro);
}

void submit_close(const std::shared_ptr<actor>& a, request_base* waiter) noexcept
{
    if (!a) {
        waiter->complete(false);
        waiter->release();
        return;
    }
    a->submit_close(waiter);
}

void throw_would_deadlock(const request_options& ro)
{
    throw error(
        errc::would_deadlock,
        fmt::format("{} was sent with a blocking call (write/read/call) from the actor thread itself "
                    "(inside a request, or a completion handler without an executor), which would wait "
                    "forever. Use the async_ form there, or give the handler an executor.",
                    ro.name.empty() ? std::string("A request") : fmt::format("Request '{}'", ro.name)));
}

bool on_actor_thread(const actor* a) noexcept
{
    return a && current_actor() == a;
}

std::chrono::nanoseconds reply_spin(const std::shared_ptr<actor>& a, lane l) noexcept
{
    return a ? a->reply_spin(l) : std::chrono::nanoseconds(0);
}

} // namespace detail

database database::open(options opts)
{
    auto a = detail::actor::start(std::move(opts));
    return database(std::make_shared<detail::handle>(std::move(a)));
}

const std::shared_ptr<detail::actor>& database::actor_ptr() const noexcept
{
    static const std::shared_ptr<detail::actor> none;
    return h_ ? h_->actor_ : none;
}

void database::close()
{
    const auto& a = actor_ptr();
    if (!a)
        return;
    if (a->on_own_thread()) {
        a->begin_close();
        return;
    }
    detail::sync_waiter<void> w;
    auto* op = new detail::request_op<detail::no_op, detail::sync_handler<void>, void>(
        detail::lane::close, detail::no_op{}, detail::sync_handler<void>{&w});
    a->submit_close(op);
    w.wait();
    a->join();
    w.get();
}

change_feed database::subscribe(change_filter filter)
{
    const auto& a = actor_ptr();
    if (!a || !a->is_open())
        throw error(errc::closed,
                    "subscribe: the database is closed; subscribe on a handle of an open database, before "
                    "close().");
    return a->subscribe(std::move(filter));
}

bool database::is_open() const noexcept
{
    const auto& a = actor_ptr();
    return a && a->is_open();
}

stats_snapshot database::stats() const
{
    const auto& a = actor_ptr();
    return a ? a->stats() : stats_snapshot{};
}

const boot_summary& database::boot_report() const
{
    static const boot_summary none;
    const auto& a = actor_ptr();
    return a ? a->boot() : none;
}

} // namespace dbactor
