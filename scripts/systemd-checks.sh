#!/bin/sh
# The checks of the stock systemd host VM (scripts/systemd-vm.sh), run
# there as root by corten-checks.service once the daemons are up: the
# host itself, then each client with runc and with corten side by side.
# Prints `ok NAME` or `not ok NAME: why` per check, and last
# `systemd: N passed, M failed`.
set -u
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
HERE=$(dirname "$0")
passed=0 failed=0
ok() { passed=$((passed + 1)); echo "systemd: ok $1"; }
not_ok() { failed=$((failed + 1)); echo "systemd: not ok $1: $2"; }
# check NAME COMMAND...: ok when COMMAND exits 0; its output is shown otherwise.
check() {
    local what=$1 out
    shift
    if out=$("$@" 2>&1); then ok "$what"; else not_ok "$what" "exit $?: $(echo "$out" | tail -n 3 | tr '\n' ' ')"; fi
}
# expect_exit NAME CODE COMMAND...: ok when COMMAND exits with CODE.
expect_exit() {
    local what=$1 want=$2 out got
    shift 2
    out=$("$@" 2>&1)
    got=$?
    if [ "$got" = "$want" ]; then ok "$what"; else not_ok "$what" "exit $got, want $want: $(echo "$out" | tail -n 3 | tr '\n' ' ')"; fi
}

echo "systemd: booted in $(cut -d' ' -f1 /proc/uptime)s; kernel $(uname -r)"
install -m 0755 "$HERE/corten" "$HERE/containerd-shim-corten-v2" /usr/local/bin/

# --- the host is what users run -------------------------------------------
check host.systemd-is-pid-1 test "$(cat /proc/1/comm)" = systemd
check host.pure-cgroup-v2 test "$(stat -f -c %T /sys/fs/cgroup)" = cgroup2fs
check host.docker-active systemctl is-active --quiet docker.service
check host.containerd-active systemctl is-active --quiet containerd.service
check host.docker-uses-the-systemd-driver test "$(docker info --format '{{.CgroupDriver}}')" = systemd
check host.docker-knows-corten sh -c "docker info --format '{{json .Runtimes}}' | grep -q corten"

# A busybox image, made locally (no registry).
. "$HERE/busybox-rootfs.sh"
rootfs=/tmp/busybox-rootfs
busybox_rootfs "$rootfs" /bin/busybox >/dev/null
tar -C "$rootfs" -cf /tmp/busybox.tar .
check host.image-imported sh -c 'docker import /tmp/busybox.tar busybox:local >/dev/null'

# --- Docker with its default (systemd) driver -------------------------------
for rt in runc corten; do
    expect_exit "docker.$rt.run-exit-code" 3 \
        docker run --rm --runtime "$rt" --network none busybox:local sh -c 'exit 3'
    expect_exit "docker.$rt.memory-limit-in-the-scope" 0 \
        docker run --rm --runtime "$rt" --network none --memory 64m busybox:local \
        sh -c 'test "$(cat /sys/fs/cgroup/memory.max)" = 67108864'
done

# --- corten directly: cgroupfs (works on any host) and --systemd-cgroup -----
bundle=/tmp/bundle
mkdir -p "$bundle"
(cd "$bundle" && corten spec)
jq --arg root "$rootfs" '.root.path = $root | .process.terminal = false | .process.args = ["sh", "-c", "exit 5"]' \
    "$bundle/config.json" >"$bundle/c.json" && mv "$bundle/c.json" "$bundle/config.json"
for rt in runc corten; do
    jq '.linux.cgroupsPath = "/corten-checks/'"$rt"'"' "$bundle/config.json" >"$bundle/c.json" && mv "$bundle/c.json" "$bundle/config.json"
    expect_exit "cli.$rt.cgroupfs-run" 5 "$rt" --root "/run/checks-$rt" run --bundle "$bundle" "fs-$rt"
    jq '.linux.cgroupsPath = "system.slice:checks:'"$rt"'"' "$bundle/config.json" >"$bundle/c.json" && mv "$bundle/c.json" "$bundle/config.json"
    expect_exit "cli.$rt.systemd-cgroup-run" 5 "$rt" --root "/run/checks-$rt" --systemd-cgroup run --bundle "$bundle" "sd-$rt"
    check "cli.$rt.no-scope-left" sh -c "! systemctl list-units --all --type scope --no-legend | grep -q checks-$rt"
done

# --- corten directly: a running container under the driver, and bad input ----
for rt in runc corten; do
    id=live-$rt
    jq --arg p "system.slice:checks:$id" '.linux.cgroupsPath = $p | .process.args = ["sleep", "1000"]' \
        "$bundle/config.json" >"$bundle/live.json"
    mkdir -p "/tmp/live-$rt"
    cp "$bundle/live.json" "/tmp/live-$rt/config.json"
    if "$rt" --root "/run/checks-$rt" --systemd-cgroup run -d --bundle "/tmp/live-$rt" "$id" </dev/null >/dev/null 2>&1; then
        check "cli.$rt.scope-active" systemctl is-active --quiet "checks-$id.scope"
        check "cli.$rt.ps-lists-the-init" sh -c "$rt --root /run/checks-$rt ps $id | grep -q sleep"
        check "cli.$rt.events-stats" sh -c "$rt --root /run/checks-$rt events --stats $id | jq -e '.data.memory.usage.usage > 0' >/dev/null"
        check "cli.$rt.kill-all" "$rt" --root "/run/checks-$rt" kill --all "$id" KILL
        sleep 1
        check "cli.$rt.delete" "$rt" --root "/run/checks-$rt" delete -f "$id"
        check "cli.$rt.no-unit-after-delete" sh -c "! systemctl list-units --all --type scope --no-legend | grep -q checks-$id"
    else
        not_ok "cli.$rt.systemd-cgroup-run-detached" "$("$rt" --root "/run/checks-$rt" --systemd-cgroup run -d --bundle "/tmp/live-$rt" "$id-x" </dev/null 2>&1 | tail -n 1)"
    fi
    for bad in "not-three-parts" "a/b.slice:checks:bad-$rt" "bad--name.slice:checks:bad-$rt"; do
        jq --arg p "$bad" '.linux.cgroupsPath = $p' "$bundle/config.json" >"/tmp/live-$rt/config.json"
        out=$("$rt" --root "/run/checks-$rt" --systemd-cgroup run --bundle "/tmp/live-$rt" "bad-$rt" </dev/null 2>&1)
        if [ $? -ne 0 ] && ! systemctl list-units --all --type scope --no-legend | grep -q "bad-$rt"; then
            ok "cli.$rt.bad-cgroups-path ($bad)"
        else
            not_ok "cli.$rt.bad-cgroups-path ($bad)" "accepted, or a unit was left: $(echo "$out" | tail -n 1)"
        fi
        "$rt" --root "/run/checks-$rt" delete -f "bad-$rt" >/dev/null 2>&1
    done
done

# --- Docker: update, pause, stop, and no unit left ----------------------------
for rt in runc corten; do
    name=upd-$rt
    if docker run -d --name "$name" --runtime "$rt" --network none --memory 64m busybox:local sleep 1000 >/dev/null 2>&1; then
        scope=$(systemctl list-units --type scope --no-legend | awk '{print $1}' | grep -- "$(docker inspect -f '{{.Id}}' "$name")" || true)
        check "docker.$rt.scope-is-a-systemd-unit" test -n "$scope"
        check "docker.$rt.update-memory" docker update --memory 128m --memory-swap 256m "$name"
        check "docker.$rt.update-read-back" sh -c "test \"\$(systemctl show -p MemoryMax --value $scope)\" = 134217728"
        check "docker.$rt.pause" docker pause "$name"
        check "docker.$rt.unpause" docker unpause "$name"
        check "docker.$rt.stop" docker stop -t 1 "$name"
        docker rm -f "$name" >/dev/null 2>&1
        check "docker.$rt.no-unit-left" sh -c "! systemctl list-units --all --type scope --no-legend | grep -q -- '$scope'"
    else
        not_ok "docker.$rt.run-detached" "$(docker run -d --name "$name-x" --runtime "$rt" --network none busybox:local true 2>&1 | tail -n 1)"
    fi
done

# --- containerd through runc's shim, SystemdCgroup, BinaryName = the runtime --
ctr_rootfs=/tmp/ctr-rootfs
cp -a "$rootfs" "$ctr_rootfs"
for rt in runc corten; do
    expect_exit "containerd.runc-shim.$rt.systemd-cgroup-run" 6 \
        ctr run --rm --rootfs --runc-binary "$(command -v "$rt")" --runc-systemd-cgroup \
        --cgroup "system.slice:ctr:$rt" "$ctr_rootfs" "ctr-$rt" /bin/sh -c 'exit 6'
    check "containerd.runc-shim.$rt.no-scope-left" sh -c "! systemctl list-units --all --type scope --no-legend | grep -q ctr-$rt"
done

# --- containerd through corten's own shim, SystemdCgroup = true ---------------
printf 'SystemdCgroup = true\n' >/tmp/corten-shim-systemd.toml
expect_exit "containerd.corten-shim.systemd-cgroup-run" 7 \
    ctr run --rm --rootfs --runtime io.containerd.corten.v2 \
    --runtime-config-path /tmp/corten-shim-systemd.toml \
    --cgroup "system.slice:ctr:corten-shim" "$ctr_rootfs" ctr-corten-shim /bin/sh -c 'exit 7'
check "containerd.corten-shim.no-scope-left" sh -c "! systemctl list-units --all --type scope --no-legend | grep -q ctr-corten-shim"

# --- podman as root with the systemd cgroup manager ---------------------------
check podman.image-imported sh -c 'podman import /tmp/busybox.tar busybox:local >/dev/null'
for rt in runc corten; do
    expect_exit "podman.$rt.run-exit-code" 4 \
        podman --runtime "$rt" --cgroup-manager systemd run --rm --network none busybox:local sh -c 'exit 4'
done

echo "systemd: $passed passed, $failed failed"
