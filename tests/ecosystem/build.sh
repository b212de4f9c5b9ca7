#!/usr/bin/env bash
# Builds one of the ecosystem's Go tools once and caches it outside the repository; prints the
# binary's path on stdout (progress and the build time on stderr).
#
#   build.sh olm          tests/ecosystem/olm: the operator-framework/api bundle validators
#   build.sh kubeconform  github.com/yannh/kubeconform/cmd/kubeconform, pinned by kubeconform/go.mod
#
# Exit codes: 0 ok, 2 no usable Go toolchain, 3 the Go modules cannot be downloaded, 4 the build
# failed, 64 unknown tool.
# Cache: ${QUAY_BRIDGE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/quay-bridge}/<tool>-<key>, where
# <key> hashes the tool's go.mod, go.sum and Go sources and this script, so any change rebuilds.
set -euo pipefail

tool="${1:-}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
case "$tool" in
  olm) src="$here/olm"; package="." ;;
  kubeconform) src="$here/kubeconform"; package="github.com/yannh/kubeconform/cmd/kubeconform" ;;
  *) echo "usage: tests/ecosystem/build.sh olm|kubeconform" >&2; exit 64 ;;
esac
cache="${QUAY_BRIDGE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/quay-bridge}"
key="$(cat "$src"/go.mod "$src"/go.sum "$src"/*.go "${BASH_SOURCE[0]}" | sha256sum | cut -c1-12)"
binary="$cache/$tool-$key"

if [[ -x "$binary" ]]; then
  echo "$binary"
  exit 0
fi

say() { echo "tests/ecosystem/build.sh: $*" >&2; }

if ! command -v go >/dev/null 2>&1; then
  say "error: no 'go' on PATH. The ecosystem suite builds $tool from Go modules and needs Go >= 1.25"
  say "(https://go.dev/dl/) and the module proxy."
  exit 2
fi

mkdir -p "$cache"
# Parallel test files may ask at once; one builds, the others wait for it.
exec 9>"$cache/.build-$tool.lock"
flock 9
if [[ -x "$binary" ]]; then
  echo "$binary"
  exit 0
fi

say "building $tool into $binary (first run only)"
started=$(date +%s)
cd "$src"
if ! download_log="$(go mod download 2>&1)"; then
  say "error: cannot download the Go modules of $tool. GOPROXY=$(go env GOPROXY); go said:"
  echo "$download_log" | tail -n 20 >&2
  exit 3
fi
downloaded=$(date +%s)
# -mod=mod overrides a GOFLAGS=-mod=vendor from the environment; go.sum pins every module anyway.
if ! nice -n 10 go build -mod=mod -trimpath -ldflags "-s -w" -o "$binary.tmp.$$" "$package" >&2; then
  rm -f "$binary.tmp.$$"
  say "error: go build failed (see above)"
  exit 4
fi
mv "$binary.tmp.$$" "$binary"
finished=$(date +%s)
say "built $tool in $((finished - started)) s (module download $((downloaded - started)) s," \
  "compile $((finished - downloaded)) s), $(du -h "$binary" | cut -f1) binary"
echo "$binary"
