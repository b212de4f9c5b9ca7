#!/usr/bin/env bash
# Builds the upstream Go Quay Bridge Operator (github.com/quay/quay-bridge-operator), the peer the
# side-by-side benchmark measures quay-bridge against, once, and caches the binary outside the
# repository. Prints the binary's path on stdout; progress goes to stderr.
#
# Usage: build.sh <source>   where <source> is a tarball (.tar.xz, .tar.gz) holding one directory with
# the upstream source and its vendor/ tree (`go mod vendor` in a clone), or such a directory.
# Exit codes: 0 ok, 2 no usable Go toolchain, 3 no source, 4 the build failed.
#
# Cache: ${QUAY_BRIDGE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/quay-bridge}/upstream-qbo-<key>/qbo-bin
# where <key> hashes the tarball (or, for a directory, its go.mod, go.sum and main.go) and this script.
set -euo pipefail

say() { echo "bench/upstream/build.sh: $*" >&2; }

source="${1:-}"
if [[ -z "$source" || ! -e "$source" ]]; then
  say "error: no upstream source at '${source}'. Set QUAY_BRIDGE_UPSTREAM_SRC to a tarball or directory of"
  say "github.com/quay/quay-bridge-operator with its vendor/ tree (git clone …; go mod vendor)."
  exit 3
fi
if ! command -v go >/dev/null 2>&1; then
  say "error: no 'go' on PATH; the upstream operator is built from source with the local Go toolchain."
  exit 2
fi

cache="${QUAY_BRIDGE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/quay-bridge}"
if [[ -d "$source" ]]; then
  key="$(cat "$source/go.mod" "$source/go.sum" "$source/main.go" "${BASH_SOURCE[0]}" | sha256sum | cut -c1-12)"
else
  key="$(cat "$source" "${BASH_SOURCE[0]}" | sha256sum | cut -c1-12)"
fi
dir="$cache/upstream-qbo-$key"
binary="$dir/qbo-bin"
if [[ -x "$binary" ]]; then
  echo "$binary"
  exit 0
fi

mkdir -p "$dir"
exec 9>"$dir/.build.lock"
flock 9
if [[ -x "$binary" ]]; then
  echo "$binary"
  exit 0
fi

say "building the upstream operator into $binary (first run only; about 2 minutes on 2 cores)"
started=$(date +%s)
work="$dir/src"
rm -rf "$work"
mkdir -p "$work"
if [[ -d "$source" ]]; then
  cp -a "$source/." "$work/"
else
  tar -xf "$source" -C "$work"
  # A tarball holds one top-level directory; build inside it.
  inner="$(find "$work" -mindepth 1 -maxdepth 2 -name go.mod -printf '%h\n' | head -n 1)"
  [[ -n "$inner" ]] && work="$inner"
fi
if ! (cd "$work" && GOTOOLCHAIN=local GOFLAGS=-mod=vendor go build -trimpath -ldflags "-s -w" -o "$binary.tmp" .) >&2; then
  say "error: go build failed in $work"
  exit 4
fi
mv "$binary.tmp" "$binary"
rm -rf "$dir/src"
say "built in $(($(date +%s) - started)) s"
echo "$binary"
