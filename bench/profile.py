#!/usr/bin/env python3
"""Where corten's lifecycle time goes (companion of bench/bench.py; root).

    python3 bench/profile.py [--rounds N]

1. the sealed re-exec: `run` without cgroups (private mount namespace, as in
   the bench) of corten as built, of corten started from an already sealed
   memfd (so it skips its own copy + re-exec), of crun, and of the floor;
2. warm vs cold: `run` back to back and with 150 ms idle before each run,
   corten vs runc, and the latency of the first cgroup v1 `cgroup.procs`
   write of a fresh process (the migration that waits for an RCU grace
   period when the kernel's rcu_sync state is cold), against the child
   writing `0` to `tasks` itself, as corten's init does;
3. `strace -f -c` (syscall counts) and `strace -f -T` (syscalls slower than
   0.5 ms) of one cold corten `run`, and `perf stat` when perf is installed.

Uses the same busybox bundle, cgroup parent and clean-up as the bench.
"""

import argparse
import fcntl
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402


def spawn_ms(argv, path=None, close=()):
    actions = [(os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
               (os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0)]
    actions += [(os.POSIX_SPAWN_CLOSE, fd) for fd in close]
    t0 = time.perf_counter_ns()
    pid = os.posix_spawn(path or argv[0], argv, os.environ, file_actions=actions)
    _, status = os.waitpid(pid, 0)
    ms = (time.perf_counter_ns() - t0) / 1e6
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(argv)} failed")
    return ms


def inner_reexec(cfg_path):
    """In a private mount namespace: cgroup2 on /sys/fs/cgroup, then
    corten (as built) vs corten from a pre-sealed memfd vs crun vs floor."""
    with open(cfg_path) as f:
        cfg = json.load(f)
    subprocess.run(["mount", "-t", "cgroup2", "none", bench.CGROUP_ROOT], check=True)
    fd = os.memfd_create("corten", os.MFD_ALLOW_SEALING)
    with open(cfg["corten"], "rb") as f:
        os.write(fd, f.read())
    fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK
                | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE)
    os.set_inheritable(fd, True)
    sealed = f"/proc/self/fd/{fd}"
    root = os.path.join(cfg["work"], "root-prof")
    names = ["corten", "corten_presealed", "crun", "floor"]
    s = {k: [] for k in names}
    for i in range(10 + cfg["rounds"]):
        for k in bench.rotated(names, i):
            cid = f"p{i}{k}"
            if k == "corten":
                ms = spawn_ms([cfg["corten"], "--cgroup-manager", "disabled", "--root", root, "run",
                               "--bundle", cfg["bundle"], cid], close=[fd])
            elif k == "corten_presealed":
                ms = spawn_ms([cfg["corten"], "--cgroup-manager", "disabled", "--root", root, "run",
                               "--bundle", cfg["bundle"], cid], path=sealed)
            elif k == "crun":
                ms = spawn_ms([cfg["crun"], "--cgroup-manager=disabled", "--root", root + "-crun", "run",
                               "--bundle", cfg["bundle"], cid], close=[fd])
            else:
                ms = spawn_ms([cfg["unshare"], "--mount", "--uts", "--ipc", "--pid", "--net", "--fork",
                               cfg["chroot"], cfg["rootfs"], "/bin/true"], close=[fd])
            if i >= 10:
                s[k].append(ms)
    with open(cfg["out"], "w") as f:
        json.dump({k: statistics.median(v) for k, v in s.items()}, f)


def first_migration_ms(b, gap, rounds=20, self_move=False):
    """Latency of writing a fresh child's pid to cgroup.procs of the first
    and of the other v1 hierarchies, `gap` seconds after the previous one
    (runc's way, and corten's before it moved the init itself). With
    `self_move` the child writes `0` to each `tasks` file the parent opened
    (corten's way: a thread moving itself skips the threadgroup write lock)."""
    hier = [h for h in sorted(os.listdir(bench.CGROUP_ROOT))
            if h not in ("unified", "systemd") and not os.path.islink(os.path.join(bench.CGROUP_ROOT, h))
            and os.path.exists(os.path.join(bench.CGROUP_ROOT, h, "cgroup.procs"))]
    if not hier or os.path.exists(os.path.join(bench.CGROUP_ROOT, "cgroup.controllers")):
        return None
    first, rest = [], []
    for i in range(rounds):
        dirs = []
        for h in hier:
            d = os.path.join(bench.CGROUP_ROOT, h, b.cg_parent, f"mig{i}")
            os.makedirs(d)
            if h.startswith("cpuset"):
                for f in ["cpuset.cpus", "cpuset.mems"]:
                    with open(os.path.join(bench.CGROUP_ROOT, h, f)) as src:
                        v = src.read().strip()
                    for lvl in [os.path.dirname(d), d]:
                        with open(os.path.join(lvl, f), "w") as dst:
                            dst.write(v)
            dirs.append(d)
        go_r, go_w = os.pipe()
        res_r, res_w = os.pipe()
        tasks = [os.open(os.path.join(d, "tasks"), os.O_WRONLY | os.O_CLOEXEC) for d in dirs] if self_move else []
        pid = os.fork()
        if pid == 0:
            os.read(go_r, 1)
            times = []
            for fd in tasks:
                t0 = time.perf_counter_ns()
                os.write(fd, b"0")
                times.append((time.perf_counter_ns() - t0) / 1e6)
            os.write(res_w, json.dumps(times).encode())
            time.sleep(30)
            os._exit(0)
        os.close(res_w)
        time.sleep(gap)
        if self_move:
            os.write(go_w, b"g")
            times = json.loads(os.read(res_r, 65536))
        else:
            times = []
            for d in dirs:
                t0 = time.perf_counter_ns()
                with open(os.path.join(d, "cgroup.procs"), "w") as f:
                    f.write(str(pid))
                times.append((time.perf_counter_ns() - t0) / 1e6)
        for n, ms in enumerate(times):
            (first if n == 0 else rest).append(ms)
        for fd in tasks + [go_r, go_w, res_r]:
            os.close(fd)
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        for d in dirs:
            os.rmdir(d)
    return {"first_write_ms": round(statistics.median(first), 3),
            "other_writes_ms": round(statistics.median(rest), 3)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repo", default=".")
    ap.add_argument("--rounds", type=int, default=100)
    ap.add_argument("--inner-reexec", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.inner_reexec:
        inner_reexec(args.inner_reexec)
        return 0
    bargs = argparse.Namespace(repo=args.repo, out="/nonexistent", rounds=args.rounds, warmup=10)
    b = bench.Bench(bargs)
    out = {}
    try:
        b.setup()
        # 1. the sealed re-exec
        bundle = b.bundle("prof-nocg", cgroup=False)
        cfg = {"corten": b.corten, "crun": b.crun, "unshare": b.unshare, "chroot": b.chroot,
               "bundle": bundle, "rootfs": b.rootfs, "work": b.work, "rounds": args.rounds,
               "out": os.path.join(b.work, "reexec.json")}
        with open(os.path.join(b.work, "reexec-cfg.json"), "w") as f:
            json.dump(cfg, f)
        subprocess.run([b.unshare, "-m", "--propagation", "private", sys.executable, os.path.abspath(__file__),
                        "--inner-reexec", os.path.join(b.work, "reexec-cfg.json")], check=True)
        with open(cfg["out"]) as f:
            out["run_nocg_ms"] = {k: round(v, 2) for k, v in json.load(f).items()}
        print("run without cgroups, median ms:", out["run_nocg_ms"], flush=True)

        # 2. warm vs cold
        for h in os.listdir(bench.CGROUP_ROOT):
            p = os.path.join(bench.CGROUP_ROOT, h)
            if not os.path.islink(p) and os.path.exists(os.path.join(p, "cgroup.procs")):
                os.makedirs(os.path.join(p, b.cg_parent), exist_ok=True)
        out["cgroup_procs_write"] = {
            "warm (5 ms after the previous)": first_migration_ms(b, 0.005),
            "cold (150 ms after the previous)": first_migration_ms(b, 0.15),
        }
        print("parent writes the pid to cgroup.procs (runc):", out["cgroup_procs_write"], flush=True)
        out["tasks_self_write"] = {
            "warm (5 ms after the previous)": first_migration_ms(b, 0.005, self_move=True),
            "cold (150 ms after the previous)": first_migration_ms(b, 0.15, self_move=True),
        }
        print("child writes 0 to tasks (corten):", out["tasks_self_write"], flush=True)
        res = {}
        for gap in [0, 0.15]:
            s = {"corten": [], "runc": []}
            for i in range(5 + args.rounds // 3):
                for rt in bench.rotated(list(s), i):
                    cid = b.new_id("pw")
                    bd = b.bundle(cid)
                    time.sleep(gap)
                    ms = spawn_ms(b.rt_cmd(rt, "run", "--bundle", bd, cid))
                    b.drop_bundle(cid)
                    if i >= 5:
                        s[rt].append(ms)
            res["cold" if gap else "warm"] = {k: round(statistics.median(v), 2) for k, v in s.items()}
        out["run_cgroupfs_ms"] = res
        print("run with cgroups, median ms:", res, flush=True)

        # 3. syscalls of one cold run
        if shutil.which("strace"):
            cid = b.new_id("st")
            bd = b.bundle(cid)
            time.sleep(0.2)
            trace = os.path.join(b.work, "strace.txt")
            subprocess.run(["strace", "-f", "-T", "-o", trace, *b.rt_cmd("corten", "run", "--bundle", bd, cid)],
                           check=True, stdout=subprocess.DEVNULL)
            slow = []
            calls = 0
            with open(trace) as f:
                for line in f:
                    calls += 1
                    if line.rstrip().endswith(">") and "<" in line:
                        try:
                            d = float(line.rstrip()[line.rstrip().rindex("<") + 1:-1])
                        except ValueError:
                            continue
                        if d > 0.0005 and "wait4" not in line and "rt_sigtimedwait" not in line \
                                and "recv" not in line and "read(" not in line:
                            slow.append(f"{d * 1000:7.2f} ms  {line.split(None, 1)[1][:110].rstrip()}")
            out["strace_cold_run"] = {"syscalls": calls, "slower_than_0.5ms": slow}
            print(f"strace of one cold `corten run`: {calls} syscalls; slower than 0.5 ms (strace inflates):")
            for s_ in slow:
                print("   ", s_)
            cid = b.new_id("sc")
            bd = b.bundle(cid)
            r = subprocess.run(["strace", "-f", "-c", "-o", "/dev/stdout", *b.rt_cmd("corten", "run", "--bundle",
                                                                                     bd, cid)],
                               capture_output=True, text=True)
            print("strace -f -c of one `corten run` (top 15):")
            print("\n".join(r.stdout.splitlines()[:17]))
        if shutil.which("perf"):
            cid = b.new_id("pf")
            bd = b.bundle(cid)
            r = subprocess.run(["perf", "stat", "-e", "task-clock,context-switches,page-faults", "-r", "30",
                                "--", *b.rt_cmd("corten", "run", "--bundle", bd, cid)],
                               capture_output=True, text=True)
            print("perf stat -r 30 of `corten run` (cgroupfs, warm):")
            print("\n".join(line for line in r.stderr.splitlines() if line.strip()))
    finally:
        b.cleanup()
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
