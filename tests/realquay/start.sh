#!/usr/bin/env bash
# Starts (or finds running) the real Red Hat Quay the real-Quay tests run against, and prints the path
# of its quay.env (QUAY_URL, QUAY_TOKEN, QUAY_CA ...) on stdout; progress goes to stderr.
#
# Quay itself is brought up by a quay-server directory's start.sh (see tests/realquay/README.md):
#   QUAY_SERVER_DIR  that directory (default: ../shared/quay-server beside this repository's root)
#   REALQUAY_DIR     Quay's state: source, Python venv, PostgreSQL data, TLS (default: the cache
#                    directory of the real kube-apiserver, ${QUAY_BRIDGE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/quay-bridge}/realquay)
#
# Quay's notification worker checks a webhook receiver's TLS certificate with Python requests' CA
# bundle, REQUESTS_CA_BUNDLE in its environment. Quay is started with it set to
# $REALQUAY_DIR/notify-ca-bundle.pem: the system's CA bundle (certifi's where there is none) plus a test
# CA made once and kept in $REALQUAY_DIR/notify-ca/ (ca.pem, ca.key: EC P-256, PKCS#8), from which the
# tests issue their receivers' certificates. A Quay already running without it is left running, with a
# warning: restart it (quay-server/stop.sh, then this script) to deliver over HTTPS.
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
# The notification receivers' test CA and the bundle Quay trusts (see the header). The bundle is
# rebuilt at every start so the system's CAs stay current; the CA is made once.
notify_ca="$state/notify-ca"
bundle="$state/notify-ca-bundle.pem"
"${run[@]}" env notify_ca="$notify_ca" bundle="$bundle" venv_python="$state/venv/bin/python" bash -euo pipefail -c '
  if [[ ! -s "$notify_ca/ca.pem" || ! -s "$notify_ca/ca.key" ]]; then
    mkdir -p "$notify_ca"
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$notify_ca/ca.key.tmp" 2>/dev/null
    openssl req -x509 -new -key "$notify_ca/ca.key.tmp" -subj "/CN=quay-bridge tests notification CA" \
      -days 3650 -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
      -out "$notify_ca/ca.pem.tmp"
    mv "$notify_ca/ca.key.tmp" "$notify_ca/ca.key"
    mv "$notify_ca/ca.pem.tmp" "$notify_ca/ca.pem"
  fi
  system=/etc/ssl/certs/ca-certificates.crt
  if [[ ! -s $system ]]; then
    system=$("$venv_python" -c "import certifi; print(certifi.where())" 2>/dev/null || true)
  fi
  { if [[ -n $system && -s $system ]]; then cat "$system"; fi; cat "$notify_ca/ca.pem"; } > "$bundle.tmp"
  mv "$bundle.tmp" "$bundle"
'
if [[ -f "$state/run/notify.pid" ]] && "${run[@]}" kill -0 "$(cat "$state/run/notify.pid")" 2>/dev/null &&
  ! "${run[@]}" cat "/proc/$(cat "$state/run/notify.pid")/environ" 2>/dev/null | tr '\0' '\n' |
    grep -qx "REQUESTS_CA_BUNDLE=$bundle"; then
  say "warning: Quay's running notification worker does not trust $bundle (started without REQUESTS_CA_BUNDLE):"
  say "it cannot deliver to the tests' HTTPS receivers until Quay is restarted (quay-server/stop.sh, then this script)"
fi

if [[ ! -f "$state/venv/.installed" ]]; then
  say "first start of Quay into $state: Debian packages and pip install of Quay's requirements (15-25 min on 2 cores)"
fi
# start.sh prints the super-user token; keep it out of test logs. fd 9 is closed for it, or the
# Quay processes it leaves running would hold the lock.
if ! "${run[@]}" env REALQUAY_DIR="$state" REQUESTS_CA_BUNDLE="$bundle" "$server/start.sh" 2>&1 9>&- | sed -E 's/token: [^ ]+/token: (in quay.env)/' >&2; then
  say "error: $server/start.sh failed (logs in $state/run/); Quay is not available"
  exit 4
fi
if [[ ! -s "$state/quay.env" ]]; then
  say "error: $server/start.sh did not write $state/quay.env"
  exit 4
fi
say "Quay is up ($(( $(date +%s) - started )) s)"
echo "$state/quay.env"
