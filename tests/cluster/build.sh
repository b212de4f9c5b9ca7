#!/usr/bin/env bash
# Builds the end-to-end control plane (kube-apiserver + kube-controller-manager + embedded etcd, one
# binary, see kube/main.go) once and caches it outside the repository. Prints the binary's path on
# stdout; progress and the build time go to stderr. Exit codes: 0 ok, 2 no usable Go toolchain,
# 3 the Go modules cannot be downloaded, 4 the build failed.
#
# Cache: ${QUAY_BRIDGE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/quay-bridge}/kube-<k8s version>-<key>
# where <key> hashes go.mod, go.sum, main.go and this script, so any change rebuilds.
set -euo pipefail

src="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/kube"
cache="${QUAY_BRIDGE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/quay-bridge}"
version="$(awk '$1 == "k8s.io/kubernetes" { print $2; exit }' "$src/go.mod")"
key="$(cat "$src/go.mod" "$src/go.sum" "$src/main.go" "${BASH_SOURCE[0]}" | sha256sum | cut -c1-12)"
binary="$cache/kube-$version-$key"

if [[ -x "$binary" ]]; then
  echo "$binary"
  exit 0
fi

say() { echo "tests/cluster/build.sh: $*" >&2; }

if ! command -v go >/dev/null 2>&1; then
  say "error: no 'go' on PATH. The end-to-end suite builds a real kube-apiserver ($version) from the"
  say "Kubernetes Go modules and needs Go >= 1.25 (https://go.dev/dl/) and the module proxy."
  exit 2
fi

mkdir -p "$cache"
# Parallel test files may all ask for the binary at once; one builds, the others wait for it.
exec 9>"$cache/.build.lock"
flock 9
if [[ -x "$binary" ]]; then
  echo "$binary"
  exit 0
fi

say "building kube-apiserver $version into $binary (first run only; several minutes on 2 cores)"
started=$(date +%s)
cd "$src"
if ! download_log="$(go mod download 2>&1)"; then
  say "error: cannot download the Go modules for kube-apiserver $version."
  say "GOPROXY=$(go env GOPROXY) GOFLAGS=$(go env GOFLAGS); go said:"
  echo "$download_log" | tail -n 20 >&2
  exit 3
fi
downloaded=$(date +%s)

ldflags="-s -w"
for field in "gitVersion=$version" "gitMajor=$(echo "$version" | cut -d. -f1 | tr -d v)" \
  "gitMinor=$(echo "$version" | cut -d. -f2)" "gitTreeState=clean" \
  "buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"; do
  ldflags="$ldflags -X k8s.io/component-base/version.$field"
done
# -mod=mod overrides a GOFLAGS=-mod=vendor from the environment; go.sum pins every module anyway.
if ! nice -n 10 go build -mod=mod -trimpath -ldflags "$ldflags" -o "$binary.tmp.$$" . >&2; then
  rm -f "$binary.tmp.$$"
  say "error: go build failed (see above)"
  exit 4
fi
mv "$binary.tmp.$$" "$binary"
finished=$(date +%s)
say "built in $((finished - started)) s (module download $((downloaded - started)) s," \
  "compile $((finished - downloaded)) s), $(du -h "$binary" | cut -f1) binary"
echo "$binary"
