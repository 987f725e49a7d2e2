#!/usr/bin/env bash
# Builds the libFuzzer targets with clang-14 (ASan + UBSan + libFuzzer) and runs each for N seconds.
# Usage: tests/fuzz/run.sh [SECONDS]      (default 60; env FUZZ_SECONDS also works; FUZZ_JOBS=2 for -jobs)
# Build dir: build-fuzz (env FUZZ_BUILD_DIR). New inputs go to build-fuzz/corpus/<target>; crashes to
# build-fuzz/crashes/<target>/. The committed seed corpus (tests/fuzz/corpus/) is only read. Exit status is
# non-zero when a target crashed; the crashing input's path is printed (copy it into the seed corpus once
# the bug is fixed, so that ctest's fuzz.replay_* tests keep it fixed).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
seconds=${1:-${FUZZ_SECONDS:-60}}
build=${FUZZ_BUILD_DIR:-$root/build-fuzz}
cxx=${FUZZ_CXX:-clang++-14}
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)

cmake -S "$root" -B "$build" -G Ninja "${launcher[@]}" \
    -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    "-DDBACTOR_SANITIZE=address;undefined" -DDBACTOR_FUZZ=ON -DDBACTOR_BUILD_TESTS=ON \
    -DDBACTOR_BUILD_EXAMPLES=OFF -DDBACTOR_BUILD_BENCH=OFF -DDBACTOR_BUILD_TOOLS=OFF >/dev/null
targets=(fuzz_migration_source fuzz_migration_run)
cmake --build "$build" -j "${FUZZ_BUILD_JOBS:-2}" --target "${targets[@]}"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
status=0
for t in "${targets[@]}"; do
    name=${t#fuzz_}
    mkdir -p "$build/corpus/$name" "$build/crashes/$name"
    printf '\n=== %s: %s s ===\n' "$t" "$seconds"
    if ! (cd "$build/crashes/$name" && "$build/tests/fuzz/$t" \
            -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=4096 -print_final_stats=1 \
            "$build/corpus/$name" "$root/tests/fuzz/corpus/$name"); then
        echo "FUZZ FAILURE in $t: see $build/crashes/$name/" >&2
        ls "$build/crashes/$name" >&2 || true
        status=1
    fi
done
exit $status
