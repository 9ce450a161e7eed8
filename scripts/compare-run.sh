#!/bin/bash
# Side-by-side: `run` of /bin/true through corten and through runc on the same
# busybox bundle (default `spec` config), interleaved, N rounds each.
# Prints the median and mean wall time per runtime and their ratio.
#
#   scripts/compare-run.sh [path/to/corten] [rounds]
#
# A quick check, not the benchmark suite (that is `make bench`, issue 8).
set -euo pipefail
CORTEN=$(realpath "${1:-target/release/corten}")
ROUNDS=${2:-200}
RUNC=$(command -v runc || echo /usr/sbin/runc)
[ "$(id -u)" = 0 ] || { echo "compare-run: run as root" >&2; exit 1; }

WORK=$(mktemp -d /tmp/corten-compare.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/bundle/rootfs"/{bin,proc,sys,dev,tmp}
cp /bin/busybox "$WORK/bundle/rootfs/bin/"
ln -s busybox "$WORK/bundle/rootfs/bin/true"
cd "$WORK/bundle"
"$CORTEN" spec
jq '.process.terminal = false | .process.args = ["/bin/true"]' config.json > c && mv c config.json

now() { date +%s%N; }
for i in $(seq "$ROUNDS"); do
    for rt in corten runc; do
        bin=$CORTEN; [ "$rt" = runc ] && bin=$RUNC
        t0=$(now)
        "$bin" --root "$WORK/root-$rt" run --bundle "$WORK/bundle" "c$i" >/dev/null
        t1=$(now)
        echo "$(( (t1 - t0) / 1000 ))" >> "$WORK/$rt.us"
    done
done

stats() { sort -n "$1" | awk '{a[NR]=$1; s+=$1} END {printf "%.2f %.2f", a[int((NR+1)/2)]/1000, s/NR/1000}'; }
read -r cm cavg <<<"$(stats "$WORK/corten.us")"
read -r rm ravg <<<"$(stats "$WORK/runc.us")"
echo "| runtime | median ms | mean ms |"
echo "|---|---|---|"
echo "| corten $("$CORTEN" --version | head -1 | cut -d' ' -f3) | $cm | $cavg |"
echo "| runc $("$RUNC" --version | head -1 | cut -d' ' -f3) | $rm | $ravg |"
awk -v c="$cm" -v r="$rm" 'BEGIN {printf "corten/runc (median): %.3f over %d rounds each\n", c/r, '"$ROUNDS"'}'
