#include "support.hpp"
TEST_CASE("smoke") { test::temp_dir d; auto db = dbactor::database::open(test::options_for(d)); REQUIRE(db.write([](dbactor::connection& c){ c.exec("CREATE TABLE t(x)"); return c.execute("INSERT INTO t VALUES (?)", 1); }) == 1); }
