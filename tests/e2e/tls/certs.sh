#!/bin/sh
# A throw-away test CA and a server certificate it signs, for the HTTPS
# end-to-end tests: `certs.sh DIR [ec|rsa] [CN]` writes DIR/ca.pem,
# DIR/chain.pem (server certificate, then nothing else: the CA is the
# client's trust anchor) and DIR/server.key, valid for localhost and
# 127.0.0.1. Run at build time (the compiler checks the spec's files) and
# again by each test run, which serves its own fresh pair.
set -eu
dir=$1 kind=${2:-ec} cn=${3:-localhost}
mkdir -p "$dir"
cd "$dir"
o() { openssl "$@" 2>/dev/null; }
[ -f ca.key ] || {
  o ecparam -name prime256v1 -genkey -noout -out ca.key
  o req -x509 -new -key ca.key -subj "/CN=sluice e2e test CA" -days 365 -out ca.pem \
    -addext basicConstraints=critical,CA:true -addext keyUsage=critical,keyCertSign
}
if [ "$kind" = rsa ]; then
  o genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out server.key
else
  o ecparam -name prime256v1 -genkey -noout -out server.key
fi
o req -new -key server.key -subj "/CN=$cn" -out server.csr
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' > server.ext
o x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 365 -extfile server.ext \
  -out chain.pem
rm -f server.csr server.ext ca.srl
chmod 600 server.key
