# shellcheck shell=dash disable=SC2016 # busybox ash; the single-quoted scripts run in the container
# The checks of the arm64 VM (scripts/arm64-vm.sh): sourced by its /init
# (busybox sh, PID 1) after the mounts, with /etc/arm64/expect.conf read.
# corten runs containers on a busybox rootfs at /tmp/rootfs, with the configs
# of /etc/arm64/*.json (`corten spec` output adapted on the host); each check
# writes the container's /cmd.sh and judges what the container left in /out
# (that is /tmp/rootfs/out here). Every check prints `PASS name` or
# `FAIL name: why`; the last line is `arm64: N passed, M failed`.

C=/usr/bin/corten
R=/tmp/rootfs
passed=0 failed=0

# check NAME FUNCTION: the function fails with a message on stdout/stderr.
# It runs in a subshell with its output in a file, not a pipe: a created
# container inherits that output and keeps it open until it exits.
check() {
    local name=$1
    shift
    if ("$@") >/tmp/check.out 2>&1; then
        passed=$((passed + 1))
        echo "PASS $name"
    else
        failed=$((failed + 1))
        echo "FAIL $name: $(tail -n 6 /tmp/check.out | tr '\n' '|')"
    fi
}
# Helpers for the check functions: each prints what went wrong and fails.
want() { # want DESCRIPTION EXPECTED ACTUAL
    [ "$2" = "$3" ] && return 0
    echo "$1: expected '$2', got '$3'"
    return 1
}
bundle() { # bundle CONFIG -> a bundle directory with that config.json
    mkdir -p "/tmp/bundles/$1"
    cp "/etc/arm64/$1.json" "/tmp/bundles/$1/config.json"
    echo "/tmp/bundles/$1"
}
cmd() { # cmd SCRIPT: what the next container runs; clears /out
    printf '%s\n' "$1" >"$R/cmd.sh"
    rm -f "$R/out" "$R/marker"
}
status() { $C state "$1" 2>/dev/null | sed -n 's/.*"status": *"\([a-z]*\)".*/\1/p'; }
state_pid() { $C state "$1" 2>/dev/null | sed -n 's/.*"pid": *\([0-9]*\).*/\1/p'; }
wait_status() { # wait_status ID STATUS (up to 30 s: emulation is slow)
    local i=0
    while [ $i -lt 300 ]; do
        [ "$(status "$1")" = "$2" ] && return 0
        sleep 0.1
        i=$((i + 1))
    done
    echo "$1 never reached status $2 (now: $(status "$1"))"
    return 1
}
out_value() { sed -n "s/^$1=//p" "$R/out" 2>/dev/null | head -n1; } # out_value KEY

# The rootfs: the VM's static (arm64) busybox and its applets.
. /lib/busybox-rootfs.sh
busybox_rootfs "$R"
echo "arm64: corten $($C --version | head -n1), $(uname -m)"

# ---- lifecycle ----------------------------------------------------------------
t_spec() {
    mkdir -p /tmp/spec && cd /tmp/spec || return 1
    $C spec || return 1
    grep -q '"ociVersion"' config.json && grep -q '"type": *"pid"' config.json ||
        { echo "config.json lacks ociVersion or the pid namespace"; return 1; }
    ! $C spec 2>/dev/null || { echo "a second spec overwrote config.json"; return 1; }
}
t_create() {
    cmd 'echo ran >/marker; exit 3'
    $C create --bundle "$(bundle base)" lc || return 1
    want "status after create" created "$(status lc)" || return 1
    local pid
    pid=$(state_pid lc)
    [ -n "$pid" ] && [ "$pid" -gt 0 ] && [ -d "/proc/$pid" ] || { echo "no live init pid in state: '$pid'"; return 1; }
    [ ! -e "$R/marker" ] || { echo "the process ran before start"; return 1; }
}
t_start() {
    $C start lc || return 1
    wait_status lc stopped || return 1
    want "the process's output after start" ran "$(cat "$R/marker" 2>/dev/null)"
}
t_state_stopped() {
    want "status" stopped "$(status lc)" || return 1
    want "pid once stopped" 0 "$(state_pid lc)"
}
t_delete() {
    $C delete lc || return 1
    [ ! -e /run/corten/lc ] || { echo "/run/corten/lc left behind"; return 1; }
    local err
    err=$($C state lc 2>&1) && { echo "state of a deleted container succeeded"; return 1; }
    echo "$err" | grep -q 'does not exist' || { echo "state error: $err"; return 1; }
}
t_run_exit_code() {
    cmd 'exit 7'
    local rc=0
    $C run --bundle "$(bundle base)" run7 || rc=$?
    want "exit code of run" 7 "$rc" || return 1
    [ ! -e /run/corten/run7 ] || { echo "run left /run/corten/run7"; return 1; }
}
t_kill() {
    cmd 'trap "echo term >/marker; exit 0" TERM; echo up >/out; while :; do sleep 1; done'
    $C create --bundle "$(bundle base)" k1 && $C start k1 || return 1
    wait_status k1 running || return 1
    local i=0
    while [ ! -e "$R/out" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
    $C kill k1 TERM || return 1
    wait_status k1 stopped || return 1
    want "the trap's output" term "$(cat "$R/marker" 2>/dev/null)" || return 1
    $C delete k1
}
t_kill_sigkill_and_force_delete() {
    cmd 'sleep 600'
    $C create --bundle "$(bundle base)" k2 && $C start k2 || return 1
    wait_status k2 running || return 1
    $C kill k2 KILL || return 1
    wait_status k2 stopped || return 1
    $C delete k2 || return 1
    cmd 'sleep 600'
    $C create --bundle "$(bundle base)" k3 && $C start k3 || return 1
    wait_status k3 running || return 1
    $C delete --force k3 || return 1
    [ ! -e /run/corten/k3 ] || { echo "delete --force left /run/corten/k3"; return 1; }
}
check "lifecycle: spec writes a default config.json" t_spec
check "lifecycle: create; state shows created with a live pid" t_create
check "lifecycle: start runs the process" t_start
check "lifecycle: state shows stopped" t_state_stopped
check "lifecycle: delete leaves no state dir" t_delete
check "lifecycle: run propagates exit code 7" t_run_exit_code
check "lifecycle: kill TERM reaches the container's trap" t_kill
check "lifecycle: kill KILL, delete --force of a running container" t_kill_sigkill_and_force_delete

# ---- namespaces -----------------------------------------------------------------
t_namespaces() {
    cmd 'exec >/out; echo "pid=$$"; echo "pidns=$(readlink /proc/self/ns/pid)"
         echo "utsns=$(readlink /proc/self/ns/uts)"; echo "mntns=$(readlink /proc/self/ns/mnt)"
         echo "hostname=$(hostname)"; echo "procs=$(echo /proc/[0-9]*)"'
    $C run --bundle "$(bundle base)" ns1 || return 1
    want "pid inside" 1 "$(out_value pid)" || return 1
    local pidns utsns mntns
    pidns=$(out_value pidns) utsns=$(out_value utsns) mntns=$(out_value mntns)
    case $pidns in pid:*) ;; *) echo "no pid ns link inside: '$pidns'"; return 1 ;; esac
    [ "$pidns" != "$(readlink /proc/1/ns/pid)" ] || { echo "same pid namespace as the VM's init: $pidns"; return 1; }
    [ "$utsns" != "$(readlink /proc/1/ns/uts)" ] || { echo "same uts namespace as the VM's init"; return 1; }
    [ "$mntns" != "$(readlink /proc/1/ns/mnt)" ] || { echo "same mount namespace as the VM's init"; return 1; }
    want "hostname inside" corten-arm64-ctr "$(out_value hostname)" || return 1
    want "the VM's own hostname" corten-arm64 "$(hostname)" || return 1
    # The shell (pid 1) and the subshell that listed /proc: the VM's own
    # processes and kernel threads are not in the container's pid namespace.
    case " $(out_value procs) " in *" /proc/1 "*) ;; *) echo "no /proc/1 inside: $(out_value procs)"; return 1 ;; esac
    [ "$(echo $(out_value procs) | wc -w)" -le 2 ] || { echo "processes visible inside: $(out_value procs)"; return 1; }
}
check "namespaces: pid 1 in a new pid ns, uts ns with the spec's hostname, mount ns" t_namespaces

# ---- capabilities ---------------------------------------------------------------
caps_of() { # caps_of CONFIG -> CapEff= CapBnd= lines in /out
    cmd 'exec >/out; sed -n "s/^\(Cap[A-Za-z]*\):[[:space:]]*/\1=/p" /proc/self/status'
    $C run --bundle "$(bundle "$1")" "caps-$1"
}
t_caps_default() {
    caps_of base || return 1
    want "CapEff" "$EXPECT_CAPEFF_BASE" "$(out_value CapEff)" || return 1
    want "CapBnd" "$EXPECT_CAPBND_BASE" "$(out_value CapBnd)"
}
t_caps_drop() {
    [ "$EXPECT_CAPEFF_NOKILL" != "$EXPECT_CAPEFF_BASE" ] || { echo "the two configs expect the same set"; return 1; }
    caps_of nokill || return 1
    want "CapEff without CAP_KILL" "$EXPECT_CAPEFF_NOKILL" "$(out_value CapEff)" || return 1
    # CAP_KILL is bit 5.
    [ $((0x$(out_value CapBnd) & 32)) = 0 ] || { echo "CAP_KILL still in the bounding set"; return 1; }
}
check "capabilities: CapEff/CapBnd are the spec's default set" t_caps_default
check "capabilities: CAP_KILL dropped from the spec is gone" t_caps_drop

# ---- seccomp ----------------------------------------------------------------------
seccomp_run() { # seccomp_run CONFIG ID
    cmd 'exec >/out 2>/errs; echo "seccomp=$(sed -n "s/^Seccomp:[[:space:]]*//p" /proc/self/status)"
         mkdir /made; echo "mkdir=$?"; chmod 600 /cmd.sh; echo "chmod=$?"
         touch /touched; echo "touch=$?"'
    rm -rf "$R/made" "$R/touched" "$R/errs"
    $C run --bundle "$(bundle "$1")" "$2"
}
t_seccomp_control() {
    seccomp_run base sc0 || return 1
    want "Seccomp mode without a filter" 0 "$(out_value seccomp)" || return 1
    want "mkdir status" 0 "$(out_value mkdir)" || return 1
    [ -d "$R/made" ] || { echo "mkdir did not create /made"; return 1; }
}
t_seccomp_filter() {
    seccomp_run seccomp sc1 || return 1
    want "Seccomp mode (2: filter)" 2 "$(out_value seccomp)" || return 1
    want "mkdir status" 1 "$(out_value mkdir)" || return 1
    [ ! -e "$R/made" ] || { echo "mkdirat was not denied: /made exists"; return 1; }
    grep -q 'mkdir: .*Operation not permitted' "$R/errs" || { echo "errs: $(cat "$R/errs")"; return 1; }
    want "chmod status" 1 "$(out_value chmod)" || return 1
    grep -q 'chmod: .*No space left on device' "$R/errs" || { echo "errs: $(cat "$R/errs")"; return 1; }
    want "touch status (openat allowed)" 0 "$(out_value touch)" || return 1
    [ -e "$R/touched" ] || { echo "/touched missing"; return 1; }
}
check "seccomp: without a filter mkdir works (control)" t_seccomp_control
check "seccomp: SCMP_ARCH_AARCH64 filter: mkdirat EPERM, fchmodat errnoRet 28, the rest allowed" t_seccomp_filter

# ---- cgroups (v2) -----------------------------------------------------------------
CG=/sys/fs/cgroup/corten-arm64/limits
t_cgroup_files() {
    # The fork loop runs last, in a subshell (a failed fork ends a shell),
    # and the shell then forks no more: builtins only.
    cmd 'exec >/out 2>/errs
         echo "memory.max=$(cat /sys/fs/cgroup/memory.max)"; echo "pids.max=$(cat /sys/fs/cgroup/pids.max)"
         echo "cpu.max=$(cat /sys/fs/cgroup/cpu.max)"; echo "cgroup=$(cat /proc/self/cgroup)"
         dd if=/dev/zero of=/dev/null bs=96M count=1 2>/dev/null; echo "dd=$?"
         ( i=0; while [ $i -lt 30 ]; do sleep 60 & i=$((i + 1)); done )
         read -r n </sys/fs/cgroup/pids.current; echo "procs=$n"'
    rm -f "$R/errs"
    $C create --bundle "$(bundle cgroups)" cg1 || return 1
    want "host: memory.max" 67108864 "$(cat $CG/memory.max)" || return 1
    want "host: pids.max" 16 "$(cat $CG/pids.max)" || return 1
    want "host: cpu.max" "50000 100000" "$(cat $CG/cpu.max)" || return 1
    want "host: the init in cgroup.procs" "$(state_pid cg1)" "$(cat $CG/cgroup.procs)" || return 1
    $C start cg1 || return 1
    wait_status cg1 stopped || return 1
    want "inside: memory.max" 67108864 "$(out_value memory.max)" || return 1
    want "inside: pids.max" 16 "$(out_value pids.max)" || return 1
    want "inside: cpu.max" "50000 100000" "$(out_value cpu.max)" || return 1
    want "inside: /proc/self/cgroup (cgroup namespace root)" "0::/" "$(out_value cgroup)" || return 1
    [ "$(out_value procs)" -le 16 ] || { echo "pids.current $(out_value procs) above pids.max 16"; return 1; }
    grep -q "can't fork" "$R/errs" || { echo "no fork failed under pids.max=16: $(cat "$R/errs")"; return 1; }
    want "dd of a 96 MiB buffer under memory.max=64M: killed by SIGKILL" 137 "$(out_value dd)" || return 1
    grep -q '^oom_kill [1-9]' $CG/memory.events || { echo "memory.events: $(cat $CG/memory.events)"; return 1; }
    $C delete cg1 || return 1
    [ ! -e $CG ] || { echo "delete left $CG"; return 1; }
}
check "cgroups: memory.max, pids.max, cpu.max written and enforced (fork fails, OOM kill)" t_cgroup_files

# ---- the unit tests on the real arm64 kernel --------------------------------------
if [ "$WITH_UNIT" = 1 ]; then
    echo "arm64: ===== unit tests (runtime library) on the arm64 kernel ====="
    start=$(cut -d' ' -f1 /proc/uptime)
    (cd /tmp && RUST_BACKTRACE=0 timeout 600 /tests/corten-unit --test-threads=2 >/tmp/unit.log 2>&1; echo $? >/tmp/unit.rc)
    grep -E '^test .* (FAILED|ok)$|^test result:' /tmp/unit.log | grep -E 'FAILED|seccomp::tests::kernel|devices::tests::kernel|symlink_cannot_escape|^test result:'
    line=$(grep '^test result:' /tmp/unit.log | tail -n1)
    p=$(echo "$line" | sed -n 's/.* \([0-9][0-9]*\) passed;.*/\1/p')
    f=$(echo "$line" | sed -n 's/.* \([0-9][0-9]*\) failed;.*/\1/p')
    if [ -z "$p" ] || [ "$(cat /tmp/unit.rc)" != 0 ]; then
        tail -n 40 /tmp/unit.log
        echo "FAIL unit tests: exit status $(cat /tmp/unit.rc), '$line'"
        failed=$((failed + ${f:-1}))
        passed=$((passed + ${p:-0}))
    else
        echo "PASS unit tests: $p passed ($start..$(cut -d' ' -f1 /proc/uptime)s)"
        passed=$((passed + p))
    fi
    if grep -q '^SKIP' /tmp/unit.log; then
        echo "FAIL unit tests: skipped on the real kernel:"
        grep '^SKIP' /tmp/unit.log
        failed=$((failed + 1))
    fi
fi

echo "arm64: checks done at $(cut -d' ' -f1 /proc/uptime)s"
echo "arm64: $passed passed, $failed failed"
