// A helper process for the multi-process tests. Each mode talks over stdin/stdout in lines:
//   hold-lock DB   BEGIN IMMEDIATE + a write on DB, prints "ready", holds it until stdin closes.
//   boot DB        waits for "go" on stdin, opens DB with the fixture migrations, prints "applied=N".
//   writer DB      writes one row per request until stdin closes; prints "ready" after the first write,
//                  then "writes=N errors=E" at the end.
//   embedded DIR   exit 0 when the compiled-in fixture migrations equal from_directory(DIR).
#include <dbactor/dbactor.hpp>

#include <fixture_migrations.hpp>

#include <sqlite3.h>

#include <atomic>
#include <cstdio>
#include <iostream>
#include <string>
#include <thread>

namespace {

int hold_lock(const std::string& path)
{
    sqlite3* db = nullptr;
    if (sqlite3_open(path.c_str(), &db) != SQLITE_OK)
        return 1;
    char* msg = nullptr;
    if (sqlite3_exec(
            db,
            "CREATE TABLE IF NOT EXISTS lock_holder(x); BEGIN IMMEDIATE; INSERT INTO lock_holder VALUES (1);",
            nullptr,
            nullptr,
            &msg) != SQLITE_OK) {
        std::cerr << "hold-lock: " << (msg ? msg : "?") << '\n';
        return 1;
    }
    std::cout << "ready" << std::endl;
    std::string line;
    while (std::getline(std::cin, line)) {
    }
    sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
    sqlite3_close(db);
    return 0;
}

dbactor::options options_for(const std::string& path)
{
    dbactor::options o;
    o.path = path;
    o.synchronous = dbactor::synchronous_mode::normal;
    o.migrations = fixture_migrations();
    o.busy_timeout = std::chrono::milliseconds(20000);
    o.on_log = [](dbactor::log_level, std::string_view) {};
    return o;
}

int boot(const std::string& path)
{
    std::string line;
    if (!std::getline(std::cin, line) || line != "go")
        return 2;
    try {
        auto db = dbactor::database::open(options_for(path));
        int applied = 0;
        for (const auto& m : db.boot_report().migrations)
            applied += m.applied_now ? 1 : 0;
        std::cout << "applied=" << applied << std::endl;
        return 0;
    }
    catch (const std::exception& e) {
        std::cerr << "boot: " << e.what() << '\n';
        return 1;
    }
}

int writer(const std::string& path)
{
    auto db = dbactor::database::open(options_for(path));
    std::atomic<bool> stop{false};
    std::thread watcher([&] {
        std::string line;
        while (std::getline(std::cin, line)) {
        }
        stop = true;
    });
    long writes = 0, errors = 0;
    std::string first_error;
    while (!stop) {
        try {
            db.write([writes](dbactor::connection& c) {
                c.execute("INSERT INTO members (name) VALUES (?)", "member " + std::to_string(writes));
                c.execute("INSERT INTO warnings (member_id, reason) VALUES (last_insert_rowid(), 'spam')");
            });
            if (++writes == 1)
                std::cout << "ready" << std::endl;
        }
        catch (const std::exception& e) {
            if (errors++ == 0)
                first_error = e.what();
        }
    }
    watcher.join();
    std::cout << "writes=" << writes << " errors=" << errors << std::endl;
    if (errors)
        std::cerr << "writer: " << first_error << '\n';
    return 0;
}

int embedded(const std::string& dir)
{
    const auto a = fixture_migrations();
    const auto b = dbactor::migration_set::from_directory(dir);
    if (a.items().size() != b.items().size())
        return 1;
    for (std::size_t i = 0; i < a.items().size(); ++i) {
        const auto &x = a.items()[i], &y = b.items()[i];
        if (x.version != y.version || x.name != y.name || x.up_sql != y.up_sql || x.down_sql != y.down_sql ||
            dbactor::migration_checksum(x.up_sql) != dbactor::migration_checksum(y.up_sql))
            return 1;
        if (!x.source.starts_with("embedded:"))
            return 1;
    }
    std::cout << "equal " << a.items().size() << std::endl;
    return 0;
}

} // namespace

int main(int argc, char** argv)
{
    if (argc != 3)
        return 2;
    const std::string mode = argv[1], arg = argv[2];
    if (mode == "hold-lock")
        return hold_lock(arg);
    if (mode == "boot")
        return boot(arg);
    if (mode == "writer")
        return writer(arg);
    if (mode == "embedded")
        return embedded(arg);
    return 2;
}
