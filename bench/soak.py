#!/usr/bin/env python3
"""`make soak`: what 1000 container lifecycles and 300 execs leave behind,
corten and runc side by side (issue 16).

Run as root from the repository root after `make build`:

    python3 bench/soak.py [--runs 1000] [--execs 300] [--kills 100]

For each runtime: counts of mounts, cgroup directories, state entries,
processes, open file descriptions and memfds before and after
`--runs` x `run` of /bin/true (each in its own cgroup) and `--execs` x
`exec` into one running container (then deleted), printed as a markdown
table and written to target/bench/soak.json. Then `--kills` x `create`
SIGKILLed at a uniformly random point of that runtime's own (median)
`create` duration, each followed by `delete --force`: the rounds that left
anything of the container (cgroup directories, a state entry, live
processes), in a second table. A non-zero "after - before"
of the runtime's own leftovers (its state entries, its cgroups, its
processes) makes the script exit 1; host-wide counts (mounts, fds,
memfds, processes) are reported, as other programs on the machine move
them too.

Uses bench.py's set-up (busybox bundle under /tmp, cgroups under
/corten-bench-<pid>/, its clean-up): nothing else on the host is touched.
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (the shared set-up)


def count_mounts():
    with open("/proc/self/mountinfo") as f:
        return sum(1 for _ in f)


def count_processes():
    return sum(1 for e in os.listdir("/proc") if e.isdigit())


def open_files():
    """Allocated file handles, host-wide (/proc/sys/fs/file-nr)."""
    with open("/proc/sys/fs/file-nr") as f:
        return int(f.read().split()[0])


def count_memfds():
    n = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("/memfd:"):
                        n += 1
                except OSError:
                    pass
        except OSError:
            pass
    return n


def count_cgroups(parent):
    """Directories below the soak's cgroup parent, in every hierarchy."""
    n = 0
    for h in os.listdir(bench.CGROUP_ROOT):
        top = os.path.join(bench.CGROUP_ROOT, h, parent)
        if os.path.islink(os.path.join(bench.CGROUP_ROOT, h)):
            continue
        for _, dirs, _ in os.walk(top):
            n += len(dirs)
    return n


def runtime_processes(root):
    return len(bench.processes_with([root]))


def snapshot(b, rt):
    return {
        "mounts": count_mounts(),
        "cgroups": count_cgroups(b.cg_parent),
        "state_entries": len(os.listdir(b.root(rt))),
        "runtime_processes": runtime_processes(b.root(rt)),
        "processes": count_processes(),
        "open_files": open_files(),
        "memfds": count_memfds(),
    }


# Counts only the runtime can have changed: any change is a leak.
OWN = ("cgroups", "state_entries", "runtime_processes")


def soak(b, rt, runs, execs):
    before = snapshot(b, rt)
    t0 = time.time()
    for _ in range(runs):
        cid = b.new_id("soak")
        bundle = b.bundle(cid)
        b.sp.run(b.rt_cmd(rt, "run", "--bundle", bundle, cid))
        b.drop_bundle(cid)
    b.sp.reap_all()
    cid = b.new_id("soakx")
    bundle = b.bundle(cid, args=["sleep", "1000"])
    b.sp.run(b.rt_cmd(rt, "run", "--detach", "--bundle", bundle, cid))
    for _ in range(execs):
        b.sp.run(b.rt_cmd(rt, "exec", cid, "/bin/true"))
    b.sp.run(b.rt_cmd(rt, "delete", "--force", cid))
    b.drop_bundle(cid)
    b.sp.reap_all()
    elapsed = time.time() - t0
    # Let exiting processes and cgroups settle.
    time.sleep(0.5)
    after = snapshot(b, rt)
    return before, after, elapsed


def cgroup_dirs_of(b, cid):
    """The container's cgroup directories left, in every hierarchy."""
    out = []
    for h in os.listdir(bench.CGROUP_ROOT):
        if os.path.islink(os.path.join(bench.CGROUP_ROOT, h)):
            continue
        d = os.path.join(bench.CGROUP_ROOT, h, b.cg_parent, cid)
        if os.path.isdir(d):
            out.append(d)
    return out


def procs_in(dirs):
    pids = set()
    for d in dirs:
        try:
            with open(os.path.join(d, "cgroup.procs")) as f:
                pids.update(int(p) for p in f.read().split())
        except OSError:
            pass
    return pids


def create_ms(b, rt):
    """Median time of a whole `create` (then deleted) for this runtime."""
    samples = []
    for _ in range(5):
        cid = b.new_id("kms")
        bundle = b.bundle(cid, args=["sleep", "1000"])
        _, ns = b.sp.run(b.rt_cmd(rt, "create", "--bundle", bundle, cid))
        samples.append(ns / 1e6)
        b.sp.run(b.rt_cmd(rt, "delete", "--force", cid), check=False)
        b.drop_bundle(cid)
    b.sp.reap_all()
    return sorted(samples)[len(samples) // 2]


def kill_rounds(b, rt, rounds, rng):
    """SIGKILL `create` at a uniformly random point of its own (median)
    duration, then `delete --force`: what is left of the container?"""
    window = create_ms(b, rt)
    left = {"rounds with leftovers": 0, "cgroup dirs": 0, "state entries": 0,
            "processes": 0}
    for _ in range(rounds):
        cid = b.new_id("kill")
        bundle = b.bundle(cid, args=["sleep", "1000"])
        pid = b.sp.spawn(b.rt_cmd(rt, "create", "--bundle", bundle, cid))
        time.sleep(rng.uniform(0, window) / 1000)
        os.kill(pid, 9)
        b.sp.wait(pid)
        b.sp.run(b.rt_cmd(rt, "delete", "--force", cid), check=False)
        time.sleep(0.05)
        # Orphans of the killed create come to this harness (a subreaper,
        # as PID 1 or a shim is): reaping them is its job, not a leak.
        b.sp.reap_all()
        dirs = cgroup_dirs_of(b, cid)
        procs = procs_in(dirs) | set(bench.processes_with([bundle]))
        state = os.path.exists(os.path.join(b.root(rt), cid))
        counts = {"cgroup dirs": len(dirs), "state entries": int(state),
                  "processes": len(procs)}
        for k, v in counts.items():
            left[k] += v
        if any(counts.values()):
            left["rounds with leftovers"] += 1
        # Clear what was left, so that the next round starts clean.
        for p in procs:
            try:
                os.kill(p, 9)
            except OSError:
                pass
        time.sleep(0.02)
        b.sp.reap_all()
        for d in dirs:
            try:
                os.rmdir(d)
            except OSError:
                pass
        if state:
            b.sp.run(b.rt_cmd(rt, "delete", "--force", cid), check=False)
        b.drop_bundle(cid)
    return window, left


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repo", default=".")
    ap.add_argument("--out", default="target/bench")
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--execs", type=int, default=300)
    ap.add_argument("--kills", type=int, default=100,
                    help="create killed at a random point, then delete --force (0: skip)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("soak: run as root", file=sys.stderr)
        return 1
    # bench.Bench's constructor reads its own options; give it defaults.
    bench_args = argparse.Namespace(repo=args.repo, out=args.out)
    b = bench.Bench(bench_args)
    results = {}
    try:
        b.setup()
        for rt in ["corten", "runc"]:
            bench.log(f"soak: {rt}: {args.runs} runs, {args.execs} execs")
            before, after, elapsed = soak(b, rt, args.runs, args.execs)
            results[rt] = {"before": before, "after": after, "seconds": round(elapsed, 1)}
        if args.kills:
            import random
            rng = random.Random(16)
            for rt in ["corten", "runc"]:
                bench.log(f"soak: {rt}: {args.kills} creates killed, then delete --force")
                window, left = kill_rounds(b, rt, args.kills, rng)
                results[rt]["kills"] = {"window_ms": round(window, 1), "left": left}
    except bench.BenchError as e:
        print(f"soak: {e}", file=sys.stderr)
        return 1
    finally:
        b.cleanup()
    keys = list(results["corten"]["before"])
    lines = [
        f"{args.runs} `run`s of /bin/true and {args.execs} `exec`s, after − before "
        "(own: any change is a leak; host-wide: other programs move them too)",
        "",
        "| count | corten | runc |",
        "|---|---|---|",
    ]
    leaks = []
    for k in keys:
        row = []
        for rt in ["corten", "runc"]:
            d = results[rt]["after"][k] - results[rt]["before"][k]
            row.append(f"{d:+d}")
            if k in OWN and d != 0 and rt == "corten":
                leaks.append(f"{k} {d:+d}")
        kind = "own" if k in OWN else "host-wide"
        lines.append(f"| {k} ({kind}) | {row[0]} | {row[1]} |")
    lines.append(f"| seconds | {results['corten']['seconds']} | {results['runc']['seconds']} |")
    if args.kills:
        lines += [
            "",
            f"{args.kills} `create`s SIGKILLed at a random point of their (median) "
            "duration, then `delete --force`: what was left",
            "",
            "| left | corten | runc |",
            "|---|---|---|",
        ]
        lines.append("| kill window (median create, ms) | "
                     + " | ".join(str(results[rt]["kills"]["window_ms"]) for rt in ["corten", "runc"])
                     + " |")
        for k in results["corten"]["kills"]["left"]:
            row = [results[rt]["kills"]["left"][k] for rt in ["corten", "runc"]]
            lines.append(f"| {k} | {row[0]} | {row[1]} |")
            if row[0]:
                leaks.append(f"after killed creates: {k} {row[0]}")
    table = "\n".join(lines)
    print(table)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "soak.json"), "w") as f:
        json.dump(results, f, indent=2)
    with open(os.path.join(args.out, "soak.md"), "w") as f:
        f.write(table + "\n")
    if leaks:
        print(f"soak: corten leaked: {', '.join(leaks)}", file=sys.stderr)
        return 1
    print("soak: corten left nothing of its own")
    return 0


if __name__ == "__main__":
    sys.exit(main())
