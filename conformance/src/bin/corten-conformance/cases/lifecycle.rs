//! runtime.md: the lifecycle, the state, and what each operation does to a
//! container (status transitions, kill, delete).

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use anyhow::{anyhow, bail, ensure, Result};
use serde_json::json;

use super::{case, Case};
use crate::bundle::Bundle;
use crate::ctx::{alive, ensure_err, ensure_ok, wait_file, wait_until, Ctx};

pub fn cases() -> Vec<Case> {
    vec![
        case(
            "lifecycle.create.status-created",
            "runtime.md#create",
            create_status_created,
        ),
        case(
            "lifecycle.create.program-not-run-until-start",
            "runtime.md#lifecycle (steps 2, 8)",
            program_runs_at_start,
        ),
        case(
            "lifecycle.create.resources-exist",
            "runtime.md#create",
            create_resources_exist,
        ),
        case(
            "lifecycle.create.config-changes-ignored",
            "runtime.md#create",
            config_changes_ignored,
        ),
        case("lifecycle.state.fields", "runtime.md#state", state_fields),
        case(
            "lifecycle.state.annotations",
            "runtime.md#state, config.md#annotations",
            state_annotations,
        ),
        case(
            "lifecycle.state.pid-is-container-process",
            "runtime.md#state",
            state_pid_is_process,
        ),
        case(
            "lifecycle.start.status-running",
            "runtime.md#start",
            start_status_running,
        ),
        case(
            "lifecycle.stopped-after-exit",
            "runtime.md#kill (status stopped)",
            stopped_after_exit,
        ),
        case(
            "lifecycle.kill.running-delivers-signal",
            "runtime.md#kill",
            kill_delivers_signal,
        ),
        case(
            "lifecycle.kill.created-container",
            "runtime.md#kill",
            kill_created,
        ),
        case(
            "lifecycle.kill.signal-number",
            "runtime.md#kill (runc CLI: numeric signal)",
            kill_signal_number,
        ),
        case(
            "lifecycle.kill.signal-sig-prefix",
            "runtime.md#kill (runc CLI: SIG-prefixed name)",
            kill_signal_sig_prefix,
        ),
        case(
            "lifecycle.delete.stopped",
            "runtime.md#delete, runtime.md#lifecycle (step 12)",
            delete_stopped,
        ),
        case(
            "lifecycle.delete.id-reusable",
            "runtime.md#delete",
            delete_id_reusable,
        ),
        case(
            "lifecycle.delete.keeps-foreign-resources",
            "runtime.md#delete",
            delete_keeps_foreign,
        ),
        case(
            "lifecycle.delete.force-running",
            "runtime.md#delete (runc CLI: --force)",
            delete_force_running,
        ),
        case(
            "lifecycle.delete.force-created",
            "runtime.md#delete (runc CLI: --force)",
            delete_force_created,
        ),
        case(
            "lifecycle.run.exit-code",
            "runtime.md#lifecycle (runc CLI: run)",
            run_exit_code,
        ),
        case(
            "lifecycle.create.pid-file",
            "runtime.md#state (runc CLI: --pid-file)",
            create_pid_file,
        ),
    ]
}

/// A bundle whose process waits for a signal and records it in `/out/sig`
/// (after writing `/out/sig.ready`), and first appends `ran` to `/out/ran`.
pub fn waiter(cx: &mut Ctx) -> Result<Bundle> {
    let mut b = cx.bundle()?;
    b.with_out()
        .sh("echo ran >> /out/ran; exec /conformance/checker wait-signal /out/sig");
    Ok(b)
}

/// Create and start `b` as a new container; wait until its process runs.
pub fn started(cx: &mut Ctx, b: &Bundle) -> Result<String> {
    let id = cx.new_id();
    cx.create_ok(b, &id)?;
    cx.start_ok(&id)?;
    wait_file(&b.out().join("sig.ready"))?;
    Ok(id)
}

fn create_status_created(cx: &mut Ctx) -> Result<()> {
    let b = waiter(cx)?;
    let id = cx.new_id();
    cx.create_ok(&b, &id)?;
    let status = cx.status(&id)?;
    ensure!(
        status == "created",
        "status after create is {status:?}, want \"created\""
    );
    Ok(())
}

fn program_runs_at_start(cx: &mut Ctx) -> Result<()> {
    let b = waiter(cx)?;
    let id = cx.new_id();
    cx.create_ok(&b, &id)?;
    std::thread::sleep(Duration::from_millis(300));
    ensure!(
        !b.out().join("ran").exists(),
        "the user program ran during create"
    );
    cx.start_ok(&id)?;
    wait_file(&b.out().join("ran"))?;
    Ok(())
}

fn create_resources_exist(cx: &mut Ctx) -> Result<()> {
    let b = waiter(cx)?;
    let id = cx.new_id();
    cx.create_ok(&b, &id)?;
    let pid = cx.pid(&id)?;
    ensure!(alive(pid), "state pid {pid} is not alive after create");
    let procs = cx.cgroup_dir(&b, "pids").join("cgroup.procs");
    let listed =
        fs::read_to_string(&procs).map_err(|e| anyhow!("read {}: {e}", procs.display()))?;
    ensure!(
        listed.lines().any(|l| l.trim() == pid.to_string()),
        "pid {pid} is not in {} ({listed:?})",
        procs.display()
    );
    for ns in ["net", "pid", "mnt", "ipc", "uts"] {
        let got = fs::metadata(format!("/proc/{pid}/ns/{ns}"))?.ino();
        ensure!(
            Some(got) != cx.host.ns_inode(ns),
            "the {ns} namespace was not created"
        );
    }
    Ok(())
}

fn config_changes_ignored(cx: &mut Ctx) -> Result<()> {
    let mut b = waiter(cx)?;
    let id = cx.new_id();
    cx.create_ok(&b, &id)?;
    b.sh("echo changed > /out/changed; exec /conformance/checker wait-signal /out/sig");
    b.save()?;
    cx.start_ok(&id)?;
    wait_file(&b.out().join("sig.ready"))?;
    ensure!(
        !b.out().join("changed").exists(),
        "start ran the program of the edited config.json"
    );
    ensure!(
        b.out().join("ran").exists(),
        "the original program did not run"
    );
    Ok(())
}

fn state_fields(cx: &mut Ctx) -> Result<()> {
    let b = waiter(cx)?;
    let id = cx.new_id();
    cx.create_ok(&b, &id)?;
    let s = cx.state(&id)?;
    let want_bundle = b.path().to_string_lossy().into_owned();
    ensure!(
        s["ociVersion"].is_string(),
        "ociVersion missing or not a string: {s}"
    );
    ensure!(s["id"] == json!(id), "id is {}, want {id:?}", s["id"]);
    ensure!(s["status"] == "created", "status is {}", s["status"]);
    let pid = s["pid"]
        .as_i64()
        .ok_or_else(|| anyhow!("pid missing or not an int: {s}"))?;
    ensure!(pid > 0, "pid {pid}");
    ensure!(
        s["bundle"] == json!(want_bundle),
        "bundle is {}, want {want_bundle:?}",
        s["bundle"]
    );
    Ok(())
}

fn state_annotations(cx: &mut Ctx) -> Result<()> {
    let mut b = waiter(cx)?;
    let annotations = json!({ "org.example.conformance": "yes", "org.example.empty": "" });
    b.set("/annotations", annotations.clone());
    let id = cx.new_id();
    cx.create_ok(&b, &id)?;
    let s = cx.state(&id)?;
    ensure!(
        s["annotations"] == annotations,
        "annotations {} want {annotations}",
        s["annotations"]
    );
    Ok(())
}

fn state_pid_is_process(cx: &mut Ctx) -> Result<()> {
    let b = waiter(cx)?;
    let id = started(cx, &b)?;
    let pid = cx.pid(&id)?;
    let cmdline = fs::read(format!("/proc/{pid}/cmdline"))?;
    let args: Vec<String> = cmdline
        .split(|c| *c == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    ensure!(
        args.first().is_some_and(|a| a.ends_with("checker"))
            && args.get(1).is_some_and(|a| a == "wait-signal"),
        "state pid {pid} runs {args:?}, not the container process"
    );
    Ok(())
}

fn start_status_running(cx: &mut Ctx) -> Result<()> {
    let b = waiter(cx)?;
    let id = started(cx, &b)?;
    let status = cx.status(&id)?;
    ensure!(status == "running", "status after start is {status:?}");
    Ok(())
}

fn stopped_after_exit(cx: &mut Ctx) -> Result<()> {
    let mut b = cx.bundle()?;
    b.args(&["true"]);
    let id = cx.new_id();
    cx.create_ok(&b, &id)?;
    cx.start_ok(&id)?;
    cx.wait_status(&id, "stopped")
}

fn kill_with(cx: &mut Ctx, signal: &str, want: i32) -> Result<()> {
    let b = waiter(cx)?;
    let id = started(cx, &b)?;
    let out = cx.rt(&["kill", &id, signal])?;
    ensure_ok(&out, &format!("kill {signal}"))?;
    let sig = b.out().join("sig");
    wait_file(&sig)?;
    let got = fs::read_to_string(&sig)?;
    ensure!(
        got.trim() == want.to_string(),
        "the process received signal {}, want {want}",
        got.trim()
    );
    cx.wait_status(&id, "stopped")
}

fn kill_delivers_signal(cx: &mut Ctx) -> Result<()> {
    kill_with(cx, "TERM", libc::SIGTERM)
}

fn kill_signal_number(cx: &mut Ctx) -> Result<()> {
    kill_with(cx, &libc::SIGUSR1.to_string(), libc::SIGUSR1)
}

fn kill_signal_sig_prefix(cx: &mut Ctx) -> Result<()> {
    kill_with(cx, "SIGUSR2", libc::SIGUSR2)
}

fn kill_created(cx: &mut Ctx) -> Result<()> {
    let b = waiter(cx)?;
    let id = cx.new_id();
    cx.create_ok(&b, &id)?;
    let pid = cx.pid(&id)?;
    let out = cx.rt(&["kill", &id, "KILL"])?;
    ensure_ok(&out, "kill of a created container")?;
    cx.wait_status(&id, "stopped")?;
    ensure!(
        wait_until(Duration::from_secs(5), || !alive(pid)),
        "pid {pid} still alive"
    );
    ensure!(!b.out().join("ran").exists(), "the user program ran");
    Ok(())
}

fn delete_stopped(cx: &mut Ctx) -> Result<()> {
    let mut b = cx.bundle()?;
    b.args(&["true"]);
    let id = cx.new_id();
    cx.create_ok(&b, &id)?;
    cx.start_ok(&id)?;
    cx.wait_status(&id, "stopped")?;
    ensure_ok(&cx.rt(&["delete", &id])?, "delete")?;
    ensure_err(&cx.rt(&["state", &id])?, "state after delete")?;
    for ctrl in ["pids", "memory"] {
        let dir = cx.cgroup_dir(&b, ctrl);
        ensure!(
            !dir.exists(),
            "cgroup {} still exists after delete",
            dir.display()
        );
    }
    Ok(())
}

fn delete_id_reusable(cx: &mut Ctx) -> Result<()> {
    let mut b = cx.bundle()?;
    b.args(&["true"]);
    let id = cx.new_id();
    cx.create_ok(&b, &id)?;
    ensure_ok(&cx.rt(&["kill", &id, "KILL"])?, "kill")?;
    cx.wait_status(&id, "stopped")?;
    ensure_ok(&cx.rt(&["delete", &id])?, "delete")?;
    cx.create_ok(&b, &id)?;
    let status = cx.status(&id)?;
    ensure!(
        status == "created",
        "status of the re-created container is {status:?}"
    );
    Ok(())
}

fn delete_keeps_foreign(cx: &mut Ctx) -> Result<()> {
    let holder_b = waiter(cx)?;
    let holder = cx.new_id();
    cx.create_ok(&holder_b, &holder)?;
    let holder_pid = cx.pid(&holder)?;
    let netns = format!("/proc/{holder_pid}/ns/net");
    let net_inode = fs::metadata(&netns)?.ino();
    let mut b = cx.bundle()?;
    b.namespace("network", Some(&netns)).args(&["true"]);
    let id = cx.new_id();
    cx.create_ok(&b, &id)?;
    cx.start_ok(&id)?;
    cx.wait_status(&id, "stopped")?;
    ensure_ok(&cx.rt(&["delete", &id])?, "delete")?;
    ensure!(
        alive(holder_pid),
        "deleting the joiner killed the namespace holder"
    );
    let now = fs::metadata(&netns)?.ino();
    ensure!(now == net_inode, "the joined network namespace changed");
    let status = cx.status(&holder)?;
    ensure!(status == "created", "the holder is now {status:?}");
    Ok(())
}

fn delete_force_running(cx: &mut Ctx) -> Result<()> {
    let b = waiter(cx)?;
    let id = started(cx, &b)?;
    let pid = cx.pid(&id)?;
    ensure_ok(&cx.rt(&["delete", "--force", &id])?, "delete --force")?;
    ensure_err(&cx.rt(&["state", &id])?, "state after delete --force")?;
    ensure!(
        wait_until(Duration::from_secs(5), || !alive(pid)),
        "pid {pid} survived delete --force"
    );
    Ok(())
}

fn delete_force_created(cx: &mut Ctx) -> Result<()> {
    let b = waiter(cx)?;
    let id = cx.new_id();
    cx.create_ok(&b, &id)?;
    let pid = cx.pid(&id)?;
    ensure_ok(&cx.rt(&["delete", "--force", &id])?, "delete --force")?;
    ensure_err(&cx.rt(&["state", &id])?, "state after delete --force")?;
    ensure!(
        wait_until(Duration::from_secs(5), || !alive(pid)),
        "pid {pid} survived delete --force"
    );
    let dir = cx.cgroup_dir(&b, "pids");
    ensure!(!dir.exists(), "cgroup {} still exists", dir.display());
    Ok(())
}

fn run_exit_code(cx: &mut Ctx) -> Result<()> {
    let mut b = cx.bundle()?;
    b.sh("exit 42");
    let cmd = cx.run_command(&b)?;
    let out = cx.exec(cmd)?;
    ensure!(
        out.code == 42,
        "run exited {}, want the container's 42 ({})",
        out.code,
        out.describe()
    );
    Ok(())
}

fn create_pid_file(cx: &mut Ctx) -> Result<()> {
    let b = waiter(cx)?;
    let id = cx.new_id();
    cx.create_ok(&b, &id)?;
    let pid = cx.pid(&id)?;
    let text = fs::read_to_string(cx.pid_file(&id)).map_err(|e| anyhow!("pid file: {e}"))?;
    let got: i32 = text
        .trim()
        .parse()
        .map_err(|_| anyhow!("pid file holds {text:?}"))?;
    if got != pid {
        bail!("pid file says {got}, state says {pid}");
    }
    Ok(())
}
