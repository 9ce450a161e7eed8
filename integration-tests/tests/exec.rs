//! `exec`: a new process in a running container's namespaces and cgroup,
//! with its own process settings; refusals; the CVE-2019-5736 invariant.

use std::fs;
use std::time::Duration;

use corten_integration_tests::{
    pid_alive, read_pty, require_root, status_field, Bundle, ConsoleSocket, OutputExt, Runtime,
};
use serde_json::json;

/// A detached sleeper container.
fn running(test: &str) -> (Runtime, Bundle) {
    let mut b = Bundle::new(test);
    b.args(&["sleep", "1000"]);
    let rt = Runtime::new(test);
    rt.run_with(b.name(), &b, &["--detach"])
        .assert_success("run --detach");
    (rt, b)
}

fn exec_ok(rt: &Runtime, args: &[&str]) -> String {
    let mut full = vec!["exec"];
    full.extend_from_slice(args);
    rt.cmd(&full)
        .assert_success(&format!("{full:?}"))
        .stdout_str()
}

#[test]
fn exec_applies_env_cwd_user_and_groups() {
    require_root!();
    let (rt, b) = running("exec-settings");
    let id = b.name();
    let out = exec_ok(
        &rt,
        &[
            "--env",
            "FOO=bar",
            "--cwd",
            "/tmp",
            "--user",
            "1000:1000",
            "--additional-gids",
            "5",
            id,
            "sh",
            "-c",
            "echo $FOO; pwd; id -u; id -g; id -G",
        ],
    );
    assert_eq!(out, "bar\n/tmp\n1000\n1000\n1000 5\n");
    // The container's own environment is the base.
    let out = exec_ok(&rt, &[id, "sh", "-c", "echo $PATH"]);
    assert!(out.starts_with("/usr/local/sbin"), "{out}");
}

#[test]
fn exec_process_gets_its_own_capabilities_and_no_new_privs() {
    require_root!();
    let (rt, b) = running("exec-caps");
    let id = b.name();
    let status = exec_ok(&rt, &[id, "cat", "/proc/self/status"]);
    let base = status_field(&status, "CapEff").expect("CapEff").to_owned();
    let status = exec_ok(
        &rt,
        &[
            "--cap",
            "CAP_SYS_ADMIN",
            "--no-new-privs",
            id,
            "cat",
            "/proc/self/status",
        ],
    );
    let eff =
        u64::from_str_radix(status_field(&status, "CapEff").expect("CapEff"), 16).expect("hex");
    assert_ne!(eff & (1 << 21), 0, "CAP_SYS_ADMIN not added: {status}");
    assert_eq!(
        u64::from_str_radix(&base, 16).expect("hex") & (1 << 21),
        0,
        "base already had it"
    );
    assert_eq!(status_field(&status, "NoNewPrivs"), Some("1"));
}

#[test]
fn exec_with_a_process_file() {
    require_root!();
    let (rt, b) = running("exec-process-file");
    let id = b.name();
    let process = json!({
        "args": ["/bin/sh", "-c", "echo $ONLY; ulimit -n; exit 4"],
        "env": ["ONLY=this"],
        "cwd": "/",
        "user": { "uid": 0, "gid": 0 },
        "rlimits": [{ "type": "RLIMIT_NOFILE", "hard": 512, "soft": 256 }]
    });
    let path = rt.scratch().join("process.json");
    fs::write(&path, process.to_string()).expect("write process.json");
    let out = rt.cmd(&["exec", "--process", path.to_str().expect("utf-8"), id]);
    assert_eq!(out.code(), 4, "{}", out.stderr_str());
    assert_eq!(out.stdout_str(), "this\n256\n");
}

#[test]
fn exec_detach_writes_the_pid_file() {
    require_root!();
    let (rt, b) = running("exec-detach");
    let id = b.name();
    let pid_file = rt.scratch().join("exec.pid");
    rt.cmd(&[
        "exec",
        "--detach",
        "--pid-file",
        pid_file.to_str().expect("utf-8"),
        id,
        "sleep",
        "1000",
    ])
    .assert_success("exec --detach");
    let text = fs::read_to_string(&pid_file).expect("pid file");
    let pid: i32 = text.parse().expect("pid file holds only digits");
    assert!(pid_alive(pid.into()));
    let cmdline = fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    assert!(cmdline.starts_with("sleep\u{0}1000"), "{cmdline:?}");
    let ps: Vec<i64> = serde_json::from_slice(
        &rt.cmd(&["ps", "--format", "json", id])
            .assert_success("ps")
            .stdout,
    )
    .expect("ps json");
    assert!(
        ps.contains(&i64::from(pid)),
        "exec'd process not in the container's cgroup: {ps:?}"
    );
}

#[test]
fn exec_refused_when_paused_or_stopped() {
    require_root!();
    let (rt, b) = running("exec-paused");
    let id = b.name();
    rt.cmd(&["pause", id]).assert_success("pause");
    let out = rt
        .cmd(&["exec", id, "true"])
        .assert_failure("exec into a paused container");
    assert!(out.stderr_str().contains("paused"), "{}", out.stderr_str());
    // With --ignore-paused the process joins the frozen cgroup and runs
    // once the container is resumed.
    let ignoring = rt
        .command()
        .args(["exec", "--ignore-paused", id, "sh", "-c", "echo ran"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn exec --ignore-paused");
    std::thread::sleep(Duration::from_millis(300));
    rt.cmd(&["resume", id]).assert_success("resume");
    let out = ignoring.wait_with_output().expect("exec --ignore-paused");
    assert!(out.status.success(), "exec --ignore-paused failed");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ran\n");
    rt.kill(id, "KILL").assert_success("kill");
    rt.wait_status(id, "stopped");
    let out = rt
        .cmd(&["exec", id, "true"])
        .assert_failure("exec into a stopped container");
    assert!(out.stderr_str().contains("stopped"), "{}", out.stderr_str());
    assert_eq!(out.stderr_str().lines().count(), 1, "{}", out.stderr_str());
}

#[test]
fn exec_errors_are_one_line_and_leave_nothing() {
    require_root!();
    let (rt, b) = running("exec-errors");
    let id = b.name();
    let before = rt
        .cmd(&["ps", "--format", "json", id])
        .assert_success("ps")
        .stdout_str();
    for args in [
        vec!["exec", id, "/no/such/binary"],
        vec!["exec", "--cwd", "relative", id, "true"],
        vec!["exec", "--user", "nobody-by-name", id, "true"],
        vec!["exec", "no-such-container", "true"],
        vec!["exec", id],
    ] {
        let out = rt.cmd(&args).assert_failure(&format!("{args:?}"));
        assert_eq!(
            out.stderr_str().trim().lines().count(),
            1,
            "{args:?}: {}",
            out.stderr_str()
        );
    }
    // An unknown capability is not an error: runc warns and runs without it.
    let out = rt
        .cmd(&["exec", "--cap", "CAP_FROB", id, "true"])
        .assert_success("exec --cap CAP_FROB");
    assert!(
        out.stderr_str()
            .contains("ignoring unknown or unavailable capabilities: [CAP_FROB]"),
        "{}",
        out.stderr_str()
    );
    std::thread::sleep(Duration::from_millis(100));
    let after = rt
        .cmd(&["ps", "--format", "json", id])
        .assert_success("ps")
        .stdout_str();
    assert_eq!(before, after, "a failed exec left a process behind");
}

#[test]
fn exec_tty_sends_the_pty_master_to_the_console_socket() {
    require_root!();
    let (rt, b) = running("exec-tty");
    let id = b.name();
    let sock_path = rt.scratch().join("console.sock");
    let sock = ConsoleSocket::bind(&sock_path);
    rt.cmd(&[
        "exec",
        "--tty",
        "--detach",
        "--console-socket",
        sock_path.to_str().expect("utf-8"),
        id,
        "sh",
        "-c",
        "tty; test -t 0 && echo stdin-is-tty",
    ])
    .assert_success("exec --tty --detach");
    let master = sock.recv(Duration::from_secs(10));
    let out = read_pty(&master, Duration::from_secs(5));
    assert!(out.contains("/dev/pts/"), "{out:?}");
    assert!(out.contains("stdin-is-tty"), "{out:?}");
}

#[test]
fn exec_preserves_only_the_requested_descriptors() {
    require_root!();
    let (rt, b) = running("exec-fds");
    let id = b.name();
    let out = exec_ok(
        &rt,
        &[id, "sh", "-c", "ls /proc/self/fd | sort -n | tr '\\n' ' '"],
    );
    // 0 1 2, and 3 for ls's own directory handle.
    assert_eq!(
        out.trim(),
        "0 1 2 3",
        "descriptors leaked into the exec'd process"
    );
}

#[test]
fn the_runtime_binary_is_unreachable_while_execs_run() {
    require_root!();
    let mut b = Bundle::new("exec-exe");
    // A watcher inside the container: every process it can see, it tries
    // to read through /proc/<pid>/exe; anything but busybox is a leak (an
    // empty link is a process that exited between the two looks).
    b.sh("while :; do for p in /proc/[0-9]*; do \
            if cat $p/exe >/dev/null 2>&1; then \
              l=$(readlink $p/exe); \
              [ -z \"$l\" ] || [ \"$l\" = /bin/busybox ] || echo LEAK $l; fi; \
          done; done");
    let rt = Runtime::new("exec-exe");
    let id = b.name();
    let binary = fs::canonicalize(rt.bin()).expect("runtime binary");
    let before = fs::read(&binary).expect("read runtime binary");
    rt.run_with(id, &b, &["--detach"])
        .assert_success("run --detach");
    for _ in 0..30 {
        rt.cmd(&["exec", id, "sh", "-c", "exit 0"])
            .assert_success("exec");
    }
    let out = rt.container_stdout(id);
    assert!(
        !out.contains("LEAK"),
        "the runtime was reachable from inside: {out}"
    );
    assert!(
        before == fs::read(&binary).expect("read runtime binary"),
        "the runtime binary changed"
    );
}
