//! Hardening (issue 16): `corten` killed at every step of `create`, `start`,
//! `exec` and `delete`, then `delete --force`, leaves nothing; a damaged
//! `state.json` can still be deleted; two containers on one `cgroupsPath`
//! never act on each other's processes.
//!
//! The step boundaries come from `--debug`: each step of a command writes
//! one line to the `--log` file, and the test kills the command (SIGKILL,
//! by its pid) as soon as the k-th line is there, for every k.

use std::fs;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use corten_integration_tests::{
    cgroup_dirs, mounts_under, pid_alive, processes_mentioning, require_root, scaled, wait_until,
    Bundle, OutputExt, Runtime,
};

/// Debug lines written so far to `log`.
fn debug_lines(log: &Path) -> usize {
    fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("level=debug"))
        .count()
}

/// Runs `<runtime> --debug --log <log> <args>` and SIGKILLs it once `log`
/// has `step` debug lines. Returns whether it was killed (`false`: it ended
/// first, having fewer steps).
fn kill_at_step(rt: &Runtime, args: &[&str], log: &Path, step: usize) -> bool {
    let _ = fs::remove_file(log);
    let mut cmd = rt.command();
    cmd.arg("--debug").arg("--log").arg(log).args(args);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child: Child = cmd.spawn().expect("spawn the runtime");
    let mut killed = false;
    // Polled every 50 µs (wait_until backs off to 20 ms, and the last
    // steps of a create are a millisecond apart).
    let deadline = Instant::now() + scaled(Duration::from_secs(10));
    let ended = loop {
        if let Ok(Some(_)) = child.try_wait() {
            break true;
        }
        if debug_lines(log) >= step {
            let _ = child.kill();
            killed = true;
            break true;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break false;
        }
        std::thread::sleep(Duration::from_micros(50));
    };
    let _ = child.wait();
    assert!(
        ended,
        "{args:?} neither ended nor reached step {step} within 10 s"
    );
    killed
}

/// Asserts that container `id` of `b` left nothing: no state entry, no
/// cgroup directory, no process started with this runtime's root (an init
/// that never exec'd), no mount under the rootfs.
fn assert_nothing_left(rt: &Runtime, b: &Bundle, id: &str, when: &str) {
    assert!(
        !rt.root_entries().iter().any(|e| e == id),
        "{when}: state entry of {id} left: {:?}",
        rt.root_entries()
    );
    let gone = wait_until(Duration::from_secs(2), || {
        cgroup_dirs(b.cgroup_path()).is_empty()
    });
    assert!(
        gone,
        "{when}: cgroups left: {:?}",
        cgroup_dirs(b.cgroup_path())
    );
    let marker = format!("{}/", rt.root().display());
    let gone = wait_until(Duration::from_secs(2), || {
        processes_mentioning(&marker).is_empty()
    });
    assert!(
        gone,
        "{when}: runtime processes left: {:?}",
        processes_mentioning(&marker)
    );
    assert!(
        mounts_under(&b.rootfs()).is_empty(),
        "{when}: mounts left: {:?}",
        mounts_under(&b.rootfs())
    );
}

fn sleeper(test: &str) -> Bundle {
    let mut b = Bundle::new(test);
    b.args(&["sleep", "1000"]);
    b.save();
    b
}

#[test]
fn create_killed_at_every_step_then_delete_force_leaves_nothing() {
    require_root!();
    let b = sleeper("kill-create");
    let rt = Runtime::new("kill-create");
    let log = rt.scratch().join("debug.log");
    let bundle = b.path().display().to_string();
    let mut killed = 0;
    for step in 1..=20 {
        let id = format!("c{step}");
        rt.track_id(&id, &b);
        if kill_at_step(&rt, &["create", "--bundle", &bundle, &id], &log, step) {
            killed += 1;
        }
        rt.cmd(&["delete", "--force", &id]).assert_success(&format!(
            "delete --force after create killed at step {step}"
        ));
        assert_nothing_left(&rt, &b, &id, &format!("create killed at step {step}"));
    }
    // create has more than a dozen steps: most rounds really killed it.
    assert!(killed >= 10, "only {killed} rounds killed create mid-way");
}

#[test]
fn run_killed_after_random_delays_then_delete_force_leaves_nothing() {
    require_root!();
    let b = sleeper("kill-run");
    let rt = Runtime::new("kill-run");
    let bundle = b.path().display().to_string();
    for round in 0..30u64 {
        let id = format!("r{round}");
        rt.track_id(&id, &b);
        let mut cmd = rt.command();
        cmd.args(["run", "--detach", "--bundle", &bundle, &id]);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = cmd.spawn().expect("spawn run");
        // 0 to 14.5 ms: spread over the whole of a create on this machine.
        std::thread::sleep(Duration::from_micros(round * 500));
        let _ = child.kill();
        let _ = child.wait();
        rt.cmd(&["delete", "--force", &id])
            .assert_success(&format!("delete --force after round {round}"));
        assert_nothing_left(
            &rt,
            &b,
            &id,
            &format!("run killed after {} µs", round * 500),
        );
    }
}

#[test]
fn start_exec_and_delete_killed_at_every_step_leave_nothing() {
    require_root!();
    let b = sleeper("kill-verbs");
    let rt = Runtime::new("kill-verbs");
    let log = rt.scratch().join("debug.log");
    for (verb, steps) in [("start", 3), ("exec", 6), ("delete", 4)] {
        for step in 1..=steps {
            let id = format!("{verb}{step}");
            rt.create(&id, &b).assert_success("create");
            let args: Vec<&str> = match verb {
                "start" => vec!["start", &id],
                "exec" => vec!["exec", "--detach", &id, "sleep", "1000"],
                _ => vec!["delete", "--force", &id],
            };
            if verb == "exec" {
                rt.start(&id).assert_success("start");
            }
            kill_at_step(&rt, &args, &log, step);
            rt.cmd(&["delete", "--force", &id]).assert_success(&format!(
                "delete --force after {verb} killed at step {step}"
            ));
            assert_nothing_left(&rt, &b, &id, &format!("{verb} killed at step {step}"));
        }
    }
}

#[test]
fn delete_force_removes_a_container_whose_state_json_is_damaged() {
    require_root!();
    let b = sleeper("damaged-state");
    let rt = Runtime::new("damaged-state");
    for (n, damage) in ["", "{\"ociVersion\":", "not json at all"]
        .iter()
        .enumerate()
    {
        let id = format!("d{n}");
        rt.run_with(&id, &b, &["--detach"])
            .assert_success("run --detach");
        let pid = rt.pid(&id);
        fs::write(rt.root().join(&id).join("state.json"), damage).unwrap();
        let out = rt
            .cmd(&["state", &id])
            .assert_failure("state of a damaged record");
        assert!(
            out.stderr_str().contains("state.json"),
            "{}",
            out.stderr_str()
        );
        rt.cmd(&["delete", &id])
            .assert_failure("delete (without --force) of a damaged record");
        let out = rt
            .cmd(&["delete", "--force", &id])
            .assert_success("delete --force of a damaged record");
        assert!(
            out.stderr_str().contains("using the copy"),
            "no warning about the damage: {}",
            out.stderr_str()
        );
        assert!(
            wait_until(Duration::from_secs(2), || !pid_alive(pid)),
            "init {pid} still runs"
        );
        assert_nothing_left(&rt, &b, &id, &format!("state.json {damage:?}"));
    }
    // state.json removed: the copy too.
    let id = "gone";
    rt.run_with(id, &b, &["--detach"])
        .assert_success("run --detach");
    let pid = rt.pid(id);
    fs::remove_file(rt.root().join(id).join("state.json")).unwrap();
    rt.cmd(&["delete", "--force", id])
        .assert_success("delete --force without state.json");
    assert!(
        wait_until(Duration::from_secs(2), || !pid_alive(pid)),
        "init {pid} still runs"
    );
    assert_nothing_left(&rt, &b, id, "state.json removed");
    // Both copies damaged: refused, with what to remove by hand.
    let id = "both";
    rt.run_with(id, &b, &["--detach"])
        .assert_success("run --detach");
    let dir = rt.root().join(id);
    fs::write(dir.join("state.json"), "").unwrap();
    fs::write(dir.join(".state.json.recovery"), "").unwrap();
    let out = rt
        .cmd(&["delete", "--force", id])
        .assert_failure("delete --force without a usable record");
    let err = out.stderr_str();
    assert!(
        err.contains(&dir.display().to_string()) && err.contains("remove"),
        "the message does not say what to remove: {err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

/// Two bundles with the same `cgroupsPath`.
fn pair(test: &str) -> (Bundle, Bundle) {
    let a = sleeper(&format!("{test}-a"));
    let mut b = sleeper(&format!("{test}-b"));
    b.set("/linux/cgroupsPath", serde_json::json!(a.cgroup_path()));
    b.save();
    (a, b)
}

#[test]
fn containers_sharing_a_cgroup_never_touch_each_other() {
    require_root!();
    let (a, b) = pair("shared-cg");
    let rt = Runtime::new("shared-cg");
    rt.run_with("a", &a, &["--detach"]).assert_success("run a");
    let out = rt
        .run_with("b", &b, &["--detach"])
        .assert_success("run b in a's cgroup");
    assert!(
        out.stderr_str().contains("container's cgroup is not empty"),
        "no warning: {}",
        out.stderr_str()
    );
    let (pa, pb) = (rt.pid("a"), rt.pid("b"));
    // ps lists each container's own processes only.
    let ps = |id: &str| {
        let out = rt.cmd(&["ps", "--format", "json", id]).assert_success("ps");
        serde_json::from_str::<Vec<i64>>(out.stdout_str().trim()).unwrap()
    };
    assert_eq!(ps("a"), [pa]);
    assert_eq!(ps("b"), [pb]);
    rt.cmd(&["exec", "--detach", "b", "sleep", "999"])
        .assert_success("exec in b");
    assert_eq!(ps("b").len(), 2);
    // kill --all b: b's processes only.
    rt.cmd(&["kill", "--all", "b", "KILL"])
        .assert_success("kill --all b");
    rt.wait_status("b", "stopped");
    assert!(pid_alive(pa), "kill --all b killed a's init");
    rt.delete("b").assert_success("delete b");
    assert!(pid_alive(pa), "delete b killed a's init");
    assert!(
        !cgroup_dirs(a.cgroup_path()).is_empty(),
        "delete b removed a's cgroup"
    );
    // And the other way round: delete --force of the cgroup's maker leaves
    // the container that joined it.
    rt.run_with("c", &b, &["--detach"])
        .assert_success("run c in a's cgroup");
    let pc = rt.pid("c");
    rt.cmd(&["delete", "--force", "a"])
        .assert_success("delete --force a");
    assert!(
        wait_until(Duration::from_secs(2), || !pid_alive(pa)),
        "a's init survived"
    );
    assert!(pid_alive(pc), "delete --force a killed c");
    rt.cmd(&["delete", "--force", "c"])
        .assert_success("delete --force c");
    assert!(
        wait_until(scaled(Duration::from_secs(2)), || cgroup_dirs(
            a.cgroup_path()
        )
        .is_empty()),
        "the last container's delete left the cgroup: {:?}",
        cgroup_dirs(a.cgroup_path())
    );
}

#[test]
fn a_container_without_its_own_pid_namespace_cannot_share_a_busy_cgroup() {
    require_root!();
    let (mut a, mut b) = pair("shared-hostpid");
    a.remove_namespace("pid");
    a.save();
    b.remove_namespace("pid");
    b.save();
    let rt = Runtime::new("shared-hostpid");
    rt.run_with("a", &a, &["--detach"]).assert_success("run a");
    let pa = rt.pid("a");
    let out = rt
        .run_with("b", &b, &["--detach"])
        .assert_failure("run b (host pid namespace) in a's cgroup");
    let err = out.stderr_str();
    assert!(
        err.contains("cannot share a cgroup") && err.contains("pid namespace"),
        "{err}"
    );
    assert!(
        !rt.root_entries().iter().any(|e| e == "b"),
        "b's state left"
    );
    assert!(pid_alive(pa), "a was touched");
    rt.cmd(&["delete", "--force", "a"])
        .assert_success("delete --force a");
    assert_nothing_left(&rt, &a, "a", "after a");
}

/// A bundle whose config binds the host file `file` at `dest`.
fn binding(test: &str, file: &Path, dest: &str) -> Bundle {
    let mut b = Bundle::new(test);
    b.push(
        "/mounts",
        serde_json::json!({
            "destination": dest,
            "type": "bind",
            "source": file,
            "options": ["rbind", "rw"]
        }),
    );
    b.save();
    b
}

#[test]
fn mounts_inside_proc_are_refused_as_runc_does() {
    require_root!();
    let rt = Runtime::new("proc-mounts");
    let file = rt.scratch().join("host-file");
    fs::write(&file, "untouched\n").unwrap();
    // Directly, and through a symlink of the image that leads into /proc.
    let direct = binding("proc-direct", &file, "/proc/sys/kernel/shmmax");
    let via_link = binding("proc-link", &file, "/evil/shmmax");
    std::os::unix::fs::symlink("/proc/sys/kernel", via_link.rootfs().join("evil")).unwrap();
    for (name, b) in [("direct", &direct), ("via a symlink", &via_link)] {
        let id = format!("p-{}", b.name());
        let out = rt.create(&id, b).assert_failure(name);
        let err = out.stderr_str();
        assert!(
            err.contains("cannot be mounted because it is inside /proc")
                && err.contains("/proc/sys/kernel/shmmax"),
            "{name}: {err}"
        );
        assert_nothing_left(&rt, b, &id, name);
    }
    // /proc itself from something that is not a procfs.
    let dir = rt.scratch().join("fake-proc");
    fs::create_dir_all(&dir).unwrap();
    let fake = binding("proc-fake", &dir, "/proc");
    let out = rt
        .create("fake", &fake)
        .assert_failure("/proc from a directory");
    assert!(
        out.stderr_str().contains("is not of type proc"),
        "{}",
        out.stderr_str()
    );
    assert_nothing_left(&rt, &fake, "fake", "fake /proc");
    // The files lxcfs emulates may be covered.
    let mut lxcfs = binding("proc-uptime", &file, "/proc/uptime");
    lxcfs.args(&["cat", "/proc/uptime"]);
    lxcfs.save();
    assert_eq!(rt.run_ok("uptime", &lxcfs), "untouched\n");
    assert_eq!(fs::read_to_string(&file).unwrap(), "untouched\n");
}

/// kernel.shmmax as the IPC namespace of `pid` sees it (read on a thread
/// that joined that namespace only).
fn shmmax_of(pid: i64) -> String {
    std::thread::spawn(move || {
        let ns = fs::File::open(format!("/proc/{pid}/ns/ipc")).expect("open ipc ns");
        nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWIPC).expect("setns ipc");
        fs::read_to_string("/proc/sys/kernel/shmmax").expect("read shmmax")
    })
    .join()
    .expect("reader thread")
    .trim()
    .to_owned()
}

#[test]
fn a_mount_raced_over_a_sysctl_does_not_receive_the_write() {
    require_root!();
    // The attacker: a process in the container's mount namespace that
    // mounts a host file over /proc/sys/kernel/shmmax, in the container's
    // /proc and in the /proc the init still sees before pivot_root, between
    // the proc mount and the sysctl writes (here a createContainer hook,
    // which runs at that moment, in that namespace). The write must reach
    // the kernel, not the file, and the create must not fail either.
    let rt = Runtime::new("proc-race");
    let file = rt.scratch().join("host-file");
    fs::write(&file, "untouched\n").unwrap();
    let mut b = sleeper("proc-race");
    let target = b.rootfs().join("proc/sys/kernel/shmmax");
    b.set(
        "/hooks",
        serde_json::json!({
            "createContainer": [{
                "path": "/bin/sh",
                "args": ["sh", "-c", format!(
                    "mount --bind {f} {t} && mount --bind {f} /proc/sys/kernel/shmmax",
                    f = file.display(),
                    t = target.display()
                )]
            }]
        }),
    );
    b.set(
        "/linux/sysctl",
        serde_json::json!({"kernel.shmmax": "12345678"}),
    );
    b.save();
    rt.create("race", &b)
        .assert_success("create with the raced mount");
    assert_eq!(
        fs::read_to_string(&file).unwrap(),
        "untouched\n",
        "the sysctl write went into the mounted host file"
    );
    assert_eq!(
        shmmax_of(rt.pid("race")),
        "12345678",
        "the sysctl was not set"
    );
    rt.cmd(&["delete", "--force", "race"])
        .assert_success("delete --force");
    assert_nothing_left(&rt, &b, "race", "raced sysctl");
}

#[test]
fn a_mount_below_a_dangling_symlink_of_the_image_is_made_where_it_points() {
    require_root!();
    // Images have `/var/run -> /run` without a `/run`: runc mounts at the
    // link's target, made inside the rootfs.
    let rt = Runtime::new("dangling-dest");
    let mut b = Bundle::new("dangling-dest");
    let var = b.rootfs().join("var");
    fs::create_dir_all(&var).unwrap();
    let _ = fs::remove_dir_all(b.rootfs().join("run"));
    std::os::unix::fs::symlink("/run", var.join("run")).unwrap();
    b.push(
        "/mounts",
        serde_json::json!({"destination": "/var/run/secrets", "type": "tmpfs", "source": "tmpfs"}),
    );
    b.sh("grep ' /run/secrets ' /proc/self/mountinfo | cut -d' ' -f9");
    b.save();
    assert_eq!(rt.run_ok("dangling", &b), "tmpfs\n");
}

// ---- No hang, ever: each bound of runtime/src/bounds.rs, shown ----

/// Asserts that `out` failed with `needle` in its stderr.
fn fails_with(out: &std::process::Output, what: &str, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains(needle),
        "{what}: expected a failure saying {needle:?}, got {}:\n{err}",
        out.status
    );
}

/// The container's freezer: the v1 freezer hierarchy's directory, else the
/// unified hierarchy's `cgroup.freeze` (a pure v2 host).
fn freezer_file(cgroup: &str) -> (std::path::PathBuf, &'static str, &'static str) {
    let v1 = Path::new("/sys/fs/cgroup/freezer");
    if v1.is_dir() {
        (
            v1.join(cgroup.trim_start_matches('/'))
                .join("freezer.state"),
            "FROZEN",
            "THAWED",
        )
    } else {
        (
            Path::new("/sys/fs/cgroup")
                .join(cgroup.trim_start_matches('/'))
                .join("cgroup.freeze"),
            "1",
            "0",
        )
    }
}

#[test]
fn an_init_frozen_behind_corten_fails_create_within_the_bound() {
    require_root!();
    // A createRuntime hook freezes the container's cgroup while the init
    // waits for the runtime: the init never reports again. Without a bound
    // `create` waited forever.
    let rt = Runtime::new("bound-init").with_env("CORTEN_TIMEOUT_INIT", "1");
    let mut b = sleeper("bound-init");
    let (file, frozen, _) = freezer_file(b.cgroup_path());
    b.set(
        "/hooks",
        serde_json::json!({"createRuntime": [{
            "path": "/bin/sh",
            "args": ["sh", "-c", format!("echo {frozen} > {}", file.display())]
        }]}),
    );
    b.save();
    let t = Instant::now();
    let out = rt.create("frozen", &b);
    fails_with(
        &out,
        "create of a frozen init",
        "container init: no answer within 1s (CORTEN_TIMEOUT_INIT)",
    );
    assert!(
        t.elapsed() < scaled(Duration::from_secs(6)),
        "create took {:?}",
        t.elapsed()
    );
    assert_nothing_left(&rt, &b, "frozen", "frozen init");
}

#[test]
fn an_exec_into_a_frozen_cgroup_fails_within_the_bound() {
    require_root!();
    // `exec --cgroup freezer:sub` into a sub-cgroup frozen behind corten's
    // back: the exec process stops there before it reports. (runc hangs.)
    let freezer = Path::new("/sys/fs/cgroup/freezer");
    if !freezer.is_dir() {
        corten_integration_tests::skip(
            "an_exec_into_a_frozen_cgroup_fails_within_the_bound",
            "no cgroup v1 freezer hierarchy (exec --cgroup freezer:… needs one)",
        );
        return;
    }
    let rt = Runtime::new("bound-exec").with_env("CORTEN_TIMEOUT_INIT", "1");
    let b = sleeper("bound-exec");
    rt.create("x", &b).assert_success("create");
    rt.start("x").assert_success("start");
    let sub = freezer
        .join(b.cgroup_path().trim_start_matches('/'))
        .join("sub");
    fs::create_dir(&sub).unwrap();
    fs::write(sub.join("freezer.state"), "FROZEN").unwrap();
    let t = Instant::now();
    let out = rt.cmd(&["exec", "--cgroup", "freezer:sub", "x", "true"]);
    let elapsed = t.elapsed();
    fs::write(sub.join("freezer.state"), "THAWED").unwrap();
    fails_with(
        &out,
        "exec into a frozen cgroup",
        "the exec process: no answer within 1s (CORTEN_TIMEOUT_INIT)",
    );
    assert!(
        elapsed < scaled(Duration::from_secs(8)),
        "exec took {elapsed:?}"
    );
    // The killed process dies once thawed; only the init is left.
    let emptied = wait_until(scaled(Duration::from_secs(5)), || {
        fs::read_to_string(sub.join("cgroup.procs")).is_ok_and(|p| p.trim().is_empty())
    });
    assert!(emptied, "the exec process outlived its kill");
    fs::remove_dir(&sub).unwrap();
    let ps = rt
        .cmd(&["ps", "--format", "json", "x"])
        .assert_success("ps");
    let pids: Vec<i64> = serde_json::from_slice(&ps.stdout).unwrap();
    assert_eq!(pids, vec![rt.pid("x")], "processes besides the init");
    rt.cmd(&["delete", "--force", "x"])
        .assert_success("delete --force");
    assert_nothing_left(&rt, &b, "x", "frozen exec");
}

#[test]
fn a_command_waits_for_the_containers_lock_within_the_bound() {
    require_root!();
    let rt = Runtime::new("bound-lock").with_env("CORTEN_TIMEOUT_LOCK", "1");
    let b = sleeper("bound-lock");
    rt.create("x", &b).assert_success("create");
    // This test holds the lock, as a `create` stopped by a debugger would.
    let dir = fs::File::open(rt.root().join("x")).unwrap();
    let held = nix::fcntl::Flock::lock(dir, nix::fcntl::FlockArg::LockExclusive).unwrap();
    // (`kill` and `state` take no lock, as runc's do not.)
    for args in [["start", "x"], ["delete", "x"]] {
        let t = Instant::now();
        let out = rt.cmd(&args);
        fails_with(
            &out,
            &format!("{args:?} while locked"),
            &format!(
                "container x is locked by another corten command (pid {}): \
                 no answer within 1s (CORTEN_TIMEOUT_LOCK)",
                std::process::id()
            ),
        );
        assert!(
            t.elapsed() < scaled(Duration::from_secs(5)),
            "{args:?} took {:?}",
            t.elapsed()
        );
    }
    drop(held);
    assert_eq!(
        rt.status("x"),
        "created",
        "a refused command changed the state"
    );
    rt.cmd(&["delete", "--force", "x"])
        .assert_success("delete --force once the lock is free");
    assert_nothing_left(&rt, &b, "x", "lock");
}

/// A unix socket that listens (backlog 0) and never accepts, with its one
/// queue slot taken: a further connect waits.
fn deaf_socket(path: &Path) -> (std::os::fd::OwnedFd, std::os::unix::net::UnixStream) {
    use nix::sys::socket::{
        bind, listen, socket, AddressFamily, Backlog, SockFlag, SockType, UnixAddr,
    };
    let fd = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .unwrap();
    bind(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &UnixAddr::new(path).unwrap(),
    )
    .unwrap();
    listen(&fd, Backlog::new(0).unwrap()).unwrap();
    let first = std::os::unix::net::UnixStream::connect(path).unwrap();
    (fd, first)
}

#[test]
fn a_console_socket_that_never_accepts_fails_create_and_exec_within_the_bound() {
    require_root!();
    let rt = Runtime::new("bound-socket").with_env("CORTEN_TIMEOUT_SOCKET", "1");
    let sock = rt.scratch().join("deaf.sock");
    let _deaf = deaf_socket(&sock);
    let mut b = sleeper("bound-socket");
    b.set("/process/terminal", serde_json::json!(true));
    b.save();
    let s = sock.to_str().unwrap();
    let t = Instant::now();
    let out = rt.create_with("tty", &b, &["--console-socket", s]);
    let expected =
        format!("connect to console socket {s}: no answer within 1s (CORTEN_TIMEOUT_SOCKET)");
    fails_with(&out, "create with a deaf console socket", &expected);
    assert!(
        t.elapsed() < scaled(Duration::from_secs(5)),
        "create took {:?}",
        t.elapsed()
    );
    assert_nothing_left(&rt, &b, "tty", "deaf console socket");
    // exec -t into a running container: the same bound.
    let b2 = sleeper("bound-socket-exec");
    rt.create("x", &b2).assert_success("create");
    rt.start("x").assert_success("start");
    let t = Instant::now();
    let out = rt.cmd(&["exec", "-t", "--console-socket", s, "x", "true"]);
    fails_with(&out, "exec with a deaf console socket", &expected);
    assert!(
        t.elapsed() < scaled(Duration::from_secs(5)),
        "exec took {:?}",
        t.elapsed()
    );
    rt.cmd(&["delete", "--force", "x"])
        .assert_success("delete --force");
    assert_nothing_left(&rt, &b2, "x", "deaf console socket, exec");
}

#[test]
fn a_seccomp_agent_that_never_accepts_fails_create_within_the_bound() {
    require_root!();
    let rt = Runtime::new("bound-agent").with_env("CORTEN_TIMEOUT_SOCKET", "1");
    let sock = rt.scratch().join("agent.sock");
    let _deaf = deaf_socket(&sock);
    let mut b = sleeper("bound-agent");
    b.set(
        "/linux/seccomp",
        serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": sock.to_str().unwrap(),
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
        }),
    );
    b.save();
    let t = Instant::now();
    let out = rt.create("agent", &b);
    fails_with(
        &out,
        "create with a deaf seccomp agent",
        "no answer within 1s (CORTEN_TIMEOUT_SOCKET)",
    );
    assert!(
        t.elapsed() < scaled(Duration::from_secs(5)),
        "create took {:?}",
        t.elapsed()
    );
    assert_nothing_left(&rt, &b, "agent", "deaf seccomp agent");
}

#[test]
fn a_hook_without_timeout_dies_with_the_command_that_ran_it() {
    require_root!();
    // A hook with no timeout runs as long as it likes (runc waits too);
    // killing the command is the way out, and must end the hook as well.
    let rt = Runtime::new("hook-cancel");
    let mut b = sleeper("hook-cancel");
    let pidfile = rt.scratch().join("hook.pid");
    b.set(
        "/hooks",
        serde_json::json!({"createRuntime": [{
            "path": "/bin/sh",
            "args": ["sh", "-c", format!("echo $$ > {}; exec sleep 1000", pidfile.display())]
        }]}),
    );
    b.save();
    let mut cmd = rt.command();
    cmd.args(["create", "--bundle", b.path().to_str().unwrap(), "h"]);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().expect("spawn create");
    let hook = corten_integration_tests::wait_for(scaled(Duration::from_secs(10)), || {
        fs::read_to_string(&pidfile)
            .ok()
            .and_then(|p| p.trim().parse::<i64>().ok())
    });
    let _ = child.kill();
    let _ = child.wait();
    let hook = hook.expect("the hook never started");
    let gone = wait_until(scaled(Duration::from_secs(5)), || !pid_alive(hook));
    assert!(gone, "hook {hook} outlived the killed create");
    rt.cmd(&["delete", "--force", "h"])
        .assert_success("delete --force");
    assert_nothing_left(&rt, &b, "h", "killed during a hook");
}

#[test]
fn a_hostile_etc_passwd_neither_hangs_nor_exhausts_the_init() {
    require_root!();
    // The init reads the image's /etc/passwd for HOME: a fifo there
    // blocked it for good, a link to /dev/zero read forever.
    let rt = Runtime::new("hostile-passwd");
    for (name, make) in [("fifo", "mkfifo"), ("zero", "link to /dev/zero")] {
        let mut b = Bundle::new(&format!("hostile-passwd-{name}"));
        let passwd = b.rootfs().join("etc/passwd");
        let _ = fs::remove_file(&passwd);
        fs::create_dir_all(passwd.parent().unwrap()).unwrap();
        if make == "mkfifo" {
            nix::unistd::mkfifo(&passwd, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
        } else {
            std::os::unix::fs::symlink("/dev/zero", &passwd).unwrap();
        }
        b.set("/process/env", serde_json::json!(["PATH=/bin"]));
        b.sh("echo \"HOME=$HOME\"");
        b.save();
        assert_eq!(rt.run_ok(name, &b), "HOME=/\n", "/etc/passwd as a {make}");
    }
}
