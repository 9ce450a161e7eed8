//! `process.terminal` with `--console-socket`: the pty master is sent to the
//! caller, the container's stdio is the pty, `consoleSize` is applied.

use std::fs::File;
use std::io::{IsTerminal, Write};
use std::os::fd::OwnedFd;
use std::time::Duration;

use corten_integration_tests::{read_pty, require_root, Bundle, ConsoleSocket, OutputExt, Runtime};
use serde_json::json;

/// Create the bundle with a console socket, start it, and return the pty
/// master (and the runtime, which must outlive the container).
fn start_with_console(test: &str, b: &mut Bundle, script: &str) -> (Runtime, OwnedFd) {
    b.set("/process/terminal", json!(true)).sh(script);
    let rt = Runtime::new(test);
    let socket = ConsoleSocket::bind(&rt.scratch().join("console.sock"));
    let socket_path = socket.path().to_str().expect("utf-8").to_owned();
    rt.create_with(b.name(), b, &["--console-socket", &socket_path])
        .assert_success("create");
    let master = socket.recv(Duration::from_secs(10));
    rt.start(b.name()).assert_success("start");
    (rt, master)
}

#[test]
fn output_arrives_on_the_pty_master_with_console_size() {
    require_root!();
    let mut b = Bundle::new("console");
    b.set(
        "/process/consoleSize",
        json!({ "height": 33, "width": 101 }),
    );
    let (rt, master) = start_with_console("console", &mut b, "stty size; tty; echo done");
    assert!(master.is_terminal(), "the received fd is not a terminal");
    let out = read_pty(&master, Duration::from_secs(10));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines.first().copied(),
        Some("33 101"),
        "consoleSize not applied: {out:?}"
    );
    assert!(
        lines
            .get(1)
            .is_some_and(|l| l.starts_with("/dev/pts/") || *l == "/dev/console"),
        "{out:?}"
    );
    assert_eq!(lines.get(2).copied(), Some("done"), "{out:?}");
    rt.wait_status(b.name(), "stopped");
}

#[test]
fn stdio_and_dev_console_are_the_pty() {
    require_root!();
    let mut b = Bundle::new("console-dev");
    let script = "for f in 0 1 2; do readlink /proc/self/fd/$f; done; stat -c '%F %t' /dev/console";
    let (rt, master) = start_with_console("console-dev", &mut b, script);
    let out = read_pty(&master, Duration::from_secs(10));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out:?}");
    assert!(
        lines[..3]
            .iter()
            .all(|l| *l == lines[0] && l.starts_with("/dev/pts/")),
        "stdio not the pty: {out:?}"
    );
    // Unix98 pty slaves have major 136 (0x88).
    assert_eq!(
        lines[3], "character special file 88",
        "/dev/console is not the pty: {out:?}"
    );
    rt.wait_status(b.name(), "stopped");
}

#[test]
fn input_written_to_the_master_reaches_the_process() {
    require_root!();
    let mut b = Bundle::new("console-input");
    let (rt, master) = start_with_console("console-input", &mut b, "read line; echo got:$line");
    let mut writer = File::from(master.try_clone().expect("dup pty master"));
    writer
        .write_all(b"hello\n")
        .expect("write to the pty master");
    let out = read_pty(&master, Duration::from_secs(10));
    assert!(out.contains("got:hello"), "{out:?}");
    rt.wait_status(b.name(), "stopped");
}

#[test]
fn foreground_run_with_a_terminal_relays_the_pty() {
    require_root!();
    // No --console-socket and no --detach: corten takes the pty master and
    // relays it to its own stdout (as runc does).
    let mut b = Bundle::new("run-tty");
    b.set("/process/terminal", json!(true))
        .sh("tty; echo from-the-pty; exit 6");
    let rt = Runtime::new("run-tty");
    let out = rt.run(b.name(), &b);
    assert_eq!(out.code(), 6, "{}", out.stderr_str());
    let text = out.stdout_str();
    assert!(text.contains("/dev/pts/0\r\n"), "{text:?}");
    assert!(text.contains("from-the-pty\r\n"), "{text:?}");
}

#[test]
fn foreground_exec_tty_relays_stdin_and_output() {
    require_root!();
    let mut b = Bundle::new("exec-tty-relay");
    b.args(&["sleep", "1000"]);
    let rt = Runtime::new("exec-tty-relay");
    let id = b.name();
    rt.run_with(id, &b, &["--detach"])
        .assert_success("run --detach");
    let mut child = rt
        .command()
        .args(["exec", "-t", id, "sh"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn exec -t");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(b"tty; echo typed-$((6*7)); exit 9\n")
            .expect("type");
    }
    let out = child.wait_with_output().expect("exec -t");
    assert_eq!(out.status.code(), Some(9));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("typed-42"), "{text:?}");
    assert!(text.contains("/dev/pts/"), "{text:?}");
}
