// Uses an installed dbactor: the package config provides includes, dependencies and the embed function.
#include <dbactor/dbactor.hpp>
#include <embedded_migrations.hpp>

#include <boost/asio/use_future.hpp>

#include <cstdint>
#include <cstdio>
#include <string>

int main()
{
    dbactor::options opts;
    opts.path = ":memory:";
    opts.migrations = embedded_migrations();
    auto db = dbactor::database::open(std::move(opts));
    auto add = [](dbactor::connection& c) {
        return c.execute("INSERT INTO notes(body) VALUES (?)", "hello");
    };
    auto changed = db.async_write(add, boost::asio::use_future).get();
    auto body =
        db.read([](dbactor::connection& c) { return c.query_one<std::string>("SELECT body FROM notes"); });
    // A row as a struct: the installed value codec reads it through Boost.PFR from the consumer's Boost.
    struct note
    {
        std::int64_t id;
        std::string body;
    };
    auto row =
        db.read([](dbactor::connection& c) { return c.query_one<note>("SELECT rowid, body FROM notes"); });
    db.close();
    if (changed != 1 || body != "hello" || !row || row->body != "hello") {
        std::puts("consumer: FAILED");
        return 1;
    }
    std::puts("consumer: ok");
    return 0;
}
