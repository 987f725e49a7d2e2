#!/usr/bin/env bash
# Fails when a C++ file git tracks is not formatted as the repository's .clang-format says (clang-format 14,
# Debian bookworm's). Fix with: clang-format -i $(git ls-files '*.cpp' '*.hpp')
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files '*.cpp' '*.hpp')
if ! out=$(clang-format --dry-run --Werror "${files[@]}" 2>&1); then
    printf '%s\n' "$out" | grep -E '^[^ ].*: (error|warning):' | cut -d: -f1 | sort -u |
        sed 's/^/not formatted: /'
    echo "Format check failed: run  clang-format -i \$(git ls-files '*.cpp' '*.hpp')  and commit the result."
    exit 1
fi
echo "Format check: ${#files[@]} files formatted as .clang-format says."
