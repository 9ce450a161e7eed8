#!/bin/sh
# The checks of the stock systemd host VM (scripts/systemd-vm.sh), run
# there as root by corten-checks.service once the daemons are up: the
# host itself, then each client with runc and with corten side by side.
# Prints `NAME: ok CHECK` or `NAME: not ok CHECK: why` per check, and last
# `NAME: N passed, M failed`. NAME and the host's cgroup layout come from
# the `mode` file next to this script (systemd: v2; systemd-v1: systemd's
# legacy hybrid layout); mode `bench` runs systemd-bench.sh instead.
set -u
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
HERE=$(dirname "$0")
read -r NAME MODE CG ROUNDS <"$HERE/mode" || { NAME=systemd MODE=checks CG=v2 ROUNDS=30; }
install -m 0755 "$HERE/corten" "$HERE/containerd-shim-corten-v2" /usr/local/bin/
if [ "$MODE" = bench ]; then
    exec bash "$HERE/systemd-bench.sh" "$NAME" "$ROUNDS"
fi
passed=0 failed=0
ok() { passed=$((passed + 1)); echo "$NAME: ok $1"; }
not_ok() { failed=$((failed + 1)); echo "$NAME: not ok $1: $2"; }
skipped=0
# skip NAME WHY: a check that cannot run here, counted and said.
skip() { skipped=$((skipped + 1)); echo "$NAME: skip $1: $2"; }
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

echo "$NAME: booted in $(cut -d' ' -f1 /proc/uptime)s; kernel $(uname -r)"

# Where a scope's files are, per layout: the memory limit's file and the
# unit property systemd keeps it in; a scope's directory (in the memory
# hierarchy on v1); the file a container reads its own limit from.
# hier_dir HIERARCHY PATH: PATH's directory in that v1 hierarchy (on v2
# the one directory).
if [ "$CG" = v1 ]; then
    MEM_FILE=memory.limit_in_bytes MEM_PROP=MemoryLimit
    hier_dir() { echo "/sys/fs/cgroup/$1/$2"; }
    CPU_HIER=cpu,cpuacct CPU_FILE=cpu.cfs_quota_us CPU_HALF=50000
    IN_CONTAINER_MEM=/sys/fs/cgroup/memory/memory.limit_in_bytes
else
    MEM_FILE=memory.max MEM_PROP=MemoryMax
    hier_dir() { echo "/sys/fs/cgroup/$2"; }
    CPU_HIER=cpu CPU_FILE=cpu.max CPU_HALF="50000 100000"
    IN_CONTAINER_MEM=/sys/fs/cgroup/memory.max
fi
scope_dir() { hier_dir memory "$1"; }

# --- the host is what users run -------------------------------------------
check host.systemd-is-pid-1 test "$(cat /proc/1/comm)" = systemd
# What a user adds to make corten Docker's default runtime (the image's
# daemon.json declares the runtime); on v1 Docker keeps cgroupfs unless
# told, so there also the systemd driver.
add='{"default-runtime": "corten"}'
if [ "$CG" = v1 ]; then
    # systemd's legacy layout: v1 controllers, systemd's own cgroup2
    # hierarchy under unified/ (this project's test host has the same).
    check host.cgroup-v1-hybrid sh -c 'test "$(stat -f -c %T /sys/fs/cgroup)" = tmpfs && test "$(stat -f -c %T /sys/fs/cgroup/unified)" = cgroup2fs'
    add='{"default-runtime": "corten", "exec-opts": ["native.cgroupdriver=systemd"]}'
else
    check host.pure-cgroup-v2 test "$(stat -f -c %T /sys/fs/cgroup)" = cgroup2fs
fi
jq --argjson add "$add" '. + $add' /etc/docker/daemon.json >/tmp/daemon.json &&
    cp /tmp/daemon.json /etc/docker/daemon.json && systemctl restart docker.service
check host.docker-active systemctl is-active --quiet docker.service
check host.containerd-active systemctl is-active --quiet containerd.service
check host.docker-uses-the-systemd-driver test "$(docker info --format '{{.CgroupDriver}}')" = systemd
check host.docker-knows-corten sh -c "docker info --format '{{json .Runtimes}}' | grep -q corten"
check host.docker-default-runtime-is-corten test "$(docker info --format '{{.DefaultRuntime}}')" = corten

# Docker's flags for a runtime: runc named, corten as the default runtime
# (no flag).
runtime_flag() { [ "$1" = corten ] || echo "--runtime $1"; }

# A busybox image, made locally (no registry).
. "$HERE/busybox-rootfs.sh"
rootfs=/tmp/busybox-rootfs
busybox_rootfs "$rootfs" /bin/busybox >/dev/null
tar -C "$rootfs" -cf /tmp/busybox.tar .
check host.image-imported sh -c 'docker import /tmp/busybox.tar busybox:local >/dev/null'

# --- Docker with its default (systemd) driver -------------------------------
# shellcheck disable=SC2046
for rt in runc corten; do
    expect_exit "docker.$rt.run-exit-code" 3 \
        docker run --rm $(runtime_flag $rt) --network none busybox:local sh -c 'exit 3'
    expect_exit "docker.$rt.memory-limit-in-the-scope" 0 \
        docker run --rm $(runtime_flag $rt) --network none --memory 64m busybox:local \
        sh -c "test \"\$(cat $IN_CONTAINER_MEM)\" = 67108864"
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
    # shellcheck disable=SC2046
    if docker run -d --name "$name" $(runtime_flag $rt) --network none --memory 64m --cpus 0.5 --pids-limit 50 \
        busybox:local sleep 1000 >/dev/null 2>&1; then
        scope=$(systemctl list-units --type scope --no-legend | awk '{print $1}' | grep -- "$(docker inspect -f '{{.Id}}' "$name")" || true)
        check "docker.$rt.runs-on-$rt" test "$(docker inspect -f '{{.HostConfig.Runtime}}' "$name")" = "$rt"
        check "docker.$rt.scope-is-a-systemd-unit" test -n "$scope"
        check "docker.$rt.memory-in-systemctl-show" test "$(systemctl show -p $MEM_PROP --value "$scope")" = 67108864
        check "docker.$rt.cpus-in-the-file" test "$(cat "$(hier_dir $CPU_HIER "system.slice/$scope")/$CPU_FILE")" = "$CPU_HALF"
        check "docker.$rt.cpus-in-systemctl-show" test "$(systemctl show -p CPUQuotaPerSecUSec --value "$scope")" = 500ms
        check "docker.$rt.pids-in-the-file" test "$(cat "$(hier_dir pids "system.slice/$scope")/pids.max")" = 50
        check "docker.$rt.pids-in-systemctl-show" test "$(systemctl show -p TasksMax --value "$scope")" = 50
        check "docker.$rt.update-memory" docker update --memory 128m --memory-swap 256m "$name"
        check "docker.$rt.update-read-back" sh -c "test \"\$(systemctl show -p $MEM_PROP --value $scope)\" = 134217728"
        check "docker.$rt.update-in-the-file" sh -c "test \"\$(cat $(scope_dir "system.slice/$scope")/$MEM_FILE)\" = 134217728"
        check "docker.$rt.stats" sh -c "docker stats --no-stream --format '{{.MemUsage}}' $name | grep -v '^0B' | grep -q MiB"
        check "docker.$rt.pause" docker pause "$name"
        check "docker.$rt.unpause" docker unpause "$name"
        check "docker.$rt.stop" docker stop -t 1 "$name"
        docker rm -f "$name" >/dev/null 2>&1
        check "docker.$rt.no-unit-left" sh -c "! systemctl list-units --all --type scope --no-legend | grep -q -- '$scope'"
    else
        # shellcheck disable=SC2046
        not_ok "docker.$rt.run-detached" "$(docker run -d --name "$name-x" $(runtime_flag $rt) --network none busybox:local true 2>&1 | tail -n 1)"
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

# --- corten directly: limits as unit properties and files, update, pause ------
# The same limits through runc and corten; systemd's view (systemctl show)
# and the files must agree, before and after `update`, and stay after a
# daemon-reload. The device list is given to systemd too (DevicePolicy=strict
# with DeviceAllow, as runc does), so that a systemd that re-applies a unit's
# settings does not write `devices.allow a` on v1; systemd 252 here does not
# re-apply on daemon-reload (a build without the device properties passed
# the reload check, failing only device-policy-strict), so the reload check
# guards the files, and device-policy-strict the properties.
for rt in runc corten; do
    id=lim-$rt
    unit=checks-$id.scope
    dir=$(scope_dir "system.slice/$unit")
    mkdir -p "/tmp/$id"
    jq --arg p "system.slice:checks:$id" '.linux.cgroupsPath = $p | .process.args = ["sleep", "1000"]
        | .linux.resources.memory = {"limit": 67108864}
        | .linux.resources.pids = {"limit": 20}
        | .linux.resources.cpu = {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0"}' \
        "$bundle/config.json" >"/tmp/$id/config.json"
    if ! "$rt" --root "/run/checks-$rt" --systemd-cgroup run -d --bundle "/tmp/$id" "$id" </dev/null >/dev/null 2>"/tmp/$id/err"; then
        not_ok "cli.$rt.limits-run" "$(tail -n 1 "/tmp/$id/err")"
        continue
    fi
    prop() { systemctl show -p "$1" --value "$unit"; }
    check "cli.$rt.memory-property" test "$(prop $MEM_PROP)" = 67108864
    check "cli.$rt.memory-file" test "$(cat "$dir/$MEM_FILE")" = 67108864
    check "cli.$rt.tasks-property" test "$(prop TasksMax)" = 20
    check "cli.$rt.cpu-quota-property" test "$(prop CPUQuotaPerSecUSec)" = 500ms
    if [ "$CG" = v2 ]; then
        check "cli.$rt.allowed-cpus-property" test "$(prop AllowedCPUs)" = 0
        check "cli.$rt.cpu-max-file" test "$(cat "$dir/cpu.max")" = "50000 100000"
    fi
    check "cli.$rt.device-policy-strict" test "$(prop DevicePolicy)" = strict
    check "cli.$rt.update" "$rt" --root "/run/checks-$rt" update --memory 134217728 --pids-limit 30 "$id"
    check "cli.$rt.update-memory-property" test "$(prop $MEM_PROP)" = 134217728
    check "cli.$rt.update-memory-file" test "$(cat "$dir/$MEM_FILE")" = 134217728
    check "cli.$rt.update-tasks-property" test "$(prop TasksMax)" = 30
    check "cli.$rt.pause" "$rt" --root "/run/checks-$rt" pause "$id"
    check "cli.$rt.paused-state" sh -c "$rt --root /run/checks-$rt state $id | jq -e '.status == \"paused\"' >/dev/null"
    check "cli.$rt.resume" "$rt" --root "/run/checks-$rt" resume "$id"
    systemctl daemon-reload
    check "cli.$rt.limit-kept-after-daemon-reload" test "$(cat "$dir/$MEM_FILE")" = 134217728
    # /dev/mem's numbers (1:1) are not in the container's device list:
    # its node can be made (mknod of any char device is allowed) but not
    # read; /dev/null's (1:3), made the same way, can be.
    check "cli.$rt.allowed-device-readable" \
        "$rt" --root "/run/checks-$rt" exec --cap CAP_MKNOD "$id" sh -c 'mknod /dev/n c 1 3 && head -c1 /dev/n'
    check "cli.$rt.devices-closed-after-daemon-reload" sh -c \
        "! $rt --root /run/checks-$rt exec --cap CAP_MKNOD $id sh -c 'mknod /dev/m c 1 1 && head -c1 /dev/m >/dev/null' 2>/dev/null"
    "$rt" --root "/run/checks-$rt" delete -f "$id" >/dev/null 2>&1
    check "cli.$rt.no-unit-after-delete-f" sh -c "! systemctl list-units --all --type scope --no-legend | grep -q $unit"
    check "cli.$rt.no-directory-left" sh -c "! ls -d /sys/fs/cgroup/*/system.slice/$unit /sys/fs/cgroup/system.slice/$unit 2>/dev/null | grep -q ."
done

# --- a Kubernetes pod slice, as the CRI plugin names it ----------------------
# runc (its shim and binary) for reference, corten through runc's shim
# (BinaryName), and corten's own shim (SystemdCgroup = true).
pod=kubepods-burstable-pod0c0ffee0.slice
for via in runc corten-via-runc-shim corten-shim; do
    id=cri-$via
    case $via in
    runc) flags="--runc-binary $(command -v runc) --runc-systemd-cgroup" ;;
    corten-via-runc-shim) flags="--runc-binary /usr/local/bin/corten --runc-systemd-cgroup" ;;
    corten-shim) flags="--runtime io.containerd.corten.v2 --runtime-config-path /tmp/corten-shim-systemd.toml" ;;
    esac
    # shellcheck disable=SC2086
    if ! ctr run -d --rootfs $flags --cgroup "$pod:cri-containerd:$id" "$ctr_rootfs" "$id" /bin/sleep 1000 >/dev/null 2>"/tmp/$id.err"; then
        not_ok "containerd.pod-slice.$via.run" "$(tail -n 1 "/tmp/$id.err")"
        continue
    fi
    dir=$(scope_dir "kubepods.slice/kubepods-burstable.slice/$pod/cri-containerd-$id.scope")
    check "containerd.pod-slice.$via.nests" test -d "$dir"
    check "containerd.pod-slice.$via.scope-holds-the-task" sh -c "grep -qx \"\$(ctr task ls | awk '\$1 == \"$id\" {print \$2}')\" $dir/cgroup.procs"
    check "containerd.pod-slice.$via.metrics" sh -c "ctr task metrics $id | grep -qi memory"
    ctr task kill -s KILL "$id" >/dev/null 2>&1
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        ctr task ls | grep -q "^$id .*RUNNING" || break
        sleep 1
    done
    ctr task rm "$id" >/dev/null 2>&1
    ctr container rm "$id" >/dev/null 2>&1
    check "containerd.pod-slice.$via.scope-gone" sh -c "! systemctl list-units --all --type scope --no-legend | grep -q cri-containerd-$id"
done

# --- podman as root with the systemd cgroup manager ---------------------------
check podman.image-imported sh -c 'podman import /tmp/busybox.tar busybox:local >/dev/null'
for rt in runc corten; do
    expect_exit "podman.$rt.run-exit-code" 4 \
        podman --runtime "$rt" --cgroup-manager systemd run --rm --network none busybox:local sh -c 'exit 4'
done

# --- rootless: a user's own systemd, and podman as that user ----------------
# A user as `useradd` makes one (Debian gives it subordinate ids), with
# lingering so that its systemd and bus run without a login.
RL=rl
useradd --create-home --shell /bin/sh "$RL"
RL_UID=$(id -u "$RL")
RL_RUN=/run/user/$RL_UID
loginctl enable-linger "$RL"
for _ in $(seq 60); do [ -S "$RL_RUN/bus" ] && break; sleep 1; done
check rootless.user-bus test -S "$RL_RUN/bus"
check rootless.subordinate-ids grep -q "^$RL:" /etc/subuid
as_user() {
    runuser -u "$RL" -- env XDG_RUNTIME_DIR="$RL_RUN" DBUS_SESSION_BUS_ADDRESS="unix:path=$RL_RUN/bus" \
        HOME="/home/$RL" USER="$RL" PATH="$PATH" "$@"
}
chmod 644 /tmp/busybox.tar
RL_B=/home/$RL/bundle
as_user sh -c "mkdir -p $RL_B/rootfs && tar -C $RL_B/rootfs -xf /tmp/busybox.tar && cd $RL_B && corten spec --rootless"
as_user sh -c "cd $RL_B && jq '.process.terminal = false | .process.args = [\"sleep\", \"1000\"]
    | .linux.resources = {\"memory\": {\"limit\": 67108864}, \"pids\": {\"limit\": 64}}' config.json >c && mv c config.json"
USER_SLICE=/sys/fs/cgroup/user.slice/user-$RL_UID.slice/user@$RL_UID.service/user.slice
for rt in runc crun corten; do
    id=rl-$rt
    as_user sh -c "cd $RL_B && jq '.linux.cgroupsPath = \"user.slice:rl:$id\"' config.json >$id.json"
    if [ "$CG" = v1 ]; then
        # A user's systemd delegates nothing on v1: every runtime refuses.
        if [ "$rt" = corten ]; then
            out=$(as_user sh -c "cd $RL_B && cp $id.json config.json && corten --systemd-cgroup run -d $id" 2>&1)
            case "$out" in
                *"rootless systemd cgroup driver"*"cgroup v2"*) ok "rootless.$rt.systemd-v1-refused" ;;
                *) not_ok "rootless.$rt.systemd-v1-refused" "$out" ;;
            esac
            as_user corten delete --force "$id" >/dev/null 2>&1
        fi
        continue
    fi
    check "rootless.$rt.systemd-run" as_user sh -c "cd $RL_B && cp $id.json config.json && $rt --systemd-cgroup run -d $id </dev/null >/dev/null 2>&1"
    dir=$USER_SLICE/rl-$id.scope
    # crun runs the container in the scope's `container` child (its
    # subgroup for a delegated scope); runc and corten in the scope.
    cdir=$dir
    [ -d "$dir/container" ] && cdir=$dir/container
    check "rootless.$rt.scope-of-the-user-manager" as_user systemctl --user is-active --quiet "rl-$id.scope"
    check "rootless.$rt.memory-limit" grep -qx 67108864 "$dir/memory.max" "$cdir/memory.max"
    check "rootless.$rt.pids-limit" grep -qx 64 "$dir/pids.max" "$cdir/pids.max"
    out=$(as_user "$rt" exec "$id" id -u 2>&1)
    case "$rt:$out" in
        # crun 1.8 exec fails when the caller is outside the delegated
        # subtree (runuser here, a login shell's session scope for a user);
        # runc and corten leave the process in the caller's cgroup.
        crun:*cgroup.procs*"Permission denied"*) skip "rootless.$rt.exec" "crun refuses: $out" ;;
        *) check "rootless.$rt.exec" sh -c 'test "$0" = 0 || { echo "$0"; exit 1; }' "$out" ;;
    esac
    check "rootless.$rt.pause" as_user "$rt" pause "$id"
    check "rootless.$rt.paused" grep -qx 1 "$cdir/cgroup.freeze"
    check "rootless.$rt.resume" as_user "$rt" resume "$id"
    # ps lists the init (crun prints pids only).
    pid=$(as_user "$rt" state "$id" | jq -r .pid)
    out=$(as_user "$rt" ps "$id" 2>&1)
    check "rootless.$rt.ps" sh -c 'echo "$0" | grep -qw "$1" || { echo "$0"; exit 1; }' "$out" "$pid"
    check "rootless.$rt.delete" as_user "$rt" delete --force "$id"
    for _ in 1 2 3 4 5; do [ -d "$dir" ] || break; sleep 1; done
    check "rootless.$rt.scope-gone" test ! -d "$dir"
done
if [ "$CG" = v2 ]; then
    # The default path: user.slice:corten:<id>.
    as_user sh -c "cd $RL_B && jq 'del(.linux.cgroupsPath)' rl-corten.json >config.json"
    check rootless.corten.default-scope as_user sh -c "cd $RL_B && corten --systemd-cgroup run -d rl-def </dev/null >/dev/null 2>&1 && test -d $USER_SLICE/corten-rl-def.scope && corten delete --force rl-def"
fi

# Rootless podman, each runtime side by side (the user's systemd manages
# the cgroups on v2; on v1 podman runs without them and refuses pause).
check rootless.podman-import as_user sh -c 'cd && podman import /tmp/busybox.tar busybox:local >/dev/null'
for rt in /usr/sbin/runc /usr/bin/crun /usr/local/bin/corten; do
    n=$(basename "$rt")
    P="podman --runtime $rt"
    expect_exit "rootless.podman.$n.run-exit-code" 4 as_user sh -c "cd && $P run --rm --network none busybox:local sh -c 'id -u; exit 4'"
    check "rootless.podman.$n.run-d" as_user sh -c "cd && $P run -d --name p-$n --network none busybox:local sleep 1000 >/dev/null"
    expect_exit "rootless.podman.$n.exec-exit-code" 2 as_user sh -c "cd && $P exec p-$n sh -c 'exit 2'"
    if [ "$CG" = v2 ]; then
        check "rootless.podman.$n.pause" as_user sh -c "cd && $P pause p-$n >/dev/null && $P inspect -f '{{.State.Status}}' p-$n | grep -qx paused"
        check "rootless.podman.$n.unpause" as_user sh -c "cd && $P unpause p-$n >/dev/null && $P inspect -f '{{.State.Status}}' p-$n | grep -qx running"
    fi
    check "rootless.podman.$n.stop" as_user sh -c "cd && $P stop -t 1 p-$n >/dev/null && $P inspect -f '{{.State.Status}} {{.State.ExitCode}}' p-$n | grep -qx 'exited 137'"
    check "rootless.podman.$n.rm" as_user sh -c "cd && $P rm p-$n >/dev/null && test -z \"\$($P ps -aq)\""
done

# --- Kubernetes' CRI on this cgroup v2 node: the CRI tests, three handlers ---
# (integration-tests/tests/cri.rs: a private containerd with its CRI plugin;
# one check per test and handler.)
if [ "$CG" = v2 ] && [ -x "$HERE/cri" ]; then
    mkdir -p /tmp/corten-it
    rm -f /tmp/cri-results.log
    install -m 0755 "$HERE/cri" /usr/local/bin/corten-cri-tests
    CORTEN_BIN=/usr/local/bin/corten CORTEN_SHIM_BIN=/usr/local/bin/containerd-shim-corten-v2 \
        CORTEN_CNI_PLUGIN="$HERE/corten-linklocal" CORTEN_CRI_RESULTS=/tmp/cri-results.log \
        CORTEN_IT_TIME_SCALE=3 RUST_BACKTRACE=0 \
        timeout 1200 corten-cri-tests --test-threads=1 --nocapture >/tmp/cri.log 2>&1
    grep -E '^CRI (.*FAILED|shim memory)' /tmp/cri.log | cut -c1-400 | sed "s/^/$NAME: /"
    while read -r t h v; do
        case $v in
        ok) ok "cri.$h.$t" ;;
        skipped) skip "cri.$h.$t" "see the CRI lines above" ;;
        *) not_ok "cri.$h.$t" "see the CRI lines above" ;;
        esac
    done </tmp/cri-results.log
    [ -s /tmp/cri-results.log ] || not_ok cri.ran "$(tail -n 5 /tmp/cri.log | tr '\n' ' ')"
fi

# --- the Debian package (make deb) on this stock Debian 12 host -------------
# Installed with apt as a user would, used from /usr/bin (a container, the
# man page, the completion, corten check), removed with apt: nothing left.
if [ -f "$HERE/corten.deb" ]; then
    cp "$HERE/corten.deb" /tmp/corten_test.deb
    check deb.apt-install sh -c 'DEBIAN_FRONTEND=noninteractive apt-get install -y /tmp/corten_test.deb >/tmp/apt.log 2>&1 || { tail -n 5 /tmp/apt.log; exit 1; }'
    check deb.binaries-in-usr-bin sh -c 'test -x /usr/bin/corten && test -x /usr/bin/containerd-shim-corten-v2 && /usr/bin/corten --version | grep -q "^corten version"'
    check deb.man-page sh -c 'test -s /usr/share/man/man8/corten.8.gz && test -s /usr/share/man/man8/corten-run.8.gz && zcat /usr/share/man/man8/corten-run.8.gz | grep -q "^.TH CORTEN-RUN 8"'
    check deb.bash-completion sh -c 'bash -c ". /usr/share/bash-completion/completions/corten && complete -p corten" | grep -q corten'
    check deb.examples sh -c 'jq -e .runtimes.corten /usr/share/doc/corten/examples/docker/daemon.json >/dev/null && test -s /usr/share/doc/corten/copyright'
    # corten check on a systemd, pure cgroup v2 host: ready, systemd found,
    # CLONE_INTO_CGROUP available (Debian 12's 6.1 kernel).
    rm -f /tmp/check.json
    check deb.check-ready sh -c '/usr/bin/corten check --format json >/tmp/check.json && test "$(jq -r .ready /tmp/check.json)" = true && test "$(jq -r ".checks[] | select(.name == \"systemd\") | .status" /tmp/check.json)" = ok'
    check deb.check-clone-into-cgroup sh -c 'test "$(jq -r ".checks[] | select(.name == \"CLONE_INTO_CGROUP\") | .status" /tmp/check.json)" = ok'
    jq '.linux.cgroupsPath = "/corten-checks/deb" | .process.args = ["sh", "-c", "echo from-the-package; exit 7"]' \
        "$bundle/config.json" >/tmp/deb-config.json
    mkdir -p /tmp/deb-bundle && mv /tmp/deb-config.json /tmp/deb-bundle/config.json
    check deb.run-a-container sh -c 'out=$(/usr/bin/corten --root /run/checks-deb run --bundle /tmp/deb-bundle deb1 </dev/null); test $? = 7 && test "$out" = from-the-package'
    check deb.apt-remove sh -c 'DEBIAN_FRONTEND=noninteractive apt-get remove -y corten >/tmp/apt.log 2>&1 || { tail -n 5 /tmp/apt.log; exit 1; }'
    check deb.nothing-left sh -c '! test -e /usr/bin/corten && ! test -e /usr/share/man/man8/corten.8.gz && ! test -e /usr/share/bash-completion/completions/corten && ! dpkg -s corten >/dev/null 2>&1'
fi

echo "$NAME: $skipped skipped"
echo "$NAME: $passed passed, $failed failed"
