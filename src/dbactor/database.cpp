// The actor: one thread, one connection, one bounded queue.
#include <dbactor/database.hpp>

#include <dbactor/detail/boot.hpp>

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Exception.h>
#include <fmt/format.h>
#include <sqlite3.h>

#include <array>
#include <atomic>
#include <bit>
#include <condition_variable>
#include <future>
#include <limits>
#include <mutex>
#include <thread>
#include <vector>

#include <pthread.h>

namespace dbactor {
namespace detail {

using clock = std::chrono::steady_clock;

namespace {

thread_local const actor* current_actor = nullptr;

std::string describe(errc code, std::string_view name)
{
    const std::string who = name.empty() ? std::string("A request") : fmt::format("Request '{}'", name);
    switch (code) {
    case errc::closed:
        return who +
               " was not run, or was interrupted and rolled back, because the database is closed or "
               "closing (past options::shutdown_grace). Send requests before close(), keep a handle open "
               "while requests are still to be sent, or raise shutdown_grace.";
    case errc::queue_full:
        return who + " was refused because the request queue is full (request_options::wait_if_full is "
                     "false). Retry later, wait for space with wait_if_full = true, or raise "
                     "options::queue_capacity.";
    case errc::timed_out:
        return who + " passed its timeout and was not run, or was interrupted and rolled back. Raise "
                     "request_options::timeout or make the request cheaper.";
    case errc::cancelled:
        return who + " was cancelled (Asio cancellation) and was not run, or was interrupted and rolled "
                     "back.";
    default: return who + " failed: " + make_error_code(code).message() + ".";
    }
}

/// Log-scale latency histogram: recorded by the threads serving a lane, read by stats() from any thread.
class histogram
{
public:
    void record(std::uint64_t ns) noexcept
    {
        const auto i = index(ns);
        bump(counts_[i], 1);
        bump(count_, 1);
        bump(sum_, ns);
        auto seen = max_.load(std::memory_order_relaxed);
        while (ns > seen && !max_.compare_exchange_weak(seen, ns, std::memory_order_relaxed)) {
        }
    }

    latency_summary summary() const noexcept
    {
        latency_summary s;
        s.count = count_.load(std::memory_order_relaxed);
        s.max_ns = max_.load(std::memory_order_relaxed);
        if (s.count == 0)
            return s;
        s.mean_ns = static_cast<double>(sum_.load(std::memory_order_relaxed)) / static_cast<double>(s.count);
        s.p50_ns = percentile(0.50, s);
        s.p90_ns = percentile(0.90, s);
        s.p99_ns = percentile(0.99, s);
        return s;
    }

private:
    static constexpr int sub_bits = 3; // 8 buckets per power of two: at most 12.5% above the true value
    static constexpr int buckets = (64 - sub_bits + 1) << sub_bits;

    static void bump(std::atomic<std::uint64_t>& a, std::uint64_t by) noexcept
    {
        a.fetch_add(by, std::memory_order_relaxed); // the reader lane's threads share one histogram
    }

    static std::size_t index(std::uint64_t v) noexcept
    {
        if (v < (1u << sub_bits))
            return static_cast<std::size_t>(v);
        const int k = std::bit_width(v) - 1; // floor(log2 v) >= sub_bits
        const auto sub = (v >> (k - sub_bits)) & ((1u << sub_bits) - 1);
        return static_cast<std::size_t>(((k - sub_bits + 1) << sub_bits) + sub);
    }

    static std::uint64_t upper_bound(std::size_t i) noexcept
    {
        if (i < (1u << sub_bits))
            return i;
        const int k = static_cast<int>(i >> sub_bits) + sub_bits - 1;
        const std::uint64_t sub = i & ((1u << sub_bits) - 1);
        return (((1ull << sub_bits) + sub + 1) << (k - sub_bits)) - 1;
    }

    std::uint64_t percentile(double q, const latency_summary& s) const noexcept
    {
        const auto target = static_cast<std::uint64_t>(q * static_cast<double>(s.count) + 0.5);
        std::uint64_t seen = 0;
        for (std::size_t i = 0; i < counts_.size(); ++i) {
            seen += counts_[i].load(std::memory_order_relaxed);
            if (seen >= target && seen > 0)
                return std::min(upper_bound(i), s.max_ns);
        }
        return s.max_ns;
    }

    std::array<std::atomic<std::uint64_t>, buckets> counts_{};
    std::atomic<std::uint64_t> count_{0}, sum_{0}, max_{0};
};

struct lane_counters
{
    std::atomic<std::uint64_t> completed{0}, failed{0};
    histogram wait, exec;

    lane_stats snapshot() const noexcept
    {
        return {completed.load(std::memory_order_relaxed),
                failed.load(std::memory_order_relaxed),
                wait.summary(),
                exec.summary()};
    }
};

void add(std::atomic<std::uint64_t>& a, std::uint64_t by = 1) noexcept
{
    a.fetch_add(by, std::memory_order_relaxed);
}

} // namespace

std::exception_ptr make_error_ptr(errc code, std::string_view name)
{
    return std::make_exception_ptr(error(code, describe(code, name)));
}

/// A bounded queue between submitters and the threads serving it: an intrusive FIFO under one mutex.
/// The first `capacity` requests that have not started are admitted; requests sent with wait_if_full stand
/// in the same line behind them, waiting for space, so order is kept and no sender blocks. Consumers take
/// one group at a time (a run of requests of one lane), so everything not being run stays here, where a
/// deadline can still answer it. A consumer that finds the queue empty spins briefly before parking (a
/// wake-up costs 10-20 µs).
class request_queue
{
public:
    enum class push_result
    {
        ok,
        full,
        closed,
    };

    explicit request_queue(std::size_t capacity) : capacity_(capacity == 0 ? 1 : capacity) {}

    push_result push(request_base* r, bool wait_if_full) noexcept
    {
        bool wake = false;
        {
            std::lock_guard lock(m_);
            if (closed_)
                return push_result::closed;
            if (!wait_if_full && depth_.load(std::memory_order_relaxed) >= capacity_)
                return push_result::full;
            r->next_ = nullptr;
            if (tail_)
                tail_->next_ = r;
            else
                head_ = r;
            tail_ = r;
            const auto depth = depth_.fetch_add(1, std::memory_order_relaxed) + 1;
            if (depth > depth_max_.load(std::memory_order_relaxed))
                depth_max_.store(depth, std::memory_order_relaxed);
            nonempty_.store(true, std::memory_order_release);
            wake = sleeping_ > 0;
        }
        if (wake)
            cv_.notify_one();
        return push_result::ok;
    }

    enum class pop_result
    {
        group,  ///< `out` holds the next group
        idle,   ///< nothing arrived before `idle_until`
        closed, ///< closed and empty
    };

    /// Takes the next group into `out`, waiting while the queue is empty (until `idle_until` at most): the
    /// run of requests of one lane at the head, up to `max_batch` (a call, or a request with a deadline or a
    /// cancellation slot, is a group of its own).
    pop_result pop_group(std::vector<request_base*>& out,
                         std::size_t max_batch,
                         clock::time_point idle_until = clock::time_point::max()) noexcept
    {
        out.clear();
        if (!nonempty_.load(std::memory_order_acquire))
            spin();
        std::unique_lock lock(m_);
        while (!head_ && !closed_) {
            ++sleeping_;
            const bool timed_out = idle_until == clock::time_point::max()
                                       ? (cv_.wait(lock), false)
                                       : cv_.wait_until(lock, idle_until) == std::cv_status::timeout;
            --sleeping_;
            if (timed_out && !head_ && !closed_)
                return pop_result::idle;
        }
        if (!head_)
            return pop_result::closed;
        const lane l = head_->lane_;
        if (l == lane::call || head_->alone())
            take_run(out, 1, l, true);
        else
            take_run(out, batch_limit(max_batch), l, false);
        if (head_ && sleeping_ > 0)
            cv_.notify_one(); // more than this consumer takes: wake another
        return pop_result::group;
    }

    /// Appends to `out` the requests of lane `l` at the head of the queue that can join a running batch (none
    /// with a deadline or a cancellation slot), up to `max_batch` in `out` in all; never waits.
    void pop_more(std::vector<request_base*>& out, lane l, std::size_t max_batch) noexcept
    {
        const std::size_t limit = batch_limit(max_batch);
        if (out.size() >= limit || !nonempty_.load(std::memory_order_acquire))
            return;
        std::lock_guard lock(m_);
        take_run(out, limit, l, false);
    }

    /// What expire() took out of the line.
    struct expired
    {
        request_base* to_answer = nullptr; ///< past their deadline, finished as timed_out, not delivered yet
        request_base* answered = nullptr;  ///< answered already while queued (cancelled)
        request_base* to_answer_tail = nullptr; // both lists keep queue order: replies go out in that order
        request_base* answered_tail = nullptr;
        std::uint64_t timed_out = 0, cancelled = 0;
        clock::time_point next = clock::time_point::max(); ///< the earliest deadline still queued
    };

    /// Takes out of the line every queued request whose deadline is at or before `now` (finishing it as
    /// errc::timed_out) and every one answered already. The caller counts them, then delivers and releases
    /// them (deliver_expired), outside the lock: a reply then comes after the statistics that include it.
    void expire(clock::time_point now, expired& out) noexcept
    {
        std::lock_guard lock(m_);
        request_base* prev = nullptr;
        for (request_base* r = head_; r;) {
            request_base* const after = r->next_;
            request_base** to = nullptr;
            request_base** to_tail = nullptr;
            if (!r->pending()) {
                to = &out.answered;
                to_tail = &out.answered_tail;
                ++(r->interrupt_reason() == errc::timed_out ? out.timed_out : out.cancelled);
            }
            else if (r->has_deadline()) {
                // The error is made outside the lock (deliver_expired): formatting takes time and may throw.
                if (r->deadline_ <= now && r->finish(errc::timed_out, false)) {
                    to = &out.to_answer;
                    to_tail = &out.to_answer_tail;
                    ++out.timed_out;
                }
                else
                    out.next = std::min(out.next, r->deadline_);
            }
            if (to) {
                if (prev)
                    prev->next_ = after;
                else
                    head_ = after;
                if (tail_ == r)
                    tail_ = prev;
                depth_.fetch_sub(1, std::memory_order_relaxed);
                r->next_ = nullptr;
                if (*to_tail)
                    (*to_tail)->next_ = r;
                else
                    *to = r;
                *to_tail = r;
            }
            else
                prev = r;
            r = after;
        }
        nonempty_.store(head_ != nullptr, std::memory_order_relaxed);
    }

    static void deliver_expired(expired& e) noexcept
    {
        for (request_base* r = e.to_answer; r;) {
            request_base* const after = r->next_;
            r->set_error(make_error_ptr(errc::timed_out, r->name_));
            r->complete(false);
            r->release(); // the queue's reference
            r = after;
        }
        for (request_base* r = e.answered; r;) {
            request_base* const after = r->next_;
            r->release();
            r = after;
        }
        e.to_answer = e.answered = e.to_answer_tail = e.answered_tail = nullptr;
    }

    /// A popped request has started (or was answered): it no longer counts against the capacity.
    void done_one() noexcept { depth_.fetch_sub(1, std::memory_order_relaxed); }

    void close() noexcept
    {
        {
            std::lock_guard lock(m_);
            closed_ = true;
        }
        cv_.notify_all();
    }

    bool closed() const noexcept
    {
        std::lock_guard lock(m_);
        return closed_;
    }

    /// Requests not started yet, split into the admitted ones (at most the capacity) and those waiting for
    /// space behind them; now, and the most seen.
    std::uint64_t depth() const noexcept { return admitted(depth_); }
    std::uint64_t waiting() const noexcept { return beyond_capacity(depth_); }
    std::uint64_t depth_max() const noexcept { return admitted(depth_max_); }
    std::uint64_t waiting_max() const noexcept { return beyond_capacity(depth_max_); }

private:
    std::uint64_t admitted(const std::atomic<std::uint64_t>& d) const noexcept
    {
        return std::min<std::uint64_t>(d.load(std::memory_order_relaxed), capacity_);
    }
    std::uint64_t beyond_capacity(const std::atomic<std::uint64_t>& d) const noexcept
    {
        const auto n = d.load(std::memory_order_relaxed);
        return n > capacity_ ? n - capacity_ : 0;
    }

    /// A batch never takes more than max_batch, nor more than are admitted.
    std::size_t batch_limit(std::size_t max_batch) const noexcept
    {
        return std::min(std::max<std::size_t>(max_batch, 1), capacity_);
    }

    /// Under the lock: moves requests of lane `l` from the head into `out` while it holds fewer than
    /// `limit`. One with a deadline or a cancellation slot is taken only as the first of `out`, and only when
    /// `alone_first` (it then makes a group of one: limit 1).
    void take_run(std::vector<request_base*>& out, std::size_t limit, lane l, bool alone_first) noexcept
    {
        while (head_ && out.size() < limit && head_->lane_ == l &&
               (!head_->alone() || (alone_first && out.empty()))) {
            request_base* r = head_;
            head_ = r->next_;
            r->next_ = nullptr;
            out.push_back(r); // within the capacity the session reserved for max_batch: no allocation
        }
        if (!head_)
            tail_ = nullptr;
        nonempty_.store(head_ != nullptr, std::memory_order_relaxed);
    }

    void spin() const noexcept
    {
        // 20 µs: about one round trip of a caller that answers at once (resume a coroutine, send the next
        // request). Measured on the 2-core VM: 2 µs gave W1 p50 ≈ 38 µs, 20 µs ≈ 21 µs (docs/PERFORMANCE.md).
        const auto until = clock::now() + std::chrono::microseconds(20);
        for (int i = 0;; ++i) {
            if (nonempty_.load(std::memory_order_acquire))
                return;
#if defined(__x86_64__) || defined(__i386__)
            __builtin_ia32_pause();
#endif
            if ((i & 15) == 15 && clock::now() >= until)
                return;
        }
    }

    mutable std::mutex m_;
    std::condition_variable cv_;
    request_base* head_ = nullptr;
    request_base* tail_ = nullptr;
    bool closed_ = false;
    int sleeping_ = 0;
    const std::size_t capacity_;
    std::atomic<bool> nonempty_{false};
    std::atomic<std::uint64_t> depth_{0}, depth_max_{0};
};

/// A prepared statement of the actor's own (BEGIN, COMMIT, …), stepped to completion.
class own_statement
{
public:
    own_statement() = default;
    own_statement(const own_statement&) = delete;
    own_statement& operator=(const own_statement&) = delete;
    ~own_statement() { sqlite3_finalize(s_); }

    void prepare(sqlite3* db, const char* sql)
    {
        if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s_, nullptr) != SQLITE_OK)
            throw SQLite::Exception(db, sqlite3_errcode(db));
    }
    void finalize() noexcept
    {
        sqlite3_finalize(s_);
        s_ = nullptr;
    }
    /// Runs it; returns the failure instead of throwing.
    std::exception_ptr try_run() noexcept
    {
        int rc;
        while ((rc = sqlite3_step(s_)) == SQLITE_ROW) {
        }
        sqlite3_reset(s_);
        if (rc == SQLITE_DONE)
            return nullptr;
        return std::make_exception_ptr(SQLite::Exception(sqlite3_db_handle(s_), rc));
    }

private:
    sqlite3_stmt* s_ = nullptr;
};

/// When close() started and how long queued and running requests may still take (shared by the sessions).
struct close_clock
{
    std::atomic<bool> requested{false};
    clock::time_point deadline{}; // written before `requested` is set, read after it was seen set

    bool past_grace(clock::time_point now) const noexcept
    {
        return requested.load(std::memory_order_acquire) && now >= deadline;
    }
};

/// One connection and what the thread serving it keeps: the writer's (writes, calls, and reads when there
/// is no reader lane) or a reader's (reads only, on a read-only connection).
struct session
{
    std::unique_ptr<SQLite::Database> db;
    std::unique_ptr<connection> conn;
    request_base* current = nullptr; // the running request, seen by the progress and commit hooks
    bool commit_refused = false;     // the commit hook turned a write request's own COMMIT into a ROLLBACK
    bool rolled_back = false;        // the rollback hook saw the transaction end inside a write request
    std::vector<request_base*> group;
    bool query_only = false;
    bool reader = false;
    const close_clock* closing = nullptr;
    own_statement begin_immediate, begin, commit, rollback, savepoint, release, rollback_to;

    sqlite3* handle() const noexcept { return db->getHandle(); }
    bool in_transaction() const noexcept { return sqlite3_get_autocommit(handle()) == 0; }

    /// The connection's busy timeout now (SQLite has no getter but the pragma).
    int busy_timeout_ms() const noexcept
    {
        sqlite3_stmt* st = nullptr;
        int ms = 0;
        if (sqlite3_prepare_v2(handle(), "PRAGMA busy_timeout", -1, &st, nullptr) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW)
            ms = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
        return ms;
    }

    void start(std::unique_ptr<SQLite::Database> opened, const close_clock& c, std::size_t max_batch)
    {
        closing = &c;
        group.reserve(std::max<std::size_t>(max_batch, 1)); // pop_group fills it without allocating
        db = std::move(opened);
        conn = std::make_unique<connection>(*db);
        sqlite3* h = handle();
        begin.prepare(h, "BEGIN");
        commit.prepare(h, "COMMIT");
        if (!reader) {
            begin_immediate.prepare(h, "BEGIN IMMEDIATE");
            rollback.prepare(h, "ROLLBACK");
            savepoint.prepare(h, "SAVEPOINT dbactor_request");
            release.prepare(h, "RELEASE dbactor_request");
            rollback_to.prepare(h, "ROLLBACK TO dbactor_request");
            sqlite3_commit_hook(h, &session::on_commit, this);
            sqlite3_rollback_hook(h, &session::on_rollback, this);
        }
        sqlite3_progress_handler(h, 1000, &session::on_progress, this);
    }

    // Called by SQLite every 1000 VM steps: interrupts the running request when it was cancelled, its
    // deadline passed, or close()'s shutdown_grace is over. Scoped to the request: between requests there
    // is nothing to interrupt.
    static int on_progress(void* p) noexcept
    {
        auto* s = static_cast<session*>(p);
        request_base* r = s->current;
        if (!r)
            return 0;
        if (r->interrupted())
            return 1;
        const auto now = clock::now();
        if (r->has_deadline() && now >= r->deadline_) {
            r->set_interrupt(errc::timed_out);
            return 1;
        }
        if (s->closing && s->closing->past_grace(now)) {
            r->set_interrupt(errc::closed);
            return 1;
        }
        return 0;
    }

    // A write request owns no transaction of its own: the actor commits it (with the others of its group)
    // after it returns, and only then replies. A COMMIT run by the request itself is turned into a
    // ROLLBACK, so that "replied after COMMIT" and "an error means no effect" both stay true.
    static int on_commit(void* p) noexcept
    {
        auto* s = static_cast<session*>(p);
        if (s->current && s->current->lane_ == lane::write) {
            s->commit_refused = true;
            return 1;
        }
        return 0;
    }

    // The transaction ended inside a write request: by its own ROLLBACK (or refused COMMIT), or by SQLite
    // after an I/O error. Seen even when the request began another transaction afterwards.
    static void on_rollback(void* p) noexcept
    {
        auto* s = static_cast<session*>(p);
        if (s->current && s->current->lane_ == lane::write)
            s->rolled_back = true;
    }

    /// Reads on the writer's connection run with `PRAGMA query_only` on, so that a write inside them fails
    /// and changes nothing; it is switched only when the lane changes. (Not a cached statement: flag
    /// pragmas take effect when compiled, not when stepped.)
    std::exception_ptr set_query_only(bool on) noexcept
    {
        if (reader || query_only == on)
            return nullptr;
        const int rc = sqlite3_exec(
            handle(), on ? "PRAGMA query_only = 1" : "PRAGMA query_only = 0", nullptr, nullptr, nullptr);
        if (rc != SQLITE_OK)
            return std::make_exception_ptr(SQLite::Exception(handle(), rc));
        query_only = on;
        return nullptr;
    }

    bool deferred_violations() const noexcept
    {
        int current_count = 0, high = 0;
        sqlite3_db_status(handle(), SQLITE_DBSTATUS_DEFERRED_FKS, &current_count, &high, 0);
        return current_count > 0;
    }

    /// Finalizes every statement, then closes the connection. Returns the close failure, if any.
    std::exception_ptr close(const std::string& path) noexcept
    {
        std::exception_ptr failure;
        if (conn)
            conn->clear_cache();
        for (auto* s : {&begin_immediate, &begin, &commit, &rollback, &savepoint, &release, &rollback_to})
            s->finalize();
        if (db) {
            int leaked = 0;
            while (sqlite3_stmt* s = sqlite3_next_stmt(handle(), nullptr)) {
                sqlite3_finalize(s);
                ++leaked;
            }
            if (leaked)
                failure = std::make_exception_ptr(error(
                    errc::close_failed,
                    fmt::format("Closing '{}' found {} statement(s) still open (a statement kept beyond its "
                                "request); they were finalized. Destroy statements before the request "
                                "returns.",
                                path,
                                leaked)));
            conn.reset();
            db.reset(); // sqlite3_close: succeeds now that no statement is left
        }
        return failure;
    }
};

class actor
{
public:
    explicit actor(options o)
        : opts_(std::move(o)), queue_(opts_.queue_capacity), reader_queue_(opts_.queue_capacity)
    {}

    ~actor()
    {
        if (thread_.joinable()) {
            if (thread_.get_id() == std::this_thread::get_id())
                thread_.detach(); // the last reference went away on the actor thread itself
            else
                thread_.join();
        }
    }

    static std::shared_ptr<actor> start(options o)
    {
        auto a = std::make_shared<actor>(std::move(o));
        std::promise<void> booted;
        auto ready = booted.get_future();
        a->thread_ = std::thread([self = a, p = std::move(booted)]() mutable { self->writer_main(p); });
        try {
            ready.get();
        }
        catch (...) {
            a->thread_.join();
            throw;
        }
        return a;
    }

    void submit(request_base* r, const request_options& ro) noexcept
    {
        r->submitted_ = clock::now();
        if (ro.timeout.count() > 0)
            r->deadline_ = r->submitted_ + std::chrono::duration_cast<clock::duration>(ro.timeout);
        r->name_ = ro.name;
        auto& q = r->lane_ == lane::read && reader_lane_ ? reader_queue_ : queue_;
        const auto deadline = r->deadline_; // r may be gone once pushed
        switch (q.push(r, ro.wait_if_full)) {
        case request_queue::push_result::ok:
            if (deadline != clock::time_point::max())
                watch(deadline);
            return;
        case request_queue::push_result::full:
            add(rejected_);
            reject(r, errc::queue_full);
            return;
        case request_queue::push_result::closed:
            add(closed_unexecuted_);
            reject(r, errc::closed);
            return;
        }
    }

    static void reject(request_base* r, errc code) noexcept
    {
        r->abandon(code, false); // post: completing inside the initiating function is not allowed
        r->release();            // it never entered the queue
    }

    void submit_close(request_base* waiter) noexcept
    {
        {
            std::lock_guard lock(close_m_);
            if (!finished_) {
                close_waiters_.push_back(waiter);
                waiter = nullptr;
            }
        }
        begin_close();
        if (waiter) { // already closed: nothing to report any more
            waiter->complete(false);
            waiter->release();
        }
    }

    void begin_close() noexcept
    {
        std::lock_guard lock(close_m_);
        if (!closing_.requested.load(std::memory_order_relaxed)) {
            closing_.deadline = clock::now() + opts_.shutdown_grace;
            closing_.requested.store(true, std::memory_order_release);
            queue_.close();
            reader_queue_.close();
        }
    }

    void join() noexcept
    {
        std::lock_guard lock(join_m_);
        if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id())
            thread_.join();
    }

    bool is_open() const noexcept { return !queue_.closed(); }

    /// See detail::reply_spin: only when nothing is queued ahead (the one-request-at-a-time case); a caller
    /// whose request waits behind others would spin in vain.
    /// Not for a write under synchronous=FULL either: its COMMIT waits for an fsync, which takes longer than
    /// any sensible spin, so the caller would only burn its thread.
    std::chrono::nanoseconds reply_spin(lane l) const noexcept
    {
        if (l == lane::write && opts_.synchronous == synchronous_mode::full)
            return std::chrono::nanoseconds(0);
        const auto& q = l == lane::read && reader_lane_ ? reader_queue_ : queue_;
        return q.depth() == 0 ? opts_.reply_spin : std::chrono::nanoseconds(0);
    }
    bool on_own_thread() const noexcept { return current_actor == this; }
    const boot_summary& boot() const noexcept { return boot_; }

    stats_snapshot stats() const noexcept
    {
        stats_snapshot s;
        s.write = lanes_[0].snapshot();
        s.read = lanes_[1].snapshot();
        s.call = lanes_[2].snapshot();
        s.queue_depth = queue_.depth() + reader_queue_.depth();
        s.queue_depth_max = std::max(queue_.depth_max(), reader_queue_.depth_max());
        s.queue_waiting = queue_.waiting() + reader_queue_.waiting();
        s.queue_waiting_max = std::max(queue_.waiting_max(), reader_queue_.waiting_max());
        s.idle_checkpoints = idle_checkpoints_.load(std::memory_order_relaxed);
        s.rejected = rejected_.load(std::memory_order_relaxed);
        s.timed_out = timed_out_.load(std::memory_order_relaxed);
        s.cancelled = cancelled_.load(std::memory_order_relaxed);
        s.closed_unexecuted = closed_unexecuted_.load(std::memory_order_relaxed);
        s.write_batches = write_batches_.load(std::memory_order_relaxed);
        s.write_batch_max = write_batch_max_.load(std::memory_order_relaxed);
        const auto writes = write_batched_.load(std::memory_order_relaxed);
        s.write_batch_mean =
            s.write_batches ? static_cast<double>(writes) / static_cast<double>(s.write_batches) : 0;
        s.read_batches = read_batches_.load(std::memory_order_relaxed);
        const auto reads = read_batched_.load(std::memory_order_relaxed);
        s.read_batch_mean =
            s.read_batches ? static_cast<double>(reads) / static_cast<double>(s.read_batches) : 0;
        s.cached_statements = cached_statements_.load(std::memory_order_relaxed);
        return s;
    }

private:
    /// Names the calling thread (top -H, gdb, perf): at most 15 characters.
    static void name_thread(const char* name) noexcept { pthread_setname_np(pthread_self(), name); }

    void writer_main(std::promise<void>& booted)
    {
        current_actor = this;
        name_thread("dbactor-writer");
        try {
            writer_.start(detail::boot(opts_, boot_), closing_, opts_.max_batch);
            start_readers();
        }
        catch (...) {
            stop_readers();
            writer_.close(opts_.path);
            booted.set_exception(std::current_exception());
            return;
        }
        booted.set_value();

        // After a write, the first moment the queue has been empty for options::idle_checkpoint, the WAL is
        // checkpointed: a WAL that grew behind a long reader then shrinks without waiting for more writes.
        checkpoints_ =
            opts_.idle_checkpoint.count() > 0 && !opts_.read_only && !detail::is_memory(opts_.path);
        auto idle_until = clock::time_point::max();
        for (;;) {
            const auto got = queue_.pop_group(writer_.group, opts_.max_batch, idle_until);
            if (got == request_queue::pop_result::closed)
                break;
            if (got == request_queue::pop_result::idle) {
                idle_until =
                    idle_checkpoint() ? clock::time_point::max() : clock::now() + opts_.idle_checkpoint;
                continue;
            }
            const bool wrote = process(writer_);
            // Armed by a write or a call; any request pushes it back: "idle" means no request at all.
            if (checkpoints_ && (wrote || idle_until != clock::time_point::max()))
                idle_until = clock::now() + opts_.idle_checkpoint;
        }

        stop_readers(); // a reader's queue is closed with the writer's; they drain it and close first
        stop_watcher();
        shutdown();
    }

    /// PASSIVE, then (when every frame is back in the main file) TRUNCATE without waiting for readers.
    /// True when the WAL was emptied; false when a reader still needs it (tried again later).
    bool idle_checkpoint() noexcept
    {
        sqlite3* h = writer_.handle();
        int frames = -1, copied = -1;
        int rc = sqlite3_wal_checkpoint_v2(h, nullptr, SQLITE_CHECKPOINT_PASSIVE, &frames, &copied);
        if (rc == SQLITE_OK && frames < 0) {
            checkpoints_ = false; // not in WAL mode (a pragma changed it): nothing to checkpoint, ever
            return true;
        }
        if (rc != SQLITE_OK || copied < frames)
            return false;
        const int busy_ms = writer_.busy_timeout_ms(); // as boot (or options::pragmas) left it
        sqlite3_busy_timeout(h, 0); // a reader still on the WAL: try again later rather than wait here
        rc = sqlite3_wal_checkpoint_v2(h, nullptr, SQLITE_CHECKPOINT_TRUNCATE, nullptr, nullptr);
        sqlite3_busy_timeout(h, busy_ms);
        if (rc != SQLITE_OK)
            return false;
        add(idle_checkpoints_);
        return true;
    }

    /// Arms the deadline watcher for a queued request's deadline (starting the watcher the first time).
    void watch(clock::time_point deadline) noexcept
    {
        const auto d = deadline.time_since_epoch().count();
        if (d >= watch_next_.load(std::memory_order_acquire))
            return; // the watcher wakes earlier than that, and rescans the whole queue then
        std::string failure;
        {
            std::lock_guard lock(watch_m_);
            if (watch_stop_)
                return;
            if (!watcher_.joinable()) {
                try {
                    watcher_ = std::thread([this] { watch_main(); });
                }
                catch (const std::exception& e) {
                    failure = e.what();
                    watch_stop_ = true;
                    watch_next_.store(0, std::memory_order_release); // later submitters return at once
                }
            }
            if (failure.empty() && d < watch_next_.load(std::memory_order_relaxed)) {
                watch_next_.store(d, std::memory_order_release);
                watch_cv_.notify_one();
            }
        }
        if (!failure.empty()) // outside the lock: the hook may send requests
            log(opts_,
                log_level::error,
                fmt::format(
                    "Cannot start the deadline watcher of '{}' ({}): a queued request is now answered "
                    "timed_out only when the actor reaches it.",
                    opts_.path,
                    failure));
    }

    void watch_main() noexcept
    {
        name_thread("dbactor-watch");
        constexpr auto never = clock::time_point::max().time_since_epoch().count();
        std::unique_lock lock(watch_m_);
        while (!watch_stop_) {
            const auto next = watch_next_.load(std::memory_order_relaxed);
            if (next == never) {
                watch_cv_.wait(lock);
                continue;
            }
            const auto at = clock::time_point(clock::duration(next));
            if (clock::now() < at) {
                watch_cv_.wait_until(lock, at);
                continue;
            }
            // From here a submitter with any deadline arms again; the scan below sees what it missed.
            watch_next_.store(never, std::memory_order_release);
            lock.unlock();
            const auto now = clock::now();
            request_queue::expired from_writer, from_readers;
            queue_.expire(now, from_writer);
            reader_queue_.expire(now, from_readers);
            add(timed_out_, from_writer.timed_out + from_readers.timed_out);
            add(cancelled_, from_writer.cancelled + from_readers.cancelled);
            request_queue::deliver_expired(from_writer);
            request_queue::deliver_expired(from_readers);
            lock.lock();
            const auto e = std::min(from_writer.next, from_readers.next).time_since_epoch().count();
            if (e < watch_next_.load(std::memory_order_relaxed))
                watch_next_.store(e, std::memory_order_release);
        }
    }

    void stop_watcher() noexcept
    {
        {
            std::lock_guard lock(watch_m_);
            watch_stop_ = true;
        }
        watch_cv_.notify_all();
        if (watcher_.joinable())
            watcher_.join();
    }

    /// Opens the reader lane: N read-only connections, each on its own thread, after the writer booted.
    void start_readers()
    {
        if (opts_.readers == 0)
            return;
        const bool memory = detail::is_memory(opts_.path);
        if (memory || opts_.read_only)
            throw error(
                errc::open_failed,
                fmt::format("options::readers = {} needs a database file in WAL mode, but '{}' is {}. "
                            "Set readers = 0.",
                            opts_.readers,
                            opts_.path,
                            memory ? "in memory (each connection would see its own database)"
                                   : "opened read-only"));
        for (unsigned i = 0; i < opts_.readers; ++i) {
            auto s = std::make_unique<session>();
            s->reader = true;
            s->start(detail::open_reader(opts_), closing_, opts_.max_batch);
            readers_.push_back(std::move(s));
        }
        for (auto& s : readers_)
            reader_threads_.emplace_back([this, s = s.get()] { reader_main(*s); });
        reader_lane_ = true;
    }

    void reader_main(session& s) noexcept
    {
        current_actor = this;
        name_thread("dbactor-reader");
        while (reader_queue_.pop_group(s.group, opts_.max_batch) == request_queue::pop_result::group)
            process(s);
        if (auto failure = s.close(opts_.path))
            log(opts_, log_level::error, describe_exception(failure));
    }

    void stop_readers() noexcept
    {
        reader_queue_.close();
        for (auto& t : reader_threads_)
            t.join();
        reader_threads_.clear();
        for (auto& s : readers_)
            s->close(opts_.path); // no-op after reader_main closed it; closes it when boot failed
        readers_.clear();
    }

    /// Claims each request of the group just popped and runs those still to run, together. True when a
    /// write or a call ran (the WAL may have grown).
    bool process(session& s) noexcept
    {
        auto& group = s.group;
        if (group.empty())
            return false;
        const lane l = group.front()->lane_;
        claim_from(group, 0);
        if (group.empty())
            return false;
        switch (l) {
        case lane::write: run_writes(s); break;
        case lane::read: run_reads(s); break;
        case lane::call: run_call(s); break;
        case lane::close: break;
        }
        return l != lane::read;
    }

    /// Marks a request as running; answers it instead when it was abandoned, is past its deadline, or the
    /// shutdown grace is over. True when it is to run.
    bool claim(request_base* r) noexcept
    {
        (r->lane_ == lane::read && reader_lane_ ? reader_queue_ : queue_).done_one();
        const auto now = clock::now();
        errc reason{};
        if (closing_.past_grace(now))
            reason = errc::closed;
        else if (r->has_deadline() && now >= r->deadline_)
            reason = errc::timed_out;
        if (reason != errc{}) {
            count_abandoned(r->abandon(reason, true) ? reason : r->interrupt_reason());
            r->release();
            return false;
        }
        if (!r->try_start()) {
            count_abandoned(r->interrupt_reason()); // cancelled or timed out by its caller while queued
            r->release();
            return false;
        }
        r->started_ = now;
        return true;
    }

    void count_abandoned(errc reason) noexcept
    {
        switch (reason) {
        case errc::timed_out: add(timed_out_); break;
        case errc::cancelled: add(cancelled_); break;
        case errc::closed: add(closed_unexecuted_); break;
        default: break;
        }
    }

    /// Runs one claimed request; its error, if any, is stored in it.
    void run_one(session& s, request_base* r) noexcept
    {
        if (r->has_deadline() || closing_.requested.load(std::memory_order_acquire)) { // else no clock read
            const auto now = clock::now();
            if (!r->interrupted() && r->has_deadline() && now >= r->deadline_)
                r->set_interrupt(errc::timed_out);
            if (!r->interrupted() && closing_.past_grace(now))
                r->set_interrupt(errc::closed); // claimed with its group just before the grace ran out
        }
        if (r->interrupted()) {
            r->set_error(make_error_ptr(r->interrupt_reason(), r->name_));
            return;
        }
        s.current = r;
        r->run(*s.conn);
        s.current = nullptr;
        if (r->lane_ != lane::call && !r->interrupted() && r->has_deadline() && clock::now() >= r->deadline_)
            r->set_interrupt(errc::timed_out);
        if (r->interrupted()) {
            count_abandoned(r->interrupt_reason());
            r->set_error(make_error_ptr(r->interrupt_reason(), r->name_));
        }
    }

    void run_writes(session& s)
    {
        auto& group = s.group;
        if (auto e = s.set_query_only(false)) {
            fail_range(group, 0, group.size(), e);
            finish_range(s, 0, group.size(), lane::write);
            return;
        }
        std::size_t start = 0;
        while (start < group.size()) {
            if (auto e = s.begin_immediate.try_run()) {
                fail_range(group, start, group.size(), busy_or(e, "BEGIN IMMEDIATE"));
                finish_range(s, start, group.size(), lane::write);
                return;
            }
            std::size_t i = start;
            bool lost = false;        // the transaction is gone: nothing of [start, i) is kept
            bool bare_failed = false; // the first request ran without a savepoint and failed: ROLLBACK
            bool closed_batch = group[start]->alone(); // an interruptible request shares with nobody
            for (;;) {
                if (i == group.size()) {
                    // Writes queued while these ran join this transaction before its COMMIT: what is already
                    // there, never waited for. Under load the batch grows to max_batch this way, instead of
                    // alternating between one request and all the others.
                    if (closed_batch || !extend(s))
                        break;
                }
                request_base* r = group[i];
                // A request alone in its transaction needs no savepoint: a failure rolls the whole thing
                // back.
                const bool sp = i > start || group.size() - start > 1;
                if (sp) {
                    if (auto e = s.savepoint.try_run()) {
                        r->set_error(e);
                        ++i;
                        continue;
                    }
                }
                run_one(s, r);
                const bool refused = std::exchange(s.commit_refused, false);
                const bool ended = std::exchange(s.rolled_back, false) || refused || !s.in_transaction();
                if (ended) {
                    // The whole transaction is gone (an I/O error, disk full, an interrupt, or the request
                    // ended it itself): the requests before it in this batch lost their changes too.
                    lost = true;
                    if (s.in_transaction())
                        s.rollback.try_run(); // it began a transaction of its own after ending ours
                    // SQLite's own rollback (an I/O error, disk full, an interrupt) explains itself and is
                    // what the batch-mates get too; anything else was the request ending the transaction.
                    const bool by_sqlite = !refused && sqlite_rolled_back(r->error());
                    const bool by_request = !by_sqlite;
                    if (refused || !r->error())
                        r->set_error(std::make_exception_ptr(SQLite::Exception(
                            fmt::format(
                                "{} {} inside async_write; nothing it did was kept. async_write commits "
                                "for you after the request returns: remove the COMMIT/ROLLBACK, or use "
                                "async_call to control the transaction yourself.",
                                who(r, "A write", "Write"),
                                refused ? "ran COMMIT itself (turned into a ROLLBACK)"
                                        : "saw its write transaction end (its own ROLLBACK, or an SQLite "
                                          "error it caught)"),
                            SQLITE_MISUSE)));
                    fail_range(group,
                               start,
                               i,
                               by_request
                                   ? std::make_exception_ptr(SQLite::Exception(
                                         fmt::format("A write was rolled back with the group commit it "
                                                     "shared, because {} ended that transaction before "
                                                     "it was committed. It had no effect; send it again.",
                                                     who(r, "another write", "write")),
                                         SQLITE_ABORT_ROLLBACK))
                                   : r->error());
                    ++i;
                    break;
                }
                if (!sp) {
                    ++i;
                    if (r->error()) {
                        bare_failed = true; // only a ROLLBACK undoes it; nobody else is in this transaction
                        break;
                    }
                    // A deferred violation fails this COMMIT: then it must fail this request alone.
                    closed_batch = closed_batch || s.deferred_violations();
                    continue;
                }
                if (!r->error() && s.deferred_violations()) {
                    // It would fail the COMMIT of every request in the batch; it fails alone instead.
                    r->set_error(std::make_exception_ptr(SQLite::Exception(
                        fmt::format("{} left a deferred FOREIGN KEY constraint unresolved; its changes were "
                                    "rolled back. Insert the parent row in the same request.",
                                    who(r, "A write", "Write")),
                        SQLITE_CONSTRAINT_FOREIGNKEY)));
                }
                if (r->error()) {
                    s.rollback_to.try_run();
                    s.release.try_run();
                }
                else if (auto e = s.release.try_run()) {
                    r->set_error(e);
                    s.rollback_to.try_run();
                    s.release.try_run();
                }
                ++i;
            }
            if (!lost) {
                if (bare_failed) {
                    s.rollback.try_run();
                }
                else if (auto e = s.commit.try_run()) {
                    if (s.in_transaction())
                        s.rollback.try_run();
                    fail_range(group, start, i, e); // every request of the batch loses its changes
                }
            }
            add(write_batches_);
            add(write_batched_, i - start);
            if (i - start > write_batch_max_.load(std::memory_order_relaxed))
                write_batch_max_.store(i - start, std::memory_order_relaxed);
            finish_range(s, start, i, lane::write);
            start = i;
        }
    }

    /// Adds the writes queued behind the running batch to it (up to max_batch, none that is interruptible),
    /// claiming each. True when any joined.
    bool extend(session& s) noexcept
    {
        auto& group = s.group;
        const std::size_t before = group.size();
        queue_.pop_more(group, lane::write, opts_.max_batch);
        claim_from(group, before);
        return group.size() > before;
    }

    /// Claims the requests of `group` from index `from` on, keeping (in order) only those that are to run.
    void claim_from(std::vector<request_base*>& group, std::size_t from) noexcept
    {
        std::size_t kept = from;
        for (std::size_t j = from; j < group.size(); ++j)
            if (claim(group[j]))
                group[kept++] = group[j];
        group.resize(kept); // shrinks: no allocation
    }

    void run_reads(session& s)
    {
        auto& group = s.group;
        const std::size_t n = group.size();
        if (auto e = s.set_query_only(true)) {
            fail_range(group, 0, n, e);
            finish_range(s, 0, n, lane::read);
            return;
        }
        // One snapshot for every read of the batch: a request that queries twice sees one state, and reads
        // queued together pay for one lock round trip. The snapshot starts at the first read, after these
        // requests were taken from the queue, so each sees every write acknowledged before it was sent.
        s.begin.try_run();
        for (std::size_t i = 0; i < n; ++i) {
            request_base* r = group[i];
            run_one(s, r);
            if (r->error())
                translate_read_only(r);
            if (!s.in_transaction() && i + 1 < n)
                s.begin.try_run(); // the request ended the snapshot; the rest get a new one
        }
        if (s.in_transaction())
            s.commit.try_run();
        add(read_batches_);
        add(read_batched_, n);
        finish_range(s, 0, n, lane::read);
    }

    void run_call(session& s)
    {
        request_base* r = s.group.front();
        if (auto e = s.set_query_only(false)) {
            r->set_error(e);
            finish_range(s, 0, 1, lane::call);
            return;
        }
        run_one(s, r);
        if (s.in_transaction()) {
            s.rollback.try_run();
            if (!r->error())
                r->set_error(std::make_exception_ptr(error(
                    errc::transaction_leaked,
                    fmt::format("{} returned with a transaction still open; it was rolled back. End every "
                                "BEGIN with COMMIT or ROLLBACK inside the call, or use async_write, which "
                                "manages the transaction.",
                                who(r, "A call", "Call")))));
        }
        finish_range(s, 0, 1, lane::call);
    }

    static std::string who(const request_base* r, const char* anonymous, const char* kind)
    {
        return r->name_.empty() ? std::string(anonymous) : fmt::format("{} '{}'", kind, r->name_);
    }

    /// An exception that SQLite's own rollback of the transaction explains (an I/O error, disk full,
    /// corruption, out of memory, an interrupt, a lock).
    static bool sqlite_rolled_back(const std::exception_ptr& e) noexcept
    {
        if (!e)
            return false;
        try {
            std::rethrow_exception(e);
        }
        catch (const SQLite::Exception& x) {
            switch (x.getErrorCode() & 0xff) {
            case SQLITE_IOERR:
            case SQLITE_FULL:
            case SQLITE_CORRUPT:
            case SQLITE_NOMEM:
            case SQLITE_INTERRUPT:
            case SQLITE_BUSY:
            case SQLITE_LOCKED:
            case SQLITE_ABORT:
            case SQLITE_NOTADB: return true;
            default: return false;
            }
        }
        catch (const error& x) {
            return x.value() == errc::timed_out || x.value() == errc::cancelled || x.value() == errc::closed;
        }
        catch (...) {
            return false;
        }
    }

    static void translate_read_only(request_base* r) noexcept
    {
        try {
            std::rethrow_exception(r->error());
        }
        catch (const SQLite::Exception& e) {
            if ((e.getErrorCode() & 0xff) == SQLITE_READONLY)
                r->set_error(std::make_exception_ptr(error(
                    errc::read_only_violation,
                    fmt::format("{} tried to write inside a read request ({}); nothing was changed. Send "
                                "writes with async_write.",
                                who(r, "A request", "Request"),
                                e.what()),
                    e.getExtendedErrorCode())));
        }
        catch (...) {
        }
    }

    static std::exception_ptr busy_or(std::exception_ptr e, const char* what)
    {
        try {
            std::rethrow_exception(e);
        }
        catch (const SQLite::Exception& x) {
            if ((x.getErrorCode() & 0xff) == SQLITE_BUSY)
                return std::make_exception_ptr(error(
                    errc::busy,
                    fmt::format("{} could not take the write lock: another connection holds it ({}). The "
                                "request did not run; retry, or raise options::busy_timeout.",
                                what,
                                x.what()),
                    x.getExtendedErrorCode()));
        }
        catch (...) {
        }
        return e;
    }

    /// Requests in [from, to) without an error of their own get `e` (their shared transaction failed).
    static void fail_range(std::vector<request_base*>& group,
                           std::size_t from,
                           std::size_t to,
                           const std::exception_ptr& e) noexcept
    {
        for (std::size_t i = from; i < to; ++i)
            if (!group[i]->error())
                group[i]->set_error(e);
    }

    void finish_range(session& s, std::size_t from, std::size_t to, lane l) noexcept
    {
        if (!s.reader) // before the replies: a caller reading stats() after its reply sees this
            cached_statements_.store(s.conn->cached_statements(), std::memory_order_relaxed);
        const auto now = clock::now();
        auto& counters = lanes_[static_cast<int>(l)];
        for (std::size_t i = from; i < to; ++i) {
            request_base* r = s.group[i];
            const bool failed = r->error() != nullptr;
            const auto wait = r->started_ - r->submitted_;
            const auto exec = now - r->started_;
            counters.wait.record(static_cast<std::uint64_t>(wait.count()));
            counters.exec.record(static_cast<std::uint64_t>(exec.count()));
            add(counters.completed);
            if (failed)
                add(counters.failed);
            if (opts_.on_slow_request && opts_.slow_request.count() > 0 && wait + exec >= opts_.slow_request)
                report_slow(r, l, wait, exec, failed);
            r->complete(true);
            r->release();
        }
    }

    void
    report_slow(request_base* r, lane l, clock::duration wait, clock::duration exec, bool failed) noexcept
    {
        try {
            opts_.on_slow_request(
                slow_request_info{r->name_,
                                  static_cast<request_kind>(l),
                                  std::chrono::duration_cast<std::chrono::nanoseconds>(wait),
                                  std::chrono::duration_cast<std::chrono::nanoseconds>(exec),
                                  failed});
        }
        catch (...) {
        }
    }

    void shutdown() noexcept
    {
        try {
            if (auto e = writer_.set_query_only(false))
                std::rethrow_exception(e);
            writer_.conn->exec("PRAGMA optimize");
        }
        catch (const std::exception& e) {
            log(opts_,
                log_level::warning,
                fmt::format("PRAGMA optimize at close of '{}' failed: {}", opts_.path, e.what()));
        }
        std::exception_ptr checkpoint_failure = final_checkpoint();
        std::exception_ptr failure = writer_.close(opts_.path);
        if (checkpoint_failure) {
            if (failure)
                log(opts_, log_level::error, describe_exception(failure));
            failure = checkpoint_failure; // the one that matters more: the disk
        }
        std::vector<request_base*> waiters;
        {
            std::lock_guard lock(close_m_);
            finished_ = true;
            waiters.swap(close_waiters_);
        }
        if (failure)
            log(opts_, log_level::error, describe_exception(failure));
        for (request_base* w : waiters) {
            w->set_error(failure);
            w->complete(true);
            w->release();
        }
    }

    /// Copies the WAL back into the main file before closing. sqlite3_close does this too (when it is the
    /// last connection), but swallows its I/O errors: done here, a failing disk is reported to close()'s
    /// caller. PASSIVE: never waits for another process's reader (then its WAL stays, which is normal).
    std::exception_ptr final_checkpoint() noexcept
    {
        if (opts_.read_only || detail::is_memory(opts_.path))
            return nullptr;
        sqlite3* h = writer_.handle();
        const int rc = sqlite3_wal_checkpoint_v2(h, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
        if (rc == SQLITE_OK || (rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED)
            return nullptr;
        const int ext = sqlite3_extended_errcode(h);
        return std::make_exception_ptr(error(
            errc::close_failed,
            fmt::format(
                "Closing '{}': the final checkpoint failed ({}). Nothing acknowledged is lost: those writes "
                "are in '{}-wal', which the next open replays. Check the disk (free space, I/O errors) "
                "before opening it again, and keep the -wal file with the database.",
                opts_.path,
                sqlite3_errmsg(h),
                opts_.path),
            ext));
    }

    static std::string describe_exception(const std::exception_ptr& e)
    {
        try {
            std::rethrow_exception(e);
        }
        catch (const std::exception& x) {
            return x.what();
        }
        catch (...) {
            return "unknown failure";
        }
    }

    options opts_;
    boot_summary boot_;
    request_queue queue_;        // writes, calls, and reads when there is no reader lane
    request_queue reader_queue_; // reads, when options::readers > 0
    std::thread thread_;         // the writer's
    std::mutex join_m_;

    session writer_;                                // the writer thread's own
    std::vector<std::unique_ptr<session>> readers_; // fixed once the writer booted
    std::vector<std::thread> reader_threads_;
    bool reader_lane_ = false; // set before open returns, constant afterwards: submitters read it

    // Closing.
    std::mutex close_m_;
    close_clock closing_;
    bool finished_ = false;
    std::vector<request_base*> close_waiters_;

    // Statistics.
    std::array<lane_counters, 3> lanes_;
    std::atomic<std::uint64_t> rejected_{0}, timed_out_{0}, cancelled_{0}, closed_unexecuted_{0};
    std::atomic<std::uint64_t> write_batches_{0}, write_batched_{0}, write_batch_max_{0};
    std::atomic<std::uint64_t> read_batches_{0}, read_batched_{0};
    std::atomic<std::uint64_t> cached_statements_{0};
    std::atomic<std::uint64_t> idle_checkpoints_{0};
    bool checkpoints_ = false; // idle checkpoints on (writer thread only)

    // The deadline watcher: a thread started with the first request that has a timeout. It sleeps until the
    // earliest deadline of a queued request, answers the requests past it (timed_out) and takes them out of
    // the line, so that an async caller hears of its timeout at the deadline even while the actor is busy.
    std::mutex watch_m_;
    std::condition_variable watch_cv_;
    std::thread watcher_;
    bool watch_stop_ = false;
    std::atomic<clock::rep> watch_next_{clock::time_point::max().time_since_epoch().count()};
};

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
    return a && current_actor == a;
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
