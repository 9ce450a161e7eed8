//! More of runc 1.1.5's observable behaviour: cgroups on a hybrid host,
//! pre-existing (non-empty, frozen) cgroups, `update`, `exec --cgroup`,
//! hook error texts and hooks with large input or output, seccomp notify
//! on the runtime's own system calls, rootfs and `/proc` symlinks, bind
//! sources in root-only directories with a user namespace, an out-of-range
//! `oomScoreAdj`, and two places where corten differs on purpose (a
//! chrooted runtime's `exec`, mounts left by a container without a mount
//! namespace).

use std::fs;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::{lchown, symlink, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use corten_testkit::cgroup_dirs;
use nix::poll::{poll, PollFd, PollFlags};
use serde_json::{json, Value};

use super::cgroups::require_controller;
use super::lifecycle::{started, waiter};
use super::runc::{expect_failure, expect_stdout, run_bundle, running};
use super::{case, Case};
use crate::bundle::{make_dir, Bundle};
use crate::command::CmdOut;
use crate::ctx::{ensure_ok, Ctx};
use crate::host::is_static_elf;

pub fn cases() -> Vec<Case> {
    vec![
        case(
            "runc.cgroup.hybrid-unified-and-systemd",
            "runc 1.1.5: cgroup v1 hybrid hierarchies",
            hybrid_hierarchies,
        ),
        case(
            "runc.cgroup.not-empty-warning",
            "runc 1.1.5: pre-existing cgroup",
            not_empty_cgroup,
        ),
        case(
            "runc.cgroup.frozen-refused",
            "runc 1.1.5: pre-existing cgroup",
            frozen_cgroup,
        ),
        case(
            "runc.update.memory-unlimited",
            "runc 1.1.5: update --memory -1",
            update_memory_unlimited,
        ),
        case(
            "runc.update.cpu-period-under-parent-quota",
            "runc 1.1.5: update --cpu-period --cpu-quota",
            update_cpu_period,
        ),
        case(
            "runc.update.resources-case-insensitive",
            "runc 1.1.5: update --resources -, Go's encoding/json",
            update_case_insensitive,
        ),
        case(
            "runc.update.devices-ignored",
            "runc 1.1.5: update --resources (devices)",
            update_devices_ignored,
        ),
        case(
            "runc.update.ignored-fields",
            "runc 1.1.5: update --resources",
            update_ignored_fields,
        ),
        case(
            "runc.exec.cgroup-sub",
            "runc 1.1.5: exec --cgroup",
            exec_cgroup_sub,
        ),
        case(
            "runc.exec.cgroup-errors",
            "runc 1.1.5: exec --cgroup",
            exec_cgroup_errors,
        ),
        case(
            "runc.hooks.error-exit-status",
            "runc 1.1.5: hook errors",
            hook_exit_status,
        ),
        case(
            "runc.hooks.error-signal",
            "runc 1.1.5: hook errors",
            hook_signal,
        ),
        case(
            "runc.hooks.error-timeout",
            "runc 1.1.5: hook errors",
            hook_timeout,
        ),
        case(
            "runc.hooks.error-no-such-file",
            "runc 1.1.5: hook errors",
            hook_missing,
        ),
        case(
            "runc.hooks.large-stdout",
            "runc 1.1.5: hooks",
            hook_large_stdout,
        ),
        case(
            "runc.hooks.large-state",
            "runc 1.1.5: hooks (state on stdin)",
            hook_large_state,
        ),
        case(
            "runc.hooks.timeout-stdin-unread",
            "runc 1.1.5: hooks (timeout)",
            hook_timeout_unread,
        ),
        case(
            "runc.seccomp.notify-runtime-calls-nnp",
            "runc 1.1.5: seccomp notify (listenerPath)",
            |cx| notify_runtime_calls(cx, true),
        ),
        case(
            "runc.seccomp.notify-runtime-calls-no-nnp",
            "runc 1.1.5: seccomp notify (listenerPath)",
            |cx| notify_runtime_calls(cx, false),
        ),
        case(
            "runc.refused.rootfs-symlink",
            "runc 1.1.5: config validation",
            rootfs_symlink,
        ),
        case(
            "runc.refused.proc-symlink",
            "runc 1.1.5: mounts",
            proc_symlink,
        ),
        case(
            "runc.lifecycle.status-messages",
            "runc 1.1.5: start, pause, resume, update by status",
            status_messages,
        ),
        case(
            "runc.cli.value-errors",
            "runc 1.1.5: flag values and repeated flags",
            value_errors,
        ),
        case(
            "runc.refused.oom-score-adj-range",
            "runc 1.1.5: process.oomScoreAdj",
            oom_score_adj_range,
        ),
        case(
            "runc.userns.bind-source-in-root-only-dir",
            "runc 1.1.5: mounts with a user namespace",
            userns_private_bind,
        ),
        case(
            "runc.exec.chrooted-runtime-enters-rootfs",
            "runc 1.1.5: exec",
            chrooted_exec,
        )
        .runc("runc 1.1 puts a process exec'd by a chrooted runtime at the mount namespace's root (the runtime's tree above the container), not in the container's root"),
        case(
            "runc.no-mount-ns.mounts-removed",
            "runc 1.1.5: no mount namespace",
            no_mount_ns_leftovers,
        )
        .runc("runc 1.1 leaves every mount of a container without a mount namespace behind after delete"),
    ]
}

// --- cgroups -------------------------------------------------------------

const CGROUP_ROOT: &str = "/sys/fs/cgroup";
/// v1's "unlimited" memory limit (page-aligned `i64::MAX`).
const V1_UNLIMITED: &str = "9223372036854771712";

fn require_v1(cx: &Ctx, what: &str) -> Result<()> {
    if cx.host.cgroup_v2 {
        crate::skip!("cgroup v2 host: {what}")
    }
    Ok(())
}

/// The path of the line for `controller` in a `/proc/PID/cgroup` text
/// (`""`: the unified `0::` line, `name=systemd`: the named hierarchy).
fn cgroup_of<'a>(text: &'a str, controller: &str) -> Option<&'a str> {
    text.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let (_, names, path) = (parts.next()?, parts.next()?, parts.next()?);
        let hit = if controller.is_empty() {
            names.is_empty()
        } else {
            names.split(',').any(|n| n == controller)
        };
        hit.then_some(path)
    })
}

/// Fail unless the `controller` line of `text` ends with `suffix`.
fn ensure_cgroup(text: &str, controller: &str, suffix: &str, who: &str) -> Result<()> {
    let path = cgroup_of(text, controller);
    ensure!(
        path.is_some_and(|p| p.ends_with(suffix)),
        "{who}: the {controller:?} cgroup is {path:?}; want one ending with {suffix:?}"
    );
    Ok(())
}

/// `exec ID cat /proc/self/cgroup` with extra exec flags; its output.
fn exec_cgroups(cx: &mut Ctx, id: &str, flags: &[&str]) -> Result<String> {
    let mut argv = vec!["exec"];
    argv.extend_from_slice(flags);
    argv.extend([id, "cat", "/proc/self/cgroup"]);
    let out = cx.rt(&argv)?;
    ensure_ok(&out, &argv.join(" "))?;
    Ok(out.stdout)
}

fn hybrid_hierarchies(cx: &mut Ctx) -> Result<()> {
    require_v1(cx, "no hybrid hierarchies")?;
    let hybrid = ["unified", "systemd"];
    if !hybrid
        .iter()
        .all(|h| Path::new(CGROUP_ROOT).join(h).join("cgroup.procs").exists())
    {
        crate::skip!("/sys/fs/cgroup/unified or /sys/fs/cgroup/systemd is not mounted");
    }
    let (b, id) = running(cx)?;
    let pid = cx.pid(&id)?;
    let init = fs::read_to_string(format!("/proc/{pid}/cgroup"))?;
    let exec = exec_cgroups(cx, &id, &[])?;
    for (who, text) in [("the init", &init), ("the exec'd process", &exec)] {
        for controller in ["", "name=systemd"] {
            ensure_cgroup(text, controller, b.cgroup_path(), who)?;
        }
    }
    let out = cx.rt(&["exec", &id, "ls", "/sys/fs/cgroup"])?;
    ensure_ok(&out, "exec ls /sys/fs/cgroup")?;
    let names: Vec<&str> = out.stdout.split_whitespace().collect();
    ensure!(
        names.contains(&"systemd") && !names.contains(&"unified"),
        "/sys/fs/cgroup in the container holds {names:?}; want systemd and not unified"
    );
    Ok(())
}

/// A `busybox sleep 60` the case started, SIGKILLed (by pid) and reaped
/// when dropped.
#[derive(Debug)]
struct Sleeper(Child);

impl Sleeper {
    fn start(cx: &Ctx) -> Result<Sleeper> {
        let child = Command::new(cx.host.busybox.path())
            .args(["sleep", "60"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("start busybox sleep")?;
        Ok(Sleeper(child))
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Make the bundle's cgroup (tracked by the case, so removed with it) in
/// the hierarchy directory `hierarchy`.
fn make_cgroup(b: &Bundle, hierarchy: &Path) -> Result<PathBuf> {
    let dir = hierarchy.join(b.cgroup_path().trim_start_matches('/'));
    fs::create_dir_all(&dir).with_context(|| format!("mkdir {}", dir.display()))?;
    Ok(dir)
}

fn write_file(path: &Path, value: &str) -> Result<()> {
    fs::write(path, value).with_context(|| format!("write {value:?} to {}", path.display()))
}

fn read_trimmed(path: &Path) -> Result<String> {
    let text = fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    Ok(text.trim().to_owned())
}

fn not_empty_cgroup(cx: &mut Ctx) -> Result<()> {
    let b = waiter(cx)?;
    let sleeper = Sleeper::start(cx)?;
    let pid = sleeper.0.id().to_string();
    // cpuset is left out: a new v1 cpuset cgroup has no cpus to run in.
    for h in cx.host.hierarchies() {
        if !h.ends_with("cpuset") {
            write_file(&make_cgroup(&b, &h)?.join("cgroup.procs"), &pid)?;
        }
    }
    let id = cx.new_id();
    let out = cx.create(&b, &id)?;
    ensure_ok(&out, "create in a non-empty cgroup")?;
    ensure_ok(&cx.rt(&["delete", "--force", &id])?, "delete --force")?;
    drop(sleeper);
    let text = "container's cgroup is not empty";
    ensure!(
        out.stderr.contains(text),
        "create printed no warning {text:?}: {}",
        out.describe()
    );
    Ok(())
}

/// The bundle's cgroup made frozen; thawed when dropped.
#[derive(Debug)]
struct Frozen(PathBuf, &'static str);

impl Frozen {
    fn new(cx: &Ctx, b: &Bundle) -> Result<Frozen> {
        let (hierarchy, file, value, thawed) = if cx.host.cgroup_v2 {
            (PathBuf::from(CGROUP_ROOT), "cgroup.freeze", "1", "0")
        } else {
            require_controller(cx, "freezer")?;
            (
                Path::new(CGROUP_ROOT).join("freezer"),
                "freezer.state",
                "FROZEN",
                "THAWED",
            )
        };
        let path = make_cgroup(b, &hierarchy)?.join(file);
        let frozen = Frozen(path, thawed);
        write_file(&frozen.0, value)?;
        Ok(frozen)
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        let _ = fs::write(&self.0, self.1);
    }
}

fn frozen_cgroup(cx: &mut Ctx) -> Result<()> {
    let b = waiter(cx)?;
    let _frozen = Frozen::new(cx, &b)?;
    let text = "container's cgroup unexpectedly frozen";
    for flags in [&["create"][..], &["run", "-d"]] {
        let id = cx.new_id();
        let mut cmd = cx.command();
        cmd.args(flags).arg("--bundle").arg(b.path()).arg(&id);
        b.save()?;
        let started = Instant::now();
        let out = cx.exec_timeout(cmd, Duration::from_secs(10))?;
        let what = format!("{} in a frozen cgroup", flags.join(" "));
        expect_failure(&out, 1, text, &what)?;
        ensure!(
            started.elapsed() < Duration::from_secs(5),
            "{what} took {:?}",
            started.elapsed()
        );
        ensure_gone(cx, &id, &what)?;
    }
    Ok(())
}

/// Fail unless `state ID` fails: nothing is left of the container after
/// the refused `what`.
fn ensure_gone(cx: &mut Ctx, id: &str, what: &str) -> Result<()> {
    let state = cx.rt(&["state", id])?;
    ensure!(
        !state.ok(),
        "state after the refused {what} succeeded: {}",
        state.stdout
    );
    Ok(())
}

/// Start `b` (its cgroup limited by `resources`); `update <args…> ID` must
/// succeed.
fn updated(cx: &mut Ctx, b: &mut Bundle, resources: Value, args: &[&str]) -> Result<()> {
    b.set("/linux/resources", resources);
    let id = started(cx, b)?;
    let mut argv = vec!["update"];
    argv.extend_from_slice(args);
    argv.push(&id);
    ensure_ok(&cx.rt(&argv)?, &argv.join(" "))
}

/// Fail unless each `(controller, file, value)` of the bundle's cgroup
/// holds `value`.
fn expect_files(cx: &Ctx, b: &Bundle, files: &[(&str, &str, &str)]) -> Result<()> {
    for (controller, file, want) in files {
        let got = read_trimmed(&cx.cgroup_dir(b, controller).join(file))?;
        ensure!(&got == want, "{file} is {got:?}, want {want:?}");
    }
    Ok(())
}

fn update_memory_unlimited(cx: &mut Ctx) -> Result<()> {
    require_controller(cx, "memory")?;
    if !cx.host.cgroup_v2 && !cx.host.has_v1_file("memory/memory.memsw.limit_in_bytes") {
        crate::skip!("the kernel does not account swap (no memory.memsw.limit_in_bytes)");
    }
    let memory = json!({ "memory": { "limit": 96 << 20, "swap": 192 << 20 } });
    let mut b = waiter(cx)?;
    updated(cx, &mut b, memory, &["--memory", "-1"])?;
    if cx.host.cgroup_v2 {
        expect_files(
            cx,
            &b,
            &[("", "memory.max", "max"), ("", "memory.swap.max", "max")],
        )
    } else {
        expect_files(
            cx,
            &b,
            &[
                ("memory", "memory.limit_in_bytes", V1_UNLIMITED),
                ("memory", "memory.memsw.limit_in_bytes", V1_UNLIMITED),
            ],
        )
    }
}

/// The container's cgroup below a parent of the case's own limited to
/// half a CPU: halving the period first would exceed the parent, so the
/// quota must be written first.
fn update_cpu_period(cx: &mut Ctx) -> Result<()> {
    require_v1(cx, "cpu.max has no hierarchical check on a period change")?;
    require_controller(cx, "cpu")?;
    let mut b = waiter(cx)?;
    let parent = make_cgroup(&b, &Path::new(CGROUP_ROOT).join("cpu"))?;
    write_file(&parent.join("cpu.cfs_period_us"), "100000")?;
    write_file(&parent.join("cpu.cfs_quota_us"), "50000")?;
    let inner = format!("{}/container", b.cgroup_path());
    b.set_cgroup_path(inner);
    let cpu = json!({ "cpu": { "quota": 50_000, "period": 100_000 } });
    let args = ["--cpu-period", "50000", "--cpu-quota", "25000"];
    updated(cx, &mut b, cpu, &args)?;
    expect_files(
        cx,
        &b,
        &[
            ("cpu", "cpu.cfs_period_us", "50000"),
            ("cpu", "cpu.cfs_quota_us", "25000"),
        ],
    )
}

/// `update --resources - ID` with `resources` on stdin.
fn update_stdin(cx: &mut Ctx, id: &str, resources: &Value) -> Result<CmdOut> {
    let file = cx.dir.join("resources.json");
    fs::write(&file, resources.to_string())?;
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "f=$1; shift; exec \"$@\" < \"$f\"", "sh"])
        .arg(&file)
        .arg(&cx.runtime.bin)
        .arg("--root")
        .arg(&cx.root)
        .args(["update", "--resources", "-", id]);
    cx.exec(cmd)
}

/// A running waiter whose `update --resources -` of `resources` succeeds.
fn update_resources(cx: &mut Ctx, resources: &Value) -> Result<Bundle> {
    let (b, id) = running(cx)?;
    let out = update_stdin(cx, &id, resources)?;
    ensure_ok(&out, &format!("update --resources - with {resources}"))?;
    Ok(b)
}

fn update_case_insensitive(cx: &mut Ctx) -> Result<()> {
    require_controller(cx, "cpu")?;
    let b = update_resources(cx, &json!({ "CPU": { "Shares": 512 } }))?;
    if cx.host.cgroup_v2 {
        expect_files(cx, &b, &[("", "cpu.weight", "20")])
    } else {
        expect_files(cx, &b, &[("cpu", "cpu.shares", "512")])
    }
}

fn update_devices_ignored(cx: &mut Ctx) -> Result<()> {
    require_v1(cx, "no devices cgroup files (eBPF)")?;
    require_controller(cx, "devices")?;
    let (b, id) = running(cx)?;
    let dir = cx.cgroup_dir(&b, "devices");
    fs::create_dir(dir.join("child"))?;
    let before = read_trimmed(&dir.join("devices.list"))?;
    let devices = json!({ "devices": [
        { "allow": false, "access": "rwm" },
        { "allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm" }
    ] });
    let out = update_stdin(cx, &id, &devices)?;
    ensure_ok(&out, "update --resources - with devices")?;
    let after = read_trimmed(&dir.join("devices.list"))?;
    ensure!(
        before == after,
        "devices.list changed from {before:?} to {after:?}"
    );
    Ok(())
}

fn update_ignored_fields(cx: &mut Ctx) -> Result<()> {
    let ignored = json!({
        "hugepageLimits": [{ "pageSize": "2MB", "limit": 2_097_152 }],
        "network": { "classID": 1_048_577 },
        "blockIO": { "leafWeight": 10 }
    });
    update_resources(cx, &ignored).map(drop)
}

// --- exec --cgroup ---------------------------------------------------------

/// A running waiter with a sub-cgroup `sub` in its pids and cpu hierarchies.
fn with_sub_cgroups(cx: &mut Ctx) -> Result<(Bundle, String)> {
    require_v1(cx, "controller-prefixed sub-cgroups are v1's")?;
    for c in ["pids", "cpu"] {
        require_controller(cx, c)?;
    }
    let (b, id) = running(cx)?;
    for c in ["pids", "cpu"] {
        fs::create_dir(cx.cgroup_dir(&b, c).join("sub"))?;
    }
    Ok((b, id))
}

fn exec_cgroup_sub(cx: &mut Ctx) -> Result<()> {
    let (b, id) = with_sub_cgroups(cx)?;
    let text = exec_cgroups(cx, &id, &["--cgroup", "pids:sub"])?;
    let who = "exec --cgroup pids:sub";
    ensure_cgroup(&text, "pids", "/sub", who)?;
    for other in ["cpu", "memory"] {
        ensure_cgroup(&text, other, b.cgroup_path(), who)?;
    }
    let text = exec_cgroups(cx, &id, &["--cgroup", "pids,cpu:sub"])?;
    for c in ["pids", "cpu"] {
        ensure_cgroup(&text, c, "/sub", "exec --cgroup pids,cpu:sub")?;
    }
    ensure_ok(&cx.rt(&["delete", "--force", &id])?, "delete --force")?;
    let left = cgroup_dirs(b.cgroup_path());
    ensure!(
        left.is_empty(),
        "delete --force left cgroups behind: {left:?}"
    );
    Ok(())
}

fn exec_cgroup_errors(cx: &mut Ctx) -> Result<()> {
    let (_, id) = with_sub_cgroups(cx)?;
    let tries: [(&[&str], &str); 3] = [
        (&["a:b:c"], "invalid --cgroup argument: a:b:c"),
        (&["x", "--cgroup", "y"], "(missing <controller>: prefix)"),
        (&["foo:sub"], "unknown controller foo in SubCgroupPaths"),
    ];
    for (flags, text) in tries {
        let mut argv = vec!["exec", "--cgroup"];
        argv.extend_from_slice(flags);
        argv.extend([id.as_str(), "true"]);
        expect_failure(&cx.rt(&argv)?, 255, text, &argv.join(" "))?;
    }
    Ok(())
}

// --- hooks -------------------------------------------------------------------

/// A hook running busybox's `argv[0]` applet with `args`.
fn applet_hook(cx: &Ctx, args: &[&str]) -> Value {
    json!({ "path": cx.host.busybox.path(), "args": args })
}

/// A hook running `sh -c script`.
fn sh_hook(cx: &Ctx, script: &str) -> Value {
    applet_hook(cx, &["sh", "-c", script])
}

/// About 300 KB of annotations.
fn big_annotations() -> Value {
    let value = "x".repeat(100_000);
    json!({
        "org.conformance.big-1": value,
        "org.conformance.big-2": value,
        "org.conformance.big-3": value,
    })
}

/// `create` a waiter with `hook` as the only `kind` hook (and ~300 KB of
/// annotations when `big`); the result and how long it took.
fn create_hooked(
    cx: &mut Ctx,
    kind: &str,
    hook: Value,
    big: bool,
) -> Result<(Bundle, CmdOut, Duration)> {
    let mut b = waiter(cx)?;
    b.push(&format!("/hooks/{kind}"), hook);
    if big {
        b.set("/annotations", big_annotations());
    }
    let id = cx.new_id();
    let started = Instant::now();
    let out = cx.create(&b, &id)?;
    Ok((b, out, started.elapsed()))
}

/// `create` with a failing prestart `hook` must exit 1 with each of
/// `texts` on stderr, within `within`.
fn hook_fails(
    cx: &mut Ctx,
    hook: Value,
    big: bool,
    texts: &[&str],
    within: Duration,
) -> Result<()> {
    let (_, out, took) = create_hooked(cx, "prestart", hook, big)?;
    for text in texts {
        expect_failure(&out, 1, text, "create with a failing prestart hook")?;
    }
    ensure!(took < within, "create took {took:?}, want under {within:?}");
    Ok(())
}

const HOOK_WAIT: Duration = Duration::from_secs(10);

fn hook_exit_status(cx: &mut Ctx) -> Result<()> {
    let hook = sh_hook(cx, "echo out; echo err >&2; exit 3");
    let texts = [
        "error running hook #0: error running hook: exit status 3, stdout: out",
        "stderr: err",
    ];
    hook_fails(cx, hook, false, &texts, HOOK_WAIT)
}

fn hook_signal(cx: &mut Ctx) -> Result<()> {
    let hook = sh_hook(cx, "kill -SYS $$");
    hook_fails(cx, hook, false, &["signal: bad system call"], HOOK_WAIT)
}

/// A `sleep 5` hook with a 1 s timeout.
fn sleeping_hook(cx: &Ctx) -> Value {
    let mut hook = applet_hook(cx, &["sleep", "5"]);
    hook["timeout"] = json!(1);
    hook
}

const TIMEOUT_TEXT: &str = "hook ran past specified timeout of 1.0s";

fn hook_timeout(cx: &mut Ctx) -> Result<()> {
    let hook = sleeping_hook(cx);
    hook_fails(cx, hook, false, &[TIMEOUT_TEXT], Duration::from_secs(3))
}

fn hook_timeout_unread(cx: &mut Ctx) -> Result<()> {
    let hook = sleeping_hook(cx);
    hook_fails(cx, hook, true, &[TIMEOUT_TEXT], Duration::from_secs(3))
}

fn hook_missing(cx: &mut Ctx) -> Result<()> {
    let text = "error running hook #0: fork/exec /nonexist: no such file or directory";
    let hook = json!({ "path": "/nonexist", "args": ["nonexist"] });
    hook_fails(cx, hook, false, &[text], HOOK_WAIT)
}

fn hook_large_stdout(cx: &mut Ctx) -> Result<()> {
    let hook = sh_hook(cx, "head -c 204800 /dev/zero");
    let (_, out, _) = create_hooked(cx, "createRuntime", hook, false)?;
    ensure_ok(&out, "create with a hook writing 200 KiB to stdout")
}

fn hook_large_state(cx: &mut Ctx) -> Result<()> {
    let count = cx.dir.join("stdin-bytes");
    let hook = sh_hook(cx, &format!("wc -c > {}", count.display()));
    let (_, out, _) = create_hooked(cx, "createContainer", hook, true)?;
    ensure_ok(&out, "create with 300 KB of annotations")?;
    let bytes: u64 = read_trimmed(&count)?.parse()?;
    ensure!(
        bytes > 300_000,
        "the hook read {bytes} bytes of state, want the whole state (over 300000)"
    );
    Ok(())
}

// --- seccomp notify ---------------------------------------------------------

/// The system calls runtimes make themselves around installing the filter.
const RUNTIME_CALLS: [&str; 28] = [
    "execve",
    "openat",
    "read",
    "close",
    "mmap",
    "munmap",
    "brk",
    "mprotect",
    "fstat",
    "newfstatat",
    "rt_sigaction",
    "rt_sigprocmask",
    "getpid",
    "chdir",
    "getcwd",
    "setresuid",
    "setresgid",
    "setgroups",
    "capset",
    "capget",
    "prctl",
    "recvfrom",
    "recvmsg",
    "sendto",
    "sendmsg",
    "umask",
    "fcntl",
    "exit_group",
];

/// A seccomp agent thread: takes the listener sent on each connection to
/// its socket (the connection stays open, as runc keeps it) and lets every
/// notified call go on (`SECCOMP_USER_NOTIF_FLAG_CONTINUE`) until dropped.
#[derive(Debug)]
struct ContinueAgent {
    stop: Arc<AtomicBool>,
    /// How many listeners it received.
    received: Arc<AtomicUsize>,
    done: mpsc::Receiver<()>,
    thread: Option<JoinHandle<()>>,
}

impl ContinueAgent {
    fn start(socket: &Path) -> Result<ContinueAgent> {
        let listener =
            UnixListener::bind(socket).with_context(|| format!("bind {}", socket.display()))?;
        listener.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, done) = mpsc::channel();
        let received = Arc::new(AtomicUsize::new(0));
        let (flag, count) = (Arc::clone(&stop), Arc::clone(&received));
        let thread = std::thread::spawn(move || {
            serve_notifications(&listener, &flag, &count);
            let _ = tx.send(());
        });
        Ok(ContinueAgent {
            stop,
            received,
            done,
            thread: Some(thread),
        })
    }
}

impl Drop for ContinueAgent {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // The thread polls with a 50 ms timeout; never wait on it unbounded.
        if self.done.recv_timeout(Duration::from_secs(2)).is_ok() {
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
    }
}

fn serve_notifications(listener: &UnixListener, stop: &AtomicBool, received: &AtomicUsize) {
    let mut connections: Vec<UnixStream> = Vec::new();
    let mut listeners: Vec<OwnedFd> = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let ready: Vec<PollFlags> = {
            let mut fds: Vec<PollFd> = std::iter::once(listener.as_fd())
                .chain(listeners.iter().map(AsFd::as_fd))
                .map(|fd| PollFd::new(fd, PollFlags::POLLIN))
                .collect();
            if poll(&mut fds, 50u16).unwrap_or(0) <= 0 {
                continue;
            }
            fds.iter()
                .map(|p| p.revents().unwrap_or(PollFlags::empty()))
                .collect()
        };
        let mut index = 0;
        listeners.retain(|fd| {
            index += 1;
            let r = ready[index];
            if r.contains(PollFlags::POLLIN) {
                answer_continue(fd);
            }
            // POLLHUP: no process uses the filter any more.
            !r.intersects(PollFlags::POLLHUP | PollFlags::POLLERR) || r.contains(PollFlags::POLLIN)
        });
        if ready[0].contains(PollFlags::POLLIN) {
            if let Ok((conn, _)) = listener.accept() {
                if let Some(fd) = receive_fd(&conn) {
                    listeners.push(fd);
                    received.fetch_add(1, Ordering::Relaxed);
                }
                connections.push(conn);
            }
        }
    }
}

/// The descriptor of the first message on `conn` (SCM_RIGHTS), within 5 s.
fn receive_fd(conn: &UnixStream) -> Option<OwnedFd> {
    conn.set_nonblocking(false).ok()?;
    conn.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut buf = vec![0u8; 4096];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let msg = nix::sys::socket::recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        nix::sys::socket::MsgFlags::empty(),
    )
    .ok()?;
    let mut fds = msg.cmsgs().ok()?.filter_map(|c| match c {
        nix::sys::socket::ControlMessageOwned::ScmRights(f) => f.first().copied(),
        _ => None,
    });
    // SAFETY: SCM_RIGHTS just installed this descriptor for us; we own it.
    fds.next().map(|fd| unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Receive one notification on `fd` (which polled readable) and let the
/// call go on.
fn answer_continue(fd: &OwnedFd) {
    // SAFETY: all-zero bytes are a valid seccomp_notif (plain integers).
    let mut n: libc::seccomp_notif = unsafe { std::mem::zeroed() };
    // SAFETY: NOTIF_RECV writes one seccomp_notif into `n`, which is live.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_RECV, &mut n) };
    if r != 0 {
        return;
    }
    let resp = libc::seccomp_notif_resp {
        id: n.id,
        val: 0,
        error: 0,
        flags: libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32,
    };
    // SAFETY: NOTIF_SEND reads one seccomp_notif_resp from `resp`, which is live.
    unsafe { libc::ioctl(fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_SEND, &resp) };
}

/// Every call of [`RUNTIME_CALLS`] notified to an agent that lets it go on:
/// create, start and exec of a user-1000 process must all succeed, the
/// init's and the exec'd process's listeners sent to the agent.
fn notify_runtime_calls(cx: &mut Ctx, nnp: bool) -> Result<()> {
    let socket = cx.dir.join("agent.sock");
    let agent = ContinueAgent::start(&socket)?;
    let mut b = cx.bundle()?;
    b.set(
        "/linux/seccomp",
        json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": socket,
            "syscalls": [{ "names": RUNTIME_CALLS, "action": "SCMP_ACT_NOTIFY" }]
        }),
    )
    .set("/process/noNewPrivileges", json!(nnp))
    .set("/process/user", json!({ "uid": 1000, "gid": 1000 }))
    .args(&["sleep", "30"]);
    let id = cx.new_id();
    let result = (|| {
        cx.create_ok(&b, &id)?;
        cx.start_ok(&id)?;
        let out = cx.rt(&["exec", &id, "sh", "-c", "echo ok"])?;
        expect_stdout(&out, "ok", "exec sh -c 'echo ok'")?;
        let received = agent.received.load(Ordering::Relaxed);
        ensure!(
            received >= 2,
            "the agent received {received} listener(s), want the init's and the exec's"
        );
        Ok(())
    })();
    // Delete while the agent still answers.
    let deleted = cx.rt(&["delete", "--force", &id]);
    drop(agent);
    result?;
    ensure_ok(&deleted?, "delete --force")
}

// --- rootfs ------------------------------------------------------------------

/// `run` of the bundle (process `echo ran`) must exit 1 with `text`.
fn run_refused(cx: &mut Ctx, b: &mut Bundle, text: &str) -> Result<()> {
    b.args(&["echo", "ran"]);
    expect_failure(&run_bundle(cx, b)?, 1, text, "run")
}

fn rootfs_symlink(cx: &mut Ctx) -> Result<()> {
    let mut b = cx.bundle()?;
    let link = b.path().join("rootfs-link");
    symlink(b.rootfs(), &link)?;
    b.set("/root/path", json!(link));
    run_refused(
        cx,
        &mut b,
        "invalid rootfs: not an absolute path, or a symlink",
    )
}

fn proc_symlink(cx: &mut Ctx) -> Result<()> {
    let mut b = cx.bundle()?;
    let proc = b.rootfs().join("proc");
    fs::remove_dir(&proc)?;
    symlink("mnt", &proc)?;
    let text = "filesystem \"proc\" must be mounted on ordinary directory";
    run_refused(cx, &mut b, text)
}

fn oom_score_adj_range(cx: &mut Ctx) -> Result<()> {
    let mut b = waiter(cx)?;
    b.set("/process/oomScoreAdj", json!(5000));
    let id = cx.new_id();
    let out = cx.create(&b, &id)?;
    ensure!(
        out.code == 1,
        "create with oomScoreAdj 5000: {}, want exit 1",
        out.describe()
    );
    ensure_gone(cx, &id, "create with oomScoreAdj 5000")
}

/// `lchown` everything below (and at) `path`.
fn chown_tree(path: &Path, id: u32) -> Result<()> {
    lchown(path, Some(id), Some(id)).with_context(|| format!("chown {}", path.display()))?;
    if fs::symlink_metadata(path)?.is_dir() {
        for e in fs::read_dir(path)? {
            chown_tree(&e?.path(), id)?;
        }
    }
    Ok(())
}

/// Replace the hard link at `path` (shared with the harness's master
/// copy) by a copy of its own.
fn unshare_link(path: &Path) -> Result<()> {
    let tmp = path.with_extension("copy");
    fs::copy(path, &tmp)?;
    fs::rename(&tmp, path).with_context(|| format!("replace {}", path.display()))
}

fn userns_private_bind(cx: &mut Ctx) -> Result<()> {
    cx.host.require_userns()?;
    const HOST_ID: u32 = 100_000;
    if !Path::new("/proc/self/ns/user").exists() {
        crate::skip!("the kernel has no user namespaces");
    }
    let mut b = cx.bundle()?;
    let rootfs = b.rootfs();
    for file in ["bin/busybox", "conformance/checker"] {
        unshare_link(&rootfs.join(file))?;
    }
    make_dir(&rootfs.join("mnt/data"), 0o755)?;
    chown_tree(&rootfs, HOST_ID)?;
    let private = cx.dir.join("private");
    make_dir(&private, 0o700)?;
    let data = private.join("data");
    make_dir(&data, 0o755)?;
    fs::write(data.join("file"), "behind a root-only directory")?;
    fs::set_permissions(data.join("file"), fs::Permissions::from_mode(0o644))?;
    let map = json!([{ "containerID": 0, "hostID": HOST_ID, "size": 65536 }]);
    b.namespace("user", None)
        .set("/linux/uidMappings", map.clone())
        .set("/linux/gidMappings", map)
        .mount("/mnt/data", "bind", &data.to_string_lossy(), &["rbind"])
        .args(&["cat", "/mnt/data/file"]);
    let out = run_bundle(cx, &b)?;
    expect_stdout(
        &out,
        "behind a root-only directory",
        "cat of the bind-mounted file",
    )
}

// --- corten differs on purpose -------------------------------------------------

/// A shell script run by `unshare -m --propagation private sh -c`, with
/// `args` as `$0…`.
fn unshared_sh(cx: &mut Ctx, script: &str, args: &[&Path]) -> Result<CmdOut> {
    let mut cmd = Command::new("unshare");
    cmd.args(["-m", "--propagation", "private", "sh", "-c", script])
        .args(args);
    cx.exec(cmd)
}

/// In a private mount namespace: the case's directory becomes a root
/// (bound on itself, with /proc, /sys, /dev and — for a dynamic runtime —
/// the library directories), the runtime is copied in and run chrooted
/// there: `run -d`, then `exec ID cat /marker`, then `delete --force`.
const CHROOT_SCRIPT: &str = r#"D=$0; RT=$1; B=$2; ID=$3; LIBS=$4
mount --bind "$D" "$D" || exit 1
for d in proc sys dev $LIBS; do
  [ -e "/$d" ] || continue
  if [ -L "/$d" ]; then ln -s "$(readlink "/$d")" "$D/$d"
  else mkdir -p "$D/$d" && mount --rbind "/$d" "$D/$d" || exit 1; fi
done
cp "$RT" "$D/runtime" || exit 1
rt() { chroot "$D" /runtime --root /chroot-state "$@"; }
trap 'rt delete --force "$ID" >/dev/null 2>&1' EXIT
rt run -d --bundle "$B" "$ID" || { echo "run failed" >&2; exit 1; }
rt exec "$ID" cat /marker
"#;

fn chrooted_exec(cx: &mut Ctx) -> Result<()> {
    let mut b = cx.bundle()?;
    fs::write(b.rootfs().join("marker"), "container root")?;
    b.args(&["sleep", "30"]);
    b.save()?;
    let id = cx.new_id();
    let libs = if is_static_elf(&cx.runtime.bin)? {
        ""
    } else {
        "usr lib lib32 lib64 libx32"
    };
    let inside = Path::new("/").join(b.path().strip_prefix(&cx.dir)?);
    let dir = cx.dir.clone();
    let bin = cx.runtime.bin.clone();
    let args = [
        dir.as_path(),
        &bin,
        &inside,
        Path::new(&id),
        Path::new(libs),
    ];
    let out = unshared_sh(cx, CHROOT_SCRIPT, &args)?;
    expect_stdout(
        &out,
        "container root",
        "exec cat /marker by a chrooted runtime",
    )
}

fn no_mount_ns_leftovers(cx: &mut Ctx) -> Result<()> {
    let mut b = cx.bundle()?;
    b.remove_namespace("mount").args(&["true"]);
    b.save()?;
    let id = cx.new_id();
    let script = r#""$0" --root "$1" run --bundle "$2" "$3" || echo "run failed: $?"
cat /proc/self/mountinfo"#;
    let (bin, root) = (cx.runtime.bin.clone(), cx.root.clone());
    let out = unshared_sh(cx, script, &[&bin, &root, b.path(), Path::new(&id)])?;
    ensure_ok(&out, "unshare … run")?;
    ensure!(
        !out.stdout.contains("run failed"),
        "run without a mount namespace failed: {}",
        out.describe()
    );
    let rootfs = b.rootfs().to_string_lossy().into_owned();
    let left: Vec<&str> = out
        .stdout
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| *m == rootfs || m.starts_with(&format!("{rootfs}/")))
        .collect();
    ensure!(
        left.is_empty(),
        "mounts left under the rootfs after run: {left:?}"
    );
    Ok(())
}

/// What each lifecycle command says for a status it refuses, and that a
/// paused created container is `paused`, resumed back to `created`.
fn status_messages(cx: &mut Ctx) -> Result<()> {
    if !cx.host.cgroup_v2 && !cx.host.has_controller("freezer") {
        crate::skip!("no freezer cgroup controller");
    }
    let (_, id) = super::runc::created(cx)?;
    ensure_ok(&cx.rt(&["pause", &id])?, "pause of a created container")?;
    ensure!(
        cx.status(&id)? == "paused",
        "a paused created container is not paused"
    );
    let refused = [
        (&["pause"][..], "container not running"),
        (
            &["start"][..],
            "cannot start a container in the paused state",
        ),
    ];
    for (args, text) in refused {
        let out = cx.rt(&[args, &[id.as_str()]].concat())?;
        expect_failure(&out, 1, text, &format!("{args:?} of a paused container"))?;
    }
    ensure_ok(&cx.rt(&["resume", &id])?, "resume")?;
    ensure!(
        cx.status(&id)? == "created",
        "resume did not bring back created"
    );
    let out = cx.rt(&["resume", &id])?;
    expect_failure(
        &out,
        1,
        "container not paused",
        "resume of a created container",
    )?;
    ensure_ok(&cx.rt(&["kill", &id, "KILL"])?, "kill")?;
    cx.wait_status(&id, "stopped")?;
    let stopped = [
        (&["resume"][..], "container not paused"),
        (&["pause"][..], "container not running"),
        (
            &["update", "--pids-limit", "10"][..],
            "container not running",
        ),
        (&["start"][..], "cannot start a container that has stopped"),
    ];
    for (args, text) in stopped {
        let out = cx.rt(&[args, &[id.as_str()]].concat())?;
        expect_failure(&out, 1, text, &format!("{args:?} of a stopped container"))?;
    }
    let again = super::lifecycle::waiter(cx)?;
    let out = cx.create(&again, &id)?;
    expect_failure(
        &out,
        1,
        "container with given ID already exists",
        "create with an id in use",
    )
}

/// The errors of bad flag values, in runc's words, and a repeated global
/// flag overriding the earlier one (Go's flag package).
fn value_errors(cx: &mut Ctx) -> Result<()> {
    let (_, id) = super::runc::running(cx)?;
    let refused: [(&[&str], &str); 8] = [
        (&["list", "--format", "x"], "invalid format option"),
        (&["ps", "--format", "x", &id], "invalid format option"),
        (
            &["events", "--interval", "0", &id],
            "duration interval must be greater than 0",
        ),
        (
            &["events", "--interval", "1x", &id],
            r#"invalid value "1x" for flag -interval: parse error"#,
        ),
        (
            &["update", "--memory", "bogus", &id],
            "invalid value for memory: invalid size: 'bogus'",
        ),
        (
            &["update", "--cpu-quota", "x", &id],
            r#"invalid value for cpu-quota: strconv.ParseInt: parsing "x": invalid syntax"#,
        ),
        (
            &["update", "--cpu-period", "-5", &id],
            r#"invalid value for cpu-period: strconv.ParseUint: parsing "-5": invalid syntax"#,
        ),
        (&["--log-format", "xml", "list"], "invalid log-format: xml"),
    ];
    for (args, text) in refused {
        let out = cx.rt(args)?;
        expect_failure(&out, 1, text, &args.join(" "))?;
    }
    let spec_dir = cx.dir.join("spec-exists");
    fs::create_dir_all(&spec_dir)?;
    let spec = spec_dir.to_string_lossy().into_owned();
    ensure_ok(&cx.rt(&["spec", "--bundle", &spec])?, "spec")?;
    let out = cx.rt(&["spec", "--bundle", &spec])?;
    expect_failure(
        &out,
        1,
        "File config.json exists. Remove it first",
        "spec again",
    )?;
    // The last --root wins: an empty directory lists nothing.
    let other = cx.dir.join("other-root");
    fs::create_dir_all(&other)?;
    let out = cx.rt(&["--root", &other.to_string_lossy(), "list", "-q"])?;
    expect_stdout(&out, "", "list with a second --root")
}
