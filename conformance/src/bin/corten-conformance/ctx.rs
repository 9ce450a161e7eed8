//! The context of one case: its directory, its runtime `--root`, the
//! containers and cgroups it made (removed by [`Ctx::finish`]), and the
//! runtime commands it runs.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use corten_conformance::SUMMARY_PREFIX;
use serde_json::Value;

use crate::bundle::Bundle;
use crate::cleanup;
use crate::command::{self, CmdOut, TIMEOUT};
use crate::host::Host;

/// The runtime under test.
#[derive(Debug, Clone)]
pub struct Runtime {
    /// Its binary.
    pub bin: PathBuf,
    /// The binary's base name (`corten`, `runc`).
    pub name: String,
}

/// One case's workspace and helpers.
#[derive(Debug)]
pub struct Ctx<'a> {
    /// Host facts.
    pub host: &'a Host,
    /// The runtime under test.
    pub runtime: &'a Runtime,
    /// This case's directory.
    pub dir: PathBuf,
    /// The runtime's `--root` for this case.
    pub root: PathBuf,
    slug: String,
    bundles: usize,
    ids: Vec<String>,
    cgroups: Vec<String>,
    commands: usize,
}

impl<'a> Ctx<'a> {
    /// A fresh workspace for case number `index`.
    pub fn new(host: &'a Host, runtime: &'a Runtime, index: usize) -> Result<Ctx<'a>> {
        let slug = format!("c{index:03}");
        let dir = host.run_dir.join(&runtime.name).join(&slug);
        fs::create_dir_all(dir.join("io")).with_context(|| format!("mkdir {}", dir.display()))?;
        let root = dir.join("root");
        fs::create_dir_all(&root)?;
        Ok(Ctx {
            host,
            runtime,
            dir,
            root,
            slug,
            bundles: 0,
            ids: Vec::new(),
            cgroups: Vec::new(),
            commands: 0,
        })
    }

    /// A new bundle with the base configuration and its own cgroups path.
    pub fn bundle(&mut self) -> Result<Bundle> {
        self.bundles += 1;
        let n = self.bundles;
        let cgroups_path = format!(
            "{}/{}-{}-{n}",
            self.host.cgroup_parent(),
            self.runtime.name,
            self.slug
        );
        self.cgroups.push(cgroups_path.clone());
        Bundle::new(self.host, self.dir.join(format!("b{n}")), cgroups_path)
    }

    /// A new container id, deleted (`--force`) when the case ends.
    pub fn new_id(&mut self) -> String {
        let id = format!("{}-{}-{}", self.runtime.name, self.slug, self.ids.len() + 1);
        self.track(&id);
        id
    }

    /// Delete `id` when the case ends (for ids made up by the case itself).
    pub fn track(&mut self, id: &str) {
        if !self.ids.iter().any(|i| i == id) {
            self.ids.push(id.to_owned());
        }
    }

    /// `<runtime> --root <root>`, ready for more arguments.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(&self.runtime.bin);
        cmd.arg("--root").arg(&self.root);
        cmd
    }

    /// Run a prepared runtime command with the deadline.
    pub fn exec(&mut self, cmd: Command) -> Result<CmdOut> {
        self.exec_timeout(cmd, TIMEOUT)
    }

    /// Run a prepared runtime command with a custom deadline.
    pub fn exec_timeout(&mut self, cmd: Command, timeout: Duration) -> Result<CmdOut> {
        self.commands += 1;
        let base = self.dir.join("io").join(self.commands.to_string());
        command::run(cmd, &base, timeout)
    }

    /// `<runtime> --root <root> <args…>`.
    pub fn rt(&mut self, args: &[&str]) -> Result<CmdOut> {
        let mut cmd = self.command();
        cmd.args(args);
        self.exec(cmd)
    }

    /// Where `create` writes the pid file of `id`.
    pub fn pid_file(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.pid"))
    }

    /// Save the bundle and `create --bundle <b> --pid-file <f> <id>`.
    pub fn create(&mut self, b: &Bundle, id: &str) -> Result<CmdOut> {
        b.save()?;
        self.track(id);
        let mut cmd = self.command();
        cmd.arg("create")
            .arg("--bundle")
            .arg(&b.dir)
            .arg("--pid-file")
            .arg(self.pid_file(id))
            .arg(id);
        self.exec(cmd)
    }

    /// [`Ctx::create`], failing unless it succeeds.
    pub fn create_ok(&mut self, b: &Bundle, id: &str) -> Result<()> {
        let out = self.create(b, id)?;
        ensure_ok(&out, "create")
    }

    /// `start <id>`, failing unless it succeeds.
    pub fn start_ok(&mut self, id: &str) -> Result<()> {
        let out = self.rt(&["start", id])?;
        ensure_ok(&out, "start")
    }

    /// `state <id>`, parsed; fails if the command fails.
    pub fn state(&mut self, id: &str) -> Result<Value> {
        let out = self.rt(&["state", id])?;
        ensure_ok(&out, "state")?;
        serde_json::from_str(&out.stdout)
            .map_err(|e| anyhow!("state output is not JSON ({e}): {}", out.stdout))
    }

    /// The `status` of `state <id>`.
    pub fn status(&mut self, id: &str) -> Result<String> {
        let s = self.state(id)?;
        Ok(s["status"].as_str().unwrap_or_default().to_owned())
    }

    /// The `pid` of `state <id>`.
    pub fn pid(&mut self, id: &str) -> Result<i32> {
        let s = self.state(id)?;
        s["pid"]
            .as_i64()
            .and_then(|p| i32::try_from(p).ok())
            .ok_or_else(|| anyhow!("state has no pid: {s}"))
    }

    /// Poll `state` until the status is `want` (at most 10 s).
    pub fn wait_status(&mut self, id: &str, want: &str) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let got = self.status(id)?;
            if got == want {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!("status stayed {got:?}, want {want:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Save the bundle, `run` it in the foreground and require the checker
    /// to report every assertion `ok`.
    pub fn run_checks(&mut self, b: &Bundle) -> Result<()> {
        let cmd = self.run_command(b)?;
        let out = self.exec(cmd)?;
        checker_verdict(&out)
    }

    /// `run --bundle <b> <new id>` as a prepared command (the bundle is saved).
    pub fn run_command(&mut self, b: &Bundle) -> Result<Command> {
        let cmd = self.command();
        self.run_args(cmd, b, &[])
    }

    /// `cmd` (a runtime command, global flags given) followed by
    /// `run <flags…> --bundle <b> <new id>` (the bundle is saved).
    pub fn run_args(&mut self, mut cmd: Command, b: &Bundle, flags: &[&str]) -> Result<Command> {
        b.save()?;
        let id = self.new_id();
        cmd.arg("run")
            .args(flags)
            .arg("--bundle")
            .arg(&b.dir)
            .arg(id);
        Ok(cmd)
    }

    /// `unshare -m --propagation private <runtime> --root <root>`: for a
    /// container without a mount namespace of its own (its mounts then land
    /// in this private namespace, never in the host's) and for `--no-pivot`.
    pub fn unshared_command(&self) -> Command {
        let mut cmd = Command::new("unshare");
        cmd.args(["-m", "--propagation", "private"])
            .arg(&self.runtime.bin)
            .arg("--root")
            .arg(&self.root);
        cmd
    }

    /// The host directory of this bundle's cgroup for `controller`.
    pub fn cgroup_dir(&self, b: &Bundle, controller: &str) -> PathBuf {
        self.host.cgroup_dir(controller, &b.cgroups_path)
    }

    /// Delete every container of the case, kill what is left in its
    /// cgroups, remove the cgroups, mounts and directory.
    pub fn finish(mut self) {
        for id in std::mem::take(&mut self.ids) {
            let _ = self.rt(&["delete", "--force", &id]);
        }
        for cg in std::mem::take(&mut self.cgroups) {
            cleanup::remove_cgroup(self.host, &cg);
        }
        cleanup::remove_tree(&self.dir);
    }
}

/// Fail with the command's output unless it exited 0.
pub fn ensure_ok(out: &CmdOut, what: &str) -> Result<()> {
    if out.ok() {
        Ok(())
    } else {
        bail!("{what} failed: {}", out.describe())
    }
}

/// Fail unless the command exited non-zero (a timeout is not an error report).
pub fn ensure_err(out: &CmdOut, what: &str) -> Result<()> {
    match out.code {
        0 => bail!("{what} succeeded, but the spec requires an error"),
        -1 => bail!("{what} hung: {}", out.describe()),
        _ => Ok(()),
    }
}

/// Pass when the checker printed its summary with no `not ok` and the
/// process exited 0.
pub fn checker_verdict(out: &CmdOut) -> Result<()> {
    let failures: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("not ok "))
        .collect();
    if !failures.is_empty() {
        let shown: Vec<String> = failures
            .iter()
            .take(4)
            .map(|l| l.trim_start_matches("not ok ").to_owned())
            .collect();
        bail!("{}", shown.join("; "));
    }
    let summary = out.stdout.lines().any(|l| l.starts_with(SUMMARY_PREFIX));
    if !summary {
        bail!("the checker did not run: {}", out.describe());
    }
    if !out.ok() {
        bail!("container exited non-zero: {}", out.describe());
    }
    Ok(())
}

/// Poll `cond` every 20 ms for at most `timeout`.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Wait up to 10 s for `path` to exist.
pub fn wait_file(path: &Path) -> Result<()> {
    if wait_until(Duration::from_secs(10), || path.exists()) {
        Ok(())
    } else {
        bail!("{} never appeared", path.display())
    }
}

/// Whether the process `pid` exists (and is not a zombie).
pub fn alive(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(") ")
            .and_then(|(_, rest)| rest.chars().next())
            .is_some_and(|s| s != 'Z' && s != 'X'),
        Err(_) => false,
    }
}
