//! The container lifecycle: create, start, state, kill, delete, run, exec.

use std::fs;
use std::time::Duration;

use corten_integration_tests::{
    cgroup_dirs, is_rfc3339, pid_alive, processes_mentioning, require_root, wait_until, Bundle,
    OutputExt, Runtime,
};

/// A bundle running `sleep 1000` (pid 1 of its pid namespace).
fn sleeper(test: &str) -> Bundle {
    let mut b = Bundle::new(test);
    b.args(&["sleep", "1000"]);
    b
}

#[test]
fn full_lifecycle_create_start_kill_delete() {
    require_root!();
    let b = sleeper("lifecycle");
    let rt = Runtime::new("lifecycle");
    let id = b.name();

    rt.create(id, &b).assert_success("create");
    let state = rt.state(id);
    assert_eq!(state["status"], "created", "{state}");
    let pid = state["pid"].as_i64().expect("pid");
    assert!(
        pid > 0 && pid_alive(pid),
        "init {pid} not alive after create"
    );

    rt.start(id).assert_success("start");
    assert_eq!(rt.status(id), "running");
    assert_eq!(rt.pid(id), pid, "pid changed by start");
    // After start the init execs the container process (`start` returns
    // once it has released the init, as runc's does, not after the exec).
    let comm = || fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    assert!(
        wait_until(Duration::from_secs(5), || comm().trim() == "sleep"),
        "the init is {:?}, not sleep",
        comm()
    );

    rt.kill(id, "KILL").assert_success("kill");
    rt.wait_status(id, "stopped");
    assert!(
        wait_until(Duration::from_secs(5), || !pid_alive(pid)),
        "{pid} survived SIGKILL"
    );

    rt.delete(id).assert_success("delete");
    assert!(
        rt.root_entries().is_empty(),
        "state left under --root: {:?}",
        rt.root_entries()
    );
    assert!(
        cgroup_dirs(b.cgroup_path()).is_empty(),
        "cgroup left: {:?}",
        cgroup_dirs(b.cgroup_path())
    );
    assert!(processes_mentioning(id).is_empty());
    let out = rt.cmd(&["state", id]).assert_failure("state after delete");
    assert!(
        out.stderr_str().contains("does not exist"),
        "{}",
        out.stderr_str()
    );
}

#[test]
fn state_json_fields_after_create() {
    require_root!();
    let b = sleeper("state-fields");
    let rt = Runtime::new("state-fields");
    let id = b.name();
    rt.create(id, &b).assert_success("create");
    let state = rt.state(id);

    assert!(
        state["ociVersion"]
            .as_str()
            .is_some_and(|v| v.starts_with('1')),
        "ociVersion: {state}"
    );
    assert_eq!(state["id"], id);
    assert_eq!(state["status"], "created");
    assert!(state["pid"].as_i64().is_some_and(|p| p > 0));
    assert_eq!(
        state["bundle"].as_str(),
        b.path().to_str(),
        "bundle must be the absolute bundle path"
    );
    assert_eq!(
        state["rootfs"].as_str(),
        b.rootfs().to_str(),
        "rootfs must be the absolute rootfs path"
    );
    let created = state["created"].as_str().unwrap_or_default();
    assert!(is_rfc3339(created), "created is not RFC 3339: {created:?}");
    assert!(
        state["owner"].is_string(),
        "owner must be a string: {state}"
    );
}

#[test]
fn pid_file_holds_only_the_init_pid() {
    require_root!();
    let b = sleeper("pid-file");
    let rt = Runtime::new("pid-file");
    let id = b.name();
    rt.create(id, &b).assert_success("create");
    let text = fs::read_to_string(rt.pid_file(id)).expect("pid file written");
    assert!(
        !text.is_empty() && text.bytes().all(|c| c.is_ascii_digit()),
        "pid file {text:?} is not digits only"
    );
    assert_eq!(text.parse::<i64>().ok(), Some(rt.pid(id)));
}

#[test]
fn created_container_waits_for_start() {
    require_root!();
    let mut b = Bundle::new("waits-for-start");
    b.sh("echo started");
    let rt = Runtime::new("waits-for-start");
    let id = b.name();
    rt.create(id, &b).assert_success("create");
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(rt.container_stdout(id), "", "the process ran before start");
    assert_eq!(rt.status(id), "created");
    rt.start(id).assert_success("start");
    rt.wait_output(id, "started");
}

/// Session keyrings on the host named `_ses.<id>` (as runc names them).
fn session_keyrings(id: &str) -> usize {
    let keys = std::fs::read_to_string("/proc/keys").unwrap_or_default();
    keys.lines()
        .filter(|l| l.trim_end().ends_with(&format!(" _ses.{id}: empty")))
        .count()
}

#[test]
fn init_joins_a_new_session_keyring_unless_told_not_to() {
    require_root!();
    let mut b = Bundle::new("keyring");
    b.args(&["sleep", "1000"]);
    let rt = Runtime::new("keyring");
    let id = b.name();
    rt.create(id, &b).assert_success("create");
    assert_eq!(
        session_keyrings(id),
        1,
        "no keyring _ses.{id} in /proc/keys"
    );
    rt.cmd(&["delete", "--force", id])
        .assert_success("delete --force");

    let mut b = Bundle::new("no-keyring");
    b.args(&["sleep", "1000"]);
    let id = b.name();
    rt.create_with(id, &b, &["--no-new-keyring"])
        .assert_success("create --no-new-keyring");
    assert_eq!(
        session_keyrings(id),
        0,
        "--no-new-keyring still made a keyring"
    );
}

#[test]
fn state_is_stopped_when_the_pid_is_reused() {
    require_root!();
    let mut b = Bundle::new("pid-reuse");
    b.args(&["true"]);
    let rt = Runtime::new("pid-reuse");
    let id = b.name();
    rt.create(id, &b).assert_success("create");
    rt.start(id).assert_success("start");
    rt.wait_status(id, "stopped");
    // Simulate the kernel handing the init's pid to an unrelated process:
    // point the record at a live process (this test's own pid).
    let path = rt.root().join(id).join("state.json");
    let text = std::fs::read_to_string(&path).expect("state.json");
    let mut record: serde_json::Value = serde_json::from_str(&text).expect("state.json is JSON");
    let key = ["pid", "init_process_pid"]
        .into_iter()
        .find(|k| record.get(*k).is_some())
        .expect("state.json records the init pid");
    record[key] = serde_json::json!(std::process::id());
    std::fs::write(&path, record.to_string()).expect("rewrite state.json");
    let state = rt.state(id);
    assert_eq!(
        state["status"], "stopped",
        "a reused pid was taken for the init: {state}"
    );
    assert_eq!(state["pid"], 0, "{state}");
    rt.delete(id).assert_success("delete");
    assert!(rt.root_entries().is_empty());
}

#[test]
fn state_is_stopped_with_pid_zero_after_exit() {
    require_root!();
    let mut b = Bundle::new("stopped");
    b.args(&["true"]);
    let rt = Runtime::new("stopped");
    let id = b.name();
    rt.create(id, &b).assert_success("create");
    let pid = rt.pid(id);
    rt.start(id).assert_success("start");
    rt.wait_status(id, "stopped");
    let state = rt.state(id);
    assert_eq!(
        state["pid"], 0,
        "a stopped container reports pid 0: {state}"
    );
    assert!(!pid_alive(pid));
    // The record outlives the process until delete.
    assert_eq!(state["id"], id);
    rt.delete(id).assert_success("delete stopped");
    assert!(rt.root_entries().is_empty());
}

#[test]
fn run_propagates_exit_codes() {
    require_root!();
    let rt = Runtime::new("run-exit");
    for (script, code) in [
        ("exit 0", 0),
        ("exit 7", 7),
        ("exit 255", 255),
        ("false", 1),
    ] {
        let mut b = Bundle::new("run-exit");
        b.sh(script);
        let out = rt.run(b.name(), &b);
        assert_eq!(out.code(), code, "`{script}`: stderr {}", out.stderr_str());
        // run deletes the container when it exits.
        assert!(
            rt.cmd(&["state", b.name()]).status.code() != Some(0),
            "run left {} behind",
            b.name()
        );
        assert!(
            cgroup_dirs(b.cgroup_path()).is_empty(),
            "run left the cgroup of {}",
            b.name()
        );
    }
}

#[test]
fn run_passes_stdout_and_stderr_separately() {
    require_root!();
    let mut b = Bundle::new("run-stdio");
    b.sh("echo to-out; echo to-err >&2");
    let rt = Runtime::new("run-stdio");
    let out = rt.run(b.name(), &b).assert_success("run");
    assert_eq!(out.stdout_str(), "to-out\n");
    assert!(out.stderr_str().contains("to-err"), "{}", out.stderr_str());
    assert!(!out.stdout_str().contains("to-err"));
}

#[test]
fn run_detach_leaves_container_running() {
    require_root!();
    let b = sleeper("run-detach");
    let rt = Runtime::new("run-detach");
    let id = b.name();
    rt.run_with(id, &b, &["--detach"])
        .assert_success("run --detach");
    assert_eq!(rt.status(id), "running");
    let pid = rt.pid(id);
    assert!(pid_alive(pid));
    rt.cmd(&["delete", "--force", id])
        .assert_success("delete --force");
    assert!(wait_until(Duration::from_secs(5), || !pid_alive(pid)));
}

/// A container whose shell reports which signal it got, then exits.
fn trapper(test: &str, signal: &str) -> Bundle {
    let mut b = Bundle::new(test);
    b.sh(&format!(
        "trap 'echo got-{signal}; exit 0' {signal}; echo ready; while :; do sleep 0.02; done"
    ));
    b
}

#[test]
fn kill_accepts_signal_numbers_and_names() {
    require_root!();
    let rt = Runtime::new("kill-spellings");
    let mut bundles = Vec::new();
    for spelling in ["USR1", "SIGUSR1", "10"] {
        let b = trapper("kill-spellings", "USR1");
        rt.run_with(b.name(), &b, &["--detach"])
            .assert_success("run --detach");
        bundles.push((spelling, b));
    }
    for (spelling, b) in &bundles {
        rt.wait_output(b.name(), "ready");
        rt.kill(b.name(), spelling)
            .assert_success(&format!("kill {spelling}"));
    }
    for (spelling, b) in &bundles {
        rt.wait_output(b.name(), "got-USR1");
        rt.wait_status(b.name(), "stopped");
        assert!(!rt.container_stdout(b.name()).is_empty(), "kill {spelling}");
    }
}

#[test]
fn kill_sigterm_spellings_and_default() {
    require_root!();
    let rt = Runtime::new("kill-term");
    for spelling in [Some("TERM"), Some("SIGTERM"), Some("15"), None] {
        let b = trapper("kill-term", "TERM");
        let id = b.name();
        rt.run_with(id, &b, &["--detach"])
            .assert_success("run --detach");
        rt.wait_output(id, "ready");
        match spelling {
            Some(signal) => rt.kill(id, signal),
            None => rt.cmd(&["kill", id]),
        }
        .assert_success(&format!("kill {spelling:?}"));
        rt.wait_output(id, "got-TERM");
        rt.wait_status(id, "stopped");
    }
}

#[test]
fn kill_sigkill_by_number() {
    require_root!();
    let b = sleeper("kill-9");
    let rt = Runtime::new("kill-9");
    let id = b.name();
    rt.run_with(id, &b, &["--detach"])
        .assert_success("run --detach");
    rt.kill(id, "9").assert_success("kill 9");
    rt.wait_status(id, "stopped");
}

#[test]
fn kill_all_reaches_every_process_in_the_container() {
    require_root!();
    let mut b = Bundle::new("kill-all");
    // pid 1 ignores SIGTERM; its children do not.
    b.sh("sleep 1000 & sleep 1000 & echo ready; wait");
    let rt = Runtime::new("kill-all");
    let id = b.name();
    rt.run_with(id, &b, &["--detach"])
        .assert_success("run --detach");
    rt.wait_output(id, "ready");
    let procs = cgroup_dirs(b.cgroup_path())
        .into_iter()
        .find(|d| {
            d.starts_with("/sys/fs/cgroup/pids") || d.join("pids.max").exists() // v2: one dir
        })
        .map(|d| d.join("cgroup.procs"))
        .expect("pids cgroup of the container");
    let count =
        |path: &std::path::Path| fs::read_to_string(path).unwrap_or_default().lines().count();
    assert!(
        wait_until(Duration::from_secs(5), || count(&procs) == 3),
        "expected 3 processes"
    );
    rt.cmd(&["kill", "--all", id, "KILL"])
        .assert_success("kill --all");
    rt.wait_status(id, "stopped");
    assert!(
        wait_until(Duration::from_secs(5), || count(&procs) == 0),
        "processes survived kill --all"
    );
}

#[test]
fn kill_of_stopped_container_fails() {
    require_root!();
    let b = Bundle::new("kill-stopped");
    let rt = Runtime::new("kill-stopped");
    let id = b.name();
    rt.create(id, &b).assert_success("create");
    rt.start(id).assert_success("start");
    rt.wait_status(id, "stopped");
    let out = rt
        .kill(id, "KILL")
        .assert_failure("kill of a stopped container");
    assert!(
        out.stderr_str().contains("not running"),
        "{}",
        out.stderr_str()
    );
}

#[test]
fn delete_force_removes_running_container() {
    require_root!();
    let b = sleeper("delete-force");
    let rt = Runtime::new("delete-force");
    let id = b.name();
    rt.create(id, &b).assert_success("create");
    rt.start(id).assert_success("start");
    let pid = rt.pid(id);
    rt.cmd(&["delete", "--force", id])
        .assert_success("delete --force");
    assert!(
        wait_until(Duration::from_secs(5), || !pid_alive(pid)),
        "init survived delete --force"
    );
    assert!(rt.root_entries().is_empty());
    assert!(wait_until(Duration::from_secs(2), || cgroup_dirs(
        b.cgroup_path()
    )
    .is_empty()));
}

#[test]
fn delete_without_force_refuses_running_container() {
    require_root!();
    let b = sleeper("delete-running");
    let rt = Runtime::new("delete-running");
    let id = b.name();
    rt.run_with(id, &b, &["--detach"])
        .assert_success("run --detach");
    rt.delete(id)
        .assert_failure("delete of a running container");
    assert_eq!(rt.status(id), "running");
    assert!(pid_alive(rt.pid(id)));
}

#[test]
fn delete_of_created_container_kills_init() {
    require_root!();
    let b = sleeper("delete-created");
    let rt = Runtime::new("delete-created");
    let id = b.name();
    rt.create(id, &b).assert_success("create");
    let pid = rt.pid(id);
    rt.delete(id)
        .assert_success("delete of a created container");
    assert!(wait_until(Duration::from_secs(5), || !pid_alive(pid)));
    assert!(rt.root_entries().is_empty());
    assert!(wait_until(Duration::from_secs(2), || cgroup_dirs(
        b.cgroup_path()
    )
    .is_empty()));
}

#[test]
fn delete_force_of_missing_container_succeeds() {
    require_root!();
    let rt = Runtime::new("delete-missing");
    rt.cmd(&["delete", "--force", "never-existed"])
        .assert_success("delete --force of a missing container");
    let out = rt
        .cmd(&["delete", "never-existed"])
        .assert_failure("delete of a missing container");
    assert!(
        out.stderr_str().contains("does not exist"),
        "{}",
        out.stderr_str()
    );
}

#[test]
fn delete_force_after_process_vanished_succeeds() {
    require_root!();
    let b = sleeper("delete-gone");
    let rt = Runtime::new("delete-gone");
    let id = b.name();
    rt.run_with(id, &b, &["--detach"])
        .assert_success("run --detach");
    rt.kill(id, "KILL").assert_success("kill");
    rt.wait_status(id, "stopped");
    rt.cmd(&["delete", "--force", id])
        .assert_success("delete --force of a stopped container");
    rt.cmd(&["delete", "--force", id])
        .assert_success("second delete --force");
    assert!(rt.root_entries().is_empty());
}

#[test]
fn start_twice_fails_and_start_after_exit_fails() {
    require_root!();
    let b = sleeper("start-twice");
    let rt = Runtime::new("start-twice");
    let id = b.name();
    rt.create(id, &b).assert_success("create");
    rt.start(id).assert_success("start");
    rt.start(id).assert_failure("second start");
    assert_eq!(rt.status(id), "running");
    rt.kill(id, "KILL").assert_success("kill");
    rt.wait_status(id, "stopped");
    rt.start(id).assert_failure("start of a stopped container");
}

#[test]
fn commands_on_missing_container_report_does_not_exist() {
    require_root!();
    let rt = Runtime::new("missing");
    for args in [
        &["state", "nope"][..],
        &["start", "nope"],
        &["kill", "nope", "KILL"],
        &["delete", "nope"],
    ] {
        let out = rt.cmd(args).assert_failure(&args.join(" "));
        assert!(
            out.stderr_str().contains("does not exist"),
            "{args:?}: {}",
            out.stderr_str()
        );
    }
}

#[test]
fn exec_joins_the_running_container() {
    require_root!();
    let mut b = sleeper("exec");
    b.set("/hostname", serde_json::json!("exec-host"));
    let rt = Runtime::new("exec");
    let id = b.name();
    rt.run_with(id, &b, &["--detach"])
        .assert_success("run --detach");
    let pid = rt.pid(id);
    let out = rt.cmd(&[
        "exec",
        id,
        "sh",
        "-c",
        "hostname; readlink /proc/self/ns/pid; readlink /proc/self/ns/mnt",
    ]);
    let out = out.assert_success("exec");
    let lines: Vec<String> = out.stdout_str().lines().map(str::to_owned).collect();
    assert_eq!(lines.first().map(String::as_str), Some("exec-host"));
    for (line, ns) in lines.iter().skip(1).zip(["pid", "mnt"]) {
        let container_ns = fs::read_link(format!("/proc/{pid}/ns/{ns}")).expect("container ns");
        assert_eq!(
            line,
            &container_ns.to_string_lossy(),
            "exec is not in the container's {ns} namespace"
        );
    }
    let out = rt.cmd(&["exec", id, "sh", "-c", "exit 3"]);
    assert_eq!(out.code(), 3, "exec exit code: {}", out.stderr_str());
}
