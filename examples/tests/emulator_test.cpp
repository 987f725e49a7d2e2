// The emulator example as tests: dbactor-emulator runs as a child process, its output and database checked.
#include "support.hpp"

using namespace extest;

TEST_CASE("the emulator's short run reports play time per game as its database records it", "[emulator]")
{
    temp_dir dir;
    const auto db_path = dir.file("emu.db");
    const auto r = run({DBACTOR_EMULATOR_EXE,
                        "--db",
                        db_path,
                        "--players",
                        "3",
                        "--sessions",
                        "4",
                        "--synchronous-normal",
                        "--self-check"});
    INFO(r.output);
    REQUIRE(r.exited_ok());
    CHECK(r.output.find("play time per game (all runs):") != std::string::npos);
    CHECK(r.output.find("self-check: ok") != std::string::npos);
    const auto run_line = numbers(r.output, R"(this run: (\d+) players, (\d+) sessions, (\d+) saves)");
    CHECK(run_line[1] == 12);
    CHECK(run_line[2] == 36);

    auto db = emu::open_database(db_path);
    const auto report = db.read(emu::play_time_report{});
    std::int64_t sessions = 0;
    for (const auto& row : report) {
        sessions += row.sessions;
        // The printed line of each game shows the sessions the database holds.
        CHECK(std::regex_search(
            r.output, std::regex(row.title + R"(\s+)" + std::to_string(row.sessions) + " sessions")));
    }
    CHECK(sessions == 12);
    CHECK(db.read(emu::verify_slots{}).empty());
    // The catalog's sha1 column holds the SHA-1 of each ROM's stand-in image.
    for (const auto& [title, system, size, sha1] : db.read([](dbactor::connection& c) {
             return c.query<std::tuple<std::string, std::string, std::int64_t, std::string>>(
                 "SELECT title, system, size_bytes, sha1 FROM roms");
         })) {
        INFO(title);
        CHECK(sha1 == emu::rom_sha1(title, system, size));
    }
    db.close();
}

TEST_CASE("the ROM catalog's sha1 is a real SHA-1", "[emulator]")
{
    const std::string abc = "abc";
    CHECK(emu::sha1_hex(std::as_bytes(std::span(abc.data(), abc.size()))) ==
          "a9993e364706816aba3e25717850c26c9cd0d89d"); // FIPS 180-2, appendix A
    CHECK(emu::sha1_hex({}) == "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    const std::string image = "Star Courier\nsnes\n1048576\n";
    CHECK(emu::rom_sha1("Star Courier", "snes", 1048576) ==
          emu::sha1_hex(std::as_bytes(std::span(image.data(), image.size()))));
}

TEST_CASE("a save that throws midway is rolled back and the slot keeps its previous version whole",
          "[emulator]")
{
    temp_dir dir;
    auto db = emu::open_database(dir.file("emu.db"), dbactor::synchronous_mode::normal);
    const auto rom = db.write(emu::register_rom{"Test Cart", "nes", std::string(40, 'a'), 1024});
    dbactor::blob v1(10 * emu::chunk_size + 100);
    for (std::size_t i = 0; i < v1.size(); ++i)
        v1[i] = static_cast<std::byte>(i * 7);
    auto first = db.async_write(emu::save_state{rom, "p", 0, v1, 1, {}}, boost::asio::use_future);
    REQUIRE(first.get() == 1);

    struct power_cut : std::runtime_error
    {
        using std::runtime_error::runtime_error;
    };
    dbactor::blob v2(12 * emu::chunk_size, std::byte{0x5a});
    emu::save_state failing{rom, "p", 0, v2, 2, [](std::size_t written, std::size_t) {
                                if (written == 5)
                                    throw power_cut("the save failed after 5 of 12 chunks");
                            }};
    auto second = db.async_write(failing, boost::asio::use_future);
    CHECK_THROWS_AS(second.get(), power_cut);

    const auto loaded = db.read(emu::load_state{rom, "p", 0});
    REQUIRE(loaded.has_value());
    CHECK(loaded->version == 1);
    CHECK(loaded->state == v1);
    CHECK(db.read(emu::verify_slots{}).empty());
    // The actor keeps serving: the next save succeeds as version 2.
    CHECK(db.write(emu::save_state{rom, "p", 0, v2, 3, {}}) == 2);
    CHECK(db.read(emu::load_state{rom, "p", 0})->state == v2);
    db.close();
}

TEST_CASE("a process killed in the middle of a save leaves the previous version of the slot whole",
          "[emulator]")
{
    temp_dir dir;
    const auto db_path = dir.file("emu.db");
    // One session saving slots 0, 1, 2, 0, 1, 2: the 5th save (slot 1's second version) raises SIGKILL from
    // inside the write request, after half its chunks are written. States are 1 MiB (256 chunks) and, in
    // this mode, the page cache 16 pages: the half-written save cannot stay in memory, its pages spill into
    // the -wal before the kill.
    const auto r = run({DBACTOR_EMULATOR_EXE,
                        "--db",
                        db_path,
                        "--sessions",
                        "1",
                        "--saves-per-session",
                        "6",
                        "--state-kib",
                        "1024",
                        "--crash-in-save",
                        "5"});
    INFO(r.output);
    REQUIRE(WIFSIGNALED(r.status));
    REQUIRE(WTERMSIG(r.status) == SIGKILL);
    std::smatch m;
    REQUIRE(std::regex_search(
        r.output, m, std::regex(R"(rom (\d+) player (\S+) slot (\d+) committed version (\d+))")));
    const std::int64_t rom = std::stoll(m[1]);
    const std::string player = m[2];
    const int slot = std::stoi(m[3]);
    const std::int64_t committed = std::stoll(m[4]);
    REQUIRE(slot == 1);
    REQUIRE(committed == 1);
    CHECK(r.output.find("crash-test: SIGKILL after 128 of 256 chunks") != std::string::npos);

    // Before anything opens the file again: the -wal grew past its last commit frame with frames of the
    // half-written save (the current generation's salts, no commit frame after them), which recovery must
    // ignore. The file's size alone would not show it: after a checkpoint SQLite writes the -wal again from
    // its start.
    const auto wal = scan_wal(db_path + "-wal");
    INFO("-wal: " << wal.frames << " frames, " << wal.committed_frames << " up to the last commit, page "
                  << wal.page_size);
    CHECK(wal.frames >= wal.committed_frames + 64); // 128 chunks of 4 KiB: well over 64 pages spilled

    {
        auto db = emu::open_database(db_path); // boot runs quick_check: the file is intact
        CHECK(db.boot_report().integrity == "ok");
        const auto loaded = db.read(emu::load_state{rom, player, slot}); // throws if the chunks do not match
        REQUIRE(loaded.has_value());
        CHECK(loaded->version == committed);
        CHECK(db.read(emu::verify_slots{}).empty());
        db.close();
    }

    // The service starts again on the same file, closes the session the crash left open, and checks out.
    const auto again =
        run({DBACTOR_EMULATOR_EXE, "--db", db_path, "--players", "2", "--sessions", "2", "--self-check"});
    INFO(again.output);
    REQUIRE(again.exited_ok());
    CHECK(again.output.find("recovered: 1 session(s) left open by a crash") != std::string::npos);
    CHECK(again.output.find("self-check: ok") != std::string::npos);
}
