#!/usr/bin/env bash
# Builds the libFuzzer targets with clang-14 (ASan + UBSan + libFuzzer) and runs each for N seconds.
# Usage: tests/fuzz/run.sh [SECONDS]      (default 60; env FUZZ_SECONDS also works)
#   FUZZ_PARALLEL=2   targets fuzzed at once (default 1; ./test.sh uses 2, one per core)
#   FUZZ_TARGETS="migration_run ..."   a subset (default: all three)
# Build dir: build-fuzz (env FUZZ_BUILD_DIR). New inputs go to build-fuzz/corpus/<target>; crashes to
# build-fuzz/crashes/<target>/; each target's output to build-fuzz/logs/<target>.log (its last lines are
# printed). The committed seed corpus (tests/fuzz/corpus/) is only read. Exit status is non-zero when a target
# crashed, leaked, hung (-timeout) or failed to run; the crashing input's path is printed (copy it into the
# seed corpus once the bug is fixed, so that ctest's fuzz.replay_* tests keep it fixed).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
seconds=${1:-${FUZZ_SECONDS:-60}}
build=${FUZZ_BUILD_DIR:-$root/build-fuzz}
cxx=${FUZZ_CXX:-clang++-14}
parallel=${FUZZ_PARALLEL:-1}
read -r -a names <<<"${FUZZ_TARGETS:-migration_source migration_directory migration_run}"
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
command -v "$cxx" >/dev/null || { echo "run.sh: $cxx not found (apt-get install clang-14 libclang-rt-14-dev)" >&2; exit 2; }

# -fsized-deallocation: C++14's sized operator delete, on by default in GCC but not in clang 14 (the library's
# request node frees itself with it).
cmake -S "$root" -B "$build" -G Ninja "${launcher[@]}" \
    -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS=-fsized-deallocation \
    "-DDBACTOR_SANITIZE=address;undefined" -DDBACTOR_FUZZ=ON -DDBACTOR_BUILD_TESTS=ON \
    -DDBACTOR_BUILD_EXAMPLES=OFF -DDBACTOR_BUILD_BENCH=OFF -DDBACTOR_BUILD_TOOLS=OFF >/dev/null
targets=()
for n in "${names[@]}"; do targets+=("fuzz_$n"); done
cmake --build "$build" -j "${FUZZ_BUILD_JOBS:-2}" --target "${targets[@]}"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
mkdir -p "$build/logs"

fuzz_one() { # fuzz_one NAME: runs one target; its exit status is the target's
    local name=$1
    mkdir -p "$build/corpus/$name" "$build/crashes/$name"
    (cd "$build/crashes/$name" && exec "$build/tests/fuzz/fuzz_$name" \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=4096 -print_final_stats=1 \
        "$build/corpus/$name" "$root/tests/fuzz/corpus/$name") >"$build/logs/$name.log" 2>&1
}

report() { # report NAME STATUS
    local name=$1 rc=$2 log="$build/logs/$1.log"
    local runs execs
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    execs=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    printf 'FUZZ fuzz_%s seconds=%s runs=%s exec_per_s=%s status=%s\n' "$name" "$seconds" "${runs:-?}" "${execs:-?}" \
        "$([[ $rc -eq 0 ]] && echo ok || echo FAILED)"
    if [[ $rc -ne 0 ]]; then
        echo "FUZZ FAILURE in fuzz_$name (exit $rc): the end of $log:" >&2
        tail -n 60 "$log" >&2
        echo "crashing inputs in $build/crashes/$name/:" >&2
        ls "$build/crashes/$name" >&2 || true
    fi
}

status=0
declare -A names_by_pid=()
reap_one() { # waits for one running target and reports it
    local pid rc
    wait -n -p pid && rc=0 || rc=$?
    report "${names_by_pid[$pid]}" "$rc"
    ((rc == 0)) || status=1
    unset "names_by_pid[$pid]"
}
for name in "${names[@]}"; do
    while ((${#names_by_pid[@]} >= parallel)); do reap_one; done
    printf '=== fuzz_%s: %s s ===\n' "$name" "$seconds"
    fuzz_one "$name" &
    names_by_pid[$!]=$name
done
while ((${#names_by_pid[@]} > 0)); do reap_one; done
exit $status
