#!/bin/bash
# `make deb`: a Debian package of what `make build` built (corten, the shim,
# man pages, completions, examples) in target/deb/corten_<version>_<arch>.deb.
# The binaries are static: the package depends on nothing. Install it with
# `sudo apt install ./target/deb/corten_<version>_<arch>.deb`, remove it
# with `sudo apt remove corten`. Needs no root: dpkg-deb --root-owner-group.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
case $TARGET_DIR in /*) ;; *) TARGET_DIR=$REPO/$TARGET_DIR ;; esac
OUT=$TARGET_DIR/deb
ROOT=$OUT/root

version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' "$REPO/Cargo.toml")
[ -n "$version" ] || { echo "make-deb: no version in Cargo.toml" >&2; exit 1; }
arch=$(dpkg --print-architecture)
# The binaries must be for the package's architecture (ELF e_machine).
machine=$(od -An -tx2 -j18 -N2 "$TARGET_DIR/release/corten" 2>/dev/null | tr -d ' ' || true)
case "$arch/$machine" in
amd64/003e | arm64/00b7) ;;
*) echo "make-deb: $TARGET_DIR/release/corten is missing or not a $arch binary (e_machine $machine): run make build" >&2; exit 1 ;;
esac

rm -rf "$ROOT"
mkdir -p "$ROOT/DEBIAN"
"$REPO/scripts/install.sh" "$ROOT" /usr --deb >/dev/null
size=$(du -sk --exclude=DEBIAN "$ROOT" | cut -f1)
cat >"$ROOT/DEBIAN/control" <<CONTROL
Package: corten
Version: $version
Architecture: $arch
Maintainer: corten developers <corten@localhost>
Installed-Size: $size
Section: admin
Priority: optional
Suggests: containerd, docker.io, podman, uidmap
Description: OCI container runtime compatible with runc, and a containerd shim
 corten runs containers from OCI bundles as runc does (same commands, flags,
 exit codes, and the messages clients read), so Docker, containerd, podman
 and Kubernetes can use it in runc's place. containerd-shim-corten-v2 is its containerd shim
 (runtime type io.containerd.corten.v2). Man pages, bash/zsh/fish
 completions and example configurations for Docker, containerd, Kubernetes,
 podman and CRI-O (/usr/share/doc/corten/examples) are included.
CONTROL
(cd "$ROOT" && find usr -type f -exec md5sum {} + | sort -k2) >"$ROOT/DEBIAN/md5sums"
find "$ROOT" -type d -exec chmod 0755 {} +
deb=$OUT/corten_${version}_${arch}.deb
rm -f "$OUT"/corten_*.deb
dpkg-deb --root-owner-group -Zxz --build "$ROOT" "$deb" >/dev/null
rm -rf "$ROOT"
echo "$deb"
