//! runtime.md#operations and runtime.md#errors: the errors each operation
//! MUST generate, and that a failed operation leaves nothing behind.

use std::fs;
use std::time::Duration;

use anyhow::{ensure, Result};
use serde_json::json;

use super::lifecycle::{started, waiter};
use super::{case, Case};
use crate::bundle::Bundle;
use crate::ctx::{alive, ensure_err, wait_until, Ctx};

pub fn cases() -> Vec<Case> {
    vec![
        case("ops.state.no-id", "runtime.md#query-state", state_no_id),
        case(
            "ops.state.unknown-id",
            "runtime.md#query-state",
            state_unknown_id,
        ),
        case("ops.create.no-id", "runtime.md#create", create_no_id),
        case(
            "ops.create.duplicate-id",
            "runtime.md#create",
            create_duplicate_id,
        ),
        case(
            "ops.create.invalid-id",
            "runtime.md#create",
            create_invalid_id,
        ),
        case(
            "ops.create.no-config",
            "runtime.md#create, bundle.md",
            create_no_config,
        ),
        case(
            "ops.create.malformed-config",
            "runtime.md#lifecycle (step 2)",
            create_malformed_config,
        ),
        case(
            "ops.create.missing-root-directory",
            "config.md#root",
            create_missing_root,
        ),
        case(
            "ops.create.failure-leaves-nothing",
            "runtime.md#errors",
            create_failure_leaves_nothing,
        ),
        case("ops.start.no-id", "runtime.md#start", start_no_id),
        case("ops.start.unknown-id", "runtime.md#start", start_unknown_id),
        case(
            "ops.start.running-errors",
            "runtime.md#start",
            start_running,
        ),
        case(
            "ops.start.stopped-errors",
            "runtime.md#start",
            start_stopped,
        ),
        case("ops.kill.no-id", "runtime.md#kill", kill_no_id),
        case("ops.kill.unknown-id", "runtime.md#kill", kill_unknown_id),
        case("ops.kill.stopped-errors", "runtime.md#kill", kill_stopped),
        case("ops.delete.no-id", "runtime.md#delete", delete_no_id),
        case(
            "ops.delete.unknown-id",
            "runtime.md#delete",
            delete_unknown_id,
        ),
        case(
            "ops.delete.running-errors",
            "runtime.md#delete",
            delete_running,
        ),
        // Deliberately not the spec: see `delete_created_as_runc`.
        case(
            "ops.delete.created-destroys-as-runc",
            "runtime.md#delete (runc-compatible deviation)",
            delete_created_as_runc,
        ),
        case(
            "config.extensibility.unknown-properties-ignored",
            "config.md#extensibility",
            unknown_properties,
        ),
        case(
            "config.valid-values.unknown-namespace-type",
            "config.md#valid-values",
            unknown_namespace_type,
        ),
        case(
            "config.process.args-required",
            "config.md#process",
            args_required,
        ),
        case(
            "config-linux.intel-rdt.without-resctrl",
            "config-linux.md#intelrdt",
            intel_rdt_without_resctrl,
        )
        .runc("runc 1.1 accepts intelRdt on a host without a resctrl filesystem and creates the container"),
    ]
}

fn state_no_id(cx: &mut Ctx) -> Result<()> {
    ensure_err(&cx.rt(&["state"])?, "state without an id")
}

fn state_unknown_id(cx: &mut Ctx) -> Result<()> {
    ensure_err(
        &cx.rt(&["state", "no-such-container"])?,
        "state of an unknown id",
    )
}

fn start_no_id(cx: &mut Ctx) -> Result<()> {
    ensure_err(&cx.rt(&["start"])?, "start without an id")
}

fn start_unknown_id(cx: &mut Ctx) -> Result<()> {
    ensure_err(
        &cx.rt(&["start", "no-such-container"])?,
        "start of an unknown id",
    )
}

fn kill_no_id(cx: &mut Ctx) -> Result<()> {
    ensure_err(&cx.rt(&["kill"])?, "kill without an id")
}

fn kill_unknown_id(cx: &mut Ctx) -> Result<()> {
    ensure_err(
        &cx.rt(&["kill", "no-such-container", "KILL"])?,
        "kill of an unknown id",
    )
}

fn delete_no_id(cx: &mut Ctx) -> Result<()> {
    ensure_err(&cx.rt(&["delete"])?, "delete without an id")
}

fn delete_unknown_id(cx: &mut Ctx) -> Result<()> {
    ensure_err(
        &cx.rt(&["delete", "no-such-container"])?,
        "delete of an unknown id",
    )
}

/// The entries of the runtime root (one per container the runtime knows).
fn root_entries(cx: &Ctx) -> Vec<String> {
    fs::read_dir(&cx.root)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// After a failed create of `b`: no container `id`, no cgroup, nothing in the root.
fn nothing_left(cx: &mut Ctx, b: &Bundle, id: &str) -> Result<()> {
    ensure_err(&cx.rt(&["state", id])?, "state after the failed create")?;
    let dir = cx.cgroup_dir(b, "pids");
    ensure!(!dir.exists(), "cgroup {} left behind", dir.display());
    let entries = root_entries(cx);
    ensure!(
        !entries.iter().any(|e| e == id),
        "state directory of {id} left in the root"
    );
    Ok(())
}

fn create_no_id(cx: &mut Ctx) -> Result<()> {
    let b = waiter(cx)?;
    b.save()?;
    let mut cmd = cx.command();
    cmd.arg("create").arg("--bundle").arg(b.path());
    let out = cx.exec(cmd)?;
    ensure_err(&out, "create without an id")?;
    let entries = root_entries(cx);
    ensure!(entries.is_empty(), "create without an id left {entries:?}");
    Ok(())
}

fn create_duplicate_id(cx: &mut Ctx) -> Result<()> {
    let b = waiter(cx)?;
    let id = cx.new_id();
    cx.create_ok(&b, &id)?;
    let pid = cx.pid(&id)?;
    let b2 = waiter(cx)?;
    ensure_err(&cx.create(&b2, &id)?, "create with an id in use")?;
    let s = cx.state(&id)?;
    ensure!(
        s["status"] == "created",
        "the first container is now {}",
        s["status"]
    );
    ensure!(
        s["pid"] == json!(pid) && alive(pid),
        "the first container's process changed or died"
    );
    let bundle = b.path().to_string_lossy().into_owned();
    ensure!(
        s["bundle"] == json!(bundle),
        "the first container's bundle is now {}",
        s["bundle"]
    );
    Ok(())
}

fn create_invalid_id(cx: &mut Ctx) -> Result<()> {
    let b = waiter(cx)?;
    for id in ["../escaped", "a/b"] {
        cx.track(id);
        ensure_err(&cx.create(&b, id)?, &format!("create with id {id:?}"))?;
    }
    let escaped = cx.dir.join("escaped");
    ensure!(
        !escaped.exists(),
        "state written outside the root at {}",
        escaped.display()
    );
    Ok(())
}

fn create_no_config(cx: &mut Ctx) -> Result<()> {
    let b = waiter(cx)?;
    let id = cx.new_id();
    let mut cmd = cx.command();
    cmd.arg("create").arg("--bundle").arg(b.path()).arg(&id);
    ensure_err(&cx.exec(cmd)?, "create of a bundle without config.json")?;
    nothing_left(cx, &b, &id)
}

fn create_malformed_config(cx: &mut Ctx) -> Result<()> {
    let b = waiter(cx)?;
    let id = cx.new_id();
    b.save()?;
    fs::write(
        b.path().join("config.json"),
        "{ \"ociVersion\": \"1.0.2\", \"process\": ",
    )?;
    let mut cmd = cx.command();
    cmd.arg("create").arg("--bundle").arg(b.path()).arg(&id);
    ensure_err(&cx.exec(cmd)?, "create with a malformed config.json")?;
    nothing_left(cx, &b, &id)
}

fn create_missing_root(cx: &mut Ctx) -> Result<()> {
    let mut b = waiter(cx)?;
    b.set("/root/path", json!("no-such-rootfs"));
    let id = cx.new_id();
    ensure_err(&cx.create(&b, &id)?, "create with a missing root.path")?;
    nothing_left(cx, &b, &id)
}

fn create_failure_leaves_nothing(cx: &mut Ctx) -> Result<()> {
    let mut b = waiter(cx)?;
    let missing = b
        .path()
        .join("no-such-source")
        .to_string_lossy()
        .into_owned();
    b.mount("/mnt/missing", "bind", &missing, &["bind"]);
    let id = cx.new_id();
    ensure_err(
        &cx.create(&b, &id)?,
        "create with a bind mount of a missing source",
    )?;
    nothing_left(cx, &b, &id)?;
    ensure!(!b.out().join("ran").exists(), "the user program ran");
    Ok(())
}

fn start_running(cx: &mut Ctx) -> Result<()> {
    let b = waiter(cx)?;
    let id = started(cx, &b)?;
    let pid = cx.pid(&id)?;
    ensure_err(&cx.rt(&["start", &id])?, "start of a running container")?;
    std::thread::sleep(Duration::from_millis(200));
    let ran = fs::read_to_string(b.out().join("ran"))?;
    ensure!(
        ran.lines().count() == 1,
        "the program ran {} times",
        ran.lines().count()
    );
    ensure!(
        cx.status(&id)? == "running" && cx.pid(&id)? == pid,
        "the container changed"
    );
    Ok(())
}

fn start_stopped(cx: &mut Ctx) -> Result<()> {
    let mut b = cx.bundle()?;
    b.with_out().sh("echo ran >> /out/ran");
    let id = cx.new_id();
    cx.create_ok(&b, &id)?;
    cx.start_ok(&id)?;
    cx.wait_status(&id, "stopped")?;
    ensure_err(&cx.rt(&["start", &id])?, "start of a stopped container")?;
    std::thread::sleep(Duration::from_millis(200));
    let ran = fs::read_to_string(b.out().join("ran"))?;
    ensure!(
        ran.lines().count() == 1,
        "the program ran {} times",
        ran.lines().count()
    );
    ensure!(
        cx.status(&id)? == "stopped",
        "the container is no longer stopped"
    );
    Ok(())
}

fn kill_stopped(cx: &mut Ctx) -> Result<()> {
    let mut b = cx.bundle()?;
    b.args(&["true"]);
    let id = cx.new_id();
    cx.create_ok(&b, &id)?;
    cx.start_ok(&id)?;
    cx.wait_status(&id, "stopped")?;
    ensure_err(
        &cx.rt(&["kill", &id, "KILL"])?,
        "kill of a stopped container",
    )?;
    ensure!(
        cx.status(&id)? == "stopped",
        "the container is no longer stopped"
    );
    Ok(())
}

fn delete_running(cx: &mut Ctx) -> Result<()> {
    let b = waiter(cx)?;
    let id = started(cx, &b)?;
    let pid = cx.pid(&id)?;
    ensure_err(&cx.rt(&["delete", &id])?, "delete of a running container")?;
    ensure!(alive(pid), "the container process died");
    ensure!(
        cx.status(&id)? == "running",
        "the container is no longer running"
    );
    Ok(())
}

/// runtime.md#delete says deleting a container that is not stopped MUST
/// fail and have no effect, `created` included. runc 1.1 and crun 1.8
/// both destroy a `created` container on a plain `delete` (its init is
/// killed), and containerd-shim-runc-v2 relies on it: the Delete of a task
/// that was created but never started runs `<runtime> delete <id>` without
/// `--force` (pkg/process: createdState.Delete -> Init.delete ->
/// runtime.Delete(ctx, id, nil)). A corten that followed the spec here
/// would leave such tasks stuck when Docker or containerd drive it through
/// the runc shim, so corten keeps runc's behaviour and this case checks it:
/// the delete succeeds, the init is gone and so is the state.
fn delete_created_as_runc(cx: &mut Ctx) -> Result<()> {
    let b = waiter(cx)?;
    let id = cx.new_id();
    cx.create_ok(&b, &id)?;
    let pid = cx.pid(&id)?;
    let out = cx.rt(&["delete", &id])?;
    ensure!(
        out.ok(),
        "delete of a created container failed: {}",
        out.stderr
    );
    ensure!(
        wait_until(Duration::from_secs(5), || !alive(pid)),
        "the container process {pid} survived the delete"
    );
    ensure_err(&cx.rt(&["state", &id])?, "state after the delete")?;
    Ok(())
}

fn unknown_properties(cx: &mut Ctx) -> Result<()> {
    let mut b = cx.bundle()?;
    b.set("/org.example.unknown", json!({ "nested": [1, 2] }))
        .set("/process/org.example.unknown", json!(true))
        .set("/linux/org.example.unknown", json!("x"))
        .set(
            "/hooks/org.example.unknown",
            json!([{ "path": "/nonexistent" }]),
        )
        .set(
            "/annotations",
            json!({ "org.example.unknown-key": "value" }),
        );
    b.expect(
        "cwd",
        corten_conformance::expect::Check::Cwd { path: "/".into() },
    );
    cx.run_checks(&b)
}

fn unknown_namespace_type(cx: &mut Ctx) -> Result<()> {
    let mut b = waiter(cx)?;
    b.push("/linux/namespaces", json!({ "type": "no-such-namespace" }));
    let id = cx.new_id();
    ensure_err(
        &cx.create(&b, &id)?,
        "create with an unknown namespace type",
    )?;
    nothing_left(cx, &b, &id)
}

fn args_required(cx: &mut Ctx) -> Result<()> {
    let mut b = cx.bundle()?;
    b.with_out().args(&[]);
    let id = cx.new_id();
    let created = cx.create(&b, &id)?;
    if created.ok() {
        ensure_err(&cx.rt(&["start", &id])?, "start with empty process.args")?;
    }
    Ok(())
}

fn intel_rdt_without_resctrl(cx: &mut Ctx) -> Result<()> {
    let mounts = fs::read_to_string("/proc/self/mountinfo")?;
    if mounts.lines().any(|l| l.contains(" - resctrl ")) {
        crate::skip!("the host has a resctrl filesystem mounted");
    }
    let mut b = waiter(cx)?;
    b.set("/linux/intelRdt", json!({ "closID": "conformance" }));
    let id = cx.new_id();
    ensure_err(
        &cx.create(&b, &id)?,
        "create with intelRdt and no resctrl mounted",
    )?;
    nothing_left(cx, &b, &id)
}
