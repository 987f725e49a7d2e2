// dbactor::shard_set: N databases from one options template, keyed by snowflake (the seeds' worker pool).
#pragma once

#include <dbactor/database.hpp>
#include <dbactor/options.hpp>
#include <dbactor/report.hpp>

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/system_executor.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace dbactor {

/// The shard of `key` among `n`: `(key >> 22) % n`. For a Discord snowflake the bits above 22 are its
/// timestamp, so guilds created in the same millisecond share a shard and guilds created over time spread.
/// `n` must not be 0.
constexpr std::size_t shard_of(std::uint64_t key, std::size_t n) noexcept
{
    return static_cast<std::size_t>((key >> 22) % n);
}

/// `pattern` with every "{shard}" replaced by `shard` ("var/bot-{shard}.db", 3 → "var/bot-3.db").
std::string shard_path(std::string_view pattern, std::size_t shard);

/// N databases booted from one options template whose path holds "{shard}"; shard i is
/// `options::shard = {i, n}` at `shard_path(path, i)`, and its file records that place (dbactor_shard).
///
/// Thread safety: after open, every member may be called from any thread; close() and the destructor not
/// while other members run. Move-only; the destructor closes every shard.
class shard_set
{
public:
    shard_set() = default;
    shard_set(shard_set&&) noexcept = default;
    shard_set& operator=(shard_set&& other) noexcept;
    shard_set(const shard_set&) = delete;
    shard_set& operator=(const shard_set&) = delete;
    ~shard_set();

    /// Boots `n` shards in parallel (about the time of the slowest one) and returns when all serve.
    /// Errors: dbactor::error: errc::open_failed when n is 0, or n > 1 and the path has no "{shard}"; when a
    /// shard fails to boot, the others are closed and its error is thrown (same errc), its message starting
    /// with "Shard I of N ('PATH'): "; the lowest such index when several fail.
    static shard_set open(options tmpl, std::size_t n);

    std::size_t size() const noexcept { return shards_.size(); }
    /// The i-th database (i < size(), unchecked).
    database& operator[](std::size_t i) noexcept { return shards_[i]; }
    const database& operator[](std::size_t i) const noexcept { return shards_[i]; }
    /// The database that owns `key`: `(*this)[shard_of(key, size())]`.
    database& for_key(std::uint64_t key) noexcept { return shards_[shard_of(key, shards_.size())]; }
    /// Shard i's path.
    const std::string& path(std::size_t i) const noexcept { return paths_[i]; }

    /// Runs `fn(connection&)` as an async_write on every shard at once and completes when all are done,
    /// with `void(std::exception_ptr, std::vector<R>)` (`void(std::exception_ptr)` when R is void): the
    /// results in shard order. When fn fails on a shard the others still run (and commit); the operation
    /// then completes with that shard's exception (the lowest index among failures) and the other shards'
    /// results in place (a value-initialised R for each failed shard). The handler runs on its associated
    /// executor (none: the thread of the shard that finished last).
    template <request Fn, class CompletionToken>
    auto async_for_each(Fn fn, const request_options& ro, CompletionToken&& token);
    template <request Fn, class CompletionToken>
    auto async_for_each(Fn fn, CompletionToken&& token)
    {
        return async_for_each(std::move(fn), request_options{}, std::forward<CompletionToken>(token));
    }

    /// Closes every shard (each as database::close, at once); idempotent. Errors: the first shard's
    /// close_failed (the others are still closed).
    void close();

    /// Each shard's stats(), in shard order.
    std::vector<stats_snapshot> stats() const;
    /// Counters added up over the shards (latency summaries: the largest max and percentiles of any shard,
    /// count summed).
    stats_snapshot stats_total() const;

private:
    std::vector<database> shards_;
    std::vector<std::string> paths_;
};

namespace detail {

/// async_for_each's results (std::vector<R>, nothing for void) and its completion signature.
template <class R>
struct for_each_types
{
    using results = std::vector<R>;
    using signature = void(std::exception_ptr, std::vector<R>);
};
template <>
struct for_each_types<void>
{
    struct results
    {};
    using signature = void(std::exception_ptr);
};

/// What async_for_each's shard replies fill, and the handler called when the last one arrives.
template <class R, class Handler>
struct for_each_state
{
    using results_t = typename for_each_types<R>::results;

    Handler handler;
    boost::asio::executor_work_guard<
        boost::asio::associated_executor_t<Handler, boost::asio::system_executor>>
        work;
    results_t results;
    std::mutex m;
    std::size_t first_failure = SIZE_MAX;
    std::exception_ptr failure;
    std::atomic<std::size_t> remaining;

    for_each_state(Handler h, std::size_t n)
        : handler(std::move(h)), work(boost::asio::make_work_guard(boost::asio::get_associated_executor(
                                     handler, boost::asio::system_executor()))),
          remaining(n)
    {
        if constexpr (!std::is_void_v<R>)
            results.resize(n);
    }

    void failed(std::size_t i, std::exception_ptr e)
    {
        if (!e)
            return;
        std::lock_guard lock(m);
        if (i < first_failure) {
            first_failure = i;
            failure = std::move(e);
        }
    }

    /// One shard answered; the last one completes the operation on the handler's executor.
    static void arrived(const std::shared_ptr<for_each_state>& self)
    {
        if (self->remaining.fetch_sub(1, std::memory_order_acq_rel) != 1)
            return;
        // The work is held by this thread until dispatch has returned: were it released in the handler, the
        // io_context could run out of work and be destroyed while this thread is still inside post (which
        // signals the scheduler after unlocking it). ThreadSanitizer saw exactly that.
        auto posting = std::move(self->work);
        boost::asio::dispatch(posting.get_executor(), [self]() mutable {
            auto h = std::move(self->handler);
            auto e = std::move(self->failure);
            if constexpr (std::is_void_v<R>)
                std::move(h)(e);
            else
                std::move(h)(e, std::move(self->results));
        });
        posting.reset();
    }
};

} // namespace detail

template <request Fn, class CompletionToken>
auto shard_set::async_for_each(Fn fn, const request_options& ro, CompletionToken&& token)
{
    using R = detail::result_t<Fn>;
    return boost::asio::async_initiate<CompletionToken, typename detail::for_each_types<R>::signature>(
        [this, ro](auto handler, Fn f) {
            using state = detail::for_each_state<R, std::decay_t<decltype(handler)>>;
            auto s = std::make_shared<state>(std::move(handler), shards_.size());
            if (shards_.empty()) {
                s->remaining = 1;
                state::arrived(s);
                return;
            }
            for (std::size_t i = 0; i < shards_.size(); ++i) {
                if constexpr (std::is_void_v<R>)
                    shards_[i].async_write(f, ro, [s, i](std::exception_ptr e) {
                        s->failed(i, std::move(e));
                        state::arrived(s);
                    });
                else
                    shards_[i].async_write(f, ro, [s, i](std::exception_ptr e, R r) {
                        if (e)
                            s->failed(i, std::move(e));
                        else
                            s->results[i] = std::move(r);
                        state::arrived(s);
                    });
            }
        },
        token,
        std::move(fn));
}

} // namespace dbactor
