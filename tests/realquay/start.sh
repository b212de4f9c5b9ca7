#!/usr/bin/env bash
# Starts (or finds running) the real Red Hat Quay the real-Quay tests run against, and prints the path
# of its quay.env (QUAY_URL, QUAY_TOKEN, QUAY_CA ...) on stdout; progress goes to stderr.
#
# Quay itself is brought up by a quay-server directory's start.sh (see tests/realquay/README.md):
#   QUAY_SERVER_DIR  that directory (default: ../shared/quay-server beside this repository's root)
#   REALQUAY_DIR     Quay's state: source, Python venv, PostgreSQL data, TLS (default: the cache
#                    directory of the real kube-apiserver, ${QUAY_BRIDGE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/quay-bridge}/realquay)
# Exit codes: 0 ok, 2 no quay-server directory, 3 not root and no password-less sudo, 4 Quay did not come up.
set -euo pipefail

say() { echo "tests/realquay/start.sh: $*" >&2; }
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
server="${QUAY_SERVER_DIR:-$root/../shared/quay-server}"
cache="${QUAY_BRIDGE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/quay-bridge}"
state="${REALQUAY_DIR:-$cache/realquay}"

if [[ ! -x "$server/start.sh" ]]; then
  say "error: no Quay server scripts at $server (start.sh missing). Set QUAY_SERVER_DIR to a directory"
  say "with start.sh and quay-src.tar.xz; tests/realquay/README.md says how to make one."
  exit 2
fi

# start.sh installs Debian packages and runs PostgreSQL as user postgres: it needs root.
run=()
if [[ $(id -u) -ne 0 ]]; then
  if sudo -n true 2>/dev/null; then
    run=(sudo -n --preserve-env=REALQUAY_DIR,QUAY_PORT,QUAY_PG_PORT,QUAY_REDIS_PORT,REQUESTS_CA_BUNDLE)
  else
    say "error: starting Quay needs root (apt-get, PostgreSQL as user postgres); run as root or with password-less sudo"
    exit 3
  fi
fi

mkdir -p "$state"
# PostgreSQL runs as user postgres and must be able to walk down to its data directory; a home
# directory of mode 700 (root's, on many machines) stops it. Grant walking (x) only, not reading.
dir="$state"
while [[ "$dir" != "/" ]]; do
  if [[ $(( 0$(stat -c %a "$dir") & 01 )) -eq 0 ]]; then
    say "letting PostgreSQL's user reach $state: chmod o+x $dir"
    "${run[@]}" chmod o+x "$dir"
  fi
  dir="$(dirname "$dir")"
done

# Parallel test files may all ask at once; one starts Quay, the others wait and find it running.
exec 9>"$cache/.realquay-start.lock"
flock 9
started=$(date +%s)
if [[ ! -f "$state/venv/.installed" ]]; then
  say "first start of Quay into $state: Debian packages and pip install of Quay's requirements (15-25 min on 2 cores)"
fi
# start.sh prints the super-user token; keep it out of test logs. fd 9 is closed for it, or the
# Quay processes it leaves running would hold the lock.
if ! "${run[@]}" env REALQUAY_DIR="$state" "$server/start.sh" 2>&1 9>&- | sed -E 's/token: [^ ]+/token: (in quay.env)/' >&2; then
  say "error: $server/start.sh failed (logs in $state/run/); Quay is not available"
  exit 4
fi
if [[ ! -s "$state/quay.env" ]]; then
  say "error: $server/start.sh did not write $state/quay.env"
  exit 4
fi
say "Quay is up ($(( $(date +%s) - started )) s)"
echo "$state/quay.env"
