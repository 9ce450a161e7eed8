# shellcheck shell=bash
# Shell functions shared by the qemu test VMs (scripts/cgroupv2-vm.sh,
# scripts/arm64-vm.sh), run on the host. Sourced, not executed; the caller
# sets VM_NAME first: log lines start with "$VM_NAME-vm:", the VM's summary
# line with "$VM_NAME:". scripts/vm-init.sh is the VM-side counterpart.
#
#   ensure_packages PKG...          install the missing ones (scripts/ensure-packages.sh)
#   deb_unpack NAME ARCH CACHE TREE apt-get download NAME:ARCH (never installed), dpkg-deb -x into TREE
#   debian_kernel ARCH VM_DIR [PKG] Debian's kernel for ARCH: sets KERNEL_PKG KERNEL_TREE VMLINUZ KVER KCONFIG MODDIR
#   check_kconfig OPT...            warns about every CONFIG_OPT of $KCONFIG that is not built in
#   stage_busybox BUSYBOX APPLETS   busybox + one symlink per applet into $STAGE/bin (scripts/busybox-rootfs.sh)
#   add_module NAME                 a module (and its dependencies) into $STAGE/lib/modules, in load order
#   pack_initramfs                  $STAGE -> $INITRD (newc cpio, gzip)
#   run_vm LOG TIMEOUT QEMU ARGS... the VM with its console streamed to stdout and LOG
#   judge_summary LOG               prints "$VM_NAME: N passed, M failed" from LOG; fails unless M == 0 < N

log() { echo "$VM_NAME-vm: $*" >&2; }
die() {
    log "error: $*"
    exit 1
}

APT_UPDATED=
apt_update() {
    [ -n "$APT_UPDATED" ] && return 0
    log "apt-get update"
    apt-get update -qq || true
    APT_UPDATED=1
}

VM_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/busybox-rootfs.sh
. "$VM_LIB_DIR/busybox-rootfs.sh"

ensure_packages() {
    "$VM_LIB_DIR/ensure-packages.sh" --for "$VM_NAME-vm" "$@" || die "could not install: $*"
}

deb_unpack() {
    local name=$1 arch=$2 cache=$3 tree=$4 deb
    [ -e "$tree/.unpacked" ] && return 0
    mkdir -p "$cache"
    deb=$(find "$cache" -maxdepth 1 -name "${name}_*_${arch}.deb" | sort -V | tail -n1)
    if [ -z "$deb" ]; then
        log "downloading $name:$arch (not installed on the host)"
        # -o APT::Sandbox::User=root: the _apt user may not write to target/.
        (cd "$cache" && { apt-get download -q -o APT::Sandbox::User=root "$name:$arch" ||
            { apt_update && apt-get download -q -o APT::Sandbox::User=root "$name:$arch"; }; }) >&2
        deb=$(find "$cache" -maxdepth 1 -name "${name}_*_${arch}.deb" | sort -V | tail -n1)
        [ -n "$deb" ] || die "apt-get download $name:$arch produced no .deb"
    fi
    log "unpacking $(basename "$deb")"
    rm -rf "$tree"
    mkdir -p "$tree"
    dpkg-deb -x "$deb" "$tree"
    touch "$tree/.unpacked"
}

# The real kernel package behind the linux-image-ARCH metapackage.
kernel_pkg_from_apt() {
    local arch=$1
    { apt-cache depends "linux-image-$arch:$arch" 2>/dev/null || true; } |
        sed -n "s/^ *|\{0,1\}Depends: \(linux-image-[0-9][^ :]*-$arch\)\(:$arch\)\{0,1\}\$/\1/p" | head -n1 || true
}

debian_kernel() {
    local arch=$1 dir=$2
    KERNEL_PKG=${3:-}
    if [ -z "$KERNEL_PKG" ]; then
        KERNEL_PKG=$(kernel_pkg_from_apt "$arch")
        if [ -z "$KERNEL_PKG" ]; then
            # No package lists: reuse the newest cached kernel, or update and ask again.
            KERNEL_PKG=$(find "$dir/kernel" -mindepth 2 -maxdepth 2 -name .unpacked 2>/dev/null |
                sed 's|/\.unpacked$||; s|.*/||' | sort -V | tail -n1 || true)
            if [ -z "$KERNEL_PKG" ]; then
                apt_update
                KERNEL_PKG=$(kernel_pkg_from_apt "$arch")
            fi
        fi
    fi
    [ -n "$KERNEL_PKG" ] || die "cannot resolve linux-image-$arch to a kernel package (apt-cache depends linux-image-$arch:$arch)"

    KERNEL_TREE=$dir/kernel/$KERNEL_PKG
    deb_unpack "$KERNEL_PKG" "$arch" "$dir" "$KERNEL_TREE"
    VMLINUZ=$(find "$KERNEL_TREE/boot" -maxdepth 1 -name 'vmlinuz-*' | sort -V | tail -n1)
    [ -n "$VMLINUZ" ] || die "no vmlinuz in $KERNEL_TREE/boot"
    KVER=${VMLINUZ##*/vmlinuz-}
    KCONFIG=$KERNEL_TREE/boot/config-$KVER
    MODDIR=$KERNEL_TREE/lib/modules/$KVER
    [ -d "$MODDIR" ] || MODDIR=$KERNEL_TREE/usr/lib/modules/$KVER
}

check_kconfig() {
    local opt val
    [ -f "$KCONFIG" ] || return 0
    for opt in "$@"; do
        val=$(sed -n "s/^CONFIG_$opt=//p" "$KCONFIG")
        [ "$val" = y ] || log "warning: CONFIG_$opt=${val:-unset} in $KVER (not built in)"
    done
}

stage_busybox() {
    busybox_install "$1" "$STAGE/bin" "$2" || die "stage busybox $1 into $STAGE/bin"
}

MODULE_ORDER=""
add_module() {
    local name=${1//-/_} ko dep
    case " $MODULE_ORDER " in *" $name.ko "*) return 0 ;; esac
    grep -qE "/${name}\.ko(\.[a-z]+)?$|/${name//_/-}\.ko(\.[a-z]+)?$" "$MODDIR/modules.builtin" 2>/dev/null &&
        { log "module $name is built in"; return 0; }
    ko=$(find "$MODDIR/kernel" \( -name "$name.ko*" -o -name "${name//_/-}.ko*" \) | head -n1)
    [ -n "$ko" ] || die "kernel module $name not found under $MODDIR"
    mkdir -p "$STAGE/lib/modules"
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

pack_initramfs() {
    log "initramfs: $(du -sh "$STAGE" | cut -f1) unpacked"
    (cd "$STAGE" && find . -print0 | LC_ALL=C sort -z |
        cpio --null -o -H newc --owner=0:0 --quiet) | gzip -1 >"$INITRD"
    log "initramfs: $INITRD ($(du -h "$INITRD" | cut -f1)), kernel $KVER"
}

run_vm() {
    local console_log=$1 timeout=$2 start status
    shift 2
    log "booting $KVER: $1 (timeout ${timeout}s)"
    start=$(date +%s)
    set +e
    # The firmware's terminal resets and carriage returns are dropped from the stream.
    timeout --kill-after=10 "$timeout" "$@" </dev/null 2>&1 |
        sed -u -e 's/\x1b\[[0-9;?]*[A-Za-z]//g' -e 's/\x1bc//g' -e 's/\r$//' |
        tee "$console_log"
    status=${PIPESTATUS[0]}
    set -e
    log "VM ran for $(($(date +%s) - start))s; console log: $console_log"
    [ "$status" = 0 ] || log "qemu exited with status $status$([ "$status" = 124 ] && echo " (timeout after ${timeout}s)")"
}

judge_summary() {
    local console_log=$1 line passed failed
    line=$(tr -d '\r' <"$console_log" | grep -E "^$VM_NAME: [0-9]+ passed, [0-9]+ failed\$" | tail -n1 || true)
    if [ -z "$line" ]; then
        log "no '$VM_NAME: N passed, M failed' line from the VM (see $console_log)"
        return 1
    fi
    read -r passed failed < <(echo "$line" | sed -E "s/^$VM_NAME: ([0-9]+) passed, ([0-9]+) failed\$/\1 \2/")
    echo "$line"
    [ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
}
