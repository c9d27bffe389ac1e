#!/bin/sh
# Certificates for the upstream-trust end-to-end test: `certs.sh DIR [NAME]`
# writes into DIR a test CA (ca.pem, ca.key) called NAME, a server
# certificate it signs for 127.0.0.1 and localhost (server.pem,
# server.key), a client certificate it signs (client.pem, client.key), and
# an unrelated CA certificate (other-ca.pem) that signed neither.
# Run at build time (sluicec checks the files spec.yaml names) and by each
# test run, which makes its own, plus a second CA whose client certificate
# the upstream must refuse.
set -eu
dir=$1 name=${2:-sluice upstream test CA}
mkdir -p "$dir"
cd "$dir"
o() { openssl "$@" 2>/dev/null; }
o ecparam -name prime256v1 -genkey -noout -out ca.key
o req -x509 -new -key ca.key -subj "/CN=$name" -days 365 -out ca.pem \
  -addext basicConstraints=critical,CA:true -addext keyUsage=critical,keyCertSign
leaf() { # NAME CN EXTENSIONS
  o ecparam -name prime256v1 -genkey -noout -out "$1.key"
  o req -new -key "$1.key" -subj "/CN=$2" -out "$1.csr"
  printf '%s\n' "$3" > "$1.ext"
  o x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 365 -extfile "$1.ext" \
    -out "$1.pem"
  rm -f "$1.csr" "$1.ext"
  chmod 600 "$1.key"
}
leaf server localhost "subjectAltName=DNS:localhost,IP:127.0.0.1
extendedKeyUsage=serverAuth"
leaf client sluice-gateway "extendedKeyUsage=clientAuth"
o ecparam -name prime256v1 -genkey -noout -out other-ca.key
o req -x509 -new -key other-ca.key -subj "/CN=$name (unrelated)" -days 365 -out other-ca.pem \
  -addext basicConstraints=critical,CA:true -addext keyUsage=critical,keyCertSign
rm -f ca.srl other-ca.key
