#!/usr/bin/env bash
# Finds Prometheus's own tools, installing Debian's `prometheus` package (promtool and the server)
# when they are missing and this runs as root with apt-get; prints two lines on stdout: the paths of
# promtool and prometheus. Exit codes: 0 ok, 2 missing and cannot be installed here (the message
# says what to install).
set -euo pipefail

say() { echo "tests/ecosystem/prometheus.sh: $*" >&2; }

if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1; then
  if [[ "$(id -u)" != 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
    say "error: promtool and prometheus are not on PATH. Install Debian's 'prometheus' package"
    say "(apt-get install --no-install-recommends prometheus) or put Prometheus 2.x's binaries on PATH."
    exit 2
  fi
  # One installer at a time when parallel test files ask together.
  exec 9>/tmp/.quay-bridge-prometheus-install.lock
  flock 9
  if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1; then
    say "installing Debian's prometheus package (first run only)"
    started=$(date +%s)
    export DEBIAN_FRONTEND=noninteractive
    if ! { apt-get update -q && apt-get install -y -q --no-install-recommends prometheus; } >&2; then
      say "error: apt-get could not install 'prometheus' (see above)."
      exit 2
    fi
    say "installed in $(($(date +%s) - started)) s"
  fi
fi
command -v promtool
command -v prometheus
