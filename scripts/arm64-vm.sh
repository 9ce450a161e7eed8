#!/bin/bash
# Runs corten in an emulated arm64 machine: Debian's arm64 kernel booted by
# qemu-system-aarch64 (`-M virt`, TCG software emulation, no network device)
# from an initramfs holding arm64 busybox, the cross-built corten, the
# runtime's unit test binary and scripts/arm64-checks.sh.
#
#   scripts/arm64-vm.sh            (or: make test-arm64, which cross-builds first)
#
# Inside, scripts/arm64-checks.sh runs corten on a busybox bundle
# (scripts/busybox-rootfs.sh, with the VM's arm64 busybox): lifecycle
# (spec, create, state, start, run's exit code, kill, delete), namespaces,
# capabilities, seccomp (an SCMP_ARCH_AARCH64 filter returning errnos) and
# cgroup v2 limits; then the unit tests run on the real arm64 kernel
# (including those that qemu-user cannot run). The kernel and busybox
# packages are fetched with `apt-get download` and unpacked, never installed.
#
# Environment:
#   ARM64_CORTEN        the aarch64 corten (default target/aarch64-unknown-linux-gnu/release/corten,
#                       from make cross-arm64)
#   ARM64_UNIT          1 (default): also run the unit tests in the VM; 0: only the checks
#   ARM64_TIMEOUT       seconds before qemu is stopped (default 900)
#   ARM64_MEM, ARM64_CPUS, ARM64_CPU   VM memory in MiB (default 1024), CPUs (default 2),
#                       qemu CPU model (default cortex-a72: much faster under TCG
#                       than `max`, whose pointer authentication is costly to emulate)
#   ARM64_KERNEL_PKG    a linux-image-<version>-arm64 package instead of the one
#                       linux-image-arm64 depends on
#   RUSTC, RUSTDOC, CARGO_TARGET_DIR, CARGO   as make test-arm64 sets them
#                       (default: Debian's /usr/bin/rustc, target/arm64, cargo on PATH)
#
# Cache and logs: target/vm-arm64/ (packages, unpacked trees, initramfs,
# console.log). Every check prints PASS/FAIL with its name; the last line is
# the VM's `arm64: N passed, M failed`; the exit status is 0 only when
# M == 0 and N > 0.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"

TRIPLE=aarch64-unknown-linux-gnu
VM_DIR=$REPO/target/vm-arm64
CORTEN=${ARM64_CORTEN:-$REPO/target/$TRIPLE/release/corten}
WITH_UNIT=${ARM64_UNIT:-1}
VM_TIMEOUT=${ARM64_TIMEOUT:-900}
VM_MEM=${ARM64_MEM:-1024}
VM_CPUS=${ARM64_CPUS:-2}
VM_CPU=${ARM64_CPU:-cortex-a72}
export RUSTC=${RUSTC:-/usr/bin/rustc} RUSTDOC=${RUSTDOC:-/usr/bin/rustdoc}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target/arm64}
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
CARGO=${CARGO:-$(command -v cargo 2>/dev/null || echo /usr/bin/cargo)}

VM_NAME=arm64
# shellcheck source=scripts/vm-lib.sh
. "$REPO/scripts/vm-lib.sh"
mkdir -p "$VM_DIR"

# ---------------------------------------------------------------------------
# 1. Host packages (only when missing), Debian's arm64 kernel and busybox.
# ---------------------------------------------------------------------------
"$REPO/scripts/arm64-toolchain.sh" qemu-system-arm cpio jq
command -v qemu-system-aarch64 >/dev/null || die "qemu-system-aarch64 missing after install"
[ -x "$CORTEN" ] || die "$CORTEN not built (make cross-arm64)"

debian_kernel arm64 "$VM_DIR" "${ARM64_KERNEL_PKG:-}"
# Everything the VM relies on must be built in: it loads no modules.
check_kconfig BLK_DEV_INITRD RD_GZIP DEVTMPFS TMPFS SERIAL_AMBA_PL011_CONSOLE UNIX98_PTYS \
    CGROUPS MEMCG CGROUP_PIDS CGROUP_SCHED CFS_BANDWIDTH CGROUP_FREEZER CGROUP_BPF BPF_SYSCALL \
    NAMESPACES UTS_NS IPC_NS PID_NS NET_NS USER_NS SECCOMP SECCOMP_FILTER

deb_unpack busybox-static arm64 "$VM_DIR" "$VM_DIR/busybox-static"
BUSYBOX=$VM_DIR/busybox-static/bin/busybox
[ -x "$BUSYBOX" ] || die "no bin/busybox in busybox-static:arm64"

# The unit test binary of the runtime library (as make test-arm64-unit builds it).
UNIT_EXE=
if [ "$WITH_UNIT" = 1 ]; then
    log "building the aarch64 unit test binary into $CARGO_TARGET_DIR"
    json=$VM_DIR/cargo-test.json
    "$CARGO" test --locked --target "$TRIPLE" -p corten --lib --no-run --message-format=json >"$json"
    UNIT_EXE=$(jq -r 'select(.reason == "compiler-artifact" and .target.name == "corten"
                             and any(.target.kind[]; . == "lib") and .executable != null)
                      | .executable' "$json" | tail -n1)
    [ -n "$UNIT_EXE" ] || die "cargo reported no unit test executable for corten"
fi

# ---------------------------------------------------------------------------
# 2. The configs of the checks, from this corten's own `spec` (run under
#    qemu-user) changed with jq: stdio instead of a terminal, a writable
#    shared rootfs, /cmd.sh (written by each check) as the process.
# ---------------------------------------------------------------------------
STAGE=$VM_DIR/initramfs
INITRD=$VM_DIR/initramfs.cpio.gz
rm -rf "$STAGE"
mkdir -p "$STAGE"/{bin,sbin,usr/bin,usr/sbin,etc/arm64,root,proc,sys,dev,tmp,run,newroot,tests,lib}
chmod 1777 "$STAGE/tmp"

spec_dir=$VM_DIR/spec
rm -rf "$spec_dir" && mkdir -p "$spec_dir"
qemu-aarch64-static "$CORTEN" spec --bundle "$spec_dir"
CONFIGS=$STAGE/etc/arm64
jq '.process.terminal = false | .process.args = ["/bin/sh", "/cmd.sh"]
    | .root = {path: "/tmp/rootfs", readonly: false}
    | .hostname = "corten-arm64-ctr"' "$spec_dir/config.json" >"$CONFIGS/base.json"
jq '.process.capabilities |= map_values(map(select(. != "CAP_KILL")))' \
    "$CONFIGS/base.json" >"$CONFIGS/nokill.json"
jq '.linux.seccomp = {defaultAction: "SCMP_ACT_ALLOW",
      architectures: ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
      syscalls: [{names: ["mkdirat"], action: "SCMP_ACT_ERRNO", errnoRet: 1},
                 {names: ["fchmodat"], action: "SCMP_ACT_ERRNO", errnoRet: 28}]}' \
    "$CONFIGS/base.json" >"$CONFIGS/seccomp.json"
jq '.linux.cgroupsPath = "/corten-arm64/limits"
    | .linux.namespaces += [{type: "cgroup"}]
    | .linux.resources = {memory: {limit: 67108864, swap: 67108864}, pids: {limit: 16},
                          cpu: {quota: 50000, period: 100000}}' \
    "$CONFIGS/base.json" >"$CONFIGS/cgroups.json"

# The capability sets the checks expect in /proc/self/status, from the configs.
cap_mask() {
    jq -r '["CHOWN","DAC_OVERRIDE","DAC_READ_SEARCH","FOWNER","FSETID","KILL","SETGID",
            "SETUID","SETPCAP","LINUX_IMMUTABLE","NET_BIND_SERVICE","NET_BROADCAST",
            "NET_ADMIN","NET_RAW","IPC_LOCK","IPC_OWNER","SYS_MODULE","SYS_RAWIO",
            "SYS_CHROOT","SYS_PTRACE","SYS_PACCT","SYS_ADMIN","SYS_BOOT","SYS_NICE",
            "SYS_RESOURCE","SYS_TIME","SYS_TTY_CONFIG","MKNOD","LEASE","AUDIT_WRITE",
            "AUDIT_CONTROL","SETFCAP","MAC_OVERRIDE","MAC_ADMIN","SYSLOG","WAKE_ALARM",
            "BLOCK_SUSPEND","AUDIT_READ","PERFMON","BPF","CHECKPOINT_RESTORE"] as $names
           | [.process.capabilities.'"$2"'[] | ltrimstr("CAP_") as $n | $names | index($n)]
           | if any(. == null) then error("unknown capability") else . end
           | map(pow(2; .)) | add // 0' "$1" | xargs printf '%016x'
}
cat >"$STAGE/etc/arm64/expect.conf" <<CONF
EXPECT_CAPEFF_BASE=$(cap_mask "$CONFIGS/base.json" effective)
EXPECT_CAPBND_BASE=$(cap_mask "$CONFIGS/base.json" bounding)
EXPECT_CAPEFF_NOKILL=$(cap_mask "$CONFIGS/nokill.json" effective)
WITH_UNIT=$WITH_UNIT
CONF
log "expected capabilities: $(tr '\n' ' ' <"$STAGE/etc/arm64/expect.conf")"

# ---------------------------------------------------------------------------
# 3. The initramfs: busybox, corten, the unit tests, arm64 shared libraries.
# ---------------------------------------------------------------------------
stage_busybox "$BUSYBOX" "$(qemu-aarch64-static "$BUSYBOX" --list)"
cp "$CORTEN" "$STAGE/usr/bin/corten"
if [ -n "$UNIT_EXE" ]; then
    aarch64-linux-gnu-strip --strip-debug -o "$STAGE/tests/corten-unit" "$UNIT_EXE"
fi

# Debian's arm64 C library (libc6:arm64, what the binaries run against under
# qemu-user too) at its multiarch paths, and the loader at its ELF path.
copy_arm64_libs() {
    local lib src
    for lib in $(aarch64-linux-gnu-readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
        [ -e "$STAGE/lib/aarch64-linux-gnu/$lib" ] && continue
        src=/lib/aarch64-linux-gnu/$lib
        [ -e "$src" ] || die "$lib (needed by $(basename "$1")) not in /lib/aarch64-linux-gnu"
        mkdir -p "$STAGE/lib/aarch64-linux-gnu"
        cp -L "$src" "$STAGE/lib/aarch64-linux-gnu/$lib"
        copy_arm64_libs "$src"
    done
}
copy_arm64_libs "$STAGE/usr/bin/corten"
[ -z "$UNIT_EXE" ] || copy_arm64_libs "$STAGE/tests/corten-unit"
ln -sf aarch64-linux-gnu/ld-linux-aarch64.so.1 "$STAGE/lib/ld-linux-aarch64.so.1"

echo 'root:x:0:0:root:/root:/bin/sh' >"$STAGE/etc/passwd"
echo 'root:x:0:' >"$STAGE/etc/group"
mknod -m 600 "$STAGE/dev/console" c 5 1 2>/dev/null || true
cp "$REPO/scripts/vm-init.sh" "$STAGE/lib/vm-init.sh"
cp "$REPO/scripts/arm64-checks.sh" "$STAGE/lib/arm64-checks.sh"
cp "$REPO/scripts/busybox-rootfs.sh" "$STAGE/lib/busybox-rootfs.sh"
cat >"$STAGE/init" <<'INIT'
#!/bin/busybox sh
# PID 1 of the arm64 test VM (the shared part: scripts/vm-init.sh; the
# checks: scripts/arm64-checks.sh).
VM_NAME=arm64
. /lib/vm-init.sh
vm_leave_initramfs
vm_mount_basics
hostname corten-arm64
echo "arm64: booted in $(cut -d' ' -f1 /proc/uptime)s"
. /etc/arm64/expect.conf
. /lib/arm64-checks.sh
sync
poweroff -f
INIT
chmod 755 "$STAGE/init"
pack_initramfs

# ---------------------------------------------------------------------------
# 4. Boot (TCG, no network), stream the console, judge the summary line.
# ---------------------------------------------------------------------------
CONSOLE_LOG=$VM_DIR/console.log
run_vm "$CONSOLE_LOG" "$VM_TIMEOUT" qemu-system-aarch64 \
    -M virt -accel tcg -cpu "$VM_CPU" -m "$VM_MEM" -smp "$VM_CPUS" \
    -nographic -no-reboot -nic none \
    -kernel "$VMLINUZ" -initrd "$INITRD" \
    -append "console=ttyAMA0 panic=-1 quiet loglevel=3 cgroup_no_v1=all rdinit=/init"
judge_summary "$CONSOLE_LOG"
