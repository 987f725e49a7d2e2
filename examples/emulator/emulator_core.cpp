// The emulator example's core: plain threads (one per player, no event loop) recording through
// dbactor with std::future replies (asio::use_future).
#include "emulator_core.hpp"

#include <emulator_migrations.hpp>

#include <boost/asio/use_future.hpp>

#include <openssl/evp.h>

#include <fmt/format.h>
#include <fmt/ostream.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <future>
#include <map>
#include <mutex>
#include <ostream>
#include <random>
#include <stdexcept>
#include <thread>
#include <tuple>

namespace emu {

namespace asio = boost::asio;

std::int64_t checksum(std::span<const std::byte> data) noexcept
{
    std::uint64_t h = 1469598103934665603ull;
    for (auto b : data) {
        h ^= static_cast<std::uint64_t>(b);
        h *= 1099511628211ull;
    }
    return static_cast<std::int64_t>(h);
}

std::string sha1_hex(std::span<const std::byte> data)
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_Digest(data.data(), data.size(), digest, &len, EVP_sha1(), nullptr) != 1)
        throw std::runtime_error("EVP_Digest(SHA-1) failed");
    std::string hex;
    hex.reserve(2 * len);
    for (unsigned int i = 0; i < len; ++i)
        hex += fmt::format("{:02x}", digest[i]);
    return hex;
}

std::string rom_sha1(std::string_view title, std::string_view system, std::int64_t size_bytes)
{
    const std::string image = fmt::format("{}\n{}\n{}\n", title, system, size_bytes);
    return sha1_hex(std::as_bytes(std::span(image.data(), image.size())));
}

std::int64_t register_rom::operator()(dbactor::connection& c) const
{
    c.execute("INSERT INTO roms (title, system, sha1, size_bytes) VALUES (?, ?, ?, ?) ON CONFLICT (sha1) DO "
              "NOTHING",
              title,
              system,
              sha1,
              size_bytes);
    return *c.query_one<std::int64_t>("SELECT id FROM roms WHERE sha1 = ?", sha1);
}

std::int64_t start_session::operator()(dbactor::connection& c) const
{
    c.execute(
        "INSERT INTO sessions (rom_id, player, started_at) VALUES (?, ?, ?)", rom_id, player, started_at);
    return c.last_insert_rowid();
}

void stop_session::operator()(dbactor::connection& c) const
{
    if (c.execute("UPDATE sessions SET stopped_at = ?, played_ms = ? WHERE id = ? AND stopped_at IS NULL",
                  stopped_at,
                  played_ms,
                  session_id) != 1)
        throw std::runtime_error(fmt::format("session {} is not open", session_id));
}

std::int64_t save_state::operator()(dbactor::connection& c) const
{
    const std::size_t total = (state.size() + chunk_size - 1) / chunk_size;
    const auto version =
        c.query_one<std::int64_t>("SELECT version FROM save_slots WHERE rom_id = ? AND player = ? "
                                  "AND slot = ?",
                                  rom_id,
                                  player,
                                  slot)
            .value_or(0) +
        1;
    // The header first, then the chunks: were this not one transaction, a crash in between would leave a
    // header describing chunks that are not there.
    c.execute(
        "INSERT INTO save_slots (rom_id, player, slot, version, chunks, size_bytes, checksum, saved_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (rom_id, player, slot) DO UPDATE SET version = excluded.version, chunks = "
        "excluded.chunks, "
        "size_bytes = excluded.size_bytes, checksum = excluded.checksum, saved_at = excluded.saved_at",
        rom_id,
        player,
        slot,
        version,
        static_cast<std::int64_t>(total),
        static_cast<std::int64_t>(state.size()),
        checksum(state),
        saved_at);
    c.execute("DELETE FROM save_chunks WHERE rom_id = ? AND player = ? AND slot = ?", rom_id, player, slot);
    const std::span<const std::byte> all(state);
    for (std::size_t i = 0; i < total; ++i) {
        const auto part = all.subspan(i * chunk_size, std::min(chunk_size, state.size() - i * chunk_size));
        c.execute(
            "INSERT INTO save_chunks (rom_id, player, slot, version, chunk, data) VALUES (?, ?, ?, ?, ?, ?)",
            rom_id,
            player,
            slot,
            version,
            static_cast<std::int64_t>(i),
            part);
        if (after_chunk)
            after_chunk(i + 1, total);
    }
    return version;
}

std::optional<loaded_state> load_state::operator()(dbactor::connection& c) const
{
    auto header = c.query_one<std::tuple<std::int64_t, std::int64_t, std::int64_t, std::int64_t>>(
        "SELECT version, chunks, size_bytes, checksum FROM save_slots WHERE rom_id = ? AND player = ? AND "
        "slot = ?",
        rom_id,
        player,
        slot);
    if (!header)
        return std::nullopt;
    const auto [version, chunks, size, sum] = *header;
    loaded_state out{version, {}};
    std::int64_t n = 0;
    c.for_each<std::tuple<std::int64_t, dbactor::blob>>(
        "SELECT version, data FROM save_chunks WHERE rom_id = ? AND player = ? AND slot = ? ORDER BY chunk",
        [&](std::tuple<std::int64_t, dbactor::blob> row) {
            if (std::get<0>(row) != version)
                throw std::runtime_error("a chunk of another version");
            out.state.insert(out.state.end(), std::get<1>(row).begin(), std::get<1>(row).end());
            ++n;
        },
        rom_id,
        player,
        slot);
    if (n != chunks || static_cast<std::int64_t>(out.state.size()) != size || checksum(out.state) != sum)
        throw std::runtime_error(
            fmt::format("save slot {} of player {} for ROM {} is damaged", slot, player, rom_id));
    return out;
}

bool unlock_achievement::operator()(dbactor::connection& c) const
{
    return c.execute("INSERT INTO achievements (rom_id, player, name, unlocked_at) VALUES (?, ?, ?, ?) "
                     "ON CONFLICT DO NOTHING",
                     rom_id,
                     player,
                     name,
                     unlocked_at) == 1;
}

std::vector<std::string> verify_slots::operator()(dbactor::connection& c) const
{
    std::vector<std::string> problems;
    using header = std::tuple<std::int64_t,
                              std::string,
                              std::int64_t,
                              std::int64_t,
                              std::int64_t,
                              std::int64_t,
                              std::int64_t>;
    for (const auto& [rom, player, slot, version, chunks, size, sum] : c.query<header>(
             "SELECT rom_id, player, slot, version, chunks, size_bytes, checksum FROM save_slots")) {
        std::int64_t n = 0, other_versions = 0;
        dbactor::blob data;
        c.for_each<std::tuple<std::int64_t, dbactor::blob>>(
            "SELECT version, data FROM save_chunks WHERE rom_id = ? AND player = ? AND slot = ? ORDER BY "
            "chunk",
            [&](std::tuple<std::int64_t, dbactor::blob> row) {
                ++n;
                if (std::get<0>(row) != version)
                    ++other_versions;
                data.insert(data.end(), std::get<1>(row).begin(), std::get<1>(row).end());
            },
            rom,
            player,
            slot);
        const auto where =
            fmt::format("slot {} of player {} for ROM {} (version {})", slot, player, rom, version);
        if (n != chunks)
            problems.push_back(fmt::format("{} has {} chunks, its header says {}", where, n, chunks));
        if (other_versions)
            problems.push_back(fmt::format("{} has {} chunks of another version", where, other_versions));
        if (static_cast<std::int64_t>(data.size()) != size)
            problems.push_back(
                fmt::format("{} holds {} bytes, its header says {}", where, data.size(), size));
        else if (checksum(data) != sum)
            problems.push_back(fmt::format("{} does not match its checksum", where));
    }
    const auto orphans = c.query_one<std::int64_t>(
        "SELECT count(*) FROM save_chunks AS k WHERE NOT EXISTS (SELECT 1 FROM save_slots AS s WHERE "
        "s.rom_id = k.rom_id AND s.player = k.player AND s.slot = k.slot)");
    if (orphans.value_or(0) != 0)
        problems.push_back(fmt::format("{} chunks belong to no slot", *orphans));
    return problems;
}

std::vector<play_time_row> play_time_report::operator()(dbactor::connection& c) const
{
    std::vector<play_time_row> rows;
    for (auto& [id, title, sessions, played] :
         c.query<std::tuple<std::int64_t, std::string, std::int64_t, std::int64_t>>(
             "SELECT r.id, r.title, count(s.id), coalesce(sum(s.played_ms), 0) FROM roms AS r "
             "LEFT JOIN sessions AS s ON s.rom_id = r.id AND s.stopped_at IS NOT NULL "
             "GROUP BY r.id ORDER BY 4 DESC, r.title"))
        rows.push_back({id, std::move(title), sessions, played});
    return rows;
}

dbactor::database open_database(const std::string& path, dbactor::synchronous_mode sync, int cache_pages)
{
    dbactor::options o;
    o.path = path;
    o.synchronous = sync;
    o.migrations = emulator_migrations();
    if (cache_pages > 0)
        o.pragmas.emplace_back("cache_size", std::to_string(cache_pages));
    o.on_log = [](dbactor::log_level level, std::string_view msg) {
        if (level >= dbactor::log_level::warning)
            fmt::print(stderr, "[dbactor] {}\n", msg);
    };
    return dbactor::database::open(std::move(o));
}

namespace {

std::int64_t unix_ms()
{
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

struct rom_info
{
    const char* title;
    const char* system;
    std::int64_t size;
};

constexpr rom_info catalog[] = {
    {"Star Courier", "snes", 1048576},
    {"Pixel Knights", "nes", 262144},
    {"Orbital Drift", "genesis", 2097152},
    {"Cave Story Deluxe", "gba", 8388608},
    {"Lunar Tactics", "psx", 524288000},
};

/// What one player's thread did, merged after the threads are joined.
struct player_result
{
    std::map<std::int64_t, std::int64_t> played_ms; // per ROM id
    std::int64_t sessions = 0;
    std::int64_t saves = 0;
    std::int64_t achievements = 0;
    std::int64_t loads = 0;
};

struct db_totals
{
    std::map<std::int64_t, std::int64_t> played_ms;
    std::int64_t sessions = 0, open_sessions = 0, versions = 0, achievements = 0;
};

db_totals read_db_totals(dbactor::database& db)
{
    return db.read([](dbactor::connection& c) {
        db_totals t;
        for (auto& [rom, ms] : c.query<std::tuple<std::int64_t, std::int64_t>>(
                 "SELECT rom_id, sum(played_ms) FROM sessions GROUP BY rom_id"))
            t.played_ms[rom] = ms;
        t.sessions = c.query_one<std::int64_t>("SELECT count(*) FROM sessions").value_or(0);
        t.open_sessions =
            c.query_one<std::int64_t>("SELECT count(*) FROM sessions WHERE stopped_at IS NULL").value_or(0);
        t.versions =
            c.query_one<std::int64_t>("SELECT coalesce(sum(version), 0) FROM save_slots").value_or(0);
        t.achievements = c.query_one<std::int64_t>("SELECT count(*) FROM achievements").value_or(0);
        return t;
    });
}

/// Emulates `frames` frames: a cheap deterministic scramble of the machine state.
void emulate(dbactor::blob& state, std::mt19937_64& rng, int frames)
{
    for (int f = 0; f < frames; f += 60) {
        const std::size_t at = rng() % state.size();
        const std::size_t len = std::min<std::size_t>(256, state.size() - at);
        for (std::size_t i = 0; i < len; ++i)
            state[at + i] = static_cast<std::byte>(rng());
    }
}

std::string hms(std::int64_t ms)
{
    const auto s = ms / 1000;
    return fmt::format("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60);
}

/// The crash test (--crash-in-save): waits for the session's saves, then saves `req` with a hook that
/// raises SIGKILL on the database thread halfway through its chunks. Does not return.
[[noreturn]] void save_and_crash(dbactor::database& db,
                                 save_state req,
                                 std::vector<std::future<std::int64_t>>& saves,
                                 std::int64_t rom,
                                 const std::string& player,
                                 int slot,
                                 std::ostream& out,
                                 std::mutex& out_mutex)
{
    for (auto& f : saves)
        f.get();
    saves.clear();
    const auto committed =
        db.read([&](dbactor::connection& c) {
              return c.query_one<std::int64_t>(
                  "SELECT version FROM save_slots WHERE rom_id = ? AND player = ? AND slot = ?",
                  rom,
                  player,
                  slot);
          }).value_or(0);
    {
        std::lock_guard lock(out_mutex);
        fmt::print(out,
                   "crash-test: killing the process in the middle of a save: rom {} player {} slot {} "
                   "committed version {}\n",
                   rom,
                   player,
                   slot,
                   committed);
        out.flush();
    }
    // Runs on the database thread, inside the save's transaction. The page cache is tiny in this
    // mode (see run()), so the chunks written so far have spilled into the -wal as frames of a
    // transaction that never commits: recovery must ignore them.
    req.after_chunk = [&](std::size_t written, std::size_t total) {
        if (written * 2 < total)
            return;
        {
            std::lock_guard lock(out_mutex);
            fmt::print(out, "crash-test: SIGKILL after {} of {} chunks\n", written, total);
            out.flush();
        }
        std::raise(SIGKILL);
    };
    db.write(req);
    throw std::logic_error("the crash test's save returned instead of killing the process");
}

player_result play(const config& cfg,
                   dbactor::database db,
                   const std::vector<std::int64_t>& roms,
                   unsigned index,
                   std::atomic<unsigned>& saves_so_far,
                   std::ostream& out,
                   std::mutex& out_mutex)
{
    player_result r;
    const std::string player = fmt::format("player{}", index + 1);
    std::mt19937_64 rng(cfg.seed * 1000003 + index);
    static const dbactor::request_options save_ro{.name = "save_state"};
    static const dbactor::request_options achievement_ro{.name = "unlock_achievement"};
    std::int64_t total_frames = 0;

    for (unsigned s = 0; s < cfg.sessions; ++s) {
        const std::int64_t rom = roms[rng() % roms.size()];
        const std::int64_t session =
            db.async_write(start_session{rom, player, unix_ms()}, asio::use_future).get();
        ++r.sessions;

        // Resume from slot 0 when there is a save.
        auto loaded = db.async_read(load_state{rom, player, 0}, asio::use_future).get();
        dbactor::blob state;
        if (loaded) {
            state = std::move(loaded->state);
            ++r.loads;
        }
        else {
            const std::size_t random_size = 24 * 1024 + rng() % (40 * 1024); // drawn either way: same games
            state.resize(cfg.state_kib ? cfg.state_kib * std::size_t{1024} : random_size);
            for (auto& b : state)
                b = static_cast<std::byte>(rng());
        }

        // The emulator does not wait for its saves: it keeps their futures and collects them at the end of
        // the session.
        std::vector<std::future<std::int64_t>> saves;
        std::vector<std::future<bool>> unlocks;
        std::int64_t frames = 0;
        for (unsigned k = 0; k < cfg.saves_per_session; ++k) {
            const int n = 600 + static_cast<int>(rng() % 1800);
            emulate(state, rng, n);
            frames += n;
            total_frames += n;
            const int slot = static_cast<int>(k % 3);
            save_state req{rom, player, slot, state, unix_ms(), {}};
            if (cfg.crash_in_save != 0 && saves_so_far.fetch_add(1) + 1 == cfg.crash_in_save)
                save_and_crash(db, std::move(req), saves, rom, player, slot, out, out_mutex);
            saves.push_back(db.async_write(std::move(req), save_ro, asio::use_future));
            if (total_frames >= 3600)
                unlocks.push_back(db.async_write(unlock_achievement{rom, player, "one-minute", unix_ms()},
                                                 achievement_ro,
                                                 asio::use_future));
            if (k == 0)
                unlocks.push_back(db.async_write(unlock_achievement{rom, player, "first-save", unix_ms()},
                                                 achievement_ro,
                                                 asio::use_future));
        }
        for (auto& f : saves) {
            f.get();
            ++r.saves;
        }
        for (auto& f : unlocks)
            r.achievements += f.get() ? 1 : 0;

        const std::int64_t played_ms = frames * 1000 / 60; // 60 frames per emulated second
        db.async_write(stop_session{session, unix_ms(), played_ms}, asio::use_future).get();
        r.played_ms[rom] += played_ms;
    }
    return r;
}

/// Compares the database after the run with what the players reported: every slot whole, play time,
/// sessions, versions and achievements. Prints `self-check: ok` or one FAILED line per difference.
bool self_check(dbactor::database& db, const db_totals& before, const player_result& total, std::ostream& out)
{
    std::vector<std::string> problems = db.read(verify_slots{});
    const db_totals after = read_db_totals(db);
    for (const auto& [rom, ms] : total.played_ms) {
        const auto was = before.played_ms.count(rom) ? before.played_ms.at(rom) : 0;
        const auto now = after.played_ms.count(rom) ? after.played_ms.at(rom) : 0;
        if (now - was != ms)
            problems.push_back(
                fmt::format("ROM {}: play time grew by {} ms, the players played {} ms", rom, now - was, ms));
    }
    if (after.sessions - before.sessions != total.sessions)
        problems.push_back(
            fmt::format("{} sessions recorded, {} played", after.sessions - before.sessions, total.sessions));
    if (after.open_sessions != 0)
        problems.push_back(fmt::format("{} sessions were never stopped", after.open_sessions));
    if (after.versions - before.versions != total.saves)
        problems.push_back(fmt::format("slot versions grew by {}, {} saves were acknowledged",
                                       after.versions - before.versions,
                                       total.saves));
    if (after.achievements - before.achievements != total.achievements)
        problems.push_back(fmt::format("{} achievements recorded, {} unlocked",
                                       after.achievements - before.achievements,
                                       total.achievements));
    for (const auto& p : problems)
        fmt::print(out, "self-check: FAILED: {}\n", p);
    if (problems.empty())
        fmt::print(out, "self-check: ok (every slot whole, play time and versions match)\n");
    return problems.empty();
}

/// Prints this run's figures, the play time per game of all runs and the database's statistics.
void print_report(
    std::ostream& out, dbactor::database& db, unsigned players, player_result& total, double secs)
{
    const auto report = db.read(play_time_report{});
    fmt::print(out,
               "this run: {} players, {} sessions, {} saves, {} resumed from a save, {} new achievements in "
               "{:.2f} s\n",
               players,
               total.sessions,
               total.saves,
               total.loads,
               total.achievements,
               secs);
    fmt::print(out, "play time per game (all runs):\n");
    for (const auto& row : report)
        fmt::print(out,
                   "  {:<20} {:>4} sessions  {:>10}  (this run {})\n",
                   row.title,
                   row.sessions,
                   hms(row.played_ms),
                   hms(total.played_ms.count(row.rom_id) ? total.played_ms[row.rom_id] : 0));
    const auto st = db.stats();
    fmt::print(out,
               "database: {} writes, execution p50 {:.3f} ms p99 {:.3f} ms; {} reads\n",
               st.write.completed,
               static_cast<double>(st.write.execution.p50_ns) / 1e6,
               static_cast<double>(st.write.execution.p99_ns) / 1e6,
               st.read.completed);
}

} // namespace

int run(const config& cfg, std::ostream& out)
{
    dbactor::database db;
    try {
        const auto parent = std::filesystem::path(cfg.db_path).parent_path();
        if (!parent.empty())
            std::filesystem::create_directories(parent);
        // The crash test wants the half-written save to reach the -wal before the kill. With SQLite's default
        // cache (2 MB) a save stays in memory until COMMIT; with 16 pages, its pages spill into the -wal as
        // it is written, like a large save under memory pressure.
        db = open_database(cfg.db_path, cfg.synchronous, cfg.crash_in_save ? 16 : 0);
    }
    catch (const std::exception& e) {
        fmt::print(stderr, "[error] cannot start: {}\n", e.what());
        return 1;
    }
    fmt::print(out,
               "dbactor-emulator: database {} (schema version {})\n",
               cfg.db_path,
               db.boot_report().schema_version);

    std::vector<std::int64_t> roms;
    for (const auto& r : catalog)
        roms.push_back(
            db.write(register_rom{r.title, r.system, rom_sha1(r.title, r.system, r.size), r.size}));
    // A session left open by a crash never gets its play time: close it with none, so the totals stay true.
    const auto recovered = db.write([](dbactor::connection& c) {
        return c.execute(
            "UPDATE sessions SET stopped_at = started_at, played_ms = 0 WHERE stopped_at IS NULL");
    });
    if (recovered)
        fmt::print(
            out, "recovered: {} session(s) left open by a crash closed with no play time\n", recovered);
    const db_totals before = read_db_totals(db);

    const unsigned players = cfg.crash_in_save ? 1 : std::max(1u, cfg.players);
    std::vector<std::future<player_result>> results;
    std::vector<std::thread> threads;
    std::atomic<unsigned> saves_so_far{0};
    std::mutex out_mutex;
    const auto t0 = std::chrono::steady_clock::now();
    for (unsigned i = 0; i < players; ++i) {
        std::packaged_task<player_result()> task(
            [&, i] { return play(cfg, db, roms, i, saves_so_far, out, out_mutex); });
        results.push_back(task.get_future());
        threads.emplace_back(std::move(task));
    }
    for (auto& t : threads)
        t.join();
    player_result total;
    bool failed = false;
    for (auto& f : results) {
        try {
            auto r = f.get();
            for (auto& [rom, ms] : r.played_ms)
                total.played_ms[rom] += ms;
            total.sessions += r.sessions;
            total.saves += r.saves;
            total.achievements += r.achievements;
            total.loads += r.loads;
        }
        catch (const std::exception& e) {
            fmt::print(stderr, "[error] a player failed: {}\n", e.what());
            failed = true;
        }
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

    print_report(out, db, players, total, secs);

    if (cfg.self_check && !failed)
        failed = !self_check(db, before, total, out);
    try {
        db.close();
    }
    catch (const std::exception& e) {
        fmt::print(stderr, "[error] closing the database failed: {}\n", e.what());
        failed = true;
    }
    out.flush();
    return failed ? 1 : 0;
}

} // namespace emu
