//! config.md#posix-platform-hooks and runtime.md#lifecycle: when each hook
//! runs, in which namespace, with what on stdin, and what a failure does.
//!
//! Every hook is the checker in `hook` mode: it appends its name to
//! `out/order` and records its stdin, argv, environment and namespaces
//! (see the checker's `hook` module).

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Result};
use serde_json::{json, Value};

use super::{case, Case};
use crate::bundle::Bundle;
use crate::ctx::{alive, ensure_err, ensure_ok, wait_file, Ctx};

pub fn cases() -> Vec<Case> {
    vec![
        case("hooks.create-phase", "runtime.md#lifecycle (steps 3-5), config.md#createRuntime-hooks", create_phase)
            .runc(RUNC_POSTSTART_AT_CREATE),
        case("hooks.start-phase", "runtime.md#lifecycle (steps 7-9), config.md#startContainer-hooks", start_phase)
            .runc(RUNC_POSTSTART_AT_CREATE),
        case("hooks.poststart-after-process-executed", "config.md#poststart", poststart_after_exec)
            .runc(RUNC_POSTSTART_AT_CREATE),
        case("hooks.poststop-at-delete", "config.md#poststop, runtime.md#lifecycle (step 13)", poststop_at_delete),
        case("hooks.listed-order", "config.md#posix-platform-hooks (listed order)", listed_order),
        case("hooks.state-on-stdin", "config.md#posix-platform-hooks, runtime.md#state", state_on_stdin),
        case("hooks.args-and-env", "config.md#posix-platform-hooks (args, env)", args_and_env),
        case("hooks.runtime-namespace", "config.md#createRuntime-hooks, #poststart, #poststop", runtime_namespace),
        case("hooks.container-namespace", "config.md#createContainer-hooks, #startContainer-hooks", container_namespace),
        case("hooks.prestart-failure", "runtime.md#lifecycle (step 3)", |cx| create_hook_failure(cx, "prestart")),
        case("hooks.create-runtime-failure", "runtime.md#lifecycle (step 4)", |cx| create_hook_failure(cx, "createRuntime")),
        case("hooks.create-container-failure", "runtime.md#lifecycle (step 5)", |cx| create_hook_failure(cx, "createContainer")),
        case("hooks.start-container-failure", "runtime.md#lifecycle (step 7)", start_container_failure),
        case("hooks.poststart-failure-is-a-warning", "runtime.md#lifecycle (step 9, spec v1.2)", poststart_failure)
            .runc("runc 1.1 runs poststart hooks during create and treats a failure as fatal (kills the container); spec v1.3 adopted that behaviour"),
        case("hooks.poststop-failure-is-a-warning", "runtime.md#lifecycle (step 13)", poststop_failure)
            .runc("runc 1.1 stops at the first failing poststop hook: the remaining poststop hooks never run"),
        case("hooks.timeout", "config.md#posix-platform-hooks (timeout)", timeout),
        case("hooks.relative-path-refused", "config.md#posix-platform-hooks (path MUST be absolute)", relative_path),
        case("hooks.failed-create-runs-poststop", "runtime.md#lifecycle (steps 4, 12, 13)", failed_create_runs_poststop),
    ]
}

/// Why runc 1.1 fails the poststart timing cases.
const RUNC_POSTSTART_AT_CREATE: &str =
    "runc 1.1 runs poststart hooks during create, before start and before the user process runs";

/// A bundle whose process appends `process` to `/out/order`, then waits
/// for a signal (`/out/sig.ready` once ready).
fn hooked(cx: &mut Ctx) -> Result<Bundle> {
    let mut b = cx.bundle()?;
    b.with_out()
        .sh("echo process >> /out/order; exec /conformance/checker wait-signal /out/sig");
    Ok(b)
}

/// A hook entry running the checker as `name`. Hooks of the container
/// namespace after pivot_root (`startContainer`) use container paths.
fn hook(cx: &Ctx, b: &Bundle, name: &str, extra: &[&str]) -> Value {
    let in_container = name.starts_with("startContainer");
    let (path, dir) = if in_container {
        ("/conformance/checker".to_owned(), "/out".to_owned())
    } else {
        (
            cx.host.checker.to_string_lossy().into_owned(),
            b.out().to_string_lossy().into_owned(),
        )
    };
    let mut args = vec![
        "conformance-hook".to_owned(),
        "hook".into(),
        name.into(),
        dir,
    ];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    json!({ "path": path, "args": args })
}

/// Add hook `name` (`createRuntime-2` goes to the `createRuntime` list).
fn add(cx: &Ctx, b: &mut Bundle, name: &str, extra: &[&str]) {
    let kind = name.split('-').next().unwrap_or(name);
    let h = hook(cx, b, name, extra);
    b.push(&format!("/hooks/{kind}"), h);
}

fn order(b: &Bundle) -> Vec<String> {
    fs::read_to_string(b.out().join("order"))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn recorded(b: &Bundle, name: &str, what: &str) -> Result<String> {
    let path = b.out().join(format!("{name}.{what}"));
    fs::read_to_string(&path).map_err(|e| anyhow!("hook {name} recorded no {what} ({e})"))
}

fn create_phase(cx: &mut Ctx) -> Result<()> {
    let mut b = hooked(cx)?;
    for h in [
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
        "poststart",
        "poststop",
    ] {
        add(cx, &mut b, h, &[]);
    }
    let id = cx.new_id();
    cx.create_ok(&b, &id)?;
    let got = order(&b);
    ensure!(
        got == ["prestart", "createRuntime", "createContainer"],
        "hooks run by create: {got:?}, want [prestart, createRuntime, createContainer]"
    );
    Ok(())
}

fn start_phase(cx: &mut Ctx) -> Result<()> {
    let mut b = hooked(cx)?;
    for h in ["createRuntime", "startContainer", "poststart", "poststop"] {
        add(cx, &mut b, h, &[]);
    }
    let id = cx.new_id();
    cx.create_ok(&b, &id)?;
    let before = order(&b);
    cx.start_ok(&id)?;
    wait_file(&b.out().join("sig.ready"))?;
    let got = order(&b);
    let new: Vec<&str> = got[before.len().min(got.len())..]
        .iter()
        .map(String::as_str)
        .collect();
    let pos = |n: &str| new.iter().position(|x| *x == n);
    ensure!(
        before == ["createRuntime"],
        "hooks run by create: {before:?}, want [createRuntime]"
    );
    let (Some(sc), Some(p), Some(ps)) = (pos("startContainer"), pos("process"), pos("poststart"))
    else {
        bail!("after start: {new:?}, want startContainer, process and poststart");
    };
    ensure!(sc < p, "startContainer ran after the user process: {new:?}");
    ensure!(
        sc < ps && !new.contains(&"poststop"),
        "order after start: {new:?}"
    );
    Ok(())
}

fn poststart_after_exec(cx: &mut Ctx) -> Result<()> {
    let mut b = hooked(cx)?;
    add(cx, &mut b, "poststart", &[]);
    let id = cx.new_id();
    cx.create_ok(&b, &id)?;
    ensure!(
        order(&b).is_empty(),
        "hooks ran during create: {:?}",
        order(&b)
    );
    cx.start_ok(&id)?;
    let cmdline = recorded(&b, "poststart", "cmdline")?;
    ensure!(
        cmdline.starts_with("sh -c echo process") || cmdline.contains("wait-signal"),
        "when poststart ran, the container process was {cmdline:?}, not the user program"
    );
    Ok(())
}

fn poststop_at_delete(cx: &mut Ctx) -> Result<()> {
    let mut b = hooked(cx)?;
    add(cx, &mut b, "poststop", &[]);
    b.sh("echo process >> /out/order");
    let id = cx.new_id();
    cx.create_ok(&b, &id)?;
    cx.start_ok(&id)?;
    cx.wait_status(&id, "stopped")?;
    std::thread::sleep(Duration::from_millis(100));
    ensure!(
        !order(&b).contains(&"poststop".to_owned()),
        "poststop ran before delete"
    );
    ensure_ok(&cx.rt(&["delete", &id])?, "delete")?;
    ensure!(
        order(&b).last().is_some_and(|l| l == "poststop"),
        "poststop did not run at delete: {:?}",
        order(&b)
    );
    Ok(())
}

fn listed_order(cx: &mut Ctx) -> Result<()> {
    let mut b = hooked(cx)?;
    for h in [
        "createRuntime-1",
        "createRuntime-2",
        "createRuntime-3",
        "poststop-1",
        "poststop-2",
    ] {
        add(cx, &mut b, h, &[]);
    }
    let id = cx.new_id();
    cx.create_ok(&b, &id)?;
    ensure_ok(&cx.rt(&["delete", "--force", &id])?, "delete --force")?;
    let got = order(&b);
    let want = [
        "createRuntime-1",
        "createRuntime-2",
        "createRuntime-3",
        "poststop-1",
        "poststop-2",
    ];
    ensure!(got == want, "hooks ran as {got:?}, want {want:?}");
    Ok(())
}

fn state_on_stdin(cx: &mut Ctx) -> Result<()> {
    let mut b = hooked(cx)?;
    for h in ["prestart", "createRuntime", "poststart"] {
        add(cx, &mut b, h, &[]);
    }
    let id = cx.new_id();
    cx.create_ok(&b, &id)?;
    cx.start_ok(&id)?;
    let pid = cx.pid(&id)?;
    let bundle = b.path().to_string_lossy().into_owned();
    for h in ["prestart", "createRuntime", "poststart"] {
        let text = recorded(&b, h, "stdin")?;
        let s: Value = serde_json::from_str(&text)
            .map_err(|e| anyhow!("{h} stdin is not the state JSON ({e}): {text:?}"))?;
        ensure!(s["ociVersion"].is_string(), "{h}: no ociVersion in {s}");
        ensure!(s["id"] == json!(id), "{h}: id {} want {id}", s["id"]);
        ensure!(
            s["bundle"] == json!(bundle),
            "{h}: bundle {} want {bundle}",
            s["bundle"]
        );
        ensure!(s["status"].is_string(), "{h}: no status in {s}");
        ensure!(
            s["pid"] == json!(pid),
            "{h} (runtime namespace): pid {} want the host pid {pid}",
            s["pid"]
        );
    }
    Ok(())
}

fn args_and_env(cx: &mut Ctx) -> Result<()> {
    let mut b = hooked(cx)?;
    let mut h = hook(cx, &b, "createRuntime", &["two words", ""]);
    h["args"][0] = json!("custom-argv0");
    h["env"] = json!(["HOOK_VAR=hook value", "PATH=/nowhere"]);
    b.push("/hooks/createRuntime", h);
    let id = cx.new_id();
    let out = {
        let mut cmd = cx.command();
        b.save()?;
        cx.track(&id);
        cmd.arg("create").arg("--bundle").arg(b.path()).arg(&id);
        cmd.env("CONFORMANCE_RUNTIME_ONLY", "leaked");
        cx.exec(cmd)?
    };
    ensure_ok(&out, "create")?;
    let argv: Vec<String> = recorded(&b, "createRuntime", "argv")?
        .split('\n')
        .map(str::to_owned)
        .collect();
    let dir = b.out().to_string_lossy().into_owned();
    let want = [
        "custom-argv0",
        "hook",
        "createRuntime",
        &dir,
        "two words",
        "",
    ];
    ensure!(argv == want, "hook argv {argv:?}, want {want:?}");
    let mut env: Vec<String> = recorded(&b, "createRuntime", "env")?
        .lines()
        .map(str::to_owned)
        .collect();
    env.sort();
    ensure!(
        env == ["HOOK_VAR=hook value", "PATH=/nowhere"],
        "hook environment {env:?}, want exactly the configured env"
    );
    Ok(())
}

fn ns_of(b: &Bundle, hook: &str) -> Result<Vec<(String, u64)>> {
    Ok(recorded(b, hook, "ns")?
        .lines()
        .filter_map(|l| l.split_once(' '))
        .filter_map(|(n, i)| i.parse().ok().map(|i| (n.to_owned(), i)))
        .collect())
}

fn mnt_of(b: &Bundle, hook: &str) -> Result<u64> {
    ns_of(b, hook)?
        .into_iter()
        .find(|(n, _)| n == "mnt")
        .map(|(_, i)| i)
        .ok_or_else(|| anyhow!("{hook}: no mnt namespace recorded"))
}

fn runtime_namespace(cx: &mut Ctx) -> Result<()> {
    let mut b = hooked(cx)?;
    for h in ["prestart", "createRuntime", "poststart", "poststop"] {
        add(cx, &mut b, h, &[]);
    }
    let id = cx.new_id();
    cx.create_ok(&b, &id)?;
    cx.start_ok(&id)?;
    ensure_ok(&cx.rt(&["delete", "--force", &id])?, "delete --force")?;
    for h in ["prestart", "createRuntime", "poststart", "poststop"] {
        for (ns, inode) in ns_of(&b, h)? {
            ensure!(
                Some(inode) == cx.host.ns_inode(&ns),
                "{h} ran outside the runtime's {ns} namespace"
            );
        }
    }
    Ok(())
}

fn container_namespace(cx: &mut Ctx) -> Result<()> {
    let mut b = hooked(cx)?;
    for h in ["createContainer", "startContainer"] {
        add(cx, &mut b, h, &[]);
    }
    let id = cx.new_id();
    cx.create_ok(&b, &id)?;
    let pid = cx.pid(&id)?;
    let container_mnt = fs::metadata(format!("/proc/{pid}/ns/mnt"))?.ino();
    cx.start_ok(&id)?;
    wait_file(&b.out().join("sig.ready"))?;
    for h in ["createContainer", "startContainer"] {
        let mnt = mnt_of(&b, h)?;
        ensure!(
            mnt == container_mnt,
            "{h} ran in mount namespace {mnt}, not the container's {container_mnt}"
        );
    }
    Ok(())
}

/// After a failed create: an error, the user program never ran, no
/// process left, and the container gone or stopped.
fn create_hook_failure(cx: &mut Ctx, failing: &str) -> Result<()> {
    let mut b = hooked(cx)?;
    add(cx, &mut b, failing, &["--exit", "3"]);
    let id = cx.new_id();
    ensure_err(
        &cx.create(&b, &id)?,
        &format!("create with a failing {failing} hook"),
    )?;
    ensure!(order(&b) == [failing], "ran: {:?}", order(&b));
    let state = cx.rt(&["state", &id])?;
    if state.ok() {
        let s: Value = serde_json::from_str(&state.stdout).unwrap_or_default();
        ensure!(
            s["status"] == "stopped",
            "after the failed create the container is {}",
            s["status"]
        );
    }
    if let Ok(s) = recorded(&b, failing, "stdin") {
        let v: Value = serde_json::from_str(&s).unwrap_or_default();
        if let Some(pid) = v["pid"].as_i64().and_then(|p| i32::try_from(p).ok()) {
            if failing != "createContainer" {
                ensure!(!alive(pid), "the container process {pid} is still alive");
            }
        }
    }
    Ok(())
}

fn start_container_failure(cx: &mut Ctx) -> Result<()> {
    let mut b = hooked(cx)?;
    add(cx, &mut b, "startContainer", &["--exit", "3"]);
    let id = cx.new_id();
    cx.create_ok(&b, &id)?;
    let pid = cx.pid(&id)?;
    // How the error reaches the caller is not mandated (runtime.md#errors):
    // `start` may return before the hooks run. What must hold is that the
    // container is stopped without running the user program.
    cx.rt(&["start", &id])?;
    std::thread::sleep(Duration::from_millis(200));
    ensure!(
        !order(&b).contains(&"process".to_owned()),
        "the user program ran: {:?}",
        order(&b)
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    ensure!(!alive(pid), "the container process {pid} was not stopped");
    Ok(())
}

fn poststart_failure(cx: &mut Ctx) -> Result<()> {
    let mut b = hooked(cx)?;
    add(cx, &mut b, "poststart-1", &["--exit", "3"]);
    add(cx, &mut b, "poststart-2", &[]);
    let id = cx.new_id();
    cx.create_ok(&b, &id)?;
    let out = cx.rt(&["start", &id])?;
    ensure_ok(
        &out,
        "start with a failing poststart hook (a warning, lifecycle continues)",
    )?;
    ensure!(
        order(&b).contains(&"poststart-2".to_owned()),
        "the remaining poststart hook did not run: {:?}",
        order(&b)
    );
    let status = cx.status(&id)?;
    ensure!(
        status == "running",
        "the container is {status:?}, want running"
    );
    Ok(())
}

fn poststop_failure(cx: &mut Ctx) -> Result<()> {
    let mut b = hooked(cx)?;
    add(cx, &mut b, "poststop-1", &["--exit", "3"]);
    add(cx, &mut b, "poststop-2", &[]);
    b.sh("true");
    let id = cx.new_id();
    cx.create_ok(&b, &id)?;
    cx.start_ok(&id)?;
    cx.wait_status(&id, "stopped")?;
    let out = cx.rt(&["delete", &id])?;
    ensure!(
        order(&b).contains(&"poststop-2".to_owned()),
        "the remaining poststop hook did not run: {:?}",
        order(&b)
    );
    ensure_ok(
        &out,
        "delete with a failing poststop hook (a warning, lifecycle continues)",
    )?;
    ensure_err(&cx.rt(&["state", &id])?, "state after delete")
}

fn timeout(cx: &mut Ctx) -> Result<()> {
    let mut b = hooked(cx)?;
    let mut h = hook(cx, &b, "createRuntime", &["--sleep", "30"]);
    h["timeout"] = json!(1);
    b.push("/hooks/createRuntime", h);
    let id = cx.new_id();
    let started = Instant::now();
    let out = cx.create(&b, &id)?;
    let took = started.elapsed();
    ensure_err(
        &out,
        "create with a createRuntime hook exceeding its timeout",
    )?;
    ensure!(
        took < Duration::from_secs(10),
        "create took {took:?} with a 1 s hook timeout"
    );
    Ok(())
}

fn relative_path(cx: &mut Ctx) -> Result<()> {
    let mut b = hooked(cx)?;
    let mut h = hook(cx, &b, "createRuntime", &[]);
    h["path"] = json!("checker");
    b.push("/hooks/createRuntime", h);
    let id = cx.new_id();
    ensure_err(&cx.create(&b, &id)?, "create with a relative hook path")?;
    ensure!(
        !order(&b).iter().any(|o| o == "process"),
        "the user program ran"
    );
    Ok(())
}

/// A failing createRuntime hook continues the lifecycle at step 12: the
/// container is destroyed and the poststop hooks run (step 13).
fn failed_create_runs_poststop(cx: &mut Ctx) -> Result<()> {
    let mut b = hooked(cx)?;
    add(cx, &mut b, "createRuntime", &["--exit", "3"]);
    add(cx, &mut b, "poststop", &[]);
    let id = cx.new_id();
    ensure_err(
        &cx.create(&b, &id)?,
        "create with a failing createRuntime hook",
    )?;
    let got = order(&b);
    ensure!(
        got == ["createRuntime", "poststop"],
        "hooks ran as {got:?}, want [createRuntime, poststop]"
    );
    Ok(())
}
