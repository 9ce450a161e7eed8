# shellcheck shell=dash # busybox ash
# The part of a test VM's /init (PID 1, busybox sh) shared by
# scripts/cgroupv2-vm.sh and scripts/arm64-vm.sh; copied into the initramfs
# as /lib/vm-init.sh and sourced by /init, which sets VM_NAME first.
#
#   vm_leave_initramfs  stage 1: copy the initramfs to a tmpfs and switch_root
#                       to it (pivot_root(2), which corten uses, is impossible
#                       on the initramfs itself); returns only in stage 2
#   vm_mount_basics     proc, sysfs, devpts, shm, tmp, run, mqueue, and cgroup2
#                       on /sys/fs/cgroup with every controller enabled
#   vm_load_modules     insmod the modules listed in /lib/modules/load-order
#   vm_fail_boot MSG    prints MSG and a "0 passed, 1 failed" summary, powers off

export PATH=/bin:/sbin:/usr/bin:/usr/sbin HOME=/root TERM=dumb

vm_fail_boot() {
    echo "$VM_NAME: $*"
    echo "$VM_NAME: 0 passed, 1 failed"
    poweroff -f
}

vm_leave_initramfs() {
    [ "${VM_STAGE:-1}" = 1 ] || return 0
    /bin/busybox mount -t devtmpfs devtmpfs /dev
    exec </dev/console >/dev/console 2>&1
    mkdir -p /newroot
    mount -t tmpfs -o mode=0755 newroot /newroot
    for e in /*; do
        case $e in /newroot | /dev | /proc | /sys) continue ;; esac
        cp -a "$e" /newroot/
    done
    mkdir -p /newroot/dev /newroot/proc /newroot/sys
    mount --move /dev /newroot/dev
    export VM_STAGE=2
    exec switch_root /newroot /init
    vm_fail_boot "switch_root failed"
}

vm_mount_basics() {
    mount -t proc proc /proc
    mount -t sysfs sysfs /sys
    mkdir -p /dev/pts /dev/shm /dev/mqueue /tmp /run
    mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts /dev/pts
    [ -e /dev/ptmx ] || ln -s pts/ptmx /dev/ptmx
    mount -t tmpfs -o mode=1777 tmpfs /dev/shm
    mount -t tmpfs -o mode=1777 tmpfs /tmp
    mount -t tmpfs -o mode=0755 tmpfs /run
    mount -t mqueue mqueue /dev/mqueue 2>/dev/null || true
    mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup ||
        vm_fail_boot "cannot mount cgroup2 on /sys/fs/cgroup"
    ip link set lo up 2>/dev/null || true
    for c in $(cat /sys/fs/cgroup/cgroup.controllers); do
        echo "+$c" >/sys/fs/cgroup/cgroup.subtree_control || echo "$VM_NAME: cannot enable controller $c"
    done
    echo "$VM_NAME: kernel $(uname -r) $(uname -m), $(nproc) cpus, /sys/fs/cgroup: $(grep ' /sys/fs/cgroup ' /proc/mounts)"
    echo "$VM_NAME: controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
    echo "$VM_NAME: subtree_control: $(cat /sys/fs/cgroup/cgroup.subtree_control)"
}

vm_load_modules() {
    local m
    for m in $(cat /lib/modules/load-order 2>/dev/null); do
        if insmod "/lib/modules/$m"; then
            echo "$VM_NAME: loaded module $m"
        else
            echo "$VM_NAME: insmod $m failed"
        fi
    done
}
