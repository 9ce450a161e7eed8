#!/bin/bash
# Installs, when missing, what cross-builds corten for arm64 and runs its
# tests under emulation (make cross-arm64, test-arm64-unit, test-arm64):
# Debian's rustc-web (/usr/bin/rustc, /usr/bin/rustdoc) with the aarch64
# standard library libstd-rust-web-dev:arm64 (same version: both are
# Multi-Arch: same), the aarch64 cross linker and C library, and
# qemu-aarch64-static. The rustup toolchain is not used for arm64: it cannot
# fetch other targets here. Idempotent: apt-get runs only when a package is
# missing, and `dpkg --add-architecture arm64` only when arm64 is not yet a
# foreign architecture.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
VM_NAME=arm64
# shellcheck source=scripts/vm-lib.sh
. "$REPO/scripts/vm-lib.sh"

if [ "$(dpkg --print-architecture)" != arm64 ] && ! dpkg --print-foreign-architectures | grep -qx arm64; then
    [ "$(id -u)" = 0 ] || die "need root for dpkg --add-architecture arm64"
    log "dpkg --add-architecture arm64"
    dpkg --add-architecture arm64
fi
# libc6:arm64 (a dependency of libstd-rust-web-dev:arm64) is what the tests
# run against under qemu-aarch64-static: /lib/ld-linux-aarch64.so.1 and
# /lib/aarch64-linux-gnu; libc6-dev-arm64-cross is only linked against.
ensure_packages rustc-web libstd-rust-web-dev:arm64 libc6:arm64 \
    gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user-static "$@"
for tool in /usr/bin/rustc /usr/bin/rustdoc aarch64-linux-gnu-gcc qemu-aarch64-static; do
    command -v "$tool" >/dev/null || die "$tool missing after install"
done
[ -d "$(/usr/bin/rustc --print sysroot)/lib/rustlib/aarch64-unknown-linux-gnu/lib" ] ||
    die "/usr/bin/rustc has no aarch64-unknown-linux-gnu standard library (libstd-rust-web-dev:arm64)"
