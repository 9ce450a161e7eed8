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
# (Not the docker and podman tests: the VM has no dockerd or podman.)
TESTS=${CGROUPV2_TESTS:-$(cd integration-tests/tests && ls -- *.rs | sed 's/\.rs$//' | grep -vxE 'docker|podman' | tr '\n' ' ')}
TEST_THREADS=${CGROUPV2_TEST_THREADS:-2}
VM_TIMEOUT=${CGROUPV2_TIMEOUT:-1200}
TEST_TIMEOUT=${CGROUPV2_TEST_TIMEOUT:-600}
VM_MEM=${CGROUPV2_MEM:-2048}
VM_CPUS=${CGROUPV2_CPUS:-2}
MODULES=${CGROUPV2_MODULES-fuse virtio_pci virtio_blk overlay}
EXTRA_APPEND=${CGROUPV2_APPEND:-}
BUSYBOX=/bin/busybox

log() { echo "cgroupv2-vm: $*" >&2; }
die() { log "error: $*"; exit 1; }

mkdir -p "$VM_DIR"

# ---------------------------------------------------------------------------
# 1. Host packages (only when missing) and Debian's kernel (cached).
# ---------------------------------------------------------------------------
APT_UPDATED=
apt_update() {
    [ -n "$APT_UPDATED" ] && return 0
    log "apt-get update"
    apt-get update -qq || true
    APT_UPDATED=1
}

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

missing=""
for p in qemu-system-x86 cpio busybox-static jq; do
    installed "$p" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    [ "$(id -u)" = 0 ] || die "need root to install$missing"
    log "installing:$missing"
    apt_update
    # shellcheck disable=SC2086 # word splitting of the package list is wanted
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 missing after install"

# The real kernel package behind the linux-image-amd64 metapackage.
kernel_pkg_from_apt() {
    { apt-cache depends linux-image-amd64 2>/dev/null || true; } |
        sed -n 's/^ *|\{0,1\}Depends: \(linux-image-[0-9][^ ]*-amd64\)$/\1/p' | head -n1 || true
}

KERNEL_PKG=${CGROUPV2_KERNEL_PKG:-}
if [ -z "$KERNEL_PKG" ]; then
    KERNEL_PKG=$(kernel_pkg_from_apt)
    if [ -z "$KERNEL_PKG" ]; then
        # No package lists: reuse the newest cached kernel, or update and ask again.
        KERNEL_PKG=$(find "$VM_DIR/kernel" -mindepth 2 -maxdepth 2 -name .unpacked 2>/dev/null |
            sed 's|/\.unpacked$||; s|.*/||' | sort -V | tail -n1 || true)
        if [ -z "$KERNEL_PKG" ]; then
            apt_update
            KERNEL_PKG=$(kernel_pkg_from_apt)
        fi
    fi
fi
[ -n "$KERNEL_PKG" ] || die "cannot resolve linux-image-amd64 to a kernel package (apt-cache depends linux-image-amd64)"

KERNEL_TREE=$VM_DIR/kernel/$KERNEL_PKG
if [ ! -e "$KERNEL_TREE/.unpacked" ]; then
    deb=$(find "$VM_DIR" -maxdepth 1 -name "${KERNEL_PKG}_*_amd64.deb" | sort -V | tail -n1)
    if [ -z "$deb" ]; then
        log "downloading $KERNEL_PKG (not installed on the host)"
        # -o APT::Sandbox::User=root: the _apt user may not write to target/vm/.
        (cd "$VM_DIR" && { apt-get download -o APT::Sandbox::User=root "$KERNEL_PKG" ||
            { apt_update && apt-get download -o APT::Sandbox::User=root "$KERNEL_PKG"; }; })
        deb=$(find "$VM_DIR" -maxdepth 1 -name "${KERNEL_PKG}_*_amd64.deb" | sort -V | tail -n1)
        [ -n "$deb" ] || die "apt-get download $KERNEL_PKG produced no .deb"
    fi
    log "unpacking $(basename "$deb")"
    rm -rf "$KERNEL_TREE"
    mkdir -p "$KERNEL_TREE"
    dpkg-deb -x "$deb" "$KERNEL_TREE"
    touch "$KERNEL_TREE/.unpacked"
fi

VMLINUZ=$(find "$KERNEL_TREE/boot" -maxdepth 1 -name 'vmlinuz-*' | sort -V | tail -n1)
[ -n "$VMLINUZ" ] || die "no vmlinuz in $KERNEL_TREE/boot"
KVER=${VMLINUZ##*/vmlinuz-}
KCONFIG=$KERNEL_TREE/boot/config-$KVER
MODDIR=$KERNEL_TREE/lib/modules/$KVER
[ -d "$MODDIR" ] || MODDIR=$KERNEL_TREE/usr/lib/modules/$KVER

# Everything the VM relies on must be built in (=y), or be loaded as a module.
if [ -f "$KCONFIG" ]; then
    for opt in BLK_DEV_INITRD RD_GZIP DEVTMPFS TMPFS SERIAL_8250_CONSOLE UNIX98_PTYS \
        CGROUPS MEMCG CGROUP_PIDS CGROUP_SCHED CPUSETS CGROUP_FREEZER BLK_CGROUP \
        NAMESPACES UTS_NS IPC_NS PID_NS NET_NS USER_NS POSIX_MQUEUE; do
        val=$(sed -n "s/^CONFIG_$opt=//p" "$KCONFIG")
        [ "$val" = y ] || log "warning: CONFIG_$opt=${val:-unset} in $KVER (not built in)"
    done
fi

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

# busybox and its applets.
cp "$BUSYBOX" "$STAGE/bin/busybox"
for applet in $("$BUSYBOX" --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$STAGE/bin/$applet"
done

# The runtime and the tests (debug info stripped: smaller, faster to unpack).
cp "$CORTEN" "$STAGE/usr/bin/corten"
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
for b in "$STAGE"/usr/bin/*; do copy_libs "$b"; done
for t in $TESTS; do copy_libs "$STAGE/tests/$t"; done

# Kernel modules (with their dependencies), in load order.
MODULE_ORDER=""
add_module() {
    local name=${1//-/_} ko dep
    case " $MODULE_ORDER " in *" $name.ko "*) return 0 ;; esac
    grep -qE "/${name}\.ko(\.[a-z]+)?$|/${name//_/-}\.ko(\.[a-z]+)?$" "$MODDIR/modules.builtin" 2>/dev/null &&
        { log "module $name is built in"; return 0; }
    ko=$(find "$MODDIR/kernel" \( -name "$name.ko*" -o -name "${name//_/-}.ko*" \) | head -n1)
    [ -n "$ko" ] || die "kernel module $name not found under $MODDIR"
    case $ko in
        *.ko.xz) xz -dc "$ko" >"$STAGE/lib/modules/$name.ko" ;;
        *.ko.zst) zstd -qdc "$ko" >"$STAGE/lib/modules/$name.ko" ;;
        *.ko.gz) gzip -dc "$ko" >"$STAGE/lib/modules/$name.ko" ;;
        *) cp "$ko" "$STAGE/lib/modules/$name.ko" ;;
    esac
    for dep in $(tr '\0' '\n' <"$STAGE/lib/modules/$name.ko" | sed -n 's/^depends=//p' | head -n1 | tr ',' ' '); do
        add_module "$dep"
    done
    MODULE_ORDER="$MODULE_ORDER $name.ko"
}
for m in $MODULES; do add_module "$m"; done
echo "$MODULE_ORDER" >"$STAGE/lib/modules/load-order"

echo 'root:x:0:0:root:/root:/bin/sh' >"$STAGE/etc/passwd"
echo 'root:x:0:' >"$STAGE/etc/group"
# The kernel opens /dev/console for init before anything is mounted.
mknod -m 600 "$STAGE/dev/console" c 5 1 2>/dev/null || true

cat >"$STAGE/init" <<'INIT'
#!/bin/busybox sh
# PID 1 of the cgroup v2 test VM. Stage 1 runs on the initramfs (rootfs), where
# pivot_root(2) is impossible: copy everything to a tmpfs and switch_root to it.
export PATH=/bin:/sbin:/usr/bin:/usr/sbin HOME=/root TERM=dumb
if [ "${CGV2_STAGE:-1}" = 1 ]; then
    /bin/busybox mount -t devtmpfs devtmpfs /dev
    exec </dev/console >/dev/console 2>&1
    mount -t tmpfs -o mode=0755 newroot /newroot
    for e in /*; do
        case $e in /newroot|/dev|/proc|/sys) continue ;; esac
        cp -a "$e" /newroot/
    done
    mkdir -p /newroot/dev /newroot/proc /newroot/sys
    mount --move /dev /newroot/dev
    export CGV2_STAGE=2
    exec switch_root /newroot /init
    echo "cgroupv2: switch_root failed"
    poweroff -f
fi

. /etc/cgroupv2-vm.conf
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mkdir -p /dev/pts /dev/shm /dev/mqueue
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts /dev/pts
[ -e /dev/ptmx ] || ln -s pts/ptmx /dev/ptmx
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs -o mode=0755 tmpfs /run
mount -t mqueue mqueue /dev/mqueue 2>/dev/null || true
if ! mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup; then
    echo "cgroupv2: cannot mount cgroup2 on /sys/fs/cgroup"
    echo "cgroupv2: 0 passed, 1 failed"
    poweroff -f
fi
ip link set lo up 2>/dev/null || true
hostname corten-cgroupv2
for m in $(cat /lib/modules/load-order); do
    insmod "/lib/modules/$m" && echo "cgroupv2: loaded module $m" || echo "cgroupv2: insmod $m failed"
done

for c in $(cat /sys/fs/cgroup/cgroup.controllers); do
    echo "+$c" >/sys/fs/cgroup/cgroup.subtree_control || echo "cgroupv2: cannot enable controller $c"
done
echo "cgroupv2: kernel $(uname -r), $(nproc) cpus, /sys/fs/cgroup: $(grep ' /sys/fs/cgroup ' /proc/mounts)"
echo "cgroupv2: controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
echo "cgroupv2: subtree_control: $(cat /sys/fs/cgroup/cgroup.subtree_control)"
echo "cgroupv2: booted in $(cut -d' ' -f1 /proc/uptime)s"

mkdir -p /tmp/corten-it
passed=0 failed=0 ignored=0 summary=""
for t in $CGV2_TESTS; do
    echo "cgroupv2: ===== $t (--test-threads=$CGV2_THREADS) ====="
    start=$(cut -d' ' -f1 /proc/uptime)
    # PID 1 (this shell) reaps orphaned container processes while it waits here.
    { CORTEN_BIN=/usr/bin/corten CORTEN_SHIM_BIN=/usr/bin/containerd-shim-corten-v2 RUST_BACKTRACE=0 timeout "$CGV2_TEST_TIMEOUT" \
        "/tests/$t" --test-threads="$CGV2_THREADS" 2>&1; echo $? >"/tmp/$t.rc"; } | tee "/tmp/$t.log"
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
CONF

log "initramfs: $(du -sh "$STAGE" | cut -f1) unpacked"
(cd "$STAGE" && find . -print0 | LC_ALL=C sort -z |
    cpio --null -o -H newc --owner=0:0 --quiet) | gzip -1 >"$INITRD"
log "initramfs: $INITRD ($(du -h "$INITRD" | cut -f1)), kernel $KVER"

# ---------------------------------------------------------------------------
# 4. Boot (TCG, no network), stream the console, judge the summary line.
# ---------------------------------------------------------------------------
CONSOLE_LOG=$VM_DIR/console.log
# A 16 MiB scratch disk (never mounted): a block device for the io limits.
DISK=$VM_DIR/scratch.img
[ -f "$DISK" ] || truncate -s 16M "$DISK"
APPEND="console=ttyS0 panic=-1 quiet loglevel=3 cgroup_no_v1=all rdinit=/init $EXTRA_APPEND"
log "booting $KVER: qemu-system-x86_64 -accel tcg -m $VM_MEM -smp $VM_CPUS -nic none (timeout ${VM_TIMEOUT}s)"
vm_start=$(date +%s)
set +e
# The firmware's terminal resets and carriage returns are dropped from the stream.
timeout --kill-after=10 "$VM_TIMEOUT" qemu-system-x86_64 \
    -accel tcg -cpu max -m "$VM_MEM" -smp "$VM_CPUS" \
    -nographic -no-reboot -nic none \
    -drive "file=$DISK,format=raw,if=virtio" \
    -kernel "$VMLINUZ" -initrd "$INITRD" -append "$APPEND" \
    </dev/null 2>&1 |
    sed -u -e 's/\x1b\[[0-9;?]*[A-Za-z]//g' -e 's/\x1bc//g' -e 's/\r$//' |
    tee "$CONSOLE_LOG"
status=("${PIPESTATUS[@]}")
set -e
log "VM ran for $(($(date +%s) - vm_start))s; console log: $CONSOLE_LOG"
[ "${status[0]}" = 0 ] || log "qemu exited with status ${status[0]}$([ "${status[0]}" = 124 ] && echo " (timeout after ${VM_TIMEOUT}s)")"

line=$(tr -d '\r' <"$CONSOLE_LOG" | grep -E '^cgroupv2: [0-9]+ passed, [0-9]+ failed$' | tail -n1 || true)
if [ -z "$line" ]; then
    log "no 'cgroupv2: N passed, M failed' line from the VM (see $CONSOLE_LOG)"
    exit 1
fi
read -r passed failed < <(echo "$line" | sed -E 's/^cgroupv2: ([0-9]+) passed, ([0-9]+) failed$/\1 \2/')
echo "$line"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
