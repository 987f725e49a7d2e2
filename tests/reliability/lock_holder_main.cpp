// reliability_lock_holder: takes a lock on a database and holds it until told to let go.
// Usage: reliability_lock_holder DB write|exclusive [BUSY_TIMEOUT_MS]
//   write:     BEGIN IMMEDIATE (the write lock; readers continue)
//   exclusive: BEGIN EXCLUSIVE on a rollback-journal connection (locking_mode=EXCLUSIVE), so nobody can read
// Prints "L" once the lock is held, releases it when a line arrives on stdin or stdin closes, prints "U",
// and exits 0. Exit 3 when the lock could not be taken within BUSY_TIMEOUT_MS (default 5000).
#include <sqlite3.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <unistd.h>

int main(int argc, char** argv)
{
    if (argc < 3)
        return 2;
    sqlite3* db = nullptr;
    if (sqlite3_open_v2(argv[1], &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) != SQLITE_OK)
        return 3;
    sqlite3_busy_timeout(db, argc > 3 ? std::atoi(argv[3]) : 5000);
    const bool exclusive = std::strcmp(argv[2], "exclusive") == 0;
    if (exclusive)
        sqlite3_exec(db, "PRAGMA locking_mode=EXCLUSIVE", nullptr, nullptr, nullptr);
    if (sqlite3_exec(db, exclusive ? "BEGIN EXCLUSIVE" : "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) !=
        SQLITE_OK) {
        std::fprintf(stderr, "lock: %s\n", sqlite3_errmsg(db));
        return 3;
    }
    // Touch the database so that the lock is real (a write transaction that has written).
    sqlite3_exec(db, "CREATE TABLE IF NOT EXISTS lock_holder_touch(x)", nullptr, nullptr, nullptr);
    if (::write(1, "L\n", 2) != 2)
        return 4;
    char c;
    while (::read(0, &c, 1) == 1 && c != '\n') {
    }
    sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
    sqlite3_close(db);
    if (::write(1, "U\n", 2) != 2)
        return 4;
    return 0;
}
