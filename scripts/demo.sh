#!/bin/bash
# Runs a busybox container through corten's runc-compatible lifecycle:
# spec, create, state, start, state, (wait), state, delete, then `run`.
#
#   scripts/demo.sh [path/to/corten]
#
# Needs root and busybox-static (`make demo` installs it). Everything lives in
# a temporary directory and a private state root, removed at the end.
set -euo pipefail

CORTEN=$(realpath "${1:-target/release/corten}")
BUSYBOX=${BUSYBOX:-/bin/busybox}
[ "$(id -u)" = 0 ] || { echo "demo: run as root (containers need namespaces and cgroups)" >&2; exit 1; }
[ -x "$BUSYBOX" ] || { echo "demo: $BUSYBOX missing: apt-get install busybox-static" >&2; exit 1; }

WORK=$(mktemp -d /tmp/corten-demo.XXXXXX)
ROOT=$WORK/state
ID=corten-demo-$$
cleanup() {
    "$CORTEN" --root "$ROOT" delete --force "$ID" >/dev/null 2>&1 || true
    "$CORTEN" --root "$ROOT" delete --force "$ID-run" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

# A bundle: busybox and its applets as the root filesystem.
mkdir -p "$WORK/bundle/rootfs"/{bin,proc,sys,dev,tmp,etc}
cp "$BUSYBOX" "$WORK/bundle/rootfs/bin/busybox"
for applet in $("$BUSYBOX" --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$WORK/bundle/rootfs/bin/$applet"
done
echo 'root:x:0:0:root:/root:/bin/sh' > "$WORK/bundle/rootfs/etc/passwd"
echo 'root:x:0:' > "$WORK/bundle/rootfs/etc/group"

cd "$WORK/bundle"
step "$CORTEN" --version
step "$CORTEN" spec
# Not a terminal, and a script that shows where it runs, then waits for a signal.
jq '.process.terminal = false
    | .process.args = ["sh", "-c", "echo \"hello from $(hostname), pid $$, uid $(id -u)\"; cat /proc/self/status | grep ^Cap; trap \"echo got SIGTERM; exit 0\" TERM; sleep 30 & wait"]' \
    config.json > config.json.new && mv config.json.new config.json

# The container inherits create's stdio: here a file, shown below.
printf '\n\033[1m$ %s > %s\033[0m\n' "$CORTEN --root $ROOT create --bundle $WORK/bundle --pid-file $WORK/pid $ID" "$WORK/out"
"$CORTEN" --root "$ROOT" create --bundle "$WORK/bundle" --pid-file "$WORK/pid" "$ID" > "$WORK/out" 2>&1
echo "pid file: $(cat "$WORK/pid")"
step "$CORTEN" --root "$ROOT" state "$ID"
step "$CORTEN" --root "$ROOT" list
step "$CORTEN" --root "$ROOT" start "$ID"
sleep 0.3
step "$CORTEN" --root "$ROOT" state "$ID"
echo; echo "container output so far:"; cat "$WORK/out"
step "$CORTEN" --root "$ROOT" kill "$ID" TERM
for _ in $(seq 50); do
    "$CORTEN" --root "$ROOT" state "$ID" | grep -q '"stopped"' && break
    sleep 0.1
done
echo "container output:"; cat "$WORK/out"
step "$CORTEN" --root "$ROOT" state "$ID"
step "$CORTEN" --root "$ROOT" delete "$ID"
step "$CORTEN" --root "$ROOT" list

# `run`: foreground, the container's exit code becomes corten's.
jq '.process.args = ["sh", "-c", "echo run: in $(hostname) as pid $$; exit 7"]' config.json > config.json.new
mv config.json.new config.json
set +e
step "$CORTEN" --root "$ROOT" run --bundle "$WORK/bundle" "$ID-run"
code=$?
set -e
echo "exit code: $code"
[ "$code" = 7 ] || { echo "demo: expected exit code 7" >&2; exit 1; }
echo; echo "demo: done"
