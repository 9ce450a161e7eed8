//! OCI hooks: when each kind runs, in which namespace, with which state on
//! stdin, with `args`/`env`/`timeout`, and what a failure does.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use corten_integration_tests::{cgroup_dirs, host_ns, require_root, Bundle, OutputExt, Runtime};
use serde_json::{json, Value};

/// A hook that appends `<kind> <status from stdin> <mnt ns> $0 $1 $X` to `log`.
fn logging_hook(kind: &str, log: &str) -> Value {
    json!({
        "path": "/bin/sh",
        "args": ["sh", "-c",
            format!("read -r s || true; st=$(echo \"$s\" | sed 's/.*\"status\":\"\\([a-z]*\\)\".*/\\1/'); \
                     echo \"{kind} $st $(readlink /proc/self/ns/mnt) $X\" >> {log}"),
            "hook-arg"],
        "env": ["X=from-env"]
    })
}

fn lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn hooks_run_in_order_with_state_namespace_args_and_env() {
    require_root!();
    let mut b = Bundle::new("hooks-order");
    b.set("/root/readonly", json!(false))
        .args(&["sleep", "1000"]);
    let host_log = b.rootfs().join("hooklog");
    let host = host_log.to_str().expect("utf-8").to_owned();
    // startContainer runs after pivot_root: its paths are the container's.
    b.set(
        "/hooks",
        json!({
            "prestart": [logging_hook("prestart", &host)],
            "createRuntime": [logging_hook("createRuntime", &host)],
            "createContainer": [logging_hook("createContainer", &host)],
            "startContainer": [logging_hook("startContainer", "/hooklog")],
            "poststart": [logging_hook("poststart", &host)],
            "poststop": [logging_hook("poststop", &host)],
        }),
    );
    let rt = Runtime::new("hooks-order");
    let id = b.name();
    rt.create(id, &b).assert_success("create");
    let init = rt.pid(id);
    let container_mnt = fs::read_link(format!("/proc/{init}/ns/mnt")).expect("init mnt ns");
    let container_mnt = container_mnt.to_string_lossy().into_owned();
    let host_mnt = host_ns("mnt");
    let after_create = lines(&host_log);
    assert_eq!(
        after_create,
        vec![
            format!("prestart creating {host_mnt} from-env"),
            format!("createRuntime creating {host_mnt} from-env"),
            format!("createContainer creating {container_mnt} from-env"),
        ]
    );
    rt.start(id).assert_success("start");
    let after_start = lines(&host_log);
    assert_eq!(after_start.len(), 5, "{after_start:?}");
    assert_eq!(
        after_start[3],
        format!("startContainer created {container_mnt} from-env")
    );
    assert_eq!(
        after_start[4],
        format!("poststart running {host_mnt} from-env")
    );
    rt.kill(id, "KILL").assert_success("kill");
    rt.wait_status(id, "stopped");
    rt.delete(id).assert_success("delete");
    let all = lines(&host_log);
    assert_eq!(all.len(), 6, "{all:?}");
    assert_eq!(all[5], format!("poststop stopped {host_mnt} from-env"));
}

#[test]
fn hook_argv0_and_arguments_are_passed() {
    require_root!();
    let mut b = Bundle::new("hooks-args");
    let log = b.path().join("args.log");
    b.set(
        "/hooks/createRuntime",
        // busybox picks its applet by argv[0]: only args[0] = "sh" runs a shell.
        json!([{
            "path": "/bin/busybox",
            "args": ["sh", "-c", format!("tr '\\0' ' ' < /proc/$$/cmdline > {}; echo \"|$0|$1\" >> {}", log.display(), log.display()), "zero", "first"]
        }]),
    );
    let rt = Runtime::new("hooks-args");
    rt.create(b.name(), &b).assert_success("create");
    let text = fs::read_to_string(&log).expect("hook ran");
    assert!(
        text.starts_with("sh -c "),
        "argv[0] is not args[0]: {text:?}"
    );
    assert!(text.ends_with("|zero|first\n"), "{text:?}");
}

fn assert_create_fails_cleanly(test: &str, hooks: Value, within: Duration) -> String {
    let mut b = Bundle::new(test);
    b.args(&["sleep", "1000"]).set("/hooks", hooks);
    let rt = Runtime::new(test);
    let t = Instant::now();
    let out = rt
        .create(b.name(), &b)
        .assert_failure("create with a failing hook");
    assert!(t.elapsed() < within, "took {:?}", t.elapsed());
    assert_eq!(
        out.stderr_str().trim().lines().count(),
        1,
        "{}",
        out.stderr_str()
    );
    assert!(rt.root_entries().is_empty(), "state left");
    assert!(cgroup_dirs(b.cgroup_path()).is_empty(), "cgroup left");
    out.stderr_str()
}

#[test]
fn failing_create_hooks_abort_and_clean_up() {
    require_root!();
    let fail = json!([{ "path": "/bin/sh", "args": ["sh", "-c", "echo no >&2; exit 7"] }]);
    for kind in ["prestart", "createRuntime", "createContainer"] {
        let err = assert_create_fails_cleanly(
            &format!("hooks-fail-{}", kind.to_lowercase()),
            json!({ kind: fail }),
            Duration::from_secs(10),
        );
        // runc's words, which callers match.
        assert!(
            err.contains(
                "error running hook #0: error running hook: exit status 7, stdout: , stderr: no"
            ),
            "{kind}: {err}"
        );
    }
}

#[test]
fn hook_timeout_kills_it_and_aborts() {
    require_root!();
    let slow = json!([{ "path": "/bin/sleep", "args": ["sleep", "30"], "timeout": 1 }]);
    let err = assert_create_fails_cleanly(
        "hooks-timeout",
        json!({ "createContainer": slow }),
        Duration::from_secs(10),
    );
    assert!(
        err.contains("error running hook #0: hook ran past specified timeout of 1.0s"),
        "{err}"
    );
}

#[test]
fn failing_poststart_and_poststop_only_warn() {
    require_root!();
    let mut b = Bundle::new("hooks-warn");
    let fail = json!([{ "path": "/bin/false" }]);
    b.args(&["sleep", "1000"])
        .set("/hooks", json!({ "poststart": fail, "poststop": fail }));
    let rt = Runtime::new("hooks-warn");
    let id = b.name();
    rt.create(id, &b).assert_success("create");
    let out = rt
        .start(id)
        .assert_success("start despite a failing poststart hook");
    assert!(
        out.stderr_str().contains("poststart"),
        "no warning: {}",
        out.stderr_str()
    );
    assert_eq!(rt.status(id), "running");
    rt.kill(id, "KILL").assert_success("kill");
    rt.wait_status(id, "stopped");
    let out = rt
        .delete(id)
        .assert_success("delete despite a failing poststop hook");
    assert!(
        out.stderr_str().contains("poststop"),
        "no warning: {}",
        out.stderr_str()
    );
    assert!(rt.root_entries().is_empty());
}

#[test]
fn failing_start_container_hook_stops_the_container_before_its_process() {
    require_root!();
    let mut b = Bundle::new("hooks-start-fail");
    b.set("/root/readonly", json!(false))
        .sh("echo user-process-ran > /ran; sleep 1000")
        .set("/hooks/startContainer", json!([{ "path": "/bin/false" }]));
    let rt = Runtime::new("hooks-start-fail");
    let id = b.name();
    rt.create(id, &b).assert_success("create");
    let _ = rt.start(id);
    rt.wait_status(id, "stopped");
    assert!(
        !b.rootfs().join("ran").exists(),
        "the user process ran despite the failed hook"
    );
}
