// The umbrella header: everything a user of dbactor needs.
#pragma once

#include <dbactor/admin.hpp>
#include <dbactor/change_feed.hpp>
#include <dbactor/connection.hpp>
#include <dbactor/database.hpp>
#include <dbactor/error.hpp>
#include <dbactor/migration.hpp>
#include <dbactor/options.hpp>
#include <dbactor/report.hpp>
#include <dbactor/shard_set.hpp>
