# shellcheck shell=dash # sourced by bash, dash and busybox ash alike
# The busybox root filesystem of the scripts' bundles: scripts/demo.sh,
# scripts/arm64-checks.sh (inside the arm64 VM, with the VM's arm64
# busybox), bench/bench.py; and the busybox of the test VMs' initramfs
# (scripts/vm-lib.sh). Sourced, not executed. The Rust suites assemble
# theirs with corten-testkit (testkit/src/rootfs.rs).
#
#   busybox_install BUSYBOX BINDIR [APPLETS]  BUSYBOX copied to BINDIR/busybox and one symlink per
#                                             applet (APPLETS, default: `BUSYBOX --list`)
#   busybox_rootfs ROOTFS [BUSYBOX]           ROOTFS/{bin,proc,sys,dev,tmp,etc}, busybox (default
#                                             /bin/busybox) with its applets, /etc/passwd and
#                                             /etc/group naming root

busybox_install() {
    local busybox=$1 bindir=$2 applets=${3:-} applet
    [ -n "$applets" ] || applets=$("$busybox" --list) || return 1
    cp "$busybox" "$bindir/busybox" || return 1
    for applet in $applets; do
        [ "$applet" = busybox ] || ln -sf busybox "$bindir/$applet" || return 1
    done
}

busybox_rootfs() {
    local rootfs=$1 busybox=${2:-/bin/busybox} dir
    for dir in bin proc sys dev tmp etc; do
        mkdir -p "$rootfs/$dir" || return 1
    done
    busybox_install "$busybox" "$rootfs/bin" || return 1
    echo 'root:x:0:0:root:/root:/bin/sh' >"$rootfs/etc/passwd"
    echo 'root:x:0:' >"$rootfs/etc/group"
}
