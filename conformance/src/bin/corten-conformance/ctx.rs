//! The context of one case: its directory, its runtime `--root`, the
//! containers and cgroups it made (removed by [`Ctx::finish`]), and the
//! runtime commands it runs.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use corten_conformance::SUMMARY_PREFIX;
pub use corten_testkit::wait_until;
use corten_testkit::{Driver, Removal};
use serde_json::Value;

use crate::bundle::Bundle;
use crate::command::{CmdOut, TIMEOUT};
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
    cgroups: Vec<String>,
    driver: Driver,
}

impl<'a> Ctx<'a> {
    /// A fresh workspace for case number `index`.
    pub fn new(host: &'a Host, runtime: &'a Runtime, index: usize) -> Result<Ctx<'a>> {
        let slug = format!("c{index:03}");
        let dir = host.run_dir.join(&runtime.name).join(&slug);
        let driver = Driver::new(&runtime.bin, dir.clone(), TIMEOUT)?;
        Ok(Ctx {
            host,
            runtime,
            root: driver.root(),
            dir,
            slug,
            bundles: 0,
            cgroups: Vec::new(),
            driver,
        })
    }

    /// A new bundle with the base configuration and its own cgroups path.
    pub fn bundle(&mut self) -> Result<Bundle> {
        self.bundles += 1;
        let n = self.bundles;
        let cgroups_path = self
            .host
            .cgroups
            .child(&format!("{}-{}-{n}", self.runtime.name, self.slug));
        self.cgroups.push(cgroups_path.clone());
        Bundle::new(self.host, self.dir.join(format!("b{n}")), cgroups_path)
    }

    /// A new container id, deleted (`--force`) when the case ends.
    pub fn new_id(&mut self) -> String {
        let n = self.driver.tracked_ids().len() + 1;
        let id = format!("{}-{}-{n}", self.runtime.name, self.slug);
        self.track(&id);
        id
    }

    /// Delete `id` when the case ends (for ids made up by the case itself).
    pub fn track(&mut self, id: &str) {
        if !self.driver.tracked_ids().iter().any(|i| i == id) {
            self.driver.track(id);
        }
    }

    /// `<runtime> --root <root>`, ready for more arguments.
    pub fn command(&self) -> Command {
        self.driver.command()
    }

    /// Run a prepared runtime command with the deadline.
    pub fn exec(&mut self, cmd: Command) -> Result<CmdOut> {
        Ok(self.driver.output(cmd)?.into())
    }

    /// Run a prepared runtime command with a custom deadline.
    pub fn exec_timeout(&mut self, cmd: Command, timeout: Duration) -> Result<CmdOut> {
        Ok(self.driver.output_within(cmd, timeout)?.into())
    }

    /// `<runtime> --root <root> <args…>`.
    pub fn rt(&mut self, args: &[&str]) -> Result<CmdOut> {
        let mut cmd = self.command();
        cmd.args(args);
        self.exec(cmd)
    }

    /// Where `create` writes the pid file of `id`.
    pub fn pid_file(&self, id: &str) -> PathBuf {
        self.driver.pid_file(id)
    }

    /// Save the bundle and `create --pid-file <f> --bundle <b> <id>`.
    pub fn create(&mut self, b: &Bundle, id: &str) -> Result<CmdOut> {
        b.save()?;
        self.create_as_is(b, id)
    }

    /// `create --pid-file <f> --bundle <b> <id>` of the bundle as it is on
    /// disk (not saved again).
    pub fn create_as_is(&mut self, b: &Bundle, id: &str) -> Result<CmdOut> {
        let cmd = self.driver.create_command(id, b.path(), &[]);
        self.track(id);
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
        Ok(self.driver.state(id)?)
    }

    /// The `status` of `state <id>`.
    pub fn status(&mut self, id: &str) -> Result<String> {
        Ok(self.driver.status(id)?)
    }

    /// The `pid` of `state <id>`.
    pub fn pid(&mut self, id: &str) -> Result<i32> {
        let pid = self.driver.pid(id)?;
        i32::try_from(pid).map_err(|_| anyhow!("state of {id} has pid {pid}"))
    }

    /// Poll `state` until the status is `want` (at most 10 s).
    pub fn wait_status(&mut self, id: &str, want: &str) -> Result<()> {
        Ok(self.driver.wait_status(id, want, Duration::from_secs(10))?)
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
        cmd.arg("run");
        corten_testkit::driver::with_bundle(&mut cmd, flags, b.path(), &id);
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

    /// The names of the entries under the case's `--root`, sorted.
    pub fn root_entries(&self) -> Vec<String> {
        self.driver.root_entries()
    }

    /// The host directory of this bundle's cgroup for `controller`.
    pub fn cgroup_dir(&self, b: &Bundle, controller: &str) -> PathBuf {
        self.host.cgroup_dir(controller, b.cgroup_path())
    }

    /// Delete every container of the case, kill (by pid) what is left of
    /// it, remove its cgroups, mounts and directory.
    pub fn finish(self) {
        self.driver.delete_all();
        for cg in &self.cgroups {
            self.host
                .cgroups
                .remove_child(cg, Removal::Kill(Duration::from_secs(3)));
        }
        corten_testkit::cleanup::remove_tree(&self.dir, &self.host.run_dir);
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
    corten_testkit::pid_alive(pid.into())
}
