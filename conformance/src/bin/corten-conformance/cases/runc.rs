//! runc 1.1.5's observable command line contract, beyond the spec: the
//! exact shape of its JSON and table output, its exit codes and error
//! texts, its logging flags, and configurations it accepts or refuses with
//! its own words. Each case states what runc does (and passes on runc, the
//! reference); a runtime meant as a drop-in replacement must do the same.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{anyhow, ensure, Context, Result};
use corten_conformance::expect::{Check, FileKind};
use serde_json::{json, Value};

use super::lifecycle::{started, waiter};
use super::mounts::mounted;
use super::terminal::{create_on_console, read_until_closed, ConsoleSocket};
use super::{case, Case};
use crate::bundle::{Bundle, Edited, CONTAINER_PATH};
use crate::command::CmdOut;
use crate::ctx::{ensure_ok, wait_file, wait_until, Ctx};

pub fn cases() -> Vec<Case> {
    vec![
        case("runc.state.layout", "runc 1.1.5: state", state_plain),
        case(
            "runc.state.annotations-before-owner",
            "runc 1.1.5: state",
            state_annotated,
        ),
        case(
            "runc.list.json",
            "runc 1.1.5: list --format json",
            list_json,
        ),
        case("runc.list.table", "runc 1.1.5: list", list_table),
        case(
            "runc.events.stats-layout",
            "runc 1.1.5: events --stats (types.Stats)",
            events_stats,
        ),
        case("runc.spec.layout", "runc 1.1.5: spec", spec_layout),
        case(
            "runc.exec.failures-exit-255",
            "runc 1.1.5: exec",
            exec_failures,
        ),
        case("runc.exec.paused-exit-255", "runc 1.1.5: exec", exec_paused),
        case(
            "runc.exec.pid-file-missing-dir",
            "runc 1.1.5: exec --pid-file",
            exec_pid_file_missing_dir,
        ),
        case(
            "runc.exec.no-tty-without-t",
            "runc 1.1.5: exec (-t)",
            exec_without_t,
        ),
        case(
            "runc.exec.reads-config-at-exec",
            "runc 1.1.5: exec",
            exec_reads_config,
        ),
        case(
            "runc.exec.process-file-wins-over-flags",
            "runc 1.1.5: exec --process",
            exec_process_flags_ignored,
        ),
        case(
            "runc.exec.tty-owned-by-user",
            "runc 1.1.5: exec -t -u",
            exec_tty_owner,
        ),
        case(
            "runc.exec.stdio-owned-by-user",
            "runc 1.1.5: exec -u",
            exec_stdio_owner,
        ),
        case(
            "runc.kill.signal-0-and-invalid",
            "runc 1.1.5: kill",
            kill_zero_and_invalid,
        ),
        case("runc.ps.stopped", "runc 1.1.5: ps", ps_stopped),
        case(
            "runc.unknown-id.does-not-exist",
            "runc 1.1.5: container does not exist",
            unknown_id,
        ),
        case(
            "runc.usage.argument-counts",
            "runc 1.1.5: usage errors",
            usage_argument_counts,
        ),
        case(
            "runc.usage.unknown-command",
            "runc 1.1.5: usage errors",
            usage_unknown_command,
        ),
        case("runc.usage.help", "runc 1.1.5: help", usage_help),
        case(
            "runc.usage.json-log-format",
            "runc 1.1.5: --log-format json",
            usage_json,
        ),
        case("runc.log.file", "runc 1.1.5: --log, --log-format", log_file),
        case(
            "runc.log.debug-text",
            "runc 1.1.5: --debug --log",
            log_debug_text,
        ),
        case(
            "runc.log.debug-json",
            "runc 1.1.5: --debug --log --log-format json",
            log_debug_json,
        ),
        case(
            "runc.checkpoint.without-criu",
            "runc 1.1.5: checkpoint, restore",
            checkpoint_without_criu,
        ),
        case(
            "runc.cwd.root-only-directory",
            "runc 1.1.5: cwd entered before the user switch",
            cwd_root_only,
        ),
        case(
            "runc.no-mount-ns.root-is-rootfs",
            "runc 1.1.5: no mount namespace",
            no_mount_ns_root,
        ),
        case(
            "runc.no-mount-ns.masked-paths-refused",
            "runc 1.1.5: no mount namespace",
            no_mount_ns_masked,
        ),
        case(
            "runc.no-pivot.host-proc-hidden",
            "runc 1.1.5: run --no-pivot",
            no_pivot_proc_hidden,
        ),
        case(
            "runc.dev-tmpfs-ro",
            "runc 1.1.5: read-only /dev and tmpfs",
            dev_tmpfs_ro,
        ),
        case(
            "runc.refused.hostname-without-uts",
            "runc 1.1.5: config validation",
            hostname_without_uts,
        ),
        case(
            "runc.refused.net-sysctl-without-netns",
            "runc 1.1.5: config validation",
            net_sysctl_host_netns,
        ),
        case(
            "runc.refused.kernel-sysctl",
            "runc 1.1.5: config validation",
            kernel_sysctl,
        ),
        case(
            "runc.refused.unknown-namespace",
            "runc 1.1.5: config validation",
            unknown_namespace,
        ),
        case(
            "runc.refused.duplicated-namespace",
            "runc 1.1.5: config validation",
            duplicated_namespace,
        ),
        case(
            "runc.refused.userns-without-mappings",
            "runc 1.1.5: config validation",
            userns_without_mappings,
        ),
        case(
            "runc.refused.unknown-rlimit",
            "runc 1.1.5: config validation",
            unknown_rlimit,
        ),
        case(
            "runc.refused.device-type",
            "runc 1.1.5: config validation",
            device_type,
        ),
        case(
            "runc.refused.no-process",
            "runc 1.1.5: config validation",
            no_process,
        ),
        case(
            "runc.refused.rootfs-propagation",
            "runc 1.1.5: config validation",
            rootfs_propagation,
        ),
        case(
            "runc.refused.relative-cwd",
            "runc 1.1.5: config validation",
            relative_cwd,
        ),
        case(
            "runc.refused.empty-cwd",
            "runc 1.1.5: config validation",
            empty_cwd,
        ),
        case(
            "runc.refused.unified-on-cgroup-v1",
            "runc 1.1.5: config validation",
            unified_on_v1,
        ),
        case(
            "runc.accepted.unknown-capability",
            "runc 1.1.5: config validation",
            unknown_capability,
        ),
        case(
            "runc.accepted.id-mappings-without-userns",
            "runc 1.1.5: config validation",
            mappings_without_userns,
        ),
        case(
            "runc.accepted.relative-mount-destination",
            "runc 1.1.5: config validation",
            relative_mount,
        ),
        case(
            "runc.json.case-insensitive-config",
            "runc 1.1.5: Go's encoding/json",
            case_insensitive_config,
        ),
        case(
            "runc.json.case-insensitive-process-file",
            "runc 1.1.5: exec --process, Go's encoding/json",
            case_insensitive_process,
        ),
    ]
}

/// The keys of `state`, in runc's order (`annotations` goes before `owner`).
const STATE_KEYS: [&str; 8] = [
    "ociVersion",
    "id",
    "pid",
    "status",
    "bundle",
    "rootfs",
    "created",
    "owner",
];

/// A container id no case creates.
const UNKNOWN: &str = "no-such-container";

/// Fail unless `out` exited `code` with `text` in its stderr (as is, or
/// with its quotes escaped as in a text-format log line's `msg="…"`).
pub(super) fn expect_failure(out: &CmdOut, code: i32, text: &str, what: &str) -> Result<()> {
    let escaped = text.replace('"', "\\\"");
    ensure!(
        out.code == code && (out.stderr.contains(text) || out.stderr.contains(&escaped)),
        "{what}: want exit {code} and {text:?} on stderr, got {}",
        out.describe()
    );
    Ok(())
}

/// Fail unless `out` succeeded and printed `want` (trimmed).
pub(super) fn expect_stdout(out: &CmdOut, want: &str, what: &str) -> Result<()> {
    ensure_ok(out, what)?;
    ensure!(
        out.stdout.trim() == want,
        "{what} printed {:?}, want {want:?}",
        out.stdout
    );
    Ok(())
}

fn parse(text: &str, what: &str) -> Result<Value> {
    serde_json::from_str(text).map_err(|e| anyhow!("{what} is not JSON ({e}): {text:?}"))
}

/// Fail unless the object `v` has exactly the keys `want`, in that order.
fn ensure_keys(v: &Value, want: &[&str], what: &str) -> Result<()> {
    let got: Vec<&str> = v
        .as_object()
        .map(|m| m.keys().map(String::as_str).collect())
        .unwrap_or_default();
    ensure!(got == want, "{what} keys {got:?}, want {want:?}");
    Ok(())
}

/// A created waiter container (`lifecycle::waiter`).
pub(super) fn created(cx: &mut Ctx) -> Result<(Bundle, String)> {
    let b = waiter(cx)?;
    let id = cx.new_id();
    cx.create_ok(&b, &id)?;
    Ok((b, id))
}

/// A running waiter container.
pub(super) fn running(cx: &mut Ctx) -> Result<(Bundle, String)> {
    let b = waiter(cx)?;
    let id = started(cx, &b)?;
    Ok((b, id))
}

/// A container that ran `true` and is now stopped (not deleted).
fn stopped(cx: &mut Ctx) -> Result<String> {
    let mut b = cx.bundle()?;
    b.args(&["true"]);
    let id = cx.new_id();
    cx.create_ok(&b, &id)?;
    cx.start_ok(&id)?;
    cx.wait_status(&id, "stopped")?;
    Ok(id)
}

/// `state` of a created container: 2-space indentation, no trailing
/// newline, runc's key order, `owner` empty.
fn state_layout(cx: &mut Ctx, annotated: bool) -> Result<()> {
    let mut b = waiter(cx)?;
    let mut want = STATE_KEYS.to_vec();
    if annotated {
        b.set("/annotations", json!({ "org.example.conformance": "yes" }));
        want.insert(7, "annotations");
    }
    let id = cx.new_id();
    cx.create_ok(&b, &id)?;
    let out = cx.rt(&["state", &id])?;
    ensure_ok(&out, "state")?;
    ensure!(
        !out.stdout.ends_with('\n'),
        "state output ends with a newline"
    );
    let second = out.stdout.lines().nth(1).unwrap_or_default();
    ensure!(
        second.starts_with("  \""),
        "state is not indented by 2 spaces: {second:?}"
    );
    let s = parse(&out.stdout, "state")?;
    ensure_keys(&s, &want, "state")?;
    ensure!(s["owner"] == "", "owner is {}, want \"\"", s["owner"]);
    Ok(())
}

fn state_plain(cx: &mut Ctx) -> Result<()> {
    state_layout(cx, false)
}

fn state_annotated(cx: &mut Ctx) -> Result<()> {
    state_layout(cx, true)
}

fn list_json(cx: &mut Ctx) -> Result<()> {
    expect_stdout(
        &cx.rt(&["list", "--format", "json"])?,
        "null",
        "list of no container",
    )?;
    let (_, id) = created(cx)?;
    let out = cx.rt(&["list", "--format", "json"])?;
    ensure_ok(&out, "list --format json")?;
    let text = out.stdout.trim_end();
    ensure!(
        !text.contains('\n') && !text.contains(": "),
        "list --format json is not compact: {text:?}"
    );
    let list = parse(text, "list")?;
    let items = list.as_array().map(Vec::as_slice).unwrap_or_default();
    ensure!(
        items.len() == 1 && items[0]["id"] == id.as_str(),
        "list shows {list}, want only {id}"
    );
    ensure_keys(&items[0], &STATE_KEYS, "list entry")?;
    ensure!(
        items[0]["owner"] == "root",
        "owner is {}, want \"root\"",
        items[0]["owner"]
    );
    Ok(())
}

fn list_table(cx: &mut Ctx) -> Result<()> {
    const HEADER: &str = "ID          PID         STATUS      BUNDLE      CREATED     OWNER";
    let out = cx.rt(&["list"])?;
    ensure_ok(&out, "list")?;
    ensure!(
        out.stdout.trim_end() == HEADER,
        "list of no container printed {:?}, want {HEADER:?}",
        out.stdout
    );
    let (_, id) = created(cx)?;
    let out = cx.rt(&["list"])?;
    ensure_ok(&out, "list")?;
    let row: Vec<&str> = out
        .stdout
        .lines()
        .nth(1)
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    ensure!(
        row.first() == Some(&id.as_str())
            && row.get(2) == Some(&"created")
            && row.last() == Some(&"root"),
        "list row {row:?}, want {id} … created … root"
    );
    Ok(())
}

fn events_stats(cx: &mut Ctx) -> Result<()> {
    if !cx.host.has_controller("cpu") {
        crate::skip!("no cpu cgroup controller");
    }
    let mut b = cx.bundle()?;
    b.sh("while :; do :; done").set(
        "/linux/resources/cpu",
        json!({ "quota": 10000, "period": 100000 }),
    );
    let id = cx.new_id();
    cx.create_ok(&b, &id)?;
    cx.start_ok(&id)?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let (out, stats) = loop {
        let out = cx.rt(&["events", "--stats", &id])?;
        ensure_ok(&out, "events --stats")?;
        let stats = parse(&out.stdout, "events --stats")?;
        let cpu = &stats["data"]["cpu"];
        if cpu["throttling"]["throttledPeriods"].as_u64().unwrap_or(0) > 0 {
            break (out, stats);
        }
        ensure!(
            Instant::now() < deadline,
            "no throttled period reported in 10 s: {cpu}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    ensure!(
        out.stdout.trim_end().lines().count() == 1,
        "events --stats printed more than one line"
    );
    ensure_keys(&stats, &["type", "id", "data"], "event")?;
    let data = &stats["data"];
    ensure_keys(
        data,
        &[
            "cpu",
            "cpuset",
            "memory",
            "pids",
            "blkio",
            "hugetlb",
            "intel_rdt",
            "network_interfaces",
        ],
        "data",
    )?;
    for k in ["usage", "swap", "kernel", "kernelTCP"] {
        let m = &data["memory"][k];
        ensure!(
            m["limit"].is_u64() && m["failcnt"].is_u64(),
            "memory.{k} lacks limit or failcnt: {m}"
        );
    }
    let throttled = data["cpu"]["throttling"]["throttledTime"]
        .as_u64()
        .unwrap_or(0);
    ensure!(
        throttled > 0,
        "cpu.throttling.throttledTime is not positive: {}",
        data["cpu"]
    );
    Ok(())
}

/// `spec` in an empty directory and `spec --bundle DIR`: runc's key order,
/// `process.terminal` first, tab indentation.
fn spec_layout(cx: &mut Ctx) -> Result<()> {
    let (here, there) = (cx.dir.join("spec-cwd"), cx.dir.join("spec-bundle"));
    fs::create_dir(&here)?;
    fs::create_dir(&there)?;
    let mut cmd = cx.command();
    cmd.arg("spec").current_dir(&here);
    ensure_ok(&cx.exec(cmd)?, "spec")?;
    let there_arg = there.to_string_lossy().into_owned();
    ensure_ok(&cx.rt(&["spec", "--bundle", &there_arg])?, "spec --bundle")?;
    for dir in [&here, &there] {
        let text = fs::read_to_string(dir.join("config.json"))
            .with_context(|| format!("config.json in {}", dir.display()))?;
        ensure!(
            text.lines()
                .nth(1)
                .is_some_and(|l| l.starts_with("\t\"ociVersion\"")),
            "config.json is not tab-indented: {:?}",
            text.lines().nth(1)
        );
        let spec = parse(&text, "config.json")?;
        ensure_keys(
            &spec,
            &[
                "ociVersion",
                "process",
                "root",
                "hostname",
                "mounts",
                "linux",
            ],
            "config.json",
        )?;
        let first = spec["process"].as_object().and_then(|p| p.keys().next());
        ensure!(
            first.map(String::as_str) == Some("terminal"),
            "process starts with {first:?}, want terminal"
        );
    }
    Ok(())
}

fn exec_failures(cx: &mut Ctx) -> Result<()> {
    let (_, id) = running(cx)?;
    let tries: [(&[&str], &str); 3] = [
        (&[UNKNOWN, "true"], "exec failed: container does not exist"),
        (&[id.as_str(), "/no/such/binary"], "exec failed: "),
        (&[id.as_str()], "exec failed: process args cannot be empty"),
    ];
    for (args, text) in tries {
        let mut argv = vec!["exec"];
        argv.extend_from_slice(args);
        expect_failure(&cx.rt(&argv)?, 255, text, &argv.join(" "))?;
    }
    Ok(())
}

fn exec_paused(cx: &mut Ctx) -> Result<()> {
    if !cx.host.cgroup_v2 && !cx.host.has_controller("freezer") {
        crate::skip!("no freezer cgroup controller");
    }
    let (_, id) = running(cx)?;
    ensure_ok(&cx.rt(&["pause", &id])?, "pause")?;
    let out = cx.rt(&["exec", &id, "true"])?;
    ensure_ok(&cx.rt(&["resume", &id])?, "resume")?;
    let text = "exec failed: cannot exec in a paused container";
    expect_failure(&out, 255, text, "exec in a paused container")
}

/// The pids `ps --format json` lists.
fn ps_pids(cx: &mut Ctx, id: &str) -> Result<Value> {
    let out = cx.rt(&["ps", "--format", "json", id])?;
    ensure_ok(&out, "ps --format json")?;
    parse(&out.stdout, "ps --format json")
}

fn exec_pid_file_missing_dir(cx: &mut Ctx) -> Result<()> {
    let (_, id) = running(cx)?;
    let init = json!([cx.pid(&id)?]);
    let pid_file = cx.dir.join("no-such-dir/exec.pid");
    let pid_file = pid_file.to_string_lossy();
    let out = cx.rt(&["exec", "--pid-file", &pid_file, &id, "sleep", "30"])?;
    expect_failure(
        &out,
        255,
        "exec failed: ",
        "exec --pid-file in a missing directory",
    )?;
    let mut listed = Value::Null;
    let only_init = wait_until(Duration::from_secs(3), || {
        listed = ps_pids(cx, &id).unwrap_or_default();
        listed == init
    });
    ensure!(only_init, "ps lists {listed}, want only the init {init}");
    Ok(())
}

fn exec_without_t(cx: &mut Ctx) -> Result<()> {
    let mut b = waiter(cx)?;
    b.set("/process/terminal", json!(true));
    let id = cx.new_id();
    let _master = create_on_console(cx, &b, &id)?;
    cx.start_ok(&id)?;
    wait_file(&b.out().join("sig.ready"))?;
    let out = cx.rt(&["exec", &id, "tty"])?;
    ensure!(
        out.stdout.trim() == "not a tty",
        "exec without -t: tty printed {:?} ({})",
        out.stdout,
        out.describe()
    );
    ensure_ok(&cx.rt(&["exec", "-d", &id, "true"])?, "exec -d without -t")
}

fn exec_reads_config(cx: &mut Ctx) -> Result<()> {
    let (mut b, id) = running(cx)?;
    b.push("/process/env", json!("CONF_LATE=added after create"));
    b.save()?;
    let out = cx.rt(&["exec", &id, "sh", "-c", "echo $CONF_LATE"])?;
    expect_stdout(&out, "added after create", "exec after editing config.json")
}

/// `exec --process <file with process> <extra…> ID` must print `want`.
fn exec_process_file(cx: &mut Ctx, process: &Value, extra: &[&str], want: &str) -> Result<()> {
    let (b, id) = running(cx)?;
    let file = b.write_file("process.json", &process.to_string())?;
    let file = file.to_string_lossy();
    let mut argv = vec!["exec", "--process", &file];
    argv.extend_from_slice(extra);
    argv.push(&id);
    expect_stdout(&cx.rt(&argv)?, want, "exec --process")
}

fn exec_process_flags_ignored(cx: &mut Ctx) -> Result<()> {
    let process = json!({
        "args": ["sh", "-c", "echo $X; pwd; id -u"],
        "env": [CONTAINER_PATH, "X=1"],
        "cwd": "/tmp",
        "user": { "uid": 0, "gid": 0 }
    });
    let flags = ["--env", "X=2", "--cwd", "/bin", "-u", "1000"];
    exec_process_file(cx, &process, &flags, "1\n/tmp\n0")
}

fn case_insensitive_process(cx: &mut Ctx) -> Result<()> {
    let process = json!({
        "Args": ["sh", "-c", "pwd"],
        "Env": [CONTAINER_PATH],
        "Cwd": "/tmp",
        "User": { "UID": 0, "GID": 0 }
    });
    exec_process_file(cx, &process, &[], "/tmp")
}

fn exec_tty_owner(cx: &mut Ctx) -> Result<()> {
    let (_, id) = running(cx)?;
    let socket = ConsoleSocket::listen(cx.dir.join("exec-console.sock"))?;
    let path = socket.path.to_string_lossy().into_owned();
    let mut argv = vec!["exec", "-t", "-d", "--console-socket", &path, "-u", "1000"];
    argv.extend([id.as_str(), "sh", "-c", "stat -c '%u %g' $(tty)"]);
    let out = cx.rt(&argv)?;
    let master = socket.master(&out, "exec -t -d --console-socket")?;
    let text = read_until_closed(&master, Duration::from_secs(10))?;
    ensure!(
        text.trim() == "1000 5",
        "the exec'd process's terminal is owned by {:?}, want uid 1000, gid 5",
        text.trim()
    );
    Ok(())
}

fn exec_stdio_owner(cx: &mut Ctx) -> Result<()> {
    let (_, id) = running(cx)?;
    let stat = ["stat", "-L", "-c", "%u", "/proc/self/fd/1"];
    let mut argv = vec!["exec", "-u", "1000", &id];
    argv.extend(stat);
    let out = cx.rt(&argv)?;
    expect_stdout(&out, "1000", "owner of the exec'd process's stdout")
}

fn kill_zero_and_invalid(cx: &mut Ctx) -> Result<()> {
    let (_, id) = running(cx)?;
    ensure_ok(
        &cx.rt(&["kill", &id, "0"])?,
        "kill 0 of a running container",
    )?;
    let out = cx.rt(&["kill", &id, "65"])?;
    expect_failure(
        &out,
        1,
        "unable to signal init: invalid argument",
        "kill 65",
    )?;
    ensure_ok(&cx.rt(&["kill", &id, "KILL"])?, "kill KILL")?;
    cx.wait_status(&id, "stopped")?;
    let out = cx.rt(&["kill", &id, "0"])?;
    expect_failure(
        &out,
        1,
        "container not running",
        "kill 0 of a stopped container",
    )
}

fn ps_stopped(cx: &mut Ctx) -> Result<()> {
    let id = stopped(cx)?;
    let out = cx.rt(&["ps", &id])?;
    ensure_ok(&out, "ps of a stopped container")?;
    let lines: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    ensure!(
        lines.len() == 1 && lines[0].contains("PID"),
        "ps of a stopped container printed {:?}, want only the header",
        out.stdout
    );
    ensure!(ps_pids(cx, &id)?.is_null(), "ps --format json is not null");
    Ok(())
}

fn unknown_id(cx: &mut Ctx) -> Result<()> {
    let commands: [&[&str]; 9] = [
        &["state"],
        &["start"],
        &["kill"],
        &["delete"],
        &["ps"],
        &["pause"],
        &["resume"],
        &["events"],
        &["update", "--pids-limit", "10"],
    ];
    for command in commands {
        let mut argv = command.to_vec();
        argv.push(UNKNOWN);
        let out = cx.rt(&argv)?;
        expect_failure(&out, 1, "msg=\"container does not exist\"", &argv.join(" "))?;
    }
    ensure_ok(
        &cx.rt(&["delete", "--force", UNKNOWN])?,
        "delete --force of an unknown id",
    )
}

fn usage_argument_counts(cx: &mut Ctx) -> Result<()> {
    let tries: [(&[&str], &str); 4] = [
        (&["state"], r#""state" requires exactly 1 argument(s)"#),
        (
            &["kill", "a", "b", "c"],
            r#""kill" requires a maximum of 2 argument(s)"#,
        ),
        (&["ps"], r#""ps" requires a minimum of 1 argument(s)"#),
        (
            &["create", "--bogus", "x"],
            "flag provided but not defined: -bogus",
        ),
    ];
    for (argv, text) in tries {
        let out = cx.rt(argv)?;
        expect_failure(&out, 1, text, &argv.join(" "))?;
        ensure!(
            out.stdout.starts_with("Incorrect Usage"),
            "{}: stdout starts {:?}, want \"Incorrect Usage\"",
            argv.join(" "),
            out.stdout.lines().next()
        );
    }
    Ok(())
}

fn usage_unknown_command(cx: &mut Ctx) -> Result<()> {
    for argv in [&["foo"][..], &["foo", "-h"]] {
        let out = cx.rt(argv)?;
        expect_failure(&out, 3, "No help topic for 'foo'", &argv.join(" "))?;
    }
    Ok(())
}

fn usage_help(cx: &mut Ctx) -> Result<()> {
    let out = cx.rt(&["help", "kill"])?;
    ensure_ok(&out, "help kill")?;
    ensure!(
        out.stdout.contains("kill") && out.stdout.contains("signal"),
        "help kill printed {:?}",
        out.stdout
    );
    let out = cx.exec(cx.command())?;
    ensure_ok(&out, "the runtime without arguments")?;
    ensure!(
        out.stdout.to_lowercase().contains("usage"),
        "the runtime without arguments printed no help: {:?}",
        out.stdout
    );
    Ok(())
}

/// The lines of `text` that are JSON objects, parsed.
fn json_entries(text: &str) -> Vec<Value> {
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v.is_object())
        .collect()
}

fn usage_json(cx: &mut Ctx) -> Result<()> {
    let out = cx.rt(&["--log-format", "json", "state"])?;
    ensure!(out.code == 1, "state without an id: {}", out.describe());
    let found = json_entries(&out.stderr).into_iter().any(|e| {
        e["level"] == "error"
            && e["msg"]
                .as_str()
                .is_some_and(|m| m.ends_with("\"state\" requires exactly 1 argument(s)"))
    });
    ensure!(found, "no JSON error line on stderr: {:?}", out.stderr);
    Ok(())
}

fn log_file(cx: &mut Ctx) -> Result<()> {
    let path = |name: &str| cx.dir.join(name).to_string_lossy().into_owned();
    let (quiet, text, json) = (path("list.log"), path("text.log"), path("json.log"));
    ensure_ok(&cx.rt(&["--log", &quiet, "list"])?, "--log F list")?;
    ensure!(Path::new(&quiet).exists(), "--log F list did not create F");
    let out = cx.rt(&["--log", &text, "state", UNKNOWN])?;
    ensure!(
        out.code == 1 && out.stderr.lines().any(|l| l == "container does not exist"),
        "--log F: stderr lacks the bare message: {}",
        out.describe()
    );
    let logged = fs::read_to_string(&text)?;
    ensure!(
        logged.contains("level=error msg=\"container does not exist\""),
        "the log file holds {logged:?}"
    );
    let out = cx.rt(&["--log", &json, "--log-format", "json", "state", UNKNOWN])?;
    ensure!(out.code == 1, "state of an unknown id: {}", out.describe());
    let entries = json_entries(&fs::read_to_string(&json)?);
    let entry = entries
        .first()
        .ok_or_else(|| anyhow!("no JSON line in the log file"))?;
    ensure_keys(entry, &["level", "msg", "time"], "JSON log entry")?;
    ensure!(
        entry["level"] == "error" && entry["msg"] == "container does not exist",
        "JSON log entry {entry}"
    );
    Ok(())
}

/// `--debug --log F [--log-format json] run` of a `true` container writes
/// at least 5 debug lines to F.
fn log_debug(cx: &mut Ctx, format: &[&str], is_debug: fn(&str) -> bool) -> Result<()> {
    let mut b = cx.bundle()?;
    b.args(&["true"]);
    let log = cx.dir.join("debug.log");
    let mut cmd = cx.command();
    cmd.arg("--debug").arg("--log").arg(&log).args(format);
    let cmd = cx.run_args(cmd, &b, &[])?;
    ensure_ok(&cx.exec(cmd)?, "--debug --log F run")?;
    let text = fs::read_to_string(&log).context("the --log file")?;
    let debug = text.lines().filter(|l| is_debug(l)).count();
    ensure!(
        debug >= 5,
        "{debug} debug lines in the log file, want at least 5: {text:?}"
    );
    Ok(())
}

fn log_debug_text(cx: &mut Ctx) -> Result<()> {
    log_debug(cx, &[], |l| l.contains(" level=debug msg="))
}

fn log_debug_json(cx: &mut Ctx) -> Result<()> {
    log_debug(cx, &["--log-format", "json"], |l| {
        json_entries(l)
            .first()
            .is_some_and(|e| e["level"] == "debug")
    })
}

fn checkpoint_without_criu(cx: &mut Ctx) -> Result<()> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    if std::env::split_paths(&path).any(|d| d.join("criu").exists()) {
        crate::skip!("CRIU is installed");
    }
    let images = cx.dir.join("images").to_string_lossy().into_owned();
    let (b, id) = running(cx)?;
    let out = cx.rt(&["checkpoint", "--image-path", &images, &id])?;
    expect_failure(
        &out,
        1,
        "CRIU version check failed",
        "checkpoint of a running container",
    )?;
    let bundle = b.path().to_string_lossy().into_owned();
    let out = cx.rt(&["restore", "--image-path", &images, "--bundle", &bundle, &id])?;
    expect_failure(
        &out,
        1,
        "container with given ID already exists",
        "restore of an existing id",
    )?;
    let (_, fresh) = created(cx)?;
    let out = cx.rt(&["checkpoint", "--image-path", &images, &fresh])?;
    expect_failure(
        &out,
        1,
        "Container cannot be checkpointed in created state",
        "checkpoint of a created container",
    )?;
    ensure!(
        cx.status(&id)? == "running",
        "the checkpointed container stopped"
    );
    Ok(())
}

/// User 1000 with a root-only (0700) cwd: runc enters it while still
/// privileged, in the init and in `exec -u 1000 --cwd`.
fn cwd_root_only(cx: &mut Ctx) -> Result<()> {
    let mut b = cx.bundle()?;
    let private = b.rootfs().join("private");
    fs::create_dir(&private)?;
    fs::set_permissions(&private, fs::Permissions::from_mode(0o700))?;
    b.with_out()
        .set("/process/user", json!({ "uid": 1000, "gid": 1000 }))
        .set("/process/cwd", json!("/private"))
        .sh("pwd > /out/cwd; exec /conformance/checker wait-signal /out/sig");
    let id = started(cx, &b)?;
    let cwd = fs::read_to_string(b.out().join("cwd"))?;
    ensure!(cwd.trim() == "/private", "the init's cwd is {cwd:?}");
    let out = cx.rt(&["exec", "-u", "1000", "--cwd", "/private", &id, "pwd"])?;
    expect_stdout(&out, "/private", "exec -u 1000 --cwd /private")
}

/// `run` (under `unshare -m`) of a container without a mount namespace,
/// whose process prints the rootfs's marker file, with or without
/// masked paths.
fn run_without_mount_ns(cx: &mut Ctx, masked: bool) -> Result<CmdOut> {
    let mut b = cx.bundle()?;
    fs::write(b.rootfs().join("marker"), "rootfs marker")?;
    b.remove_namespace("mount").args(&["cat", "/marker"]);
    if masked {
        b.set("/linux/maskedPaths", json!(["/proc/kcore"]));
    }
    let cmd = cx.unshared_command();
    let cmd = cx.run_args(cmd, &b, &[])?;
    cx.exec(cmd)
}

fn no_mount_ns_root(cx: &mut Ctx) -> Result<()> {
    let out = run_without_mount_ns(cx, false)?;
    expect_stdout(
        &out,
        "rootfs marker",
        "cat /marker without a mount namespace",
    )
}

fn no_mount_ns_masked(cx: &mut Ctx) -> Result<()> {
    let out = run_without_mount_ns(cx, true)?;
    let text = "unable to restrict sys entries without a private MNT namespace";
    expect_failure(&out, 1, text, "maskedPaths without a mount namespace")
}

/// With `--no-pivot`, a process of user 1000 that makes its own user, mount
/// and pid namespaces cannot mount procfs: the kernel allows that only
/// while a fully visible procfs is in the mount namespace, and the
/// container's own /proc is not (its read-only /proc/sys and masked
/// /proc/kcore are mounted over it), so the host's /proc must be gone too.
fn no_pivot_proc_hidden(cx: &mut Ctx) -> Result<()> {
    let mut b = cx.bundle()?;
    b.set("/linux/maskedPaths", json!(["/proc/kcore"]))
        .set("/linux/readonlyPaths", json!(["/proc/sys"]))
        .set("/process/user", json!({ "uid": 1000, "gid": 1000 }))
        .sh("mkdir -p /dev/shm/p && unshare -Urmpf sh -c \
         'echo IN-USERNS; mount -t proc proc /dev/shm/p && echo MOUNTED'; true");
    let cmd = cx.unshared_command();
    let cmd = cx.run_args(cmd, &b, &["--no-pivot"])?;
    let out = cx.exec(cmd)?;
    ensure_ok(&out, "run --no-pivot")?;
    if !out.stdout.contains("IN-USERNS") {
        crate::skip!(
            "uid 1000 cannot make a user namespace here: {}",
            out.describe()
        );
    }
    ensure!(
        !out.stdout.contains("MOUNTED"),
        "a user namespace in the container could mount procfs: the host's /proc is reachable"
    );
    Ok(())
}

fn dev_tmpfs_ro(cx: &mut Ctx) -> Result<()> {
    let mut b = cx.bundle()?;
    let dev = b.config()["mounts"]
        .as_array()
        .and_then(|m| m.iter().position(|m| m["destination"] == "/dev"))
        .ok_or_else(|| anyhow!("the base config has no /dev mount"))?;
    b.push(&format!("/mounts/{dev}/options"), json!("ro"));
    b.mount("/mnt/ro", "tmpfs", "tmpfs", &["ro"]);
    for (path, fstype) in [
        ("/dev/pts", "devpts"),
        ("/dev/shm", "tmpfs"),
        ("/dev/mqueue", "mqueue"),
    ] {
        b.expect(&format!("{path} mounted"), mounted(path, Some(fstype), &[]));
    }
    for node in ["/dev/null", "/dev/zero", "/dev/urandom", "/dev/tty"] {
        let kind = Some(FileKind::Char);
        b.expect(
            &format!("{node} exists"),
            Check::Exists {
                path: node.into(),
                kind,
            },
        );
    }
    for path in ["/dev", "/mnt/ro"] {
        b.expect(
            &format!("{path} read-only"),
            Check::ReadOnly { path: path.into() },
        );
    }
    cx.run_checks(&b)
}

/// `run` a bundle whose process is `echo ran`, after `edit`.
fn run_edited(cx: &mut Ctx, edit: impl FnOnce(&mut Bundle) -> &mut Edited) -> Result<CmdOut> {
    let mut b = cx.bundle()?;
    b.args(&["echo", "ran"]);
    edit(&mut b);
    run_bundle(cx, &b)
}

/// `run` the bundle `b` (saved first) in the foreground.
pub(super) fn run_bundle(cx: &mut Ctx, b: &Bundle) -> Result<CmdOut> {
    let cmd = cx.run_command(b)?;
    cx.exec(cmd)
}

/// The edited config is refused: exit 1 with `text` on stderr.
fn refused(cx: &mut Ctx, edit: impl FnOnce(&mut Bundle) -> &mut Edited, text: &str) -> Result<()> {
    let out = run_edited(cx, edit)?;
    expect_failure(&out, 1, text, "run")
}

/// Refused with `value` at `pointer`.
fn refused_set(cx: &mut Ctx, pointer: &str, value: Value, text: &str) -> Result<()> {
    refused(cx, |b| b.set(pointer, value), text)
}

/// Refused with `value` appended to the array at `pointer`.
fn refused_push(cx: &mut Ctx, pointer: &str, value: Value, text: &str) -> Result<()> {
    refused(cx, |b| b.push(pointer, value), text)
}

/// The edited config runs, with each of `warnings` on stderr.
fn accepted(
    cx: &mut Ctx,
    edit: impl FnOnce(&mut Bundle) -> &mut Edited,
    warnings: &[&str],
) -> Result<()> {
    let out = run_edited(cx, edit)?;
    expect_stdout(&out, "ran", "run")?;
    for w in warnings {
        ensure!(
            out.stderr.contains(w),
            "no warning {w:?} on stderr: {}",
            out.describe()
        );
    }
    Ok(())
}

fn hostname_without_uts(cx: &mut Ctx) -> Result<()> {
    let text = "unable to set hostname without a private UTS namespace";
    refused(cx, |b| b.remove_namespace("uts"), text)
}

fn net_sysctl_host_netns(cx: &mut Ctx) -> Result<()> {
    let sysctl = json!({ "net.ipv4.ip_forward": "1" });
    let text = "not allowed in host network namespace";
    refused(
        cx,
        |b| b.remove_namespace("network").set("/linux/sysctl", sysctl),
        text,
    )
}

fn kernel_sysctl(cx: &mut Ctx) -> Result<()> {
    let sysctl = json!({ "kernel.panic": "1" });
    refused_set(
        cx,
        "/linux/sysctl",
        sysctl,
        "is not in a separate kernel namespace",
    )
}

fn unknown_namespace(cx: &mut Ctx) -> Result<()> {
    let text = r#"namespace {"foo" ""} does not exist"#;
    refused_push(cx, "/linux/namespaces", json!({ "type": "foo" }), text)
}

fn duplicated_namespace(cx: &mut Ctx) -> Result<()> {
    let text = "malformed spec file: duplicated ns";
    refused_push(cx, "/linux/namespaces", json!({ "type": "pid" }), text)
}

fn userns_without_mappings(cx: &mut Ctx) -> Result<()> {
    let text = "User namespaces enabled, but no uid mappings found.";
    refused_push(cx, "/linux/namespaces", json!({ "type": "user" }), text)
}

fn unknown_rlimit(cx: &mut Ctx) -> Result<()> {
    let rlimit = json!({ "type": "RLIMIT_FOO", "hard": 1, "soft": 1 });
    refused_push(
        cx,
        "/process/rlimits",
        rlimit,
        "wrong rlimit value: RLIMIT_FOO",
    )
}

fn device_type(cx: &mut Ctx) -> Result<()> {
    let device = json!({ "path": "/dev/conformance", "type": "z", "major": 1, "minor": 3 });
    refused_push(cx, "/linux/devices", device, "invalid device type \"z\"")
}

fn no_process(cx: &mut Ctx) -> Result<()> {
    let text = "process property must not be empty";
    refused(cx, |b| b.remove("/process"), text)
}

fn rootfs_propagation(cx: &mut Ctx) -> Result<()> {
    let text = "rootfsPropagation=foo is not supported";
    refused_set(cx, "/linux/rootfsPropagation", json!("foo"), text)
}

fn relative_cwd(cx: &mut Ctx) -> Result<()> {
    refused_set(
        cx,
        "/process/cwd",
        json!("tmp"),
        "Cwd must be an absolute path",
    )
}

fn empty_cwd(cx: &mut Ctx) -> Result<()> {
    refused_set(
        cx,
        "/process/cwd",
        json!(""),
        "Cwd property must not be empty",
    )
}

fn unified_on_v1(cx: &mut Ctx) -> Result<()> {
    if cx.host.cgroup_v2 {
        crate::skip!("a cgroup v2 host accepts linux.resources.unified");
    }
    let text = "invalid configuration: cannot use unified on cgroup v1";
    refused_set(
        cx,
        "/linux/resources/unified",
        json!({ "pids.max": "10" }),
        text,
    )
}

fn unknown_capability(cx: &mut Ctx) -> Result<()> {
    let warning = "ignoring unknown or unavailable capabilities: [CAP_FOO]";
    accepted(
        cx,
        |b| b.push("/process/capabilities/bounding", json!("CAP_FOO")),
        &[warning],
    )
}

fn mappings_without_userns(cx: &mut Ctx) -> Result<()> {
    let map = json!([{ "containerID": 0, "hostID": 1000, "size": 1 }]);
    accepted(
        cx,
        |b| {
            b.set("/linux/uidMappings", map.clone())
                .set("/linux/gidMappings", map)
        },
        &[],
    )
}

fn relative_mount(cx: &mut Ctx) -> Result<()> {
    let warnings = ["is not absolute", "invalid configuration"];
    accepted(
        cx,
        |b| b.mount("relative", "tmpfs", "tmpfs", &[]),
        &warnings,
    )
}

/// `config.json` with `"Process"`, `"Args"` and `"Cwd"`: Go's decoder
/// matches keys case-insensitively.
fn case_insensitive_config(cx: &mut Ctx) -> Result<()> {
    let out = run_edited(cx, |b| {
        let mut process = b.config_mut()["process"].take();
        if let Some(p) = process.as_object_mut() {
            p.remove("args");
            p.remove("cwd");
            p.insert("Args".into(), json!(["sh", "-c", "pwd; echo ran"]));
            p.insert("Cwd".into(), json!("/tmp"));
        }
        b.remove("/process").set("/Process", process)
    })?;
    expect_stdout(&out, "/tmp\nran", "run of a config with other-case keys")
}
