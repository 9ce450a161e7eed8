//! corten as Docker's runtime: a private dockerd (Debian's docker.io 20.10)
//! started with `--add-runtime corten=…`, a busybox image made with `docker
//! import`, and the things users do, each compared with `--runtime runc`
//! under the same daemon where the result depends on the runtime.
//!
//! The daemon gets its own `--data-root`, `--exec-root`, socket, pid file and
//! cgroup parent, `--bridge=none --iptables=false --ip-masq=false`, and is
//! stopped by pid; containers run with `--network none`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use corten_integration_tests::{require_root, runtime_bin, wait_until, OutputExt};

const DOCKER: &str = "/usr/bin/docker";
const DOCKERD: &str = "/usr/sbin/dockerd";

struct Daemon {
    dir: PathBuf,
    child: Child,
    cgroup_parent: String,
}

impl Daemon {
    fn start(test: &str) -> Daemon {
        for bin in [DOCKER, DOCKERD] {
            assert!(
                Path::new(bin).exists(),
                "{bin} missing: `make deps` installs docker.io"
            );
        }
        let dir = Path::new("/tmp/corten-it").join(format!("docker-{test}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("daemon dir");
        let cgroup_parent = format!("/corten-it-docker-{}-{test}", std::process::id());
        let log = fs::File::create(dir.join("dockerd.log")).expect("dockerd log");
        let child = Command::new(DOCKERD)
            .args(["--data-root", &dir.join("data").to_string_lossy()])
            .args(["--exec-root", &dir.join("exec").to_string_lossy()])
            .args([
                "-H",
                &format!("unix://{}", dir.join("docker.sock").display()),
            ])
            .args(["--pidfile", &dir.join("docker.pid").to_string_lossy()])
            .args([
                "--bridge=none",
                "--iptables=false",
                "--ip-masq=false",
                "--ip6tables=false",
            ])
            .args([
                "--storage-driver",
                "vfs",
                "--exec-opt",
                "native.cgroupdriver=cgroupfs",
            ])
            .args(["--cgroup-parent", &cgroup_parent])
            .args([
                "--add-runtime",
                &format!("corten={}", runtime_bin().display()),
            ])
            .args(["--log-level", "warn"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start dockerd");
        let d = Daemon {
            dir,
            child,
            cgroup_parent,
        };
        let up = wait_until(Duration::from_secs(30), || {
            d.docker(&["info"]).status.success()
        });
        assert!(
            up,
            "dockerd did not come up: {}",
            fs::read_to_string(d.dir.join("dockerd.log")).unwrap_or_default()
        );
        d.import_busybox();
        d
    }

    fn docker(&self, args: &[&str]) -> Output {
        Command::new(DOCKER)
            .args([
                "-H",
                &format!("unix://{}", self.dir.join("docker.sock").display()),
            ])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run docker")
    }

    fn import_busybox(&self) {
        let tar = corten_integration_tests::busybox_tarball(&self.dir);
        self.docker(&["import", &tar.to_string_lossy(), "busybox:corten"])
            .assert_success("docker import");
    }

    /// `docker run --rm --network none <opts> busybox:corten <cmd>` with a runtime.
    fn run(&self, runtime: &str, opts: &[&str], cmd: &[&str]) -> Output {
        let mut args = vec!["run", "--rm", "--network", "none", "--runtime", runtime];
        args.extend_from_slice(opts);
        args.push("busybox:corten");
        args.extend_from_slice(cmd);
        self.docker(&args)
    }

    /// Runs the same container with corten and with runc and checks that
    /// stdout and the exit code agree; returns corten's output.
    fn same_as_runc(&self, opts: &[&str], cmd: &[&str]) -> Output {
        let ours = self.run("corten", opts, cmd);
        let theirs = self.run("runc", opts, cmd);
        assert_eq!(
            (ours.status.code(), ours.stdout_str()),
            (theirs.status.code(), theirs.stdout_str()),
            "corten and runc differ for {opts:?} {cmd:?}; corten stderr: {} runc stderr: {}",
            ours.stderr_str(),
            theirs.stderr_str()
        );
        ours
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let ids = self.docker(&["ps", "-aq"]).stdout_str();
        for id in ids.split_whitespace() {
            let _ = self.docker(&["rm", "-f", id]);
        }
        // SAFETY-free: SIGTERM to the dockerd we started, by pid.
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).unwrap_or(0));
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let start = Instant::now();
        while self.child.try_wait().ok().flatten().is_none()
            && start.elapsed() < Duration::from_secs(20)
        {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = Command::new("umount")
            .args(["-R", "-l"])
            .arg(self.dir.join("data"))
            .output();
        let _ = fs::remove_dir_all(&self.dir);
        for root in ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"] {
            if let Ok(entries) = fs::read_dir(root) {
                for e in entries.flatten() {
                    let _ =
                        fs::remove_dir(e.path().join(self.cgroup_parent.trim_start_matches('/')));
                }
            }
        }
    }
}

#[test]
fn docker_runs_containers_through_corten() {
    require_root!();
    let d = Daemon::start("basics");
    let info = d
        .docker(&["info", "--format", "{{json .Runtimes}}"])
        .assert_success("info")
        .stdout_str();
    assert!(
        info.contains("\"corten\""),
        "docker info lacks the corten runtime: {info}"
    );

    // Exit codes, --rm, stdout.
    let out = d.same_as_runc(&[], &["sh", "-c", "echo hello; exit 3"]);
    assert_eq!(out.stdout_str(), "hello\n");
    assert!(
        d.docker(&["ps", "-aq"]).stdout_str().trim().is_empty(),
        "--rm left a container"
    );

    // -i: stdin reaches the container.
    let mut child = Command::new(DOCKER)
        .args([
            "-H",
            &format!("unix://{}", d.dir.join("docker.sock").display()),
        ])
        .args([
            "run",
            "--rm",
            "-i",
            "--network",
            "none",
            "--runtime",
            "corten",
            "busybox:corten",
            "cat",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("docker run -i");
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(b"through stdin\n")
            .expect("write");
    }
    let out = child.wait_with_output().expect("docker run -i");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "through stdin\n");

    // -t: a real terminal inside.
    let out = d.run("corten", &["-t"], &["sh", "-c", "tty; stty size"]);
    assert!(
        out.stdout_str().contains("/dev/pts/0"),
        "{}",
        out.stdout_str()
    );

    // Resource and security flags: the container sees the same as under runc.
    let script = "hostname; id; grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status; \
                  cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max \
                      /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.shares \
                      /sys/fs/cgroup/cpuset/cpuset.cpus 2>/dev/null; \
                  cat /proc/sys/kernel/shm_rmid_forced; ulimit -n; \
                  touch /x 2>&1; touch /tmp/y 2>&1; cat /vol/f";
    let vol = d.dir.join("vol");
    fs::create_dir_all(&vol).expect("vol");
    fs::write(vol.join("f"), "volume\n").expect("vol file");
    let bind = format!("{}:/vol:ro", vol.display());
    let out = d.same_as_runc(
        &[
            "--hostname",
            "hh",
            "--memory",
            "64m",
            "--memory-swap",
            "128m",
            "--cpus",
            "0.5",
            "--cpu-shares",
            "512",
            "--cpuset-cpus",
            "0",
            "--pids-limit",
            "50",
            "--read-only",
            "--tmpfs",
            "/tmp",
            "-v",
            &bind,
            "--cap-drop",
            "ALL",
            "--cap-add",
            "NET_RAW",
            "--user",
            "65534",
            "--group-add",
            "5",
            "--security-opt",
            "no-new-privileges",
            "--sysctl",
            "kernel.shm_rmid_forced=1",
            "--ulimit",
            "nofile=512:512",
        ],
        &["sh", "-c", script],
    );
    let text = out.stdout_str();
    for want in [
        "hh\n",
        "uid=65534",
        "groups=5",
        "NoNewPrivs:\t1",
        "Seccomp:\t2",
        "67108864",
        "50\n",
        "50000",
        "512\n",
        "Read-only file system",
        "volume",
    ] {
        assert!(text.contains(want), "{want:?} missing from:\n{text}");
    }

    // A tmpfs keeps the image directory's mode; --device.
    d.same_as_runc(
        &["--tmpfs", "/tmp", "--tmpfs", "/run:mode=1777"],
        &["sh", "-c", "stat -c %a /tmp /run"],
    );
    let out = d.same_as_runc(
        &["--device", "/dev/fuse"],
        &["sh", "-c", "exec 3</dev/fuse && echo fuse-ok"],
    );
    assert_eq!(out.stdout_str(), "fuse-ok\n");

    // --init, --pid host, --ipc host, --privileged: same outcome as runc.
    d.same_as_runc(
        &["--init"],
        &["sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '"],
    );
    let out = d.run(
        "corten",
        &["--pid", "host"],
        &["sh", "-c", "test -d /proc/1 && ps | wc -l"],
    );
    assert!(
        out.stdout_str().trim().parse::<u32>().unwrap_or(0) > 3,
        "--pid host: {}",
        out.stdout_str()
    );
    d.same_as_runc(&["--ipc", "host"], &["true"]);
    let ours = d.run(
        "corten",
        &["--privileged"],
        &["sh", "-c", "grep CapEff /proc/self/status"],
    );
    let theirs = d.run(
        "runc",
        &["--privileged"],
        &["sh", "-c", "grep CapEff /proc/self/status"],
    );
    assert_eq!(
        ours.status.success(),
        theirs.status.success(),
        "--privileged: {} / {}",
        ours.stderr_str(),
        theirs.stderr_str()
    );
    assert_eq!(ours.stdout_str(), theirs.stdout_str());

    // A custom seccomp profile.
    let profile = d.dir.join("seccomp.json");
    fs::write(
        &profile,
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO"}]}"#,
    )
    .expect("profile");
    let opt = format!("seccomp={}", profile.display());
    let out = d.same_as_runc(
        &["--security-opt", &opt],
        &["sh", "-c", "mkdir /d 2>&1; echo done"],
    );
    assert!(
        out.stdout_str().contains("Operation not permitted"),
        "{}",
        out.stdout_str()
    );
}

#[test]
fn docker_detached_containers_exec_signals_and_restarts() {
    require_root!();
    let d = Daemon::start("lifecycle");
    let run_d = |name: &str, extra: &[&str], cmd: &[&str]| {
        let mut args = vec![
            "run",
            "-d",
            "--name",
            name,
            "--network",
            "none",
            "--runtime",
            "corten",
        ];
        args.extend_from_slice(extra);
        args.push("busybox:corten");
        args.extend_from_slice(cmd);
        d.docker(&args)
            .assert_success(&format!("docker run -d {name}"));
    };
    run_d(
        "t1",
        &[],
        &[
            "sh",
            "-c",
            "trap 'echo got-usr1' USR1; echo started; while :; do sleep 0.1; done",
        ],
    );
    assert!(wait_until(Duration::from_secs(10), || d
        .docker(&["logs", "t1"])
        .stdout_str()
        .contains("started")));
    // exec, with and without a terminal.
    let out = d.docker(&["exec", "t1", "sh", "-c", "echo exec-ok; exit 5"]);
    assert_eq!(
        (out.status.code(), out.stdout_str()),
        (Some(5), "exec-ok\n".to_owned())
    );
    let out = d.docker(&["exec", "-t", "t1", "tty"]);
    assert!(
        out.stdout_str().contains("/dev/pts/"),
        "{}",
        out.stdout_str()
    );
    // kill -s, logs.
    d.docker(&["kill", "-s", "USR1", "t1"])
        .assert_success("kill -s USR1");
    assert!(wait_until(Duration::from_secs(10), || d
        .docker(&["logs", "t1"])
        .stdout_str()
        .contains("got-usr1")));
    // pause/unpause.
    d.docker(&["pause", "t1"]).assert_success("pause");
    let status = d
        .docker(&["inspect", "-f", "{{.State.Status}}", "t1"])
        .stdout_str();
    assert_eq!(status.trim(), "paused");
    d.docker(&["unpause", "t1"]).assert_success("unpause");
    // stats and update.
    let stats = d
        .docker(&["stats", "--no-stream", "--format", "{{.PIDs}}", "t1"])
        .assert_success("stats")
        .stdout_str();
    assert!(
        stats.trim().parse::<u32>().unwrap_or(0) >= 1,
        "stats: {stats}"
    );
    d.docker(&[
        "update",
        "--memory",
        "96m",
        "--memory-swap",
        "192m",
        "--pids-limit",
        "30",
        "--cpus",
        "0.5",
        "t1",
    ])
    .assert_success("update");
    let out = d.docker(&[
        "exec",
        "t1",
        "cat",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
        "/sys/fs/cgroup/pids/pids.max",
    ]);
    assert_eq!(out.stdout_str(), "100663296\n30\n");
    // restart.
    d.docker(&["restart", "-t", "1", "t1"])
        .assert_success("restart");
    assert_eq!(
        d.docker(&["inspect", "-f", "{{.State.Running}}", "t1"])
            .stdout_str()
            .trim(),
        "true"
    );
    // stop: SIGTERM ignored (pid 1 without a handler), SIGKILL after the timeout.
    let t = Instant::now();
    d.docker(&["stop", "-t", "1", "t1"]).assert_success("stop");
    assert!(t.elapsed() < Duration::from_secs(10));
    assert_eq!(
        d.docker(&["inspect", "-f", "{{.State.ExitCode}}", "t1"])
            .stdout_str()
            .trim(),
        "137"
    );
    // --restart on-failure.
    run_d(
        "r1",
        &["--restart", "on-failure:2"],
        &["sh", "-c", "exit 1"],
    );
    assert!(
        wait_until(Duration::from_secs(20), || {
            d.docker(&["inspect", "-f", "{{.RestartCount}} {{.State.Status}}", "r1"])
                .stdout_str()
                .trim()
                == "2 exited"
        }),
        "{}",
        d.docker(&["inspect", "-f", "{{.RestartCount}} {{.State.Status}}", "r1"])
            .stdout_str()
    );
    // healthcheck (runs through exec).
    run_d(
        "h1",
        &["--health-cmd", "true", "--health-interval", "1s"],
        &["sleep", "1000"],
    );
    assert!(
        wait_until(Duration::from_secs(20), || {
            d.docker(&["inspect", "-f", "{{.State.Health.Status}}", "h1"])
                .stdout_str()
                .trim()
                == "healthy"
        }),
        "never healthy"
    );
    // -t: the terminal is resized through the API (what the CLI does on
    // SIGWINCH); the container's pty follows.
    run_d("tty1", &["-t"], &["sleep", "1000"]);
    let url = "http://localhost/containers/tty1/resize?h=37&w=111";
    let sock = d.dir.join("docker.sock");
    let resized = Command::new("curl")
        .args([
            "-s",
            "-f",
            "-X",
            "POST",
            "--unix-socket",
            &sock.to_string_lossy(),
            url,
        ])
        .status()
        .expect("curl");
    assert!(resized.success(), "resize request failed");
    let out = d.docker(&["exec", "tty1", "sh", "-c", "stty size < /proc/1/fd/0"]);
    assert_eq!(out.stdout_str(), "37 111\n", "{}", out.stderr_str());

    // attach sees the output of a running container.
    run_d(
        "a1",
        &[],
        &["sh", "-c", "sleep 1; echo attached-output; sleep 1"],
    );
    let out = d.docker(&["attach", "--no-stdin", "a1"]);
    assert!(
        out.stdout_str().contains("attached-output"),
        "{}",
        out.stdout_str()
    );
}

#[test]
fn docker_reports_oom_kills() {
    require_root!();
    let d = Daemon::start("oom");
    let out = d.docker(&[
        "run",
        "--name",
        "oom",
        "--network",
        "none",
        "--runtime",
        "corten",
        "--memory",
        "32m",
        "--memory-swap",
        "32m",
        "busybox:corten",
        "tail",
        "/dev/zero",
    ]);
    assert_eq!(out.status.code(), Some(137));
    let state = d
        .docker(&["inspect", "-f", "{{.State.OOMKilled}}", "oom"])
        .stdout_str();
    assert_eq!(
        state.trim(),
        "true",
        "docker inspect does not show OOMKilled"
    );
    // --oom-kill-disable is applied (not exercised: the hog would hang).
    let out = d.same_as_runc(
        &["--memory", "32m", "--oom-kill-disable"],
        &[
            "grep",
            "oom_kill_disable",
            "/sys/fs/cgroup/memory/memory.oom_control",
        ],
    );
    assert_eq!(out.stdout_str(), "oom_kill_disable 1\n");
}
