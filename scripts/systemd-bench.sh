#!/bin/bash
# The systemd-driver benchmark, run in the stock systemd host VM
# (SYSTEMD_VM_MODE=bench scripts/systemd-vm.sh, called by `make bench`):
# `run --systemd-cgroup` of /bin/true with corten, runc and crun on the
# same bundle, ROUNDS measured rounds each after 3 warm-up rounds, the
# runtimes taking turns in every round (rotated), so that a slow phase of
# the emulated machine hits all three alike. Each run starts a transient
# scope over D-Bus, waits for it, runs the container and stops the scope.
#
#   systemd-bench.sh NAME ROUNDS
#
# The same again with the cgroupfs driver (cgroupsPath /bench/<id>), to
# tell what the systemd driver costs from what any run costs in this
# emulated machine.
#
# The measured commands run with address-space randomisation off (setarch
# -R): under qemu's TCG a binary mapped at a new address has its code
# translated again on every run, so with it on the time measures how much
# code a run touches rather than how long it runs (ratios drift towards the
# smaller binary); with it off the VM's cgroupfs ratios match the host's
# native ones. A third set, the systemd driver with randomisation on, is
# kept for reference.
#
# Prints `NAME: samples RT MS MS ...` per runtime for the systemd driver,
# `NAME: samples-cgroupfs RT MS ...` for cgroupfs and `NAME: samples-aslr
# RT MS ...` for the systemd driver with randomisation (milliseconds, wall
# clock of the whole command), then `NAME: N passed, M failed` (a runtime
# and set whose every run succeeded is a pass).
set -u
NAME=$1 ROUNDS=$2
HERE=$(dirname "$0")
RUNTIMES=(corten runc crun)

. "$HERE/busybox-rootfs.sh"
rootfs=/tmp/bench-rootfs
busybox_rootfs "$rootfs" /bin/busybox >/dev/null
bundle=/tmp/bench-bundle
mkdir -p "$bundle"
(cd "$bundle" && corten spec)
jq --arg root "$rootfs" '.root.path = $root | .process.terminal = false | .process.args = ["true"]' \
    "$bundle/config.json" >"$bundle/c.json" && mv "$bundle/c.json" "$bundle/config.json"

declare -A samples failures
one() { # one SET RT ID: runs it, prints its milliseconds
    local set=$1 rt=$2 id=$3 t0 t1 path flag
    local -a prefix=(setarch -R)
    [ "$set" = samples-aslr ] && prefix=()
    if [ "$set" != samples-cgroupfs ]; then
        path="system.slice:bench:$id" flag=--systemd-cgroup
    else
        path="/bench/$id" flag=
    fi
    jq --arg p "$path" '.linux.cgroupsPath = $p' "$bundle/config.json" >"$bundle/$rt.json"
    mkdir -p "/tmp/b-$rt" && cp "$bundle/$rt.json" "/tmp/b-$rt/config.json"
    t0=$EPOCHREALTIME
    # shellcheck disable=SC2086
    "${prefix[@]}" "$rt" --root "/run/bench-$rt" $flag run --bundle "/tmp/b-$rt" "$id" </dev/null >/dev/null 2>>"/tmp/bench-$rt.err" || return 1
    t1=$EPOCHREALTIME
    echo "$(((${t1/./} - ${t0/./}) / 1000))"
}
passed=0 failed=0
for driver in samples samples-cgroupfs samples-aslr; do
    label=$driver
    for round in $(seq -2 "$ROUNDS"); do
        n=${#RUNTIMES[@]}
        for k in $(seq 0 $((n - 1))); do
            rt=${RUNTIMES[$(((round + k + 3) % n))]}
            if ms=$(one "$driver" "$rt" "$rt-${driver#samples}-$round"); then
                [ "$round" -gt 0 ] && samples[$driver/$rt]="${samples[$driver/$rt]:-} $ms"
            else
                failures[$driver/$rt]=$((${failures[$driver/$rt]:-0} + 1))
            fi
        done
    done
    for rt in "${RUNTIMES[@]}"; do
        echo "$NAME: $label $rt${samples[$driver/$rt]:-}"
        if [ "${failures[$driver/$rt]:-0}" = 0 ] && [ -n "${samples[$driver/$rt]:-}" ]; then
            passed=$((passed + 1))
        else
            failed=$((failed + 1))
            echo "$NAME: $rt ($driver) failed ${failures[$driver/$rt]:-0} runs: $(tail -n 2 "/tmp/bench-$rt.err" 2>/dev/null | tr '\n' ' ')"
        fi
    done
done
for rt in "${RUNTIMES[@]}"; do
    left=$(systemctl list-units --all --type scope --no-legend | grep -c "bench-$rt" || true)
    [ "$left" = 0 ] || echo "$NAME: $rt left $left scopes"
done
# Where corten's time goes: one run with --debug (its steps with µs;
# randomisation on, so the steps include the translation of their code).
jq --arg p "system.slice:bench:debug" '.linux.cgroupsPath = $p' "$bundle/config.json" >/tmp/b-corten/config.json
corten --debug --root /run/bench-corten --systemd-cgroup run --bundle /tmp/b-corten debug </dev/null 2>&1 >/dev/null |
    sed -n 's/.*msg="\(.*\)"$/\1/p' | sed "s/^/$NAME: debug /"
echo "$NAME: $passed passed, $failed failed"
