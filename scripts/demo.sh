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
# shellcheck source=scripts/busybox-rootfs.sh
. "$(dirname "$0")/busybox-rootfs.sh"
[ "$(id -u)" = 0 ] || { echo "demo: run as root (containers need namespaces and cgroups)" >&2; exit 1; }
[ -x "$BUSYBOX" ] || { echo "demo: $BUSYBOX missing: apt-get install busybox-static" >&2; exit 1; }

WORK=$(mktemp -d /tmp/corten-demo.XXXXXX)
ROOT=$WORK/state
ID=corten-demo-$$
DOCKERD_PID=
CONTAINERD_PID=
cleanup() {
    if [ -n "$CONTAINERD_PID" ]; then
        kill "$CONTAINERD_PID" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$CONTAINERD_PID" 2>/dev/null || break; sleep 0.1; done
        for cg in /sys/fs/cgroup/*/corten-demo-ctr; do rmdir "$cg" 2>/dev/null || true; done
    fi
    "$CORTEN" --root "$ROOT" delete --force "$ID" >/dev/null 2>&1 || true
    "$CORTEN" --root "$ROOT" delete --force "$ID-run" >/dev/null 2>&1 || true
    if [ -n "$DOCKERD_PID" ]; then
        kill "$DOCKERD_PID" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.1; done
        umount -R -l "$WORK/docker/data" 2>/dev/null || true
        for cg in /sys/fs/cgroup/*/corten-demo; do rmdir "$cg" 2>/dev/null || true; done
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

# A bundle: busybox and its applets as the root filesystem.
busybox_rootfs "$WORK/bundle/rootfs" "$BUSYBOX"

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

# Docker: a private dockerd (own data/exec root and socket, no bridge, no
# iptables) with corten added as a runtime, and the same busybox as an image.
if [ -x /usr/sbin/dockerd ] && [ -x /usr/bin/docker ]; then
    D=$WORK/docker
    mkdir -p "$D"
    echo; printf '\033[1m$ dockerd --add-runtime corten=%s --bridge=none --iptables=false ... &\033[0m\n' "$CORTEN"
    /usr/sbin/dockerd --data-root "$D/data" --exec-root "$D/exec" -H "unix://$D/docker.sock" \
        --pidfile "$D/docker.pid" --bridge=none --iptables=false --ip-masq=false --ip6tables=false \
        --storage-driver vfs --exec-opt native.cgroupdriver=cgroupfs --cgroup-parent /corten-demo \
        --add-runtime "corten=$CORTEN" --log-level warn >"$D/dockerd.log" 2>&1 &
    DOCKERD_PID=$!
    docker() { /usr/bin/docker -H "unix://$D/docker.sock" "$@"; }
    for _ in $(seq 150); do docker info >/dev/null 2>&1 && break; sleep 0.2; done
    tar -C "$WORK/bundle/rootfs" -cf "$D/busybox.tar" .
    docker import "$D/busybox.tar" busybox:corten >/dev/null
    step docker info --format 'runtimes: {{range $k, $v := .Runtimes}}{{$k}} {{end}}'
    step docker run --rm --runtime corten --network none busybox:corten \
        sh -c 'echo "hello from docker through corten: $(hostname)"; grep -E "^(Seccomp|NoNewPrivs):" /proc/self/status'
fi
# containerd: a private containerd (own root, state and socket, no CRI) with
# containerd-shim-corten-v2 on its PATH; ctr runs the busybox directory.
SHIM=$(dirname "$CORTEN")/containerd-shim-corten-v2
if [ -x /usr/bin/containerd ] && [ -x /usr/bin/ctr ] && [ -x "$SHIM" ]; then
    C=$WORK/containerd
    mkdir -p "$C/bin"
    cp "$SHIM" "$CORTEN" "$C/bin/"
    printf '%s\n' 'version = 2' "root = \"$C/root\"" "state = \"$C/state\"" \
        'disabled_plugins = ["io.containerd.grpc.v1.cri"]' '[grpc]' "  address = \"$C/c.sock\"" \
        '[ttrpc]' "  address = \"$C/c.sock.ttrpc\"" > "$C/config.toml"
    echo; printf '\033[1m$ containerd --config %s &   (shim on PATH)\033[0m\n' "$C/config.toml"
    PATH="$C/bin:$PATH" /usr/bin/containerd --config "$C/config.toml" >"$C/containerd.log" 2>&1 &
    CONTAINERD_PID=$!
    for _ in $(seq 100); do /usr/bin/ctr -a "$C/c.sock" version >/dev/null 2>&1 && break; sleep 0.2; done
    set +e
    step /usr/bin/ctr -a "$C/c.sock" run --rm --runtime io.containerd.corten.v2 --cgroup /corten-demo-ctr/c1 \
        --env PATH=/usr/sbin:/usr/bin:/sbin:/bin \
        --rootfs "$WORK/bundle/rootfs" demo-ctr sh -c 'echo "hello from ctr through containerd-shim-corten-v2"; exit 5'
    code=$?
    set -e
    echo "exit code: $code"
    [ "$code" = 5 ] || { echo "demo: expected exit code 5 from ctr run" >&2; exit 1; }
fi
echo; echo "demo: done"
