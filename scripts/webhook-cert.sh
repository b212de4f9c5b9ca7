#!/usr/bin/env bash
# The seed documents' manual webhook setup, with openssl instead of the CertificateSigningRequest
# API (whose legacy-unknown signer no longer issues serving certificates): a CA, a serving
# certificate for the webhook Service, the Secret the operator mounts, and the
# MutatingWebhookConfiguration of deploy/webhook/manual with ${CA_BUNDLE} filled in.
#
#   scripts/webhook-cert.sh [--namespace quay-bridge] [--service quay-bridge-webhook]
#                           [--secret quay-bridge-webhook-tls] [--days 365] [--print] [--out DIR]
#
# Without --print it applies both with kubectl (or oc, whichever is found; KUBECTL overrides).
# With --print it writes the Secret and the MutatingWebhookConfiguration to stdout instead.
# --out keeps ca.crt, tls.crt and tls.key in DIR (default: a temporary directory, removed).
# Re-run it before the certificate expires (default 365 days); the operator reloads the files.
set -euo pipefail

namespace=quay-bridge
service=quay-bridge-webhook
secret=quay-bridge-webhook-tls
days=365
print=false
out=""
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
template="${here}/../deploy/webhook/manual/mutatingwebhookconfiguration.yaml"

while [[ $# -gt 0 ]]; do
  case "$1" in
    --namespace) namespace="$2"; shift 2 ;;
    --service) service="$2"; shift 2 ;;
    --secret) secret="$2"; shift 2 ;;
    --days) days="$2"; shift 2 ;;
    --print) print=true; shift ;;
    --out) out="$2"; shift 2 ;;
    --template) template="$2"; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "webhook-cert.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

command -v openssl >/dev/null || { echo "webhook-cert.sh: openssl is required" >&2; exit 2; }
kubectl="${KUBECTL:-$(command -v kubectl || command -v oc || true)}"
if [[ "$print" != true && -z "$kubectl" ]]; then
  echo "webhook-cert.sh: kubectl or oc is required (or use --print)" >&2
  exit 2
fi

if [[ -n "$out" ]]; then
  mkdir -p "$out"
  dir="$out"
else
  dir="$(mktemp -d)"
  trap 'rm -rf "$dir"' EXIT
fi

host="${service}.${namespace}.svc"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
  -subj "/CN=quay-bridge-webhook-ca" -keyout "${dir}/ca.key" -out "${dir}/ca.crt" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=${host}" \
  -keyout "${dir}/tls.key" -out "${dir}/tls.csr" 2>/dev/null
cat > "${dir}/ext.cnf" <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=DNS:${service},DNS:${service}.${namespace},DNS:${host},DNS:${host}.cluster.local
EXT
openssl x509 -req -in "${dir}/tls.csr" -CA "${dir}/ca.crt" -CAkey "${dir}/ca.key" -CAcreateserial \
  -days "$days" -extfile "${dir}/ext.cnf" -out "${dir}/tls.crt" 2>/dev/null

b64() { base64 < "$1" | tr -d '\n'; }
CA_BUNDLE="$(b64 "${dir}/ca.crt")"

secret_yaml() {
  cat <<YAML
apiVersion: v1
kind: Secret
type: kubernetes.io/tls
metadata:
  name: ${secret}
  namespace: ${namespace}
  labels:
    app.kubernetes.io/name: quay-bridge
data:
  tls.crt: $(b64 "${dir}/tls.crt")
  tls.key: $(b64 "${dir}/tls.key")
YAML
}

# The seed documents substitute with envsubst or sed; sed needs nothing extra installed.
mwc_yaml() {
  sed -e "s|\${CA_BUNDLE}|${CA_BUNDLE}|g" \
    -e "s|namespace: quay-bridge$|namespace: ${namespace}|" \
    -e "s|^            - quay-bridge$|            - ${namespace}|" \
    -e "s|name: quay-bridge-webhook$|name: ${service}|" "$template"
}

if [[ "$print" == true ]]; then
  secret_yaml
  echo "---"
  mwc_yaml
else
  secret_yaml | "$kubectl" apply -f -
  mwc_yaml | "$kubectl" apply -f -
fi
