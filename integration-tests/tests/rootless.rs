//! Rootless containers (issue 19): an unprivileged user, made for the test
//! and removed after it, runs containers from a `spec --rootless` bundle
//! with corten and with runc, side by side: the state under
//! `$XDG_RUNTIME_DIR`, the user namespace mapping the user to root, no
//! cgroup (this user may write none here) unless limits are asked for,
//! which both refuse; and another user's containers out of reach.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use corten_integration_tests::{require_root, Bundle, OutputExt};
use serde_json::json;

/// A system user made for one test (`useradd`), removed when dropped,
/// with a private `XDG_RUNTIME_DIR`. Where there is no `useradd` (the
/// cgroup v2 VM's minimal system), a uid and gid no account uses: the
/// runtimes need no account for a single-id map.
struct TestUser {
    name: String,
    uid: u32,
    gid: u32,
    xdg: PathBuf,
    account: bool,
}

impl TestUser {
    fn new(tag: &str) -> TestUser {
        let name = format!("cit-{tag}-{}", std::process::id());
        let made = Command::new("useradd")
            .args(["--system", "--no-create-home", "--user-group"])
            .args(["--shell", "/usr/sbin/nologin", &name])
            .output();
        let (uid, gid, account) = match made {
            Ok(out) => {
                assert!(out.status.success(), "useradd {name}: {out:?}");
                let id = |flag: &str| -> u32 {
                    let out = Command::new("id").args([flag, &name]).output().expect("id");
                    String::from_utf8_lossy(&out.stdout)
                        .trim()
                        .parse()
                        .expect("a number from id")
                };
                (id("-u"), id("-g"), true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // One per TestUser of this process, none shared.
                static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
                let k = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 16;
                let n = 60_000 + std::process::id() % 1_000 * 16 + k;
                (n, n, false)
            }
            Err(e) => panic!("run useradd: {e}"),
        };
        let xdg = Path::new(corten_integration_tests::BASE_DIR).join(format!("{name}.xdg"));
        fs::create_dir_all(&xdg).expect("make the XDG runtime dir");
        std::os::unix::fs::chown(&xdg, Some(uid), Some(gid)).expect("chown the XDG runtime dir");
        fs::set_permissions(&xdg, fs::Permissions::from_mode(0o700)).expect("chmod");
        // Its home (podman's configuration is looked up there).
        fs::create_dir_all(xdg.join("home")).expect("make the home");
        std::os::unix::fs::chown(xdg.join("home"), Some(uid), Some(gid)).expect("chown the home");
        TestUser {
            name,
            uid,
            gid,
            xdg,
            account,
        }
    }

    /// Gives the user a range of 65536 subordinate uids and gids
    /// (`usermod --add-subuids/--add-subgids`, which `userdel` removes);
    /// its first id. `None` where there is no account to give them to.
    fn add_ranges(&self) -> Option<u32> {
        if !self.account {
            return None;
        }
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let k = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 16;
        let first = 10_000_000 + (std::process::id() % 1_000 * 16 + k) * 65_536;
        let range = format!("{first}-{}", first + 65_535);
        let out = Command::new("usermod")
            .args(["--add-subuids", &range, "--add-subgids", &range, &self.name])
            .output()
            .expect("run usermod");
        assert!(out.status.success(), "usermod {}: {out:?}", self.name);
        Some(first)
    }

    /// Asserts that `runtime` (its state root `$XDG_RUNTIME_DIR/<runtime>`)
    /// keeps no container of this user's; `what` names the check.
    fn assert_no_state(&self, runtime: &str, what: &str) {
        let root = self.xdg.join(runtime);
        assert_eq!(
            fs::read_dir(&root).map(Iterator::count).unwrap_or(0),
            0,
            "{what}: left in {}",
            root.display()
        );
    }

    /// `bin args…` as this user, with its `XDG_RUNTIME_DIR`, in `cwd`.
    /// Its output goes through files, not pipes: a container it leaves
    /// running (`create`, `run --detach`) keeps its copies of them open.
    fn run(&self, bin: &Path, args: &[&str], cwd: &Path) -> Output {
        self.run_in(None, bin, args, cwd)
    }

    /// [`TestUser::run`], started in the cgroup v2 directory `cgroup` when
    /// given (root puts the process there, then becomes the user), as a
    /// user's session starts in the cgroup systemd delegates to it.
    fn run_in(&self, cgroup: Option<&Path>, bin: &Path, args: &[&str], cwd: &Path) -> Output {
        let dir = Path::new(corten_integration_tests::BASE_DIR);
        let tag = corten_integration_tests::unique_name("out");
        let (out_path, err_path) = (
            dir.join(format!("{tag}.out")),
            dir.join(format!("{tag}.err")),
        );
        let file = |p: &Path| fs::File::create(p).expect("create an output file");
        let mut cmd = Command::new(bin);
        match cgroup {
            // std drops the supplementary groups when it sets the uid as root.
            None => {
                cmd.uid(self.uid).gid(self.gid);
            }
            Some(cg) => {
                let procs = std::ffi::CString::new(
                    cg.join("cgroup.procs")
                        .into_os_string()
                        .into_encoded_bytes(),
                )
                .expect("no NUL");
                let (uid, gid) = (self.uid, self.gid);
                // SAFETY: between fork and exec the closure calls only
                // async-signal-safe functions (open, write, close,
                // setgroups, setgid, setuid) on memory made before the fork.
                unsafe {
                    cmd.pre_exec(move || {
                        let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                        if fd < 0 {
                            return Err(std::io::Error::last_os_error());
                        }
                        let ok = libc::write(fd, b"0".as_ptr().cast(), 1) == 1;
                        libc::close(fd);
                        if !ok
                            || libc::setgroups(0, std::ptr::null()) != 0
                            || libc::setgid(gid) != 0
                            || libc::setuid(uid) != 0
                        {
                            return Err(std::io::Error::last_os_error());
                        }
                        Ok(())
                    });
                }
            }
        }
        let mut child = cmd
            .args(args)
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
            .env("XDG_RUNTIME_DIR", &self.xdg)
            .env("HOME", self.xdg.join("home"))
            .env("USER", &self.name)
            .current_dir(cwd)
            .stdin(Stdio::null())
            .stdout(file(&out_path))
            .stderr(file(&err_path))
            .spawn()
            .unwrap_or_else(|e| panic!("run {bin:?} as {}: {e}", self.name));
        let status = corten_integration_tests::wait_for(std::time::Duration::from_secs(60), || {
            child.try_wait().expect("wait")
        })
        .unwrap_or_else(|| {
            let _ = child.kill();
            panic!("{bin:?} {args:?} as {} did not finish in 60 s", self.name)
        });
        let out = Output {
            status,
            stdout: fs::read(&out_path).unwrap_or_default(),
            stderr: fs::read(&err_path).unwrap_or_default(),
        };
        let _ = fs::remove_file(&out_path);
        let _ = fs::remove_file(&err_path);
        out
    }
}

impl TestUser {
    /// A user for `test`, or `None` (the skip said and counted) where
    /// `unavailable` gives a reason this host cannot run it.
    fn available(
        test: &str,
        tag: &str,
        unavailable: fn(&TestUser) -> Option<String>,
    ) -> Option<TestUser> {
        let user = TestUser::new(tag);
        match unavailable(&user) {
            Some(why) => {
                corten_integration_tests::skip(test, &why);
                None
            }
            None => Some(user),
        }
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        // Whatever still runs as this user (a container a failed check
        // left) is this test's: ended by pid before the user goes.
        for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<i32>().ok())
            else {
                continue;
            };
            let status = fs::read_to_string(entry.path().join("status")).unwrap_or_default();
            let uid = status
                .lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_string));
            if uid == Some(self.uid.to_string()) {
                // SAFETY: kill(2) with a pid and a signal number.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        let _ = fs::remove_dir_all(&self.xdg);
        if self.account {
            let _ = Command::new("userdel").arg(&self.name).output();
        }
    }
}

/// The two runtimes compared: corten (under test) and runc (reference).
fn runtimes() -> [(&'static str, PathBuf); 2] {
    [
        ("corten", corten_integration_tests::runtime_bin()),
        ("runc", PathBuf::from("/usr/sbin/runc")),
    ]
}

/// A rootless bundle for `user`: `spec --rootless` (made by corten as
/// root, then mapped to the user, as `spec --rootless` run by the user
/// maps it), no cgroups path, readable by the user.
fn rootless_bundle(test: &str, user: &TestUser, args: &[&str]) -> Bundle {
    let mut b = Bundle::with_spec(test, &["--rootless"]);
    b.remove("/linux/cgroupsPath");
    b.set(
        "/linux/uidMappings",
        json!([{"containerID": 0, "hostID": user.uid, "size": 1}]),
    );
    b.set(
        "/linux/gidMappings",
        json!([{"containerID": 0, "hostID": user.gid, "size": 1}]),
    );
    b.args(args);
    b.save();
    fs::set_permissions(b.path(), fs::Permissions::from_mode(0o755)).expect("chmod bundle");
    b
}

/// Whether this host lets an unprivileged user make a user namespace (not
/// in a chroot, not forbidden by a sysctl); the reason when it does not.
fn unprivileged_userns_unavailable(user: &TestUser) -> Option<String> {
    let mut probe = Command::new(corten_integration_tests::runtime_bin());
    probe
        .arg("--version")
        .uid(user.uid)
        .gid(user.gid)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: the closure only calls unshare(2), which is async-signal-safe,
    // between fork and exec (std runs it after setting the uid).
    unsafe {
        probe.pre_exec(|| {
            if libc::unshare(libc::CLONE_NEWUSER) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    let status = probe.status();
    match status {
        Ok(s) if s.success() => None,
        Ok(s) => Some(format!("a probe in a new user namespace failed: {s}")),
        Err(e) => Some(format!(
            "an unprivileged user cannot make a user namespace here: {e}"
        )),
    }
}

/// The runtimes to compare that this host has (runc is missing in the
/// cgroup v2 VM's minimal system: that half is skipped, and said so).
fn present_runtimes(test: &str) -> Vec<(&'static str, PathBuf)> {
    runtimes()
        .into_iter()
        .filter(|(name, bin)| {
            let here = bin.exists();
            if !here {
                corten_integration_tests::skip(test, &format!("{name} is not installed here"));
            }
            here
        })
        .collect()
}

#[test]
fn rootless_lifecycle_side_by_side_with_runc() {
    require_root!();
    let Some(user) = TestUser::available(
        "rootless_lifecycle_side_by_side_with_runc",
        "life",
        unprivileged_userns_unavailable,
    ) else {
        return;
    };
    for (name, bin) in present_runtimes("rootless_lifecycle_side_by_side_with_runc") {
        // run: the user is root in the container, mapped to itself.
        let b = rootless_bundle(
            &format!("rl-run-{name}"),
            &user,
            &[
                "sh",
                "-c",
                "id -u; cat /proc/self/uid_map; test -d /sys/class",
            ],
        );
        let out = user.run(&bin, &["run", b.name()], b.path());
        assert!(out.status.success(), "{name} run: {out:?}");
        let text = out.stdout_str();
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("0"), "{name}: {text}");
        let map: Vec<String> = lines
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_string)
            .collect();
        assert_eq!(map, ["0", &user.uid.to_string(), "1"], "{name}: {text}");

        // The state lives under $XDG_RUNTIME_DIR/<runtime>, and is gone
        // after the run.
        let root = user.xdg.join(name);
        assert!(root.is_dir(), "{name}: no {}", root.display());
        user.assert_no_state(name, name);

        // create, start, state, exec, kill, delete.
        let b = rootless_bundle(&format!("rl-live-{name}"), &user, &["sleep", "1000"]);
        let id = b.name();
        let ok = |args: &[&str]| {
            let out = user.run(&bin, args, b.path());
            assert!(out.status.success(), "{name} {args:?}: {out:?}");
            out
        };
        ok(&["create", id]);
        ok(&["start", id]);
        let state: serde_json::Value =
            serde_json::from_str(&ok(&["state", id]).stdout_str()).expect("state JSON");
        assert_eq!(state["status"], "running", "{name}: {state}");
        let out = ok(&["exec", id, "id", "-u"]);
        assert_eq!(out.stdout_str().trim(), "0", "{name}: {out:?}");
        // Root's view of the same container: its init runs as the user.
        let pid = state["pid"].as_i64().expect("pid");
        let status = fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
        let uid_line = status
            .lines()
            .find(|l| l.starts_with("Uid:"))
            .unwrap_or_default();
        assert!(
            uid_line.split_whitespace().nth(1) == Some(&user.uid.to_string()),
            "{name}: {uid_line}"
        );
        ok(&["kill", id, "KILL"]);
        let stopped =
            corten_integration_tests::wait_until(std::time::Duration::from_secs(10), || {
                let out = user.run(&bin, &["state", id], b.path());
                out.stdout_str().contains("\"stopped\"")
            });
        assert!(stopped, "{name}: not stopped after kill");
        ok(&["delete", id]);
        user.assert_no_state(name, name);
    }
}

#[test]
fn rootless_limits_without_a_writable_cgroup_are_refused_and_leave_nothing() {
    require_root!();
    let Some(user) = TestUser::available(
        "rootless_limits_without_a_writable_cgroup_are_refused_and_leave_nothing",
        "lim",
        unprivileged_userns_unavailable,
    ) else {
        return;
    };
    // This host's cgroups (the test's own parent included) are root's.
    for (name, bin) in
        present_runtimes("rootless_limits_without_a_writable_cgroup_are_refused_and_leave_nothing")
    {
        let mut b = rootless_bundle(&format!("rl-lim-{name}"), &user, &["true"]);
        b.set("/linux/resources/memory", json!({"limit": 67_108_864}));
        b.save();
        let out = user.run(&bin, &["run", b.name()], b.path());
        assert!(
            !out.status.success(),
            "{name} accepted a limit it cannot apply: {out:?}"
        );
        let err = out.stderr_str();
        if name == "corten" {
            // One line, saying why (runc: "cannot set memory limit:
            // container could not join or create cgroup").
            assert_eq!(err.trim_end().lines().count(), 1, "{err}");
            assert!(
                err.contains("rootless") && err.contains("linux.resources"),
                "{err}"
            );
        }
        user.assert_no_state(name, name);
    }
}

#[test]
fn another_users_containers_are_out_of_reach() {
    require_root!();
    let owner = TestUser::new("own");
    let other = TestUser::new("oth");
    if let Some(why) = unprivileged_userns_unavailable(&owner) {
        corten_integration_tests::skip("another_users_containers_are_out_of_reach", &why);
        return;
    }
    let bin = corten_integration_tests::runtime_bin();
    let b = rootless_bundle("rl-own", &owner, &["sleep", "1000"]);
    let id = b.name();
    let out = owner.run(&bin, &["run", "--detach", id], b.path());
    assert!(out.status.success(), "run --detach: {out:?}");
    let owners_root = owner.xdg.join("corten");
    let root_arg = owners_root.display().to_string();
    // The other user, pointed at the owner's state root, can neither read
    // nor act on the container.
    for args in [
        vec!["--root", &root_arg, "state", id],
        vec!["--root", &root_arg, "kill", id, "KILL"],
        vec!["--root", &root_arg, "delete", "--force", id],
    ] {
        let out = other.run(&bin, &args, Path::new("/"));
        assert!(!out.status.success(), "{args:?} by another user: {out:?}");
        assert!(
            out.stderr_str().contains("permission denied"),
            "{args:?}: {out:?}"
        );
    }
    let out = owner.run(&bin, &["state", id], b.path());
    assert!(out.stdout_str().contains("\"running\""), "{out:?}");
    let out = owner.run(&bin, &["delete", "--force", id], b.path());
    assert!(out.status.success(), "delete --force by the owner: {out:?}");
}

/// Why the subordinate-range checks cannot run here, if they cannot.
fn ranges_unavailable(user: &TestUser) -> Option<String> {
    if let Some(why) = unprivileged_userns_unavailable(user) {
        return Some(why);
    }
    if !Path::new("/usr/bin/newuidmap").exists() {
        return Some("no newuidmap here (Debian package uidmap)".into());
    }
    if !user.account {
        return Some("no useradd here: no account to give subordinate ids".into());
    }
    None
}

/// `uid` mapped to root, then `first`.. mapped from 1, as podman maps a
/// rootless container; `extra` more ids than the range has.
fn ranged_maps(own: u32, first: u32, extra: u32) -> serde_json::Value {
    json!([
        {"containerID": 0, "hostID": own, "size": 1},
        {"containerID": 1, "hostID": first, "size": 65_536 + extra}
    ])
}

#[test]
fn rootless_subordinate_ranges_through_newuidmap_side_by_side_with_runc() {
    require_root!();
    let test = "rootless_subordinate_ranges_through_newuidmap_side_by_side_with_runc";
    let Some(user) = TestUser::available(test, "rng", ranges_unavailable) else {
        return;
    };
    let first = user.add_ranges().expect("an account");
    let mut seen = Vec::new();
    for (name, bin) in present_runtimes(test) {
        let mut b = rootless_bundle(&format!("rl-rng-{name}"), &user, &[]);
        b.set("/linux/uidMappings", ranged_maps(user.uid, first, 0));
        b.set("/linux/gidMappings", ranged_maps(user.gid, first, 0));
        // A process of a subordinate id, in a group of another: runc
        // refuses additional groups to any rootless container ("cannot set
        // any additional groups in a rootless container"); corten sets them
        // where newgidmap left setgroups allowed (conformance/README).
        let groups = if name == "corten" {
            json!([2000])
        } else {
            json!([])
        };
        b.set(
            "/process/user",
            json!({"uid": 1000, "gid": 1000, "additionalGids": groups}),
        );
        b.args(&[
            "sh",
            "-c",
            "cat /proc/self/uid_map /proc/self/gid_map /proc/self/setgroups; id -u; id -G",
        ]);
        b.save();
        let out = user.run(&bin, &["run", b.name()], b.path());
        assert!(out.status.success(), "{name} run: {out:?}");
        let lines: Vec<String> = out
            .stdout_str()
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        assert_eq!(
            lines,
            [
                format!("0 {} 1", user.uid),
                format!("1 {first} 65536"),
                format!("0 {} 1", user.gid),
                format!("1 {first} 65536"),
                // newgidmap leaves setgroups allowed.
                "allow".into(),
                "1000".into(),
                if name == "corten" {
                    "1000 2000"
                } else {
                    "1000"
                }
                .into(),
            ],
            "{name}: {out:?}"
        );
        let mut lines = lines;
        lines.pop();
        seen.push(lines);
    }
    assert!(seen.windows(2).all(|w| w[0] == w[1]), "{seen:?}");
}

#[test]
fn rootless_map_beyond_the_subordinate_range_is_refused_and_leaves_nothing() {
    require_root!();
    let test = "rootless_map_beyond_the_subordinate_range_is_refused_and_leaves_nothing";
    let Some(user) = TestUser::available(test, "big", ranges_unavailable) else {
        return;
    };
    let first = user.add_ranges().expect("an account");
    for (name, bin) in present_runtimes(test) {
        let mut b = rootless_bundle(&format!("rl-big-{name}"), &user, &["true"]);
        b.set("/linux/uidMappings", ranged_maps(user.uid, first, 1));
        b.set("/linux/gidMappings", ranged_maps(user.gid, first, 0));
        b.save();
        let out = user.run(&bin, &["run", b.name()], b.path());
        assert!(
            !out.status.success(),
            "{name} mapped beyond the range: {out:?}"
        );
        if name == "corten" {
            // One line, naming the helper and what it refused.
            let err = out.stderr_str();
            eprintln!("corten: {err}");
            assert_eq!(err.trim_end().lines().count(), 1, "{err}");
            assert!(
                err.contains("newuidmap") && err.contains(&format!("1:{first}:65537")),
                "{err}"
            );
        }
        user.assert_no_state(name, name);
    }
}

/// Rootless podman's view of one runtime: what a user sees for run,
/// exec, pause, stop, inspect, rm and ps, as `user`, with storage of its
/// own under the user's runtime directory (`--network none`: no
/// slirp4netns; native overlay, which this kernel allows rootless).
fn rootless_podman_scenario(user: &TestUser, runtime: &Path, tar: &Path) -> Vec<String> {
    let dir = user.xdg.join(format!(
        "podman-{}",
        runtime.file_name().unwrap_or_default().to_string_lossy()
    ));
    // podman takes a runroot of at most 50 bytes.
    let runroot = RmDir(PathBuf::from(format!(
        "/tmp/cit-podrun-{}-{}",
        std::process::id(),
        runtime.file_name().unwrap_or_default().to_string_lossy()
    )));
    fs::create_dir_all(&runroot.0).expect("make the runroot");
    std::os::unix::fs::chown(&runroot.0, Some(user.uid), Some(user.gid)).expect("chown");
    let (root, runroot, tmp) = (dir.join("root"), &runroot.0, dir.join("tmp"));
    let globals: Vec<String> = vec![
        "--root".into(),
        root.display().to_string(),
        "--runroot".into(),
        runroot.display().to_string(),
        "--tmpdir".into(),
        tmp.display().to_string(),
        "--runtime".into(),
        runtime.display().to_string(),
        "--cgroup-manager".into(),
        "cgroupfs".into(),
        "--events-backend".into(),
        "file".into(),
    ];
    let podman = |args: &[&str]| {
        let mut all: Vec<&str> = globals.iter().map(String::as_str).collect();
        all.extend_from_slice(args);
        user.run(Path::new("/usr/bin/podman"), &all, &user.xdg)
    };
    let tar = tar.display().to_string();
    let out = podman(&["import", &tar, "localhost/busybox:corten"]);
    assert!(out.status.success(), "podman import: {out:?}");
    let squeeze = |t: String| {
        t.lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect::<Vec<_>>()
            .join("|")
    };
    let mut seen = Vec::new();
    let out = podman(&[
        "run",
        "--rm",
        "--network",
        "none",
        "localhost/busybox:corten",
        "sh",
        "-c",
        "echo hello; id -u; cat /proc/self/uid_map; ls /dev/null; exit 4",
    ]);
    seen.push(format!(
        "run: {:?} {}",
        out.status.code(),
        squeeze(out.stdout_str())
    ));
    let out = podman(&[
        "run",
        "-d",
        "--name",
        "p1",
        "--network",
        "none",
        "localhost/busybox:corten",
        "sleep",
        "1000",
    ]);
    assert!(out.status.success(), "podman run -d: {out:?}");
    let out = podman(&["exec", "p1", "sh", "-c", "echo exec-ok; id -u; exit 2"]);
    seen.push(format!(
        "exec: {:?} {}",
        out.status.code(),
        squeeze(out.stdout_str())
    ));
    // Without a cgroup (v1, rootless) podman itself refuses.
    let out = podman(&["pause", "p1"]);
    seen.push(format!("pause: {:?}", out.status.success()));
    if out.status.success() {
        assert!(podman(&["unpause", "p1"]).status.success(), "unpause");
    }
    let out = podman(&["stop", "-t", "1", "p1"]);
    assert!(out.status.success(), "podman stop: {out:?}");
    let out = podman(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.State.ExitCode}}",
        "p1",
    ]);
    seen.push(format!("stopped: {}", out.stdout_str().trim()));
    let out = podman(&["rm", "p1"]);
    assert!(out.status.success(), "podman rm: {out:?}");
    seen.push(format!(
        "left: {:?}",
        podman(&["ps", "-aq"]).stdout_str().trim()
    ));
    seen
}

/// A directory removed when dropped.
struct RmDir(PathBuf);

impl Drop for RmDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[test]
fn rootless_podman_side_by_side_with_runc() {
    require_root!();
    let test = "rootless_podman_side_by_side_with_runc";
    let Some(user) = TestUser::available(test, "pod", ranges_unavailable) else {
        return;
    };
    if !Path::new("/usr/bin/podman").exists() {
        corten_integration_tests::skip(test, "podman is not installed here");
        return;
    }
    let first = user.add_ranges().expect("an account");
    let tar = corten_integration_tests::busybox_tarball(&user.xdg);
    fs::set_permissions(&tar, fs::Permissions::from_mode(0o644)).expect("chmod the tarball");
    let mut results = Vec::new();
    for (name, bin) in present_runtimes(test) {
        let seen = rootless_podman_scenario(&user, &bin, &tar);
        eprintln!("{name}: {seen:#?}");
        results.push((name, seen));
    }
    let (_, corten) = &results[0];
    let map = format!("0 {} 1|1 {first} 65536", user.uid);
    assert_eq!(
        corten[..2],
        [
            format!("run: Some(4) hello|0|{map}|/dev/null"),
            "exec: Some(2) exec-ok|0".to_string(),
        ],
        "{corten:#?}"
    );
    assert_eq!(corten[3], "stopped: exited 137", "{corten:#?}");
    assert_eq!(corten[4], "left: \"\"", "{corten:#?}");
    for (name, seen) in &results[1..] {
        assert_eq!(seen, corten, "{name} and corten differ");
    }
}

/// A cgroup v2 directory made by root and delegated to a user as systemd
/// delegates one (the directory and its `cgroup.procs`,
/// `cgroup.subtree_control` and `cgroup.threads` given to the user, with
/// the memory and pids controllers enabled for its children), with `cmd/`
/// for the user's commands; its processes killed and it removed when
/// dropped.
struct Delegated {
    cg: corten_testkit::CgroupParent,
    dir: PathBuf,
}

impl Delegated {
    /// `None` with the reason where cgroup v2 delegation cannot be shown.
    fn new(user: &TestUser) -> Result<Delegated, String> {
        let root = Path::new("/sys/fs/cgroup");
        if !root.join("cgroup.subtree_control").exists() {
            return Err(
                "no unified cgroup v2 hierarchy here: delegation is a cgroup v2 feature".into(),
            );
        }
        let enabled = fs::read_to_string(root.join("cgroup.subtree_control")).unwrap_or_default();
        if !(enabled.contains("memory") && enabled.contains("pids")) {
            return Err(format!(
                "the root cgroup does not enable memory and pids for its children: {enabled:?}"
            ));
        }
        let cg = corten_testkit::CgroupParent::for_process("cit-deleg");
        let dir = root.join(cg.path().trim_start_matches('/'));
        fs::create_dir(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
        let d = Delegated { cg, dir };
        let dir = &d.dir;
        fs::write(dir.join("cgroup.subtree_control"), "+memory +pids").expect("enable controllers");
        fs::create_dir(dir.join("cmd")).expect("mkdir cmd");
        for p in [
            dir.clone(),
            dir.join("cgroup.procs"),
            dir.join("cgroup.subtree_control"),
            dir.join("cgroup.threads"),
            dir.join("cmd"),
            dir.join("cmd/cgroup.procs"),
        ] {
            std::os::unix::fs::chown(&p, Some(user.uid), Some(user.gid)).expect("chown");
        }
        Ok(d)
    }
}

impl Drop for Delegated {
    fn drop(&mut self) {
        // Whatever is left in it killed (by pid), thawed, then removed.
        self.cg.remove(corten_testkit::Removal::Kill(
            std::time::Duration::from_secs(5),
        ));
    }
}

#[test]
fn rootless_delegated_cgroup_v2_limits_pause_and_ps() {
    require_root!();
    let test = "rootless_delegated_cgroup_v2_limits_pause_and_ps";
    let Some(user) = TestUser::available(test, "dlg", unprivileged_userns_unavailable) else {
        return;
    };
    let deleg = match Delegated::new(&user) {
        Ok(d) => d,
        Err(why) => {
            corten_integration_tests::skip(test, &why);
            return;
        }
    };
    let cmd_cg = deleg.dir.join("cmd");
    for (name, bin) in present_runtimes(test) {
        let mut b = rootless_bundle(&format!("rl-dlg-{name}"), &user, &["sleep", "1000"]);
        b.set(
            "/linux/cgroupsPath",
            json!(deleg.cg.child(&format!("ctr-{name}"))),
        );
        b.set(
            "/linux/resources",
            json!({"memory": {"limit": 67_108_864}, "pids": {"limit": 64}}),
        );
        b.save();
        let id = b.name();
        let run = |args: &[&str]| user.run_in(Some(&cmd_cg), &bin, args, b.path());
        let out = run(&["run", "--detach", id]);
        assert!(out.status.success(), "{name} run --detach: {out:?}");
        let ctr = deleg.dir.join(format!("ctr-{name}"));
        let read = |f: &str| {
            fs::read_to_string(ctr.join(f))
                .unwrap_or_default()
                .trim()
                .to_string()
        };
        assert_eq!(read("memory.max"), "67108864", "{name}");
        assert_eq!(read("pids.max"), "64", "{name}");
        let state: serde_json::Value =
            serde_json::from_str(&run(&["state", id]).stdout_str()).expect("state JSON");
        let pid = state["pid"].as_i64().expect("pid").to_string();
        assert!(
            read("cgroup.procs").lines().any(|l| l == pid),
            "{name}: init not in {}",
            ctr.display()
        );
        // pause and resume through the delegated cgroup.freeze.
        let out = run(&["pause", id]);
        assert!(out.status.success(), "{name} pause: {out:?}");
        assert!(
            run(&["state", id]).stdout_str().contains("\"paused\""),
            "{name}"
        );
        assert_eq!(read("cgroup.freeze"), "1", "{name}");
        let out = run(&["resume", id]);
        assert!(out.status.success(), "{name} resume: {out:?}");
        assert!(
            run(&["state", id]).stdout_str().contains("\"running\""),
            "{name}"
        );
        // exec from inside the delegated subtree joins the container's
        // cgroup; from outside it (a login shell's session scope) the
        // kernel refuses the move, and the process stays where it is.
        let out = run(&["exec", id, "cat", "/proc/self/cgroup"]);
        assert!(out.status.success(), "{name} exec: {out:?}");
        // (With a cgroup namespace the container's cgroup reads `/`.)
        let cg_line = format!("0::{}", deleg.cg.child(&format!("ctr-{name}")));
        let seen = out.stdout_str();
        assert!(
            [cg_line.as_str(), "0::/"].contains(&seen.trim()),
            "{name} exec: {out:?}"
        );
        let out = user.run(&bin, &["exec", id, "id", "-u"], b.path());
        assert!(out.status.success(), "{name} exec from outside: {out:?}");
        assert_eq!(
            out.stdout_str().trim(),
            "0",
            "{name} exec from outside: {out:?}"
        );
        // ps reads the container's cgroup.
        let out = run(&["ps", id]);
        assert!(
            out.status.success() && out.stdout_str().contains("sleep"),
            "{name} ps: {out:?}"
        );
        let out = run(&["delete", "--force", id]);
        assert!(out.status.success(), "{name} delete --force: {out:?}");
        assert!(!ctr.exists(), "{name}: {} left", ctr.display());
    }
}

/// A case of a refused config: its tag, the edit, runc's words.
type Refused = (&'static str, fn(&mut Bundle), &'static str);

#[test]
fn rootless_configs_runc_refuses_are_refused_with_its_words() {
    require_root!();
    let test = "rootless_configs_runc_refuses_are_refused_with_its_words";
    let Some(user) = TestUser::available(test, "ref", unprivileged_userns_unavailable) else {
        return;
    };
    for (name, bin) in present_runtimes(test) {
        let cases: [Refused; 2] = [
            (
                "nous",
                |b| {
                    b.remove_namespace("user");
                },
                "rootless container requires user namespaces",
            ),
            (
                "uidopt",
                |b| {
                    b.push(
                        "/mounts",
                        json!({"destination": "/t", "type": "tmpfs", "source": "tmpfs", "options": ["uid=5000"]}),
                    );
                },
                "cannot specify uid= mount options for unmapped uid in rootless containers",
            ),
        ];
        for (tag, edit, words) in cases {
            let mut b = rootless_bundle(&format!("rl-ref-{tag}-{name}"), &user, &["true"]);
            edit(&mut b);
            b.save();
            let out = user.run(&bin, &["run", b.name()], b.path());
            assert!(!out.status.success(), "{name} {tag}: {out:?}");
            assert!(out.stderr_str().contains(words), "{name} {tag}: {out:?}");
            user.assert_no_state(name, &format!("{name} {tag}"));
        }
    }
}
