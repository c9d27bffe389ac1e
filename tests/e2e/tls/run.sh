#!/bin/sh
# Runs tests/e2e/tls.test.mjs with a test CA and server certificate made
# for this run by the openssl CLI (certs.sh). Node reads extra trust anchors
# only at start-up, so the CA exists before node does: NODE_EXTRA_CA_CERTS
# is how users point the official SDKs at a private CA, and so do we.
# usage: run.sh NODE
set -eu
node=$1
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT INT TERM
sh "$here/certs.sh" "$dir"
cd "$here/.."
NODE_EXTRA_CA_CERTS="$dir/ca.pem" SLUICE_TLS_DIR="$dir" \
  "$node" --test --test-concurrency=1 tls.test.mjs
