#!/bin/bash
# A stock Debian 12 host in a qemu VM: systemd as PID 1 on a pure cgroup v2
# hierarchy, Docker, containerd and podman running as their packaged systemd
# services with their default configuration (plus only what a user adds to
# use corten), and the freshly built corten and shim. The checks in
# scripts/systemd-checks.sh run there as a systemd service after boot.
#
#   scripts/systemd-vm.sh              (or: make test-systemd)
#   SYSTEMD_VM_CGROUP=v1 scripts/systemd-vm.sh   the same host booted with
#       systemd's legacy (v1 + hybrid) hierarchy, as on older distributions
#   SYSTEMD_VM_MODE=bench scripts/systemd-vm.sh  the systemd-driver
#       benchmark (scripts/systemd-bench.sh) instead of the checks (make bench)
#
# The system image is built once with debootstrap (systemd, dbus,
# containerd, docker.io, podman, runc, crun, busybox-static, Debian's
# kernel) and cached under target/systemd-vm/ (about 1.5 GB; delete the
# directory to rebuild it). Every run boots a copy-on-write overlay of it,
# so runs start from the same fresh system; the binaries and the checks come
# on a second small disk. The VM has no network device. Software emulation
# (TCG): no KVM needed.
#
# Environment:
#   SYSTEMD_VM_TIMEOUT   seconds before qemu is stopped (default 2400: the
#                        cgroup v2 boot also runs the CRI tests)
#   SYSTEMD_VM_MEM, SYSTEMD_VM_CPUS   memory in MiB (default 3072), CPUs (default 2)
#   SYSTEMD_VM_MIRROR    Debian mirror for the image (default: deb.debian.org)
#   SYSTEMD_VM_CRI=0     leave the CRI tests out (a quicker run while working on
#                        the other checks; make test always runs them)
#   CARGO_TARGET_DIR, CARGO   as for cargo
#
# The last line printed is the VM's `NAME: N passed, M failed` (NAME is
# systemd, systemd-v1 or systemd-bench); the exit status is 0 only when
# M == 0 and N > 0.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"

VM_DIR=$REPO/target/systemd-vm
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
case $TARGET_DIR in /*) ;; *) TARGET_DIR=$REPO/$TARGET_DIR ;; esac
CARGO=${CARGO:-$(command -v cargo 2>/dev/null || echo /usr/bin/cargo)}
VM_TIMEOUT=${SYSTEMD_VM_TIMEOUT:-2400}
VM_MEM=${SYSTEMD_VM_MEM:-3072}
VM_CPUS=${SYSTEMD_VM_CPUS:-2}
MIRROR=${SYSTEMD_VM_MIRROR:-http://deb.debian.org/debian}

# The image's packages: a stock host with the three clients and the two
# reference runtimes; kmod/udev/iproute2/apparmor as any Debian host has
# them (Debian's kernel enables AppArmor, and dockerd then loads its
# docker-default profile for every container). debootstrap
# does not pick providers of virtual packages: podman's container network
# stack is named (containernetworking-plugins, as apt picks on the host).
IMAGE_PACKAGES=systemd,systemd-sysv,dbus,udev,kmod,apparmor,iproute2,procps,util-linux,ca-certificates,linux-image-amd64,initramfs-tools,containerd,docker.io,podman,containernetworking-plugins,runc,crun,busybox-static,jq,e2fsprogs,dbus-user-session,uidmap
IMAGE_VERSION=2 # bump when the image's recipe changes

CGROUP=${SYSTEMD_VM_CGROUP:-v2}
MODE=${SYSTEMD_VM_MODE:-checks}
case $CGROUP/$MODE in
v2/checks) VM_NAME=systemd ;;
v1/checks) VM_NAME=systemd-v1 ;;
v2/bench) VM_NAME=systemd-bench ;;
*) echo "systemd-vm: SYSTEMD_VM_CGROUP=v1|v2, SYSTEMD_VM_MODE=checks|bench (bench on v2)" >&2; exit 2 ;;
esac
# What the checks script is told: the name it prints and what to run.
CMDLINE_CGROUP=
[ "$CGROUP" = v1 ] && CMDLINE_CGROUP="systemd.unified_cgroup_hierarchy=0"
# shellcheck source=scripts/vm-lib.sh
. "$REPO/scripts/vm-lib.sh"

mkdir -p "$VM_DIR"
ensure_packages qemu-system-x86 qemu-utils debootstrap e2fsprogs
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 missing after install"

# ---------------------------------------------------------------------------
# 1. The system image (cached).
# ---------------------------------------------------------------------------
BASE=$VM_DIR/base.img
STAMP=$VM_DIR/base.stamp
want_stamp="$IMAGE_VERSION $IMAGE_PACKAGES"
build_image() {
    local tree=$VM_DIR/tree
    log "building the system image with debootstrap (once; cached in $VM_DIR)"
    # A tree from an interrupted build is discarded (its mounts first).
    for m in proc sys dev; do umount "$tree/$m" 2>/dev/null || true; done
    rm -rf --one-file-system "$tree" "$BASE" "$STAMP"
    mkdir -p "$tree"
    debootstrap --variant=minbase --include="$IMAGE_PACKAGES" bookworm "$tree" "$MIRROR" >"$VM_DIR/debootstrap.log" 2>&1 ||
        die "debootstrap failed (see $VM_DIR/debootstrap.log)"

    # Boot: the kernel and the initramfs initramfs-tools made in the tree.
    cp "$(ls "$tree"/boot/vmlinuz-* | sort -V | tail -n1)" "$VM_DIR/vmlinuz"
    cp "$(ls "$tree"/boot/initrd.img-* | sort -V | tail -n1)" "$VM_DIR/initrd.img"
    echo corten-systemd >"$tree/etc/hostname"
    printf '/dev/vda / ext4 rw,relatime 0 1\n' >"$tree/etc/fstab"
    # No password, no login prompt: the checks run as a service and power off.
    sed -i 's/^root:[^:]*:/root::/' "$tree/etc/shadow"
    ln -sf /dev/null "$tree/etc/systemd/system/serial-getty@ttyS0.service"
    # What a user adds to use corten, and this project's network rules (no
    # bridge, no NAT, no private addresses; the VM has no network anyway).
    mkdir -p "$tree/etc/docker" "$tree/etc/containers/containers.conf.d" "$tree/etc/containerd"
    cat >"$tree/etc/docker/daemon.json" <<'JSON'
{
  "bridge": "none",
  "iptables": false,
  "ip-masq": false,
  "runtimes": { "corten": { "path": "/usr/local/bin/corten" } }
}
JSON
    cat >"$tree/etc/containers/containers.conf.d/corten.conf" <<'CONF'
[engine.runtimes]
corten = ["/usr/local/bin/corten"]
CONF
    # The checks: a service after the daemons, whose output goes to the
    # serial console; it powers the VM off when done.
    cat >"$tree/etc/systemd/system/corten-checks.service" <<'UNIT'
[Unit]
Description=corten checks on a stock systemd host
After=multi-user.target docker.service containerd.service
Wants=docker.service containerd.service

[Service]
Type=oneshot
ExecStartPre=/bin/mkdir -p /opt/corten
ExecStartPre=/bin/mount -o ro /dev/vdb /opt/corten
ExecStart=/bin/sh /opt/corten/systemd-checks.sh
StandardOutput=tty
StandardError=tty
TTYPath=/dev/ttyS0
ExecStopPost=/bin/systemctl --no-block poweroff
TimeoutStartSec=infinity

[Install]
WantedBy=multi-user.target
UNIT
    ln -sf ../corten-checks.service "$tree/etc/systemd/system/multi-user.target.wants/corten-checks.service"
    rm -rf "$tree/var/cache/apt/archives/"*.deb "$tree/var/lib/apt/lists/"*
    log "image tree: $(du -sh "$tree" | cut -f1)"
    mkfs.ext4 -q -F -L root -d "$tree" "$BASE" 4G || die "mkfs.ext4 -d failed"
    rm -rf --one-file-system "$tree"
    echo "$want_stamp" >"$STAMP"
}
[ -f "$BASE" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$want_stamp" ] || build_image
[ "${SYSTEMD_VM_BUILD_ONLY:-}" = 1 ] && { log "image ready: $BASE"; exit 0; }

# ---------------------------------------------------------------------------
# 2. This run: the binaries and the checks on a second disk, an overlay.
# ---------------------------------------------------------------------------
log "building corten and the shim (make build) into $TARGET_DIR"
CARGO_TARGET_DIR=$TARGET_DIR make --no-print-directory -C "$REPO" build CARGO="$CARGO"
STAGE=$VM_DIR/stage-$VM_NAME
rm -rf "$STAGE"
mkdir -p "$STAGE"
cp "$TARGET_DIR/release/corten" "$TARGET_DIR/release/containerd-shim-corten-v2" "$STAGE/"
cp "$REPO/scripts/systemd-checks.sh" "$REPO/scripts/systemd-bench.sh" "$REPO/scripts/busybox-rootfs.sh" "$STAGE/"
# The CRI tests (integration-tests/tests/cri.rs) for the cgroup v2 boot: a
# Kubernetes node's layout. The test binary (make integration's debug build,
# its debug info stripped) and the project's CNI plugin.
if [ "$MODE" = checks ] && [ "$CGROUP" = v2 ] && [ "${SYSTEMD_VM_CRI:-1}" = 1 ]; then
    log "building the CRI test binary"
    cri_exe=$(CARGO_TARGET_DIR=$TARGET_DIR "$CARGO" test --locked -p corten-integration-tests --test cri \
        --no-run --message-format=json |
        jq -r 'select(.reason == "compiler-artifact" and .target.name == "cri" and .executable != null) | .executable')
    [ -x "$cri_exe" ] || die "cargo reported no executable for the CRI tests"
    cp "$cri_exe" "$STAGE/cri"
    if command -v strip >/dev/null; then strip --strip-debug "$STAGE/cri"; fi
    cp "$REPO/integration-tests/cni/corten-linklocal" "$STAGE/"
fi
# The Debian package (make deb), installed and removed with apt there.
if [ "$MODE" = checks ] && [ "$CGROUP" = v2 ]; then
    deb=$(CARGO_TARGET_DIR=$TARGET_DIR "$REPO/scripts/make-deb.sh")
    cp "$deb" "$STAGE/corten.deb"
fi
echo "$VM_NAME $MODE $CGROUP ${SYSTEMD_BENCH_ROUNDS:-30}" >"$STAGE/mode"
TESTDISK=$VM_DIR/test-$VM_NAME.img
rm -f "$TESTDISK"
mkfs.ext4 -q -F -L corten -d "$STAGE" "$TESTDISK" 64M || die "mkfs.ext4 of the test disk failed"
OVERLAY=$VM_DIR/run-$VM_NAME.qcow2
rm -f "$OVERLAY"
qemu-img create -q -f qcow2 -b "$BASE" -F raw "$OVERLAY"

# ---------------------------------------------------------------------------
# 3. Boot (TCG, no network), stream the console, judge the summary line.
# ---------------------------------------------------------------------------
KVER=$(basename "$(readlink -f "$VM_DIR/vmlinuz")")
CONSOLE_LOG=$VM_DIR/console-$VM_NAME.log
run_vm "$CONSOLE_LOG" "$VM_TIMEOUT" qemu-system-x86_64 \
    -accel tcg -cpu max -m "$VM_MEM" -smp "$VM_CPUS" \
    -nographic -no-reboot -nic none \
    -drive "file=$OVERLAY,format=qcow2,if=virtio" \
    -drive "file=$TESTDISK,format=raw,if=virtio,readonly=on" \
    -kernel "$VM_DIR/vmlinuz" -initrd "$VM_DIR/initrd.img" \
    -append "root=/dev/vda rw console=ttyS0 panic=-1 systemd.show_status=0 $CMDLINE_CGROUP"
judge_summary "$CONSOLE_LOG"
