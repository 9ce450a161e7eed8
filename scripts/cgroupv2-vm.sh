#!/bin/bash
# Runs integration tests inside a throw-away qemu VM whose /sys/fs/cgroup is a
# pure cgroup v2 hierarchy, with every controller enabled at the root, so the
# v2 code paths are tested on a host that runs cgroup v1 (or hybrid).
#
#   scripts/cgroupv2-vm.sh            (or: make test-cgroupv2)
#
# The VM boots Debian's stock kernel (downloaded with `apt-get download`, never
# installed on the host) from an initramfs holding static busybox, the release
# `corten`, the chosen integration test binaries and their shared libraries.
# It has no network device. Software emulation only (TCG): no KVM needed.
#
# Environment:
#   CGROUPV2_TESTS         test binaries to run (integration-tests/tests/<name>.rs),
#                          default: every file in integration-tests/tests but
#                          the docker and podman tests. The containerd tests run
#                          with the host's containerd and ctr (Debian's package)
#                          copied in, and the static shim: the shim's cgroup v2
#                          metrics and memory.events OOM path under a real containerd
#   CGROUPV2_TEST_THREADS  --test-threads inside the VM (default 2)
#   CGROUPV2_TIMEOUT       seconds before qemu is stopped (default 1200)
#   CGROUPV2_TEST_TIMEOUT  seconds per test binary inside the VM (default 600)
#   CGROUPV2_TEST_ARGS     extra arguments for every test binary (a name
#                          filter, --nocapture), for diagnosing one test
#   CGROUPV2_MEM, CGROUPV2_CPUS   VM memory in MiB (default 2048) and CPUs (default 2)
#   CGROUPV2_MODULES       kernel modules to load in the VM, default "fuse virtio_pci virtio_blk overlay"
#                          (for the /dev/fuse device tests, a small scratch disk
#                          the blkio/io tests throttle, and containerd's overlay
#                          snapshots of the imported test image; everything else used,
#                          cgroups, namespaces, tmpfs, devpts, mqueue, the serial
#                          console, is built into Debian's kernel)
#   CGROUPV2_KERNEL_PKG    a linux-image-<version>-amd64 package instead of the
#                          one linux-image-amd64 depends on
#   CGROUPV2_APPEND        extra kernel command line
#   CARGO_TARGET_DIR, CARGO   as for cargo (default target/, cargo on PATH)
#
# Cache and logs: target/vm/ (the kernel package and its unpacked tree, the
# initramfs, console.log). The last line printed is the VM's
# `cgroupv2: N passed, M failed`; the exit status is 0 only when it has
# M == 0 and N > 0.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"

VM_DIR=$REPO/target/vm
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
case $TARGET_DIR in /*) ;; *) TARGET_DIR=$REPO/$TARGET_DIR ;; esac
CARGO=${CARGO:-$(command -v cargo 2>/dev/null || echo /usr/bin/cargo)}

# Every integration test file by default: the whole runtime on cgroup v2.
# (Not the docker and podman tests: the VM has no dockerd or podman. Not the
# bad-input catalogue: 423 cases of input checking that does not depend on
# the cgroup version, 2 minutes on the host and far more under emulation;
# CGROUPV2_TESTS=bad_input runs it here. Not the CRI tests: they need runc's
# shim, iproute2's veth and util-linux's unshare/nsenter, which this busybox
# VM does not carry; CRI on cgroup v2 is checked in the systemd VM.)
TESTS=${CGROUPV2_TESTS:-$(cd integration-tests/tests && ls -- *.rs | sed 's/\.rs$//' | grep -vxE 'docker|podman|bad_input|cri' | tr '\n' ' ')}
TEST_THREADS=${CGROUPV2_TEST_THREADS:-2}
VM_TIMEOUT=${CGROUPV2_TIMEOUT:-1200}
TEST_TIMEOUT=${CGROUPV2_TEST_TIMEOUT:-600}
TEST_ARGS=${CGROUPV2_TEST_ARGS:-}
VM_MEM=${CGROUPV2_MEM:-2048}
VM_CPUS=${CGROUPV2_CPUS:-2}
MODULES=${CGROUPV2_MODULES-fuse virtio_pci virtio_blk overlay}
EXTRA_APPEND=${CGROUPV2_APPEND:-}
BUSYBOX=/bin/busybox

VM_NAME=cgroupv2
# shellcheck source=scripts/vm-lib.sh
. "$REPO/scripts/vm-lib.sh"

mkdir -p "$VM_DIR"

# ---------------------------------------------------------------------------
# 1. Host packages (only when missing) and Debian's kernel (cached).
# ---------------------------------------------------------------------------
ensure_packages qemu-system-x86 cpio busybox-static jq
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 missing after install"

debian_kernel amd64 "$VM_DIR" "${CGROUPV2_KERNEL_PKG:-}"

# Everything the VM relies on must be built in (=y), or be loaded as a module.
check_kconfig BLK_DEV_INITRD RD_GZIP DEVTMPFS TMPFS SERIAL_8250_CONSOLE UNIX98_PTYS \
    CGROUPS MEMCG CGROUP_PIDS CGROUP_SCHED CPUSETS CGROUP_FREEZER BLK_CGROUP \
    NAMESPACES UTS_NS IPC_NS PID_NS NET_NS USER_NS POSIX_MQUEUE

# ---------------------------------------------------------------------------
# 2. Build: the release runtime and the chosen integration test binaries.
# ---------------------------------------------------------------------------
log "building corten and the shim (make build) into $TARGET_DIR"
CARGO_TARGET_DIR=$TARGET_DIR make --no-print-directory -C "$REPO" build CARGO="$CARGO"
CORTEN=$TARGET_DIR/release/corten
SHIM=$TARGET_DIR/release/containerd-shim-corten-v2
[ -x "$CORTEN" ] || die "$CORTEN not built"
WITH_CONTAINERD=
case " $TESTS " in *" containerd "*)
    WITH_CONTAINERD=1
    for tool in containerd ctr; do
        command -v "$tool" >/dev/null || die "the containerd tests need the host's $tool (Debian's containerd package; make deps)"
    done
    [ -x "$SHIM" ] || die "$SHIM not built" ;;
esac

test_args=()
for t in $TESTS; do
    [ -f "integration-tests/tests/$t.rs" ] || die "no integration test named $t (integration-tests/tests/$t.rs)"
    test_args+=(--test "$t")
done
[ ${#test_args[@]} -gt 0 ] || die "CGROUPV2_TESTS is empty"

log "building test binaries: $TESTS"
json=$VM_DIR/cargo-test.json
CARGO_TARGET_DIR=$TARGET_DIR "$CARGO" test --locked -p corten-integration-tests \
    "${test_args[@]}" --no-run --message-format=json >"$json"

declare -A TEST_EXE=()
while IFS=$'\t' read -r name exe; do
    TEST_EXE[$name]=$exe
done < <(jq -r 'select(.reason == "compiler-artifact" and any(.target.kind[]; . == "test")
                       and .executable != null)
                | [.target.name, .executable] | @tsv' "$json")
for t in $TESTS; do
    [ -n "${TEST_EXE[$t]:-}" ] || die "cargo reported no executable for test $t"
done

# ---------------------------------------------------------------------------
# 3. The initramfs.
# ---------------------------------------------------------------------------
STAGE=$VM_DIR/initramfs
INITRD=$VM_DIR/initramfs.cpio.gz
rm -rf "$STAGE"
mkdir -p "$STAGE"/{bin,sbin,usr/bin,usr/sbin,etc,root,proc,sys,dev,tmp,run,newroot,tests,lib/modules}
chmod 1777 "$STAGE/tmp"

stage_busybox "$BUSYBOX" "$("$BUSYBOX" --list)"

# The runtime and the tests (debug info stripped: smaller, faster to unpack).
cp "$CORTEN" "$STAGE/usr/bin/corten"
# runc (with its libraries, below), for the tests that compare with it.
if [ -x /usr/sbin/runc ]; then cp /usr/sbin/runc "$STAGE/usr/sbin/runc"; fi
if [ -n "$WITH_CONTAINERD" ]; then
    cp "$SHIM" "$STAGE/usr/bin/containerd-shim-corten-v2"
    cp "$(command -v containerd)" "$(command -v ctr)" "$STAGE/usr/bin/"
fi
for t in $TESTS; do
    cp "${TEST_EXE[$t]}" "$STAGE/tests/$t"
    if command -v strip >/dev/null; then strip --strip-debug "$STAGE/tests/$t"; fi
done

# Shared libraries (and the dynamic loader) at their exact paths.
copy_libs() {
    local lib
    for lib in $({ ldd "$1" 2>/dev/null || true; } | grep -o '/[^ ]*' | sort -u); do
        [ -e "$STAGE$lib" ] && continue
        mkdir -p "$STAGE$(dirname "$lib")"
        cp -L "$lib" "$STAGE$lib"
    done
}
for b in "$STAGE"/usr/bin/* "$STAGE"/usr/sbin/*; do if [ -f "$b" ]; then copy_libs "$b"; fi; done
for t in $TESTS; do copy_libs "$STAGE/tests/$t"; done

# Kernel modules (with their dependencies), in load order.
for m in $MODULES; do add_module "$m"; done
echo "$MODULE_ORDER" >"$STAGE/lib/modules/load-order"

echo 'root:x:0:0:root:/root:/bin/sh' >"$STAGE/etc/passwd"
echo 'root:x:0:' >"$STAGE/etc/group"
# The kernel opens /dev/console for init before anything is mounted.
mknod -m 600 "$STAGE/dev/console" c 5 1 2>/dev/null || true

cp "$REPO/scripts/vm-init.sh" "$STAGE/lib/vm-init.sh"
cat >"$STAGE/init" <<'INIT'
#!/bin/busybox sh
# PID 1 of the cgroup v2 test VM (the shared part: scripts/vm-init.sh).
VM_NAME=cgroupv2
. /lib/vm-init.sh
vm_leave_initramfs
. /etc/cgroupv2-vm.conf
vm_mount_basics
hostname corten-cgroupv2
vm_load_modules
echo "cgroupv2: booted in $(cut -d' ' -f1 /proc/uptime)s"

mkdir -p /tmp/corten-it
passed=0 failed=0 ignored=0 summary=""
for t in $CGV2_TESTS; do
    echo "cgroupv2: ===== $t (--test-threads=$CGV2_THREADS) ====="
    start=$(cut -d' ' -f1 /proc/uptime)
    # PID 1 (this shell) reaps orphaned container processes while it waits here.
    # CORTEN_IT_TIME_SCALE: bounds on expected events x3 under emulation
    # (twenty concurrent `ctr run`s take 30 s here, 2 s on the host).
    { CORTEN_BIN=/usr/bin/corten CORTEN_SHIM_BIN=/usr/bin/containerd-shim-corten-v2 CORTEN_IT_TIME_SCALE=3 RUST_BACKTRACE=0 timeout "$CGV2_TEST_TIMEOUT" \
        "/tests/$t" --test-threads="$CGV2_THREADS" $CGV2_TEST_ARGS 2>&1; echo $? >"/tmp/$t.rc"; } | tee "/tmp/$t.log"
    rc=$(cat "/tmp/$t.rc")
    end=$(cut -d' ' -f1 /proc/uptime)
    # test result: ok. 5 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; ...
    line=$(grep '^test result:' "/tmp/$t.log" | tail -n1)
    if [ -n "$line" ]; then
        p=$(echo "$line" | sed -n 's/.* \([0-9][0-9]*\) passed;.*/\1/p')
        f=$(echo "$line" | sed -n 's/.* \([0-9][0-9]*\) failed;.*/\1/p')
        i=$(echo "$line" | sed -n 's/.* \([0-9][0-9]*\) ignored;.*/\1/p')
    else
        echo "cgroupv2: $t exited with status $rc without a 'test result:' line: counted as 1 failure"
        p=0 f=1 i=0
    fi
    passed=$((passed + ${p:-0})) failed=$((failed + ${f:-0})) ignored=$((ignored + ${i:-0}))
    summary="$summary $t: ${p:-0} passed, ${f:-0} failed, ${i:-0} ignored (exit $rc, $start..${end}s);"
done
sync
echo "cgroupv2: per binary:$summary"
skipped=$(cat /tmp/corten-it/skips.log 2>/dev/null | wc -l)
sed 's/^/cgroupv2: /' /tmp/corten-it/skips.log 2>/dev/null || true
echo "cgroupv2: total $passed passed, $failed failed, $ignored ignored, $skipped skipped checks"
echo "cgroupv2: $passed passed, $failed failed"
poweroff -f
INIT
chmod 755 "$STAGE/init"

cat >"$STAGE/etc/cgroupv2-vm.conf" <<CONF
CGV2_TESTS="$TESTS"
CGV2_THREADS="$TEST_THREADS"
CGV2_TEST_TIMEOUT="$TEST_TIMEOUT"
CGV2_TEST_ARGS="$TEST_ARGS"
CONF

pack_initramfs

# ---------------------------------------------------------------------------
# 4. Boot (TCG, no network), stream the console, judge the summary line.
# ---------------------------------------------------------------------------
CONSOLE_LOG=$VM_DIR/console.log
# A 16 MiB scratch disk (never mounted): a block device for the io limits.
DISK=$VM_DIR/scratch.img
[ -f "$DISK" ] || truncate -s 16M "$DISK"
APPEND="console=ttyS0 panic=-1 quiet loglevel=3 cgroup_no_v1=all rdinit=/init $EXTRA_APPEND"
run_vm "$CONSOLE_LOG" "$VM_TIMEOUT" qemu-system-x86_64 \
    -accel tcg -cpu max -m "$VM_MEM" -smp "$VM_CPUS" \
    -nographic -no-reboot -nic none \
    -drive "file=$DISK,format=raw,if=virtio" \
    -kernel "$VMLINUZ" -initrd "$INITRD" -append "$APPEND"
judge_summary "$CONSOLE_LOG"
