#!/usr/bin/env bash
# The main job: installs what is missing, builds (Release), migrates and checks the default database
# var/bot.db with dbtool, runs the example bot on it for about 10 seconds, then shows `dbtool status`.
# Running it again finds the database already migrated. Usage: ./run.sh [bot options, e.g. --duration 30]
set -euo pipefail
cd "$(dirname "$0")"
source scripts/ensure-deps.sh
dbactor_ensure_deps

launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S . -B build-release -G Ninja "${launcher[@]}" -DCMAKE_BUILD_TYPE=Release \
    -DDBACTOR_BUILD_TESTS=OFF -DDBACTOR_BUILD_BENCH=OFF >/dev/null
cmake --build build-release -j "$(nproc)"

mkdir -p var
db=var/bot.db
dbtool=build-release/cli/dbtool
bot=build-release/examples/dbactor-bot

echo
echo "== dbtool migrate ($db)"
"$dbtool" --db "$db" --migrations migrations/bot migrate
echo
echo "== dbtool check"
"$dbtool" --db "$db" --migrations migrations/bot check
echo
echo "== the example bot, 10 seconds"
"$bot" --db "$db" --duration 10 "$@"
echo
echo "== dbtool status"
"$dbtool" --db "$db" --migrations migrations/bot status
