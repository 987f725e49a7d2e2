// The reliability suite's schema, shared by the tests and the writer program.
#pragma once

#include <dbactor/migration.hpp>

namespace rel {

/// Each request writes `rows_per_request` rows (req, part) that must appear together or not at all.
constexpr int rows_per_request = 3;

inline dbactor::migration_set schema()
{
    return dbactor::migration_set::from_files(
        {{"0001_acks.sql",
          "CREATE TABLE acks(req INTEGER NOT NULL, part INTEGER NOT NULL, payload TEXT NOT NULL,\n"
          "                  PRIMARY KEY(req, part));\n"},
         {"0002_index.sql", "CREATE INDEX acks_payload ON acks(payload);\n"}},
        "reliability");
}

} // namespace rel
