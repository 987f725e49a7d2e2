#!/usr/bin/env bash
# The main job: installs what is missing, builds (Release), migrates and checks the default database
# var/bot.db with dbtool, runs the example bot on it for about 10 seconds, then shows `dbtool status`.
# Running it again finds the database already migrated.
# Usage: ./run.sh [dbactor-bot options, e.g. --duration 30 or --events-per-sec 5000]
# Your options come after run.sh's own --duration 10 and the bot takes the last value of an option given
# twice, so yours win; a --db of yours is used for dbtool too. See docs/EXAMPLES.md for what it prints.
set -euo pipefail
cd "$(dirname "$0")"
source scripts/ensure-deps.sh
dbactor_ensure_deps

launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S . -B build-release -G Ninja "${launcher[@]}" -DCMAKE_BUILD_TYPE=Release \
    -DDBACTOR_BUILD_TESTS=OFF -DDBACTOR_BUILD_BENCH=OFF >/dev/null
cmake --build build-release -j "$(nproc)"

db=var/bot.db
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
    case "${args[i]}" in
    --db) db="${args[i + 1]:-$db}" ;;
    --db=*) db="${args[i]#--db=}" ;;
    esac
done
mkdir -p "$(dirname "$db")"
dbtool=build-release/cli/dbtool
bot=build-release/examples/dbactor-bot

echo
echo "== dbtool migrate ($db)"
"$dbtool" --db "$db" --migrations migrations/bot migrate
echo
echo "== dbtool check"
"$dbtool" --db "$db" --migrations migrations/bot check
echo
echo "== the example bot: dbactor-bot --db $db --duration 10 $*"
"$bot" --db "$db" --duration 10 "$@"
echo
echo "== dbtool status"
"$dbtool" --db "$db" --migrations migrations/bot status
