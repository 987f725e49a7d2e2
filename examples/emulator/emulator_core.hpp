// The emulator example's core: its typed requests (ROM catalog, play sessions, save-state slots,
// achievements), the slot verifier, and run().
#pragma once

#include <dbactor/dbactor.hpp>

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace emu {

/// How one run of the emulator service is set up (dbactor-emulator's command line maps onto this).
struct config
{
    std::string db_path = "var/emulator.db";
    unsigned players = 3;  ///< one thread each
    unsigned sessions = 4; ///< play sessions per player
    unsigned saves_per_session = 3;
    std::uint64_t seed = 7;
    /// After closing, reopen the database and check it against what the players recorded.
    bool self_check = false;
    /// Testing: the N-th save (1-based, with one player) kills the process in the middle of writing its
    /// chunks (SIGKILL from inside the request, on the database thread). 0 = never.
    unsigned crash_in_save = 0;
    /// Size of a new machine state in KiB; 0 = 24 to 64 KiB at random.
    unsigned state_kib = 0;
    dbactor::synchronous_mode synchronous = dbactor::synchronous_mode::full;
};

/// Runs the players, prints the play-time report to `out`; returns the exit code (1 on a failed self-check
/// or an unusable database).
int run(const config& cfg, std::ostream& out);

/// Opens (creating and migrating) the emulator's database with its compiled-in schema. `cache_pages` > 0
/// sets `PRAGMA cache_size` (the crash test's tiny cache); 0 keeps SQLite's default.
dbactor::database open_database(const std::string& path,
                                dbactor::synchronous_mode sync = dbactor::synchronous_mode::full,
                                int cache_pages = 0);

/// SHA-1 (OpenSSL EVP) of `data`, as 40 lowercase hex digits.
std::string sha1_hex(std::span<const std::byte> data);

/// The catalog's `sha1` of a simulated ROM. There is no ROM image in this simulation, so it is the real
/// SHA-1 of a stand-in image: the text "<title>\n<system>\n<size_bytes>\n".
std::string rom_sha1(std::string_view title, std::string_view system, std::int64_t size_bytes);

/// FNV-1a 64 of a save state, stored as the slot's checksum.
std::int64_t checksum(std::span<const std::byte> data) noexcept;

/// Save states are stored in chunks of this many bytes.
inline constexpr std::size_t chunk_size = 4096;

/// Adds a ROM to the catalog (or finds it by its SHA-1, see rom_sha1); returns its id.
struct register_rom
{
    std::string title;
    std::string system;
    std::string sha1;
    std::int64_t size_bytes;
    std::int64_t operator()(dbactor::connection& c) const;
};

struct start_session
{
    std::int64_t rom_id;
    std::string player;
    std::int64_t started_at;
    std::int64_t operator()(dbactor::connection& c) const; ///< the session id
};

struct stop_session
{
    std::int64_t session_id;
    std::int64_t stopped_at;
    std::int64_t played_ms;
    void operator()(dbactor::connection& c) const;
};

/// Writes a save state into a slot: bumps the slot's version, replaces all its chunks. It is one write
/// request, hence one transaction: a failure (or a crash) at any point leaves the previous version whole.
/// Returns the new version.
struct save_state
{
    std::int64_t rom_id;
    std::string player;
    int slot;
    dbactor::blob state;
    std::int64_t saved_at;
    /// Testing hook, called after each chunk is written with the number written so far and the total.
    std::function<void(std::size_t written, std::size_t total)> after_chunk;
    std::int64_t operator()(dbactor::connection& c) const;
};

struct loaded_state
{
    std::int64_t version = 0;
    dbactor::blob state;
};

/// Reads a slot back, reassembling its chunks; throws when they do not match the slot's header.
struct load_state
{
    std::int64_t rom_id;
    std::string player;
    int slot;
    std::optional<loaded_state> operator()(dbactor::connection& c) const;
};

/// Returns true when the achievement is new for this player and game.
struct unlock_achievement
{
    std::int64_t rom_id;
    std::string player;
    std::string name;
    std::int64_t unlocked_at;
    bool operator()(dbactor::connection& c) const;
};

/// Checks every slot: chunk count, versions, size and checksum match its header, and no chunk is orphaned.
/// Returns one sentence per problem (empty when all slots are whole).
struct verify_slots
{
    std::vector<std::string> operator()(dbactor::connection& c) const;
};

struct play_time_row
{
    std::int64_t rom_id;
    std::string title;
    std::int64_t sessions;
    std::int64_t played_ms;
};

/// Play time per game over all stopped sessions, longest first.
struct play_time_report
{
    std::vector<play_time_row> operator()(dbactor::connection& c) const;
};

} // namespace emu
