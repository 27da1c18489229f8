#!/bin/sh
# Writes a self-signed certificate for 127.0.0.1 and localhost, and its key,
# into a folder: DIR/cert.pem and DIR/key.pem (P-256, valid 30 days). The
# certificate is its own CA, so a client trusts it with cert.pem as its CA
# file (curl --cacert, flow.http's ca_file) and refuses it otherwise.
#
#   tests/support/server/make-cert.sh DIR
set -eu
if [ $# -ne 1 ]; then
  echo "usage: $0 DIR" >&2
  exit 2
fi
dir=$1
command -v openssl >/dev/null 2>&1 || {
  echo "$0: the openssl command is needed (apt-get install openssl; see tests/install-deps.sh)" >&2
  exit 1
}
mkdir -p "$dir"
umask 077
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -keyout "$dir/key.pem.tmp" -out "$dir/cert.pem.tmp" -days 30 \
  -subj "/CN=flowlua test server" \
  -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
  -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,digitalSignature,keyCertSign" \
  -addext "extendedKeyUsage=serverAuth" 2>"$dir/openssl.log" || {
  cat "$dir/openssl.log" >&2
  exit 1
}
rm -f "$dir/openssl.log"
mv "$dir/key.pem.tmp" "$dir/key.pem"
mv "$dir/cert.pem.tmp" "$dir/cert.pem"
