#!/usr/bin/env python3
"""`make bench`: corten side by side with runc, crun and containerd-shim-runc-v2.

Run as root from the repository root after `make build`:

    python3 bench/bench.py [--rounds N] [--warmup N] [--out target/bench]

Prints a markdown table and writes target/bench/results.json (+ results.md).
Every figure is a median over interleaved rounds (the runtimes compared take
turns, in an order rotated each round) after warm-up rounds. Timings are wall
clock around the spawned command (os.posix_spawn + waitpid, measured with
time.perf_counter_ns), so they include each runtime's own process start-up.

Nothing outside the bench's own state is touched: state roots, bundles and the
private containerd live in a mkdtemp directory under /tmp; containers get
cgroups under /corten-bench-<pid>/ (removed at the end); the cgroup-less runs
happen in a private mount namespace (`unshare -m --propagation private`) where
cgroup2 is mounted on /sys/fs/cgroup: the host's mounts are never changed.
Only processes this script started are signalled, by pid.
"""

import argparse
import concurrent.futures
import ctypes
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

PR_SET_CHILD_SUBREAPER = 36
POD_ANNOTATION = "io.kubernetes.cri.sandbox-id"
CGROUP_ROOT = "/sys/fs/cgroup"

libc = ctypes.CDLL(None, use_errno=True)


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class BenchError(Exception):
    pass


# --------------------------------------------------------------------------
# process helpers


class Spawner:
    """Runs commands with os.posix_spawn, stdin/stdout on /dev/null, stderr
    appended to a log file; the harness is a child subreaper, so container
    inits orphaned by `create` are reparented to it and can be waited for."""

    def __init__(self, errlog):
        self.errlog = errlog
        self.reaped = {}  # pid -> status, for pids reaped by reap_all()

    def spawn(self, argv, stdout="/dev/null"):
        actions = [
            (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, stdout, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644),
            (os.POSIX_SPAWN_OPEN, 2, self.errlog, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644),
        ]
        return os.posix_spawn(argv[0], argv, os.environ, file_actions=actions)

    def wait(self, pid):
        if pid in self.reaped:
            return self.reaped.pop(pid)
        _, status = os.waitpid(pid, 0)
        return os.waitstatus_to_exitcode(status)

    def run(self, argv, check=True, stdout="/dev/null"):
        """Runs argv to completion; returns (exit code, elapsed ns)."""
        t0 = time.perf_counter_ns()
        pid = self.spawn(argv, stdout)
        rc = self.wait(pid)
        t1 = time.perf_counter_ns()
        if check and rc != 0:
            raise BenchError(f"{' '.join(argv)}: exit {rc}\n{self.tail()}")
        return rc, t1 - t0

    def tail(self, n=15):
        try:
            with open(self.errlog, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def reap_all(self):
        """Reaps every exited child (orphans reparented to us)."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self.reaped[pid] = os.waitstatus_to_exitcode(status)


def cpu_busy_s():
    """Non-idle CPU time of the whole machine, in seconds."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]  # idle + iowait
    return (sum(v[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def own_cpu_s():
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def stats(samples):
    s = sorted(samples)
    n = len(s)
    return {
        "median": statistics.median(s),
        "mean": statistics.fmean(s),
        "min": s[0],
        "p10": s[int(round(0.1 * (n - 1)))],
        "p90": s[min(n - 1, int(round(0.9 * (n - 1))))],
        "stdev": statistics.stdev(s) if n > 1 else 0.0,
        "n": n,
    }


def rotated(items, i):
    k = i % len(items)
    return items[k:] + items[:k]


def read_pid(path):
    with open(path) as f:
        return int(f.read().strip())


def proc_status_kb(pid, field):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def proc_pss_kb(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def processes_with(substrings):
    """Pids whose command line contains every one of substrings."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if all(s in cmd for s in substrings):
            out.append(int(d))
    return out


# --------------------------------------------------------------------------
# fixtures


def with_libs_bytes(path):
    """Size of an executable plus the shared libraries ldd lists for it."""
    total = os.path.getsize(path)
    out = subprocess.run(["ldd", path], capture_output=True, text=True).stdout
    libs = set()
    for line in out.splitlines():
        for word in line.split():
            if word.startswith("/") and os.path.exists(word):
                libs.add(os.path.realpath(word))
    return total + sum(os.path.getsize(lib) for lib in libs)


class Bench:
    def __init__(self, args):
        self.args = args
        self.repo = os.path.abspath(args.repo)
        self.out = os.path.abspath(args.out)
        self.corten = os.path.join(self.repo, "target/release/corten")
        self.shim = os.path.join(self.repo, "target/release/containerd-shim-corten-v2")
        self.runc = shutil.which("runc") or "/usr/sbin/runc"
        self.crun = shutil.which("crun") or "/usr/bin/crun"
        self.runc_shim = shutil.which("containerd-shim-runc-v2") or "/usr/bin/containerd-shim-runc-v2"
        self.unshare = shutil.which("unshare")
        self.chroot = shutil.which("chroot")
        self.gnutime = "/usr/bin/time"
        self.containerd = shutil.which("containerd")
        self.ctr = shutil.which("ctr")
        for p in [self.corten, self.shim, self.runc, self.crun, self.runc_shim, self.unshare,
                  self.chroot, self.gnutime, self.containerd, self.ctr]:
            if not p or not os.access(p, os.X_OK):
                raise BenchError(f"missing executable: {p} (run `make bench`, which installs/builds it)")
        self.work = tempfile.mkdtemp(prefix="corten-bench.", dir="/tmp")
        os.chmod(self.work, 0o711)
        self.sp = Spawner(os.path.join(self.work, "stderr.log"))
        self.cg_parent = f"corten-bench-{os.getpid()}"
        self.results = {}
        self.samples = {}
        self.containerd_pid = None
        self.seq = 0

    # ---- set-up

    def setup(self):
        if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
            raise BenchError("prctl(PR_SET_CHILD_SUBREAPER) failed")
        self.rootfs = os.path.join(self.work, "rootfs")
        busybox = shutil.which("busybox") or "/bin/busybox"
        helper = os.path.join(self.repo, "scripts/busybox-rootfs.sh")
        subprocess.run(["sh", "-c", '. "$1" && busybox_rootfs "$2" "$3"', "sh",
                        helper, self.rootfs, busybox], check=True)
        specdir = os.path.join(self.work, "spec")
        os.makedirs(specdir)
        subprocess.run([self.corten, "spec"], cwd=specdir, check=True)
        with open(os.path.join(specdir, "config.json")) as f:
            spec = json.load(f)
        spec["process"]["terminal"] = False
        spec["process"]["args"] = ["/bin/true"]
        spec["root"]["path"] = self.rootfs
        self.base_spec = spec
        for rt in ["corten", "runc", "crun"]:
            os.makedirs(self.root(rt))

    def root(self, rt):
        return os.path.join(self.work, f"root-{rt}")

    def new_id(self, prefix):
        self.seq += 1
        return f"{prefix}{self.seq}"

    def bundle(self, cid, args=None, cgroup=True):
        """A bundle directory for container cid: the shared busybox rootfs,
        the default spec, and a cgroupsPath /<bench parent>/<cid>."""
        b = os.path.join(self.work, "bundles", cid)
        os.makedirs(b, exist_ok=True)
        spec = json.loads(json.dumps(self.base_spec))
        if args:
            spec["process"]["args"] = args
        if cgroup:
            spec["linux"]["cgroupsPath"] = f"/{self.cg_parent}/{cid}"
        with open(os.path.join(b, "config.json"), "w") as f:
            json.dump(spec, f)
        return b

    def drop_bundle(self, cid):
        shutil.rmtree(os.path.join(self.work, "bundles", cid), ignore_errors=True)

    def bin(self, rt):
        return {"corten": self.corten, "runc": self.runc, "crun": self.crun}[rt]

    def rt_cmd(self, rt, *args):
        return [self.bin(rt), "--root", self.root(rt), *args]

    # ---- lifecycle through `run`

    def bench_lifecycle_run(self, cold=False):
        """Back to back (warm), or with an idle gap before each run (cold:
        the kernel's RCU-synchronised paths, e.g. the first cgroup v1
        migration, then wait for a full grace period as they do when
        containers start one now and then)."""
        # corten_debug: corten with --debug, its step timeline written to a
        # --log file (the cost of the timeline when it is on; off, it is
        # one load per step and inside the corten row).
        rts = ["corten", "runc"] if cold else ["corten", "runc", "corten_debug"]
        debug_log = os.path.join(self.work, "debug.log")
        samples = {rt: [] for rt in rts}
        if cold:
            w, n, gap = 2, self.args.cold_rounds, self.args.cold_gap_ms / 1000
        else:
            w, n, gap = self.args.warmup, self.args.rounds, 0
        for i in range(w + n):
            for rt in rotated(rts, i):
                cid = self.new_id("lc")
                b = self.bundle(cid)
                if gap:
                    time.sleep(gap)
                if rt == "corten_debug":
                    argv = self.rt_cmd("corten", "--debug", "--log", debug_log, "run", "--bundle", b, cid)
                else:
                    argv = self.rt_cmd(rt, "run", "--bundle", b, cid)
                _, ns = self.sp.run(argv)
                self.drop_bundle(cid)
                if i >= w:
                    samples[rt].append(ns / 1e6)
            if os.path.exists(debug_log):
                os.truncate(debug_log, 0)
            self.sp.reap_all()
        self.record("lifecycle_cold_ms" if cold else "lifecycle_ms", samples)

    def bench_spawn_baseline(self):
        """The harness's own cost: posix_spawn + waitpid of the host's /bin/true."""
        samples = {"true": []}
        for i in range(self.args.warmup + self.args.rounds):
            _, ns = self.sp.run(["/bin/true"])
            if i >= self.args.warmup:
                samples["true"].append(ns / 1e6)
        self.record("spawn_baseline_ms", samples)

    # ---- lifecycle through create, start, wait, delete

    def lifecycle_split_one(self, rt, cid, b, steps=None):
        pidfile = os.path.join(b, "init.pid")
        t0 = time.perf_counter_ns()
        self.sp.run(self.rt_cmd(rt, "create", "--bundle", b, "--pid-file", pidfile, cid))
        t1 = time.perf_counter_ns()
        pid = read_pid(pidfile)
        self.sp.run(self.rt_cmd(rt, "start", cid))
        t2 = time.perf_counter_ns()
        self.sp.wait(pid)  # the init is reparented to us (subreaper)
        t3 = time.perf_counter_ns()
        self.sp.run(self.rt_cmd(rt, "delete", cid))
        t4 = time.perf_counter_ns()
        if steps is not None:
            for k, a, z in [("create", t0, t1), ("start", t1, t2), ("wait", t2, t3), ("delete", t3, t4)]:
                steps[k].append((z - a) / 1e6)
        return (t4 - t0) / 1e6

    def bench_lifecycle_split(self):
        rts = ["corten", "runc"]
        samples = {rt: [] for rt in rts}
        steps = {rt: {k: [] for k in ["create", "start", "wait", "delete"]} for rt in rts}
        w, n = self.args.warmup, self.args.rounds
        for i in range(w + n):
            for rt in rotated(rts, i):
                cid = self.new_id("ls")
                b = self.bundle(cid)
                ms = self.lifecycle_split_one(rt, cid, b, steps[rt] if i >= w else None)
                self.drop_bundle(cid)
                if i >= w:
                    samples[rt].append(ms)
        self.record("lifecycle_split_ms", samples)
        self.results["lifecycle_split_steps_ms"] = {
            rt: {k: round(statistics.median(v), 3) for k, v in steps[rt].items()} for rt in rts
        }

    # ---- exec

    def bench_exec(self):
        rts = ["corten", "runc"]
        ids = {}
        pids = {}
        for rt in rts:
            cid = self.new_id("ex")
            b = self.bundle(cid, args=["sleep", "1000"])
            pidfile = os.path.join(b, "init.pid")
            self.sp.run(self.rt_cmd(rt, "create", "--bundle", b, "--pid-file", pidfile, cid))
            self.sp.run(self.rt_cmd(rt, "start", cid))
            ids[rt], pids[rt] = cid, read_pid(pidfile)
        samples = {rt: [] for rt in rts}
        w, n = self.args.warmup, self.args.rounds
        try:
            for i in range(w + n):
                for rt in rotated(rts, i):
                    _, ns = self.sp.run(self.rt_cmd(rt, "exec", ids[rt], "/bin/true"))
                    if i >= w:
                        samples[rt].append(ns / 1e6)
        finally:
            for rt in rts:
                self.sp.run(self.rt_cmd(rt, "kill", ids[rt], "KILL"), check=False)
                self.sp.wait(pids[rt])
                self.sp.run(self.rt_cmd(rt, "delete", "--force", ids[rt]), check=False)
                self.drop_bundle(ids[rt])
        self.record("exec_ms", samples)

    # ---- 100 containers, 2 at a time

    def bench_parallel(self):
        rts = ["corten", "runc"]
        samples = {rt: [] for rt in rts}
        count, jobs = self.args.parallel_containers, 2
        w, n = 1, self.args.parallel_rounds
        for i in range(w + n):
            for rt in rotated(rts, i):
                cids = [self.new_id("par") for _ in range(count)]
                bundles = {c: self.bundle(c) for c in cids}
                t0 = time.perf_counter_ns()
                with concurrent.futures.ThreadPoolExecutor(jobs) as ex:
                    list(ex.map(lambda c: self.lifecycle_split_one(rt, c, bundles[c]), cids))
                t1 = time.perf_counter_ns()
                for c in cids:
                    self.drop_bundle(c)
                if i >= w:
                    samples[rt].append((t1 - t0) / 1e9)
        self.record("run_parallel_s", samples)

    # ---- peak RSS of `create`

    def bench_peak_rss(self):
        rts = ["corten", "runc"]
        samples = {rt: [] for rt in rts}
        w, n = 2, self.args.rss_rounds
        for i in range(w + n):
            for rt in rotated(rts, i):
                cid = self.new_id("rss")
                b = self.bundle(cid)
                pidfile = os.path.join(b, "init.pid")
                out = os.path.join(b, "maxrss")
                self.sp.run([self.gnutime, "-f", "%M", "-o", out,
                             *self.rt_cmd(rt, "create", "--bundle", b, "--pid-file", pidfile, cid)])
                pid = read_pid(pidfile)
                self.sp.run(self.rt_cmd(rt, "start", cid))
                self.sp.wait(pid)
                self.sp.run(self.rt_cmd(rt, "delete", cid))
                with open(out) as f:
                    kb = int(f.read().split()[-1])
                self.drop_bundle(cid)
                if i >= w:
                    samples[rt].append(kb)
        self.record("peak_rss_kb", samples)

    # ---- without cgroups, in a private mount namespace

    def bench_nocg(self):
        b = self.bundle("nocg", cgroup=False)
        cfg = {
            "bundle": b,
            "rootfs": self.rootfs,
            "work": self.work,
            "corten": self.corten,
            "crun": self.crun,
            "unshare": self.unshare,
            "chroot": self.chroot,
            "gnutime": self.gnutime,
            "warmup": self.args.warmup,
            "rounds": self.args.rounds,
            "rss_rounds": self.args.rss_rounds,
            "cold_rounds": self.args.cold_rounds,
            "cold_gap_ms": self.args.cold_gap_ms,
            "out": os.path.join(self.work, "nocg.json"),
        }
        cfg_path = os.path.join(self.work, "nocg-cfg.json")
        with open(cfg_path, "w") as f:
            json.dump(cfg, f)
        self.sp.run([self.unshare, "-m", "--propagation", "private", sys.executable,
                     os.path.abspath(__file__), "--inner-nocg", cfg_path])
        with open(cfg["out"]) as f:
            inner = json.load(f)
        self.record("lifecycle_ms", inner["lifecycle"])
        self.record("lifecycle_cold_ms", inner["lifecycle_cold"])
        self.record("peak_rss_kb", {"crun": inner["rss"]["crun_nocg"], "corten_nocg": inner["rss"]["corten_nocg"]})

    # ---- containerd and the shims

    def start_containerd(self):
        d = os.path.join(self.work, "ctrd")
        bindir = os.path.join(d, "bin")
        os.makedirs(bindir)
        shutil.copy(self.shim, os.path.join(bindir, "containerd-shim-corten-v2"))
        shutil.copy(self.corten, os.path.join(bindir, "corten"))
        self.ctrd_dir = d
        self.sock = os.path.join(d, "c.sock")
        with open(os.path.join(d, "config.toml"), "w") as f:
            f.write(
                "version = 2\n"
                f'root = "{d}/root"\n'
                f'state = "{d}/state"\n'
                'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
                f'[grpc]\n  address = "{self.sock}"\n'
                f'[ttrpc]\n  address = "{self.sock}.ttrpc"\n'
                f'[debug]\n  address = "{d}/debug.sock"\n'
                f'[plugins."io.containerd.internal.v1.opt"]\n  path = "{d}/opt"\n'
            )
        env = dict(os.environ)
        env["PATH"] = f"{bindir}:{env.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')}"
        logf = os.path.join(d, "containerd.log")
        actions = [
            (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, logf, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644),
            (os.POSIX_SPAWN_OPEN, 2, logf, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644),
        ]
        self.containerd_pid = os.posix_spawn(
            self.containerd, [self.containerd, "--config", os.path.join(d, "config.toml")], env,
            file_actions=actions)
        deadline = time.time() + 30
        while time.time() < deadline:
            if os.path.exists(self.sock) and self.sp.run(self.ctr_cmd("version"), check=False)[0] == 0:
                return
            time.sleep(0.1)
        raise BenchError("containerd did not come up:\n" + open(logf).read()[-2000:])

    def ctr_cmd(self, *args):
        return [self.ctr, "-a", self.sock, "-n", "corten-bench", *args]

    def ctr_run(self, runtime, cid, flags, cmd):
        return self.ctr_cmd("run", "--runtime", runtime, "--fifo-dir", os.path.join(self.ctrd_dir, "fifo"),
                            "--cgroup", f"/{self.cg_parent}/{cid}", *flags, "--rootfs", self.rootfs, cid, *cmd)

    def shim_pids(self, shim_name):
        return [p for p in processes_with([shim_name, f"-address {self.sock} "])]

    def ctr_remove(self, cids):
        for c in cids:
            self.sp.run(self.ctr_cmd("task", "kill", "-s", "KILL", c), check=False)
        for c in cids:
            for _ in range(100):
                rc, _ = self.sp.run(self.ctr_cmd("task", "delete", c), check=False)
                if rc == 0:
                    break
                time.sleep(0.05)
            self.sp.run(self.ctr_cmd("containers", "rm", c), check=False)

    def bench_containerd(self):
        runtimes = {"corten": "io.containerd.corten.v2", "runc_v2": "io.containerd.runc.v2"}
        shims = {"corten": "containerd-shim-corten-v2", "runc_v2": "containerd-shim-runc-v2"}
        self.start_containerd()
        # ctr run --rm of /bin/true
        names = list(runtimes)
        samples = {k: [] for k in names}
        w, n = 3, self.args.ctr_rounds
        for i in range(w + n):
            for k in rotated(names, i):
                cid = self.new_id("cs")
                _, ns = self.sp.run(self.ctr_run(runtimes[k], cid, ["--rm"], ["/bin/true"]))
                if i >= w:
                    samples[k].append(ns / 1e6)
        self.record("containerd_start_ms", samples)
        self.sp.reap_all()

        # 10 running containers per shim type, then a pod of 5 per shim type
        per = {}
        extra = {}
        for label, count, flags in [("single", self.args.shim_containers, []), ("pod", 5, None)]:
            cids = {k: [] for k in names}
            try:
                for k in names:
                    f = flags if flags is not None else ["--annotation", f"{POD_ANNOTATION}=pod-{k}-{os.getpid()}"]
                    for _ in range(count):
                        cid = self.new_id(f"sh{k[:2]}")
                        self.sp.run(self.ctr_run(runtimes[k], cid, ["-d", "--null-io", *f], ["/bin/sleep", "1000"]))
                        cids[k].append(cid)
                time.sleep(2)  # let the shims settle after their start-up
                for k in names:
                    pids = self.shim_pids(shims[k])
                    rss = sum(proc_status_kb(p, "VmRSS") for p in pids)
                    pss = sum(proc_pss_kb(p) for p in pids)
                    per[(label, k)] = rss / count
                    extra[f"{label}_{k}"] = {
                        "containers": count, "shims": len(pids), "rss_kb_total": rss,
                        "rss_kb_per_container": round(rss / count, 1),
                        "pss_kb_total": pss, "pss_kb_per_container": round(pss / count, 1),
                    }
            finally:
                for k in names:
                    self.ctr_remove(cids[k])
        self.results["shim_rss_kb"] = {
            "corten": round(per[("single", "corten")], 1),
            "runc_v2": round(per[("single", "runc_v2")], 1),
            "pod5_corten": round(per[("pod", "corten")], 1),
            "pod5_runc_v2": round(per[("pod", "runc_v2")], 1),
            "detail": extra,
        }
        self.stop_containerd()

    def stop_containerd(self):
        if self.containerd_pid is None:
            return
        pid, self.containerd_pid = self.containerd_pid, None
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.time() + 10
        while time.time() < deadline:
            self.sp.reap_all()
            if pid in self.sp.reaped:
                break
            time.sleep(0.05)
        else:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.sp.wait(pid)
        # shims of our containerd that outlived it (none expected)
        for name in ["containerd-shim-corten-v2", "containerd-shim-runc-v2"]:
            for p in self.shim_pids(name):
                log(f"killing leftover shim {p}")
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        time.sleep(0.2)
        self.sp.reap_all()

    # ---- sizes

    def bench_systemd_vm(self):
        """`run --systemd-cgroup` of /bin/true, corten vs runc vs crun, in
        the stock systemd host VM (scripts/systemd-bench.sh): emulated
        (TCG), so absolute figures are slow; the ratios are the result."""
        env = dict(os.environ, SYSTEMD_VM_MODE="bench",
                   SYSTEMD_BENCH_ROUNDS=str(self.args.systemd_rounds))
        p = subprocess.run([os.path.join(self.repo, "scripts", "systemd-vm.sh")], env=env,
                           capture_output=True, text=True)
        samples = {"samples": {}, "samples-cgroupfs": {}, "samples-aslr": {}}
        for line in p.stdout.splitlines():
            words = line.strip("\r").split()
            if len(words) > 3 and words[0] == "systemd-bench:" and words[1] in samples:
                samples[words[1]][words[2]] = [float(x) for x in words[3:]]
        want = {"corten", "runc", "crun"}
        if p.returncode != 0 or any(set(v) != want for v in samples.values()):
            tail = "\n".join((p.stdout + p.stderr).splitlines()[-8:])
            raise BenchError(f"the systemd VM benchmark failed (exit {p.returncode}):\n{tail}")
        self.record("systemd_lifecycle_ms", samples["samples"])
        self.record("systemd_vm_cgroupfs_ms", samples["samples-cgroupfs"])
        self.record("systemd_lifecycle_aslr_ms", samples["samples-aslr"])

    def bench_sizes(self):
        self.results["binary_bytes"] = {
            "corten": os.path.getsize(self.corten),
            "runc": os.path.getsize(self.runc),
            "crun": os.path.getsize(self.crun),
            "shim_corten": os.path.getsize(self.shim),
            "shim_runc_v2": os.path.getsize(self.runc_shim),
        }
        # What each runtime loads to run: the file plus every shared library
        # ldd lists (a static binary is just itself).
        self.results["binary_with_libs_bytes"] = {
            "corten": with_libs_bytes(self.corten),
            "runc": with_libs_bytes(self.runc),
            "crun": with_libs_bytes(self.crun),
        }

    # ---- results

    def record(self, metric, samples):
        """Medians into results[metric] (merged with what is there), the
        distribution into results["stats"][metric], raw samples aside."""
        self.samples.setdefault(metric, {}).update(samples)
        medians = {k: round(stats(v)["median"], 3) for k, v in samples.items()}
        self.results.setdefault(metric, {}).update(medians)
        self.results.setdefault("stats", {}).setdefault(metric, {}).update({
            k: {a: round(b, 3) if isinstance(b, float) else b for a, b in stats(v).items()}
            for k, v in samples.items()
        })
        log(f"{metric}: " + ", ".join(f"{k} {v}" for k, v in medians.items()))

    def machine(self):
        def first(path, key):
            try:
                with open(path) as f:
                    for line in f:
                        if line.startswith(key):
                            return line[len(key):].lstrip(" \t:").strip()
            except OSError:
                pass
            return None

        def version(argv):
            try:
                return subprocess.run(argv, capture_output=True, text=True).stdout.splitlines()[0].strip()
            except (OSError, IndexError):
                return None

        hybrid = os.path.isdir(os.path.join(CGROUP_ROOT, "unified"))
        v2 = os.path.exists(os.path.join(CGROUP_ROOT, "cgroup.controllers"))
        os_name = (first("/etc/os-release", "PRETTY_NAME=") or "").strip('"')
        return {
            "os": os_name or platform.platform(),
            "kernel": platform.release(),
            "cpu": first("/proc/cpuinfo", "model name"),
            "cpus": os.cpu_count(),
            "mem_total": first("/proc/meminfo", "MemTotal"),
            "cgroup": "v2" if v2 else ("v1 hybrid" if hybrid else "v1"),
            "loadavg_at_start": open("/proc/loadavg").read().split()[:3],
            "versions": {
                "corten": version([self.corten, "--version"]),
                "runc": version([self.runc, "--version"]),
                "crun": version([self.crun, "--version"]),
                "containerd": version([self.containerd, "--version"]),
            },
        }

    def table(self):
        r = self.results

        def fmt(v, unit=""):
            if v is None:
                return "—"
            if isinstance(v, str):
                return v
            if isinstance(v, float) and v >= 100:
                return f"{v:.0f}{unit}"
            if isinstance(v, float):
                return f"{v:.2f}{unit}"
            return f"{v}{unit}"

        def mb(n):
            return f"{n / 1e6:.2f}"

        def ratio(a, b):
            return f"{a / b:.2f}" if a is not None and b else "—"

        lc = nocg = r["lifecycle_ms"]
        lcc = nocgc = r["lifecycle_cold_ms"]
        sp, ex, par = r["lifecycle_split_ms"], r["exec_ms"], r["run_parallel_s"]
        rss = rssn = r["peak_rss_kb"]
        sh, cs, bb = r["shim_rss_kb"], r["containerd_start_ms"], r["binary_bytes"]
        bl = r["binary_with_libs_bytes"]
        sd = r.get("systemd_lifecycle_ms") or {}
        sdfs = r.get("systemd_vm_cgroupfs_ms") or {}
        sdd = {k: sd[k] - sdfs[k] for k in sd if k in sdfs}
        sda = r.get("systemd_lifecycle_aslr_ms") or {}
        rows = [
            ("`lifecycle_ms` (`run` /bin/true, cgroupfs)", lc["corten"], lc["runc"], None,
             ratio(lc["corten"], lc["runc"])),
            ("`lifecycle_ms` with `--debug` (step timeline to a `--log` file); other = without",
             lc.get("corten_debug"), None, lc["corten"], ratio(lc.get("corten_debug"), lc["corten"])),
            ("`lifecycle_ms` no cgroups (private mount ns) vs crun", nocg["corten_nocg"], None,
             nocg["crun_nocg"], ratio(nocg["corten_nocg"], nocg["crun_nocg"])),
            ("`lifecycle_ms` no cgroups vs `floor` (unshare+chroot)", nocg["corten_nocg"], None,
             nocg["floor"], ratio(nocg["corten_nocg"], nocg["floor"])),
            ("`lifecycle_cold_ms` (same, 150 ms idle before each run)", lcc["corten"], lcc["runc"], None,
             ratio(lcc["corten"], lcc["runc"])),
            ("`lifecycle_cold_ms` no cgroups vs crun (150 ms idle)", nocgc["corten_nocg"], None,
             nocgc["crun_nocg"], ratio(nocgc["corten_nocg"], nocgc["crun_nocg"])),
            ("`lifecycle_cold_ms` no cgroups vs `floor` (150 ms idle)", nocgc["corten_nocg"], None,
             nocgc["floor"], ratio(nocgc["corten_nocg"], nocgc["floor"])),
            ("`lifecycle_split_ms` (create, start, wait, delete)", sp["corten"], sp["runc"], None,
             ratio(sp["corten"], sp["runc"])),
            ("`exec_ms` (/bin/true into a running container)", ex["corten"], ex["runc"], None,
             ratio(ex["corten"], ex["runc"])),
            ("`run_parallel_s` (100 containers, 2 at a time)", par["corten"], par["runc"], None,
             ratio(par["corten"], par["runc"])),
            ("`peak_rss_kb` of `create` (cgroupfs)", rss["corten"], rss["runc"], None,
             ratio(rss["corten"], rss["runc"])),
            ("`peak_rss_kb` of `create`, no cgroups, vs crun", rssn["corten_nocg"], None, rssn["crun"],
             ratio(rssn["corten_nocg"], rssn["crun"])),
            ("`shim_rss_kb` per container (10 containers, 1 shim each); other = runc-v2 shim",
             sh["corten"], None, sh["runc_v2"], ratio(sh["corten"], sh["runc_v2"])),
            ("`shim_rss_kb` per container (pod of 5, shared shim); other = runc-v2 shim",
             sh["pod5_corten"], None, sh["pod5_runc_v2"], ratio(sh["pod5_corten"], sh["pod5_runc_v2"])),
            ("`containerd_start_ms` (`ctr run --rm` /bin/true); other = runc-v2 shim",
             cs["corten"], None, cs["runc_v2"], ratio(cs["corten"], cs["runc_v2"])),
            ("`systemd_lifecycle_ms` (`run --systemd-cgroup` /bin/true, stock systemd VM, TCG)",
             sd.get("corten"), sd.get("runc"), sd.get("crun"),
             f"{sd['corten'] / sd['runc']:.2f} (vs crun {sd['corten'] / sd['crun']:.2f})" if sd else "—"),
            ("`systemd_vm_cgroupfs_ms` (the same in the same VM with the cgroupfs driver)",
             sdfs.get("corten"), sdfs.get("runc"), sdfs.get("crun"),
             f"{sdfs['corten'] / sdfs['runc']:.2f} (vs crun {sdfs['corten'] / sdfs['crun']:.2f})" if sdfs else "—"),
            ("the systemd driver's own cost (the two rows above subtracted)",
             sdd.get("corten"), sdd.get("runc"), sdd.get("crun"),
             f"{sdd['corten'] / sdd['runc']:.2f} (vs crun {sdd['corten'] / sdd['crun']:.2f})"
             if sdd and sdd.get("runc", 0) > 0 and sdd.get("crun", 0) > 0 else "—"),
            ("`systemd_lifecycle_aslr_ms` (as `systemd_lifecycle_ms`, randomisation on: TCG re-translates each run)",
             sda.get("corten"), sda.get("runc"), sda.get("crun"),
             f"{sda['corten'] / sda['runc']:.2f} (vs crun {sda['corten'] / sda['crun']:.2f})" if sda else "—"),
            ("`binary_bytes` runtime (MB)", mb(bb["corten"]), mb(bb["runc"]), mb(bb["crun"]),
             f"{bb['corten'] / bb['runc']:.2f} (vs crun {bb['corten'] / bb['crun']:.2f})"),
            ("`binary_with_libs_bytes` runtime + its shared libraries (MB)", mb(bl["corten"]), mb(bl["runc"]),
             mb(bl["crun"]), f"{bl['corten'] / bl['runc']:.2f} (vs crun {bl['corten'] / bl['crun']:.2f})"),
            ("`binary_bytes` shim (MB); other = containerd-shim-runc-v2", mb(bb["shim_corten"]), None,
             mb(bb["shim_runc_v2"]), ratio(bb["shim_corten"], bb["shim_runc_v2"])),
        ]
        lines = ["| metric | corten | runc | crun/other | ratio |", "|---|---|---|---|---|"]
        for name, a, b, c, q in rows:
            lines.append(f"| {name} | {fmt(a)} | {fmt(b)} | {fmt(c)} | {q} |")
        return "\n".join(lines)

    def targets(self):
        r = self.results
        checks = [
            ("lifecycle corten/runc <= 0.3", r["lifecycle_ms"]["corten"] / r["lifecycle_ms"]["runc"], 0.3),
            ("lifecycle corten_nocg/crun_nocg <= 1.0",
             r["lifecycle_ms"]["corten_nocg"] / r["lifecycle_ms"]["crun_nocg"], 1.0),
            ("lifecycle corten_nocg/floor <= 2.5",
             r["lifecycle_ms"]["corten_nocg"] / r["lifecycle_ms"]["floor"], 2.5),
            ("shim RSS corten/runc-v2 <= 0.25", r["shim_rss_kb"]["corten"] / r["shim_rss_kb"]["runc_v2"], 0.25),
            ("exec corten/runc < 1", r["exec_ms"]["corten"] / r["exec_ms"]["runc"], 1.0),
            ("run_parallel corten/runc < 1", r["run_parallel_s"]["corten"] / r["run_parallel_s"]["runc"], 1.0),
            ("peak RSS corten/runc < 1", r["peak_rss_kb"]["corten"] / r["peak_rss_kb"]["runc"], 1.0),
            ("peak RSS corten_nocg/crun < 1", r["peak_rss_kb"]["corten_nocg"] / r["peak_rss_kb"]["crun"], 1.0),
            ("containerd start corten/runc-v2 < 1",
             r["containerd_start_ms"]["corten"] / r["containerd_start_ms"]["runc_v2"], 1.0),
            ("binary corten/crun < 1", r["binary_bytes"]["corten"] / r["binary_bytes"]["crun"], 1.0),
            ("binary+libs corten/crun < 1",
             r["binary_with_libs_bytes"]["corten"] / r["binary_with_libs_bytes"]["crun"], 1.0),
        ]
        sd = r.get("systemd_lifecycle_ms")
        if sd:
            checks += [
                ("systemd lifecycle corten/runc <= 0.5", sd["corten"] / sd["runc"], 0.5),
                ("systemd lifecycle corten/crun <= 1.0", sd["corten"] / sd["crun"], 1.0),
            ]
        return [{"target": t, "ratio": round(v, 3), "met": v <= lim} for t, v, lim in checks]

    # ---- cleanup

    def cleanup(self):
        self.stop_containerd()
        for rt in ["corten", "runc", "crun"]:
            root = self.root(rt)
            if not os.path.isdir(root):
                continue
            for cid in os.listdir(root):
                log(f"removing leftover {rt} container {cid}")
                self.sp.run(self.rt_cmd(rt, "delete", "--force", cid), check=False)
        self.sp.reap_all()
        # the bench's cgroup parent in every hierarchy, deepest first
        for h in os.listdir(CGROUP_ROOT):
            top = os.path.join(CGROUP_ROOT, h, self.cg_parent)
            if os.path.islink(os.path.join(CGROUP_ROOT, h)) or not os.path.isdir(top):
                continue
            for dirpath, _, _ in sorted(os.walk(top), key=lambda e: -e[0].count("/")):
                try:
                    os.rmdir(dirpath)
                except OSError as e:
                    log(f"cannot remove cgroup {dirpath}: {e}")
        # mounts left under the work dir (none expected)
        with open("/proc/self/mountinfo") as f:
            mounts = [line.split()[4] for line in f]
        for m in sorted((m for m in mounts if m.startswith(self.work + "/")), key=len, reverse=True):
            subprocess.run(["umount", "-l", m], check=False)
        shutil.rmtree(self.work, ignore_errors=True)


# --------------------------------------------------------------------------
# the cgroup-less runs, inside `unshare -m --propagation private`


def inner_nocg(cfg_path):
    with open(cfg_path) as f:
        cfg = json.load(f)
    # Private mount namespace: this mount is invisible to the host.
    subprocess.run(["mount", "-t", "cgroup2", "none", CGROUP_ROOT], check=True)
    sp = Spawner(os.path.join(cfg["work"], "stderr-nocg.log"))
    roots = {k: os.path.join(cfg["work"], f"root-nocg-{k}") for k in ["corten", "crun"]}
    for r in roots.values():
        os.makedirs(r, exist_ok=True)

    def cmd(rt, *args):
        if rt == "corten":
            return [cfg["corten"], "--cgroup-manager", "disabled", "--root", roots[rt], *args]
        return [cfg["crun"], "--cgroup-manager=disabled", "--root", roots[rt], *args]

    floor = [cfg["unshare"], "--mount", "--uts", "--ipc", "--pid", "--net", "--fork",
             cfg["chroot"], cfg["rootfs"], "/bin/true"]
    names = ["corten_nocg", "crun_nocg", "floor"]
    seq = 0

    def loop(w, n, gap):
        nonlocal seq
        lc = {k: [] for k in names}
        for i in range(w + n):
            for k in rotated(names, i):
                seq += 1
                if k == "floor":
                    argv = floor
                else:
                    argv = cmd(k.split("_")[0], "run", "--bundle", cfg["bundle"], f"n{seq}")
                if gap:
                    time.sleep(gap)
                _, ns = sp.run(argv)
                if i >= w:
                    lc[k].append(ns / 1e6)
        return lc

    lc = loop(cfg["warmup"], cfg["rounds"], 0)
    lc_cold = loop(2, cfg["cold_rounds"], cfg["cold_gap_ms"] / 1000)
    rss = {k: [] for k in ["corten_nocg", "crun_nocg"]}
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise BenchError("prctl(PR_SET_CHILD_SUBREAPER) failed")
    for i in range(2 + cfg["rss_rounds"]):
        for k in rotated(list(rss), i):
            seq += 1
            rt, cid = k.split("_")[0], f"r{seq}"
            pidfile = os.path.join(cfg["work"], f"nocg-{cid}.pid")
            out = os.path.join(cfg["work"], f"nocg-{cid}.rss")
            sp.run([cfg["gnutime"], "-f", "%M", "-o", out,
                    *cmd(rt, "create", "--bundle", cfg["bundle"], "--pid-file", pidfile, cid)])
            pid = read_pid(pidfile)
            sp.run(cmd(rt, "start", cid))
            sp.wait(pid)
            sp.run(cmd(rt, "delete", cid))
            with open(out) as f:
                kb = int(f.read().split()[-1])
            os.unlink(out)
            os.unlink(pidfile)
            if i >= 2:
                rss[k].append(kb)
    with open(cfg["out"], "w") as f:
        json.dump({"lifecycle": lc, "lifecycle_cold": lc_cold, "rss": rss}, f)


# --------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repo", default=".", help="repository root (target/release/ is read from it)")
    ap.add_argument("--out", default="target/bench", help="where results.json and results.md go")
    ap.add_argument("--rounds", type=int, default=int(os.environ.get("BENCH_ROUNDS", 200)),
                    help="measured rounds per runtime for the millisecond figures")
    ap.add_argument("--warmup", type=int, default=int(os.environ.get("BENCH_WARMUP", 10)))
    ap.add_argument("--parallel-rounds", type=int, default=int(os.environ.get("BENCH_PARALLEL_ROUNDS", 7)))
    ap.add_argument("--parallel-containers", type=int, default=100)
    ap.add_argument("--rss-rounds", type=int, default=int(os.environ.get("BENCH_RSS_ROUNDS", 30)))
    ap.add_argument("--ctr-rounds", type=int, default=int(os.environ.get("BENCH_CTR_ROUNDS", 40)))
    ap.add_argument("--shim-containers", type=int, default=10)
    ap.add_argument("--cold-rounds", type=int, default=int(os.environ.get("BENCH_COLD_ROUNDS", 50)),
                    help="rounds of the cold lifecycle figures")
    ap.add_argument("--cold-gap-ms", type=int, default=150,
                    help="idle time before each cold run")
    ap.add_argument("--systemd-rounds", type=int, default=int(os.environ.get("BENCH_SYSTEMD_ROUNDS", 30)),
                    help="measured rounds per runtime in the systemd VM")
    ap.add_argument("--no-systemd-vm", action="store_true",
                    help="leave out the systemd-driver row (it boots a VM: a few minutes)")
    ap.add_argument("--inner-nocg", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.inner_nocg:
        inner_nocg(args.inner_nocg)
        return 0
    if os.geteuid() != 0:
        print("bench: run as root", file=sys.stderr)
        return 1
    t_start = time.time()
    busy0, own0 = cpu_busy_s(), own_cpu_s()
    b = Bench(args)
    ok = False
    try:
        b.setup()
        b.results["machine"] = b.machine()
        b.bench_sizes()
        phases = [
            ("harness baseline", b.bench_spawn_baseline),
            ("lifecycle (run)", b.bench_lifecycle_run),
            ("lifecycle (run), cold", lambda: b.bench_lifecycle_run(cold=True)),
            ("lifecycle (create/start/wait/delete)", b.bench_lifecycle_split),
            ("lifecycle without cgroups (corten, crun, floor)", b.bench_nocg),
            ("exec", b.bench_exec),
            ("peak RSS of create", b.bench_peak_rss),
            ("100 containers, 2 at a time", b.bench_parallel),
            ("containerd shims", b.bench_containerd),
        ]
        if not args.no_systemd_vm:
            phases.append(("systemd driver in the stock systemd VM", b.bench_systemd_vm))
        for name, fn in phases:
            log(f"phase: {name}")
            t0 = time.time()
            fn()
            b.results.setdefault("phase_seconds", {})[name] = round(time.time() - t0, 1)
        ok = True
    except BenchError as e:
        print(f"bench: {e}", file=sys.stderr)
    finally:
        b.cleanup()
    if not ok:
        return 1
    r = b.results
    r["method"] = {
        "lifecycle_ms": "`<runtime> --root <tmp> run --bundle <b> <id>` of /bin/true (create+start+wait+delete "
                        "in one command), default `corten spec` config with cgroupsPath /<bench parent>/<id>",
        "lifecycle_split_ms": "create --pid-file, start, waitpid of the init (the harness is a child "
                              "subreaper), delete: four commands",
        "lifecycle_ms corten_nocg, crun_nocg, floor": "`run` in a private mount namespace with cgroup2 on /sys/fs/cgroup; corten "
                             "--cgroup-manager disabled, crun --cgroup-manager=disabled; floor = unshare "
                             "--mount --uts --ipc --pid --net --fork chroot <rootfs> /bin/true",
        "lifecycle_cold_ms": "as lifecycle_ms, with an idle gap before each run; "
                             "back-to-back runs keep the kernel's rcu_sync state warm, so the first "
                             "cgroup v1 migration (cgroup.procs write) skips its RCU grace period",
        "spawn_baseline_ms": "posix_spawn + waitpid of the host's /bin/true: the harness's own share "
                             "of every figure",
        "exec_ms": "`exec <id> /bin/true` into a running `sleep 1000` container",
        "run_parallel_s": "100 containers, each create/start/wait/delete, 2 worker threads; "
                          "median over rounds",
        "peak_rss_kb": "/usr/bin/time -f %M of the whole `create` command (corten: including its "
                       "re-exec through a read-only bind of itself)",
        "shim_rss_kb": "sum of VmRSS of the shim processes of a private containerd / number of containers "
                       "(`ctr run -d --rootfs` of `sleep 1000`); pod5: 5 containers with the annotation "
                       f"{POD_ANNOTATION}=<pod>, which both shims use to share one shim",
        "containerd_start_ms": "`ctr run --rm --rootfs <busybox> <id> /bin/true` (ctr start-up included)",
        "systemd_lifecycle_ms": "in the stock systemd host VM (qemu TCG, Debian 12, systemd 252, cgroup v2): "
                                "`<runtime> --systemd-cgroup run` of /bin/true with cgroupsPath "
                                "system.slice:bench:<id> (a transient scope started, waited for and stopped "
                                "per run), the three runtimes rotated in every round; bash $EPOCHREALTIME; "
                                "run under `setarch -R`: with address randomisation TCG translates a binary's "
                                "code again on every run (systemd_lifecycle_aslr_ms), which measures code size "
                                "rather than running time",
        "systemd_vm_cgroupfs_ms": "as systemd_lifecycle_ms in the same VM and run, without --systemd-cgroup "
                                  "(cgroupsPath /bench/<id>): what a run costs there without the driver",
        "binary_bytes": "file sizes",
        "binary_with_libs_bytes": "file size plus the sizes of the shared libraries `ldd` lists "
                                  "(corten and its shim are static)",
    }
    r["rounds"] = {
        "rounds": args.rounds, "warmup": args.warmup, "parallel_rounds": args.parallel_rounds,
        "rss_rounds": args.rss_rounds, "ctr_rounds": args.ctr_rounds,
        "systemd_rounds": None if args.no_systemd_vm else args.systemd_rounds,
    }
    r["machine"]["loadavg_at_end"] = open("/proc/loadavg").read().split()[:3]
    # CPU used by anything but this harness and its children (other users'
    # work; also kernel threads working for the containers, a few percent).
    wall = time.time() - t_start
    foreign = max(0.0, (cpu_busy_s() - busy0) - (own_cpu_s() - own0))
    r["machine"]["foreign_cpu_pct"] = round(100 * foreign / (wall * (os.cpu_count() or 1)), 1)
    r["targets"] = b.targets()
    r["duration_s"] = round(time.time() - t_start, 1)
    table = b.table()
    m = r["machine"]
    header = (f"{m['os']}, kernel {m['kernel']}, {m['cpus']} x {m['cpu']}, {m['mem_total']}, "
              f"cgroup {m['cgroup']}; medians of {args.rounds} interleaved rounds after {args.warmup} "
              f"warm-up ({args.cold_rounds} for the cold rows); every time includes the harness's "
              f"{r['spawn_baseline_ms']['true']:.2f} ms spawn+wait of a process; total {r['duration_s']} s")
    targets = "\n".join(f"- {'met' if t['met'] else 'NOT met'}: {t['target']} (now {t['ratio']})"
                        for t in r["targets"])
    if m["foreign_cpu_pct"] > 15:
        header += (f"\n\nWARNING: other processes used {m['foreign_cpu_pct']}% of the CPUs during the "
                   "run; rerun on an idle machine for stable figures.")
    os.makedirs(b.out, exist_ok=True)
    with open(os.path.join(b.out, "results.json"), "w") as f:
        json.dump(r, f, indent=2)
        f.write("\n")
    with open(os.path.join(b.out, "samples.json"), "w") as f:
        json.dump(b.samples, f)
    with open(os.path.join(b.out, "results.md"), "w") as f:
        f.write(f"{header}\n\n{table}\n\n{targets}\n")
    print(f"\n{header}\n\n{table}\n\nTargets:\n{targets}\n\nresults: {os.path.join(b.out, 'results.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
