#!/bin/bash
# Installs what `make build` built: the two binaries, the man pages and
# shell completions corten-docgen generated (target/dist), the example
# configuration files and the documents. Used by `make install` and, with
# --deb, by scripts/make-deb.sh (Debian's layout: compressed man pages,
# zsh's vendor-completions, the copyright file).
#
#   scripts/install.sh DESTDIR PREFIX [--deb]     (DESTDIR may be "")
#   scripts/install.sh --uninstall DESTDIR PREFIX
#
# It never builds: run `make build` (as your user) first.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
case $TARGET_DIR in /*) ;; *) TARGET_DIR=$REPO/$TARGET_DIR ;; esac
DIST=$TARGET_DIR/dist

uninstall=0
if [ "${1:-}" = --uninstall ]; then uninstall=1; shift; fi
[ $# -ge 2 ] || { echo "usage: $0 [--uninstall] DESTDIR PREFIX [--deb]" >&2; exit 2; }
DEST=$1 PREFIX=$2 DEB=${3:-}

BIN=$DEST$PREFIX/bin
MAN=$DEST$PREFIX/share/man/man8
BASH_DIR=$DEST$PREFIX/share/bash-completion/completions
FISH_DIR=$DEST$PREFIX/share/fish/vendor_completions.d
if [ "$DEB" = --deb ]; then ZSH_DIR=$DEST$PREFIX/share/zsh/vendor-completions; else ZSH_DIR=$DEST$PREFIX/share/zsh/site-functions; fi
DOC=$DEST$PREFIX/share/doc/corten

if [ $uninstall = 1 ]; then
    rm -f "$BIN/corten" "$BIN/containerd-shim-corten-v2" "$MAN"/corten.8 "$MAN"/corten-*.8 \
        "$BASH_DIR/corten" "$ZSH_DIR/_corten" "$FISH_DIR/corten.fish"
    rm -rf "$DOC"
    echo "uninstalled corten from $DEST$PREFIX"
    exit 0
fi

for f in "$TARGET_DIR/release/corten" "$TARGET_DIR/release/containerd-shim-corten-v2" "$DIST/man/corten.8" "$DIST/completions/corten.bash"; do
    [ -e "$f" ] || { echo "install: $f is missing: run make build first (as your user, not as root)" >&2; exit 1; }
done

install -d "$BIN" "$MAN" "$BASH_DIR" "$ZSH_DIR" "$FISH_DIR" "$DOC/examples"
install -m 0755 "$TARGET_DIR/release/corten" "$TARGET_DIR/release/containerd-shim-corten-v2" "$BIN/"
for page in "$DIST"/man/*.8; do
    if [ "$DEB" = --deb ]; then
        gzip -9n <"$page" >"$MAN/$(basename "$page").gz"
        chmod 0644 "$MAN/$(basename "$page").gz"
    else
        install -m 0644 "$page" "$MAN/"
    fi
done
install -m 0644 "$DIST/completions/corten.bash" "$BASH_DIR/corten"
install -m 0644 "$DIST/completions/_corten" "$ZSH_DIR/_corten"
install -m 0644 "$DIST/completions/corten.fish" "$FISH_DIR/corten.fish"
(cd "$REPO/examples" && find . -type f) | while IFS= read -r f; do
    install -D -m 0644 "$REPO/examples/$f" "$DOC/examples/$f"
done
install -m 0644 "$REPO/README.md" "$DOC/README.md"
if [ "$DEB" = --deb ]; then
    gzip -9n <"$REPO/CHANGELOG.md" >"$DOC/changelog.gz"
    # Debian's own changelog of the package (policy 12.7): built from the
    # upstream version, as a native package's.
    version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' "$REPO/Cargo.toml")
    date=$(date -R -u -d "@${SOURCE_DATE_EPOCH:-$(git -C "$REPO" log -1 --format=%ct 2>/dev/null || date +%s)}")
    printf 'corten (%s) unstable; urgency=medium\n\n  * Built from the corten source tree (make deb); see changelog.gz.\n\n -- corten developers <corten@localhost>  %s\n' \
        "$version" "$date" | gzip -9n >"$DOC/changelog.Debian.gz"
    chmod 0644 "$DOC/changelog.Debian.gz"
    {
        echo "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/"
        echo "Upstream-Name: corten"
        echo
        echo "Files: *"
        echo "Copyright: the corten authors"
        echo "License: Apache-2.0"
        echo " On Debian systems, the full text of the Apache License 2.0 is in"
        echo " /usr/share/common-licenses/Apache-2.0."
    } >"$DOC/copyright"
    chmod 0644 "$DOC/changelog.gz" "$DOC/copyright"
else
    install -m 0644 "$REPO/CHANGELOG.md" "$REPO/LICENSE" "$DOC/"
fi
echo "installed corten in $DEST$PREFIX (binaries, $(ls "$DIST"/man/*.8 | wc -l) man pages, bash/zsh/fish completions, examples)"
