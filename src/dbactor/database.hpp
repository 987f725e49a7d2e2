// dbactor::database: the handle to a database actor (one thread that owns one SQLite connection).
#pragma once

#include <dbactor/change_feed.hpp>
#include <dbactor/connection.hpp>
#include <dbactor/detail/request.hpp>
#include <dbactor/error.hpp>
#include <dbactor/options.hpp>
#include <dbactor/report.hpp>

#include <boost/asio/async_result.hpp>

#include <concepts>
#include <memory>
#include <utility>

namespace dbactor {

namespace detail {
class actor;
class handle;

/// Sets the deadline and name, then queues `r` or answers it at once (closed, queue full).
void submit(const std::shared_ptr<actor>& a, request_base* r, const request_options& ro) noexcept;
/// Registers a close waiter and starts closing.
void submit_close(const std::shared_ptr<actor>& a, request_base* waiter) noexcept;
[[noreturn]] void throw_would_deadlock(const request_options& ro);
/// How long a caller on an io_context may spin for the reply of a request of lane `l`: options::reply_spin
/// when the actor has nothing queued for that lane (the reply is then likely to come within it), else 0.
std::chrono::nanoseconds reply_spin(const std::shared_ptr<actor>& a, lane l) noexcept;
bool on_actor_thread(const actor* a) noexcept;
} // namespace detail

/// A request: any callable taking `connection&`.
// (clang-format 14 splits a concept whose first argument ends in '&'.)
// clang-format off
template <class Fn>
concept request = std::invocable<std::decay_t<Fn>&, connection&>;
// clang-format on

/// A cheap, copyable handle to one database actor; all copies share it, and the last copy closes it.
///
/// Thread safety: every member may be called from any thread, on the same handle or on copies.
/// Lifetime: the actor lives until close() or until the last handle is destroyed; destroying the last
/// handle drains the queue, runs `PRAGMA optimize`, closes the connection and joins the thread (or, when
/// it happens on the actor thread itself, lets the thread finish on its own).
/// Handler: every async_ operation completes on its handler's associated executor (a plain callback with
/// none runs on the actor thread and must not block); completion signature `void(std::exception_ptr, R)`,
/// or `void(std::exception_ptr)` when R is void, R being what the request returns.
class database
{
public:
    /// A handle to nothing: every request fails with errc::closed.
    database() = default;

    /// Starts the actor thread, opens and boots the database (file checks, pragmas, integrity check,
    /// migrations) and returns once it is ready to serve.
    /// Errors: dbactor::error with the boot failure's errc; no thread is left running.
    static database open(options opts);

    /// Runs `fn(connection&)` inside BEGIN IMMEDIATE … COMMIT on the actor thread; an exception rolls it
    /// back. Completes after COMMIT succeeded, with what fn returned or threw.
    /// Requests queued behind one another may share one transaction (group commit), each in its own
    /// SAVEPOINT: a failing request rolls back only its own changes; a failed COMMIT fails them all.
    template <request Fn, class CompletionToken>
    auto async_write(Fn&& fn, const request_options& ro, CompletionToken&& token)
    {
        return initiate<detail::lane::write>(std::forward<Fn>(fn), ro, std::forward<CompletionToken>(token));
    }
    template <request Fn, class CompletionToken>
    auto async_write(Fn&& fn, CompletionToken&& token)
    {
        return async_write(std::forward<Fn>(fn), request_options{}, std::forward<CompletionToken>(token));
    }
    /// Blocking twin of async_write: waits on this thread and rethrows the request's exception.
    /// Errors: errc::would_deadlock when called on the actor thread.
    template <request Fn>
    detail::result_t<Fn> write(Fn&& fn, const request_options& ro = {})
    {
        return blocking<detail::lane::write>(std::forward<Fn>(fn), ro);
    }

    /// Runs `fn(connection&)` read-only: any write fails with errc::read_only_violation and changes
    /// nothing. Reads queued behind one another may share one read transaction (one snapshot). A read
    /// submitted after a write's reply sees that write.
    template <request Fn, class CompletionToken>
    auto async_read(Fn&& fn, const request_options& ro, CompletionToken&& token)
    {
        return initiate<detail::lane::read>(std::forward<Fn>(fn), ro, std::forward<CompletionToken>(token));
    }
    template <request Fn, class CompletionToken>
    auto async_read(Fn&& fn, CompletionToken&& token)
    {
        return async_read(std::forward<Fn>(fn), request_options{}, std::forward<CompletionToken>(token));
    }
    /// Blocking twin of async_read.
    template <request Fn>
    detail::result_t<Fn> read(Fn&& fn, const request_options& ro = {})
    {
        return blocking<detail::lane::read>(std::forward<Fn>(fn), ro);
    }

    /// Runs `fn(connection&)` with no implicit transaction (raw access: PRAGMAs, VACUUM, your own BEGIN).
    /// A transaction left open when fn returns is rolled back and the caller gets
    /// errc::transaction_leaked.
    template <request Fn, class CompletionToken>
    auto async_call(Fn&& fn, const request_options& ro, CompletionToken&& token)
    {
        return initiate<detail::lane::call>(std::forward<Fn>(fn), ro, std::forward<CompletionToken>(token));
    }
    template <request Fn, class CompletionToken>
    auto async_call(Fn&& fn, CompletionToken&& token)
    {
        return async_call(std::forward<Fn>(fn), request_options{}, std::forward<CompletionToken>(token));
    }
    /// Blocking twin of async_call.
    template <request Fn>
    detail::result_t<Fn> call(Fn&& fn, const request_options& ro = {})
    {
        return blocking<detail::lane::call>(std::forward<Fn>(fn), ro);
    }

    /// Closes the database and joins its thread: new requests fail with errc::closed, queued ones run for
    /// up to options::shutdown_grace (the rest get errc::closed), then `PRAGMA optimize`, statements are
    /// finalized and the connection is closed. Idempotent.
    /// Errors: dbactor::error(errc::close_failed) when closing did not complete cleanly: statements left open
    /// by a request (finalized), or an I/O error in the final checkpoint (the -wal keeps every acknowledged
    /// write). Reported to the callers waiting at that moment, and logged.
    /// Called on the actor thread it only starts closing (it cannot join its own thread).
    void close();

    /// Async twin of close(): completes with `void(std::exception_ptr)` once the connection is closed.
    template <class CompletionToken>
    auto async_close(CompletionToken&& token)
    {
        return boost::asio::async_initiate<CompletionToken, void(std::exception_ptr)>(
            [a = actor_ptr()](auto handler) {
                using op = detail::request_op<detail::no_op, std::decay_t<decltype(handler)>, void>;
                detail::submit_close(a, new op(detail::lane::close, detail::no_op{}, std::move(handler)));
            },
            token);
    }

    /// A feed of the commits from now on (docs/CHANGE-FEED.md): one commit_event per committed write batch
    /// or call, in commit order, filtered by table; another connection's commits come as `external`.
    /// The feed does not keep the database open; after close() it completes with errc::closed.
    /// Errors: dbactor::error(errc::closed) when the database is closed.
    change_feed subscribe(change_filter filter = {});

    /// True until close() was called (on this or any handle).
    bool is_open() const noexcept;

    /// Counters and latency percentiles per lane; cheap, from any thread.
    stats_snapshot stats() const;

    /// What boot did: pragmas read back, checks, migrations applied, timings.
    const boot_summary& boot_report() const;

private:
    explicit database(std::shared_ptr<detail::handle> h) noexcept : h_(std::move(h)) {}
    const std::shared_ptr<detail::actor>& actor_ptr() const noexcept;

    template <detail::lane L, class Fn, class CompletionToken>
    auto initiate(Fn&& fn, const request_options& ro, CompletionToken&& token)
    {
        using R = detail::result_t<Fn>;
        return boost::asio::async_initiate<CompletionToken, detail::signature_t<R>>(
            [a = actor_ptr(), ro](auto handler, auto&& f) {
                using op = detail::request_op<std::decay_t<Fn>, std::decay_t<decltype(handler)>, R>;
                auto* r = new op(L, std::forward<decltype(f)>(f), std::move(handler));
                if (const auto spin = detail::reply_spin(a, L); spin.count() > 0)
                    r->spin_for_reply(spin); // before it is queued: the actor must see it
                detail::submit(a, r, ro);
            },
            token,
            std::forward<Fn>(fn));
    }

    template <detail::lane L, class Fn>
    detail::result_t<Fn> blocking(Fn&& fn, const request_options& ro)
    {
        using R = detail::result_t<Fn>;
        const auto& a = actor_ptr();
        if (detail::on_actor_thread(a.get()))
            detail::throw_would_deadlock(ro);
        detail::sync_waiter<R> w;
        auto* r = new detail::request_op<std::decay_t<Fn>, detail::sync_handler<R>, R>(
            L, std::forward<Fn>(fn), detail::sync_handler<R>{&w});
        r->add_ref(); // ours while we wait, so that a timeout can still reach the request
        detail::submit(a, r, ro);
        // Past the deadline a queued request is answered errc::timed_out here, at once; a running one is
        // flagged, interrupted by the actor at its next SQLite step, and answered by the actor.
        if (r->has_deadline() && !w.wait_until(r->deadline_))
            r->abandon(errc::timed_out, true);
        w.wait();
        r->release();
        return w.get();
    }

    std::shared_ptr<detail::handle> h_;
};

} // namespace dbactor
