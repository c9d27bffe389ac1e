#!/bin/sh
# Regenerates the certificates and keys the tls-*.yaml golden specs name.
# They are test fixtures, valid for nothing but these tests; the golden
# runner pins sluicec's clock (SLUICEC_NOW) to 2030-01-01, so "expired" and
# "expires soon" below are relative to that date. After regenerating, run
# the golden test with SLUICE_UPDATE_GOLDEN=1 and review the diff.
set -eu
cd "$(dirname "$0")"
days_to() { echo $(( ($(date -u -d "$1" +%s) - $(date -u +%s)) / 86400 )); }
o() { openssl "$@" 2>/dev/null; }
o ecparam -name prime256v1 -genkey -noout -out ca.key
o req -x509 -new -key ca.key -subj /CN=sluice-test-root -days 36500 -out ca.pem \
  -addext basicConstraints=critical,CA:true
o ecparam -name prime256v1 -genkey -noout -out inter.key
o req -new -key inter.key -subj /CN=sluice-test-intermediate -out inter.csr
printf 'basicConstraints=critical,CA:true\n' > ca.ext
o x509 -req -in inter.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 36500 -extfile ca.ext -out inter.pem
leaf() { # NAME KEYFILE DAYS
  o req -new -key "$2" -subj /CN=localhost -out "$1.csr"
  o x509 -req -in "$1.csr" -CA inter.pem -CAkey inter.key -CAcreateserial -days "$3" -out "$1.pem"
  rm -f "$1.csr"
}
o genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa.key
o ecparam -name prime256v1 -genkey -noout -out ec.key
leaf rsa rsa.key 36500
leaf ec ec.key 36500
leaf expired ec.key 1
leaf soon ec.key "$(days_to 2030-01-20)"
cat rsa.pem inter.pem ca.pem > rsa-chain.pem
cat ec.pem ca.pem inter.pem > misordered-chain.pem
cat expired.pem inter.pem > expired-chain.pem
cat soon.pem inter.pem > soon-chain.pem
o pkcs8 -topk8 -in ec.key -passout pass:x -out encrypted.key
printf 'not a certificate\n' > garbage.pem
rm -f ./*.csr ./*.srl ca.ext ca.key inter.key rsa.pem expired.pem soon.pem
