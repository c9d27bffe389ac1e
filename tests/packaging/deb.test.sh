#!/bin/sh
# The .deb for a spec: built twice with the same inputs it is byte-identical;
# unpacked into a scratch root (dpkg-deb -x, next to a copy of the host's
# systemd units so dependencies such as sysinit.target resolve) it holds the
# gateway, sluicec, the spec, the schema, the manual and the units, and
# `systemd-analyze verify --root` accepts sluice.socket and sluice.service;
# the unpacked gateway serves. What needs a booted systemd (the user created
# by postinst, the socket started by PID 1, the sandbox applied) is not
# tested here.
# usage: deb.test.sh BUILD_DEB GATEWAY SLUICEC SPEC SCHEMA
set -eu
build_deb=$1 gateway=$2 sluicec=$3 spec=$4 schema=$5
t=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$t"' EXIT
pid=
fail() { echo "FAIL: $*" >&2; exit 1; }

export SOURCE_DATE_EPOCH=1700000000
for o in a b; do
    "$build_deb" --name pkgtest --version 1.2.3 --gateway "$gateway" --sluicec "$sluicec" \
        --spec "$spec" --schema "$schema" --out "$t/$o" >"$t/$o.log"
done
deb="$t/a/sluice-pkgtest_1.2.3_$(dpkg --print-architecture).deb"
[ -f "$deb" ] || fail "no $deb"
cmp "$deb" "$t/b/$(basename "$deb")" || fail "two builds differ"
sha=$("$gateway" --version | sed -n 's/^spec sha256: //p')
grep -q "spec sha256: $sha" "$t/a.log" || fail "build does not print the spec SHA-256"
dpkg-deb -f "$deb" Depends | grep -q libcurl4 || fail "Depends lacks libcurl4"
echo "built $(basename "$deb") twice, identical; sha256 $(sha256sum "$deb" | cut -c1-16)..."

root="$t/root"
mkdir -p "$root/lib/systemd"
cp -a /lib/systemd/system "$root/lib/systemd/"
dpkg-deb -x "$deb" "$root"
for f in usr/bin/sluice usr/bin/sluicec usr/share/sluice/spec.yaml usr/share/sluice/sluice.schema.json \
         usr/share/doc/sluice-pkgtest/sluice-help.txt lib/systemd/system/sluice.service \
         lib/systemd/system/sluice.socket etc/sluice/sluice.env; do
    [ -e "$root/$f" ] || fail "missing /$f"
done
cmp "$root/usr/share/sluice/spec.yaml" "$spec" || fail "packaged spec differs"
[ "$(stat -c %a "$root/etc/sluice/sluice.env")" = 600 ] || fail "sluice.env is not 0600"
svc="$root/lib/systemd/system/sluice.service"
for want in '^User=sluice' '^ProtectSystem=strict' '^NoNewPrivileges=yes' '^StateDirectory=sluice' \
            '^EnvironmentFile=-/etc/sluice/sluice.env' '^Requires=sluice.socket'; do
    grep -q "$want" "$svc" || fail "sluice.service lacks $want"
done
listen=$(sed -n 's/^listen:[[:space:]]*\([^[:space:]#]*\).*/\1/p' "$spec")
grep -q "^ListenStream=$listen\$" "$root/lib/systemd/system/sluice.socket" || fail "socket not on $listen"
systemd-analyze verify --root="$root" sluice.socket sluice.service || fail "systemd-analyze verify"
echo "units verified"

"$root/usr/bin/sluice" --version | grep -q "$sha" || fail "packaged gateway reports another spec"
"$root/usr/bin/sluice" --listen 127.0.0.1:0 --state "$t/s.db" --workers 1 2>"$t/gw.log" &
pid=$!
for i in $(seq 50); do
    addr=$(sed -n 's/^sluice listening on //p' "$t/gw.log")
    [ -n "$addr" ] && curl -fs "http://$addr/healthz" >"$t/h.json" 2>/dev/null && break
    sleep 0.1
done
grep -q "$sha" "$t/h.json" || fail "packaged gateway not serving: $(cat "$t/gw.log")"
kill -TERM "$pid"
wait "$pid" || fail "packaged gateway did not exit 0"
pid=
echo "packaged gateway served /healthz and exited 0"
