//! The runtime under test: a [`corten_testkit::Driver`] with a private
//! `--root`, failing the test where the driver reports an error.

use std::cell::RefCell;
use std::fs;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use corten_testkit::{Driver, Ran};
use serde_json::Value;

use crate::{cleanup, Bundle};

/// How long any single runtime command may take before the test fails.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

/// The runtime binary with its own state directory (`--root`).
///
/// Every command runs with stdin from `/dev/null` and stdout/stderr captured
/// in files, never pipes: a detached container inherits them, and a pipe
/// would keep the command's output open for as long as the container lives.
/// For `create` and `run` those files keep receiving the container's output;
/// read it with [`Runtime::container_stdout`].
///
/// Every command must finish within 10 s, or it is killed and the test fails.
/// Dropping the runtime runs `delete --force` for every container it created,
/// SIGKILLs (by pid) any process left in those containers' cgroups or started
/// with this wrapper's `--root`, and removes the cgroups and its temporary
/// directories.
#[derive(Debug)]
pub struct Runtime {
    driver: Driver,
    /// The cgroups of the containers created, removed at drop.
    cgroups: RefCell<Vec<String>>,
}

impl Runtime {
    /// A runtime wrapper for the test `test_name`, with an empty root.
    pub fn new(test_name: &str) -> Runtime {
        cleanup::register_owner();
        let dir = Path::new(crate::BASE_DIR).join(format!("{}.rt", crate::unique_name(test_name)));
        let bin = crate::runtime_bin();
        assert!(
            bin.exists(),
            "runtime binary {} not found (set CORTEN_BIN)",
            bin.display()
        );
        let driver =
            Driver::new(bin, dir, crate::scaled(COMMAND_TIMEOUT)).unwrap_or_else(|e| panic!("{e}"));
        Runtime {
            driver,
            cgroups: RefCell::new(Vec::new()),
        }
    }

    /// Drive another runtime binary (e.g. runc, for a side-by-side check).
    pub fn with_bin(mut self, bin: &str) -> Runtime {
        self.driver.set_bin(bin);
        self
    }

    /// Add global options (e.g. `--log FILE --log-format json`) to every command.
    pub fn with_global_args(mut self, args: &[&str]) -> Runtime {
        self.driver.add_global_args(args);
        self
    }

    /// Set an environment variable for every command (the runtime's own
    /// environment, which must not leak into containers).
    pub fn with_env(mut self, key: &str, value: &str) -> Runtime {
        self.driver.add_env(key, value);
        self
    }

    /// The `--root` state directory.
    pub fn root(&self) -> PathBuf {
        self.driver.root()
    }

    /// A scratch directory of this runtime wrapper (for logs, sockets, pid files).
    pub fn scratch(&self) -> PathBuf {
        self.driver.dir().to_owned()
    }

    /// The runtime binary.
    pub fn bin(&self) -> &Path {
        self.driver.bin()
    }

    /// `<bin> --root <root> <global options>`, ready for more arguments.
    pub fn command(&self) -> Command {
        self.driver.command()
    }

    /// Run `<bin> --root <root> <args…>` and collect its output.
    pub fn cmd(&self, args: &[&str]) -> Output {
        let mut cmd = self.command();
        cmd.args(args);
        self.output(cmd)
    }

    /// Run a prepared command: stdin `/dev/null`, stdout/stderr in fresh files,
    /// failing the test if it does not finish within 10 s.
    pub fn output(&self, cmd: Command) -> Output {
        finished(self.driver.output(cmd))
    }

    /// Remember container `id` of `bundle` for the clean-up at drop (for a
    /// container created by a command the test runs itself).
    pub fn track_id(&self, id: &str, bundle: &Bundle) {
        self.driver.track(id);
        self.cgroups
            .borrow_mut()
            .push(bundle.cgroup_path().to_owned());
    }

    /// `create --bundle <bundle> --pid-file <scratch>/<id>.pid <extra…> <id>`.
    pub fn create_with(&self, id: &str, bundle: &Bundle, extra: &[&str]) -> Output {
        self.create_with_fds(id, bundle, extra, &[])
    }

    /// Like [`Runtime::create_with`], handing extra descriptors to the
    /// runtime process (see [`Runtime::run_with_fds`]).
    pub fn create_with_fds(
        &self,
        id: &str,
        bundle: &Bundle,
        extra: &[&str],
        fds: &[(BorrowedFd<'_>, RawFd)],
    ) -> Output {
        bundle.save();
        let cmd = self.driver.create_command(id, bundle.path(), extra);
        self.bundle_command(cmd, id, bundle, fds)
    }

    /// `create --bundle <bundle> --pid-file <scratch>/<id>.pid <id>`.
    pub fn create(&self, id: &str, bundle: &Bundle) -> Output {
        self.create_with(id, bundle, &[])
    }

    /// Where `create` asked the runtime to write the pid file of `id`.
    pub fn pid_file(&self, id: &str) -> PathBuf {
        self.driver.pid_file(id)
    }

    /// `start <id>`.
    pub fn start(&self, id: &str) -> Output {
        self.cmd(&["start", id])
    }

    /// `kill <id> <signal>`.
    pub fn kill(&self, id: &str, signal: &str) -> Output {
        self.cmd(&["kill", id, signal])
    }

    /// `delete <id>`.
    pub fn delete(&self, id: &str) -> Output {
        self.cmd(&["delete", id])
    }

    /// `run --bundle <bundle> <extra…> <id>` in the foreground.
    pub fn run_with(&self, id: &str, bundle: &Bundle, extra: &[&str]) -> Output {
        self.run_with_fds(id, bundle, extra, &[])
    }

    /// Like [`Runtime::run_with`], with extra descriptors handed to the
    /// runtime process: each `(fd, target)` is duplicated onto descriptor
    /// number `target` (without close-on-exec) in the child before exec.
    pub fn run_with_fds(
        &self,
        id: &str,
        bundle: &Bundle,
        extra: &[&str],
        fds: &[(BorrowedFd<'_>, RawFd)],
    ) -> Output {
        bundle.save();
        let mut cmd = self.command();
        cmd.arg("run");
        corten_testkit::driver::with_bundle(&mut cmd, extra, bundle.path(), id);
        self.bundle_command(cmd, id, bundle, fds)
    }

    /// Run `cmd`, which makes container `id` of `bundle`, with `fds`
    /// installed in the runtime process; the container is tracked for
    /// output and cleanup.
    fn bundle_command(
        &self,
        mut cmd: Command,
        id: &str,
        bundle: &Bundle,
        fds: &[(BorrowedFd<'_>, RawFd)],
    ) -> Output {
        let pairs: Vec<(RawFd, RawFd)> = fds
            .iter()
            .map(|(fd, target)| (fd.as_raw_fd(), *target))
            .collect();
        if !pairs.is_empty() {
            // SAFETY: the closure runs in the forked child before exec and
            // only calls dup2/fcntl, which are async-signal-safe; the source
            // descriptors stay open in the parent (borrowed) until spawn returns.
            unsafe {
                cmd.pre_exec(move || {
                    for &(fd, target) in &pairs {
                        let rc = if fd == target {
                            libc::fcntl(fd, libc::F_SETFD, 0)
                        } else {
                            libc::dup2(fd, target)
                        };
                        if rc < 0 {
                            return Err(std::io::Error::last_os_error());
                        }
                    }
                    Ok(())
                });
            }
        }
        self.cgroups
            .borrow_mut()
            .push(bundle.cgroup_path().to_owned());
        finished(self.driver.output_tracked(cmd, id))
    }

    /// `run --bundle <bundle> <id>` in the foreground: the container's exit
    /// status and its stdout/stderr.
    pub fn run(&self, id: &str, bundle: &Bundle) -> Output {
        self.run_with(id, bundle, &[])
    }

    /// Run the bundle to completion and return its stdout, failing the test
    /// (with the container's stderr) unless it exits 0.
    pub fn run_ok(&self, id: &str, bundle: &Bundle) -> String {
        self.run(id, bundle)
            .assert_success(&format!("run {id}"))
            .stdout_str()
    }

    /// `state <id>` parsed; fails the test if the command fails.
    pub fn state(&self, id: &str) -> Value {
        self.driver.state(id).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The `status` field of `state <id>`.
    pub fn status(&self, id: &str) -> String {
        self.driver.status(id).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The `pid` field of `state <id>`.
    pub fn pid(&self, id: &str) -> i64 {
        self.driver.pid(id).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Poll `state <id>` until its status is `status`; fails the test after 10 s.
    pub fn wait_status(&self, id: &str, status: &str) {
        let bound = crate::scaled(Duration::from_secs(10));
        if let Err(e) = self.driver.wait_status(id, status, bound) {
            panic!("{e}: {}", self.state(id));
        }
    }

    /// What the container `id` (made by `create`/`run`) wrote to stdout so far.
    pub fn container_stdout(&self, id: &str) -> String {
        self.tracked_file(id, |t| t.stdout)
    }

    /// What the container `id` (and the runtime's `create`/`run`) wrote to stderr so far.
    pub fn container_stderr(&self, id: &str) -> String {
        self.tracked_file(id, |t| t.stderr)
    }

    fn tracked_file(
        &self,
        id: &str,
        pick: impl Fn(corten_testkit::driver::Tracked) -> PathBuf,
    ) -> String {
        let tracked = self
            .driver
            .tracked(id)
            .unwrap_or_else(|| panic!("no container {id}"));
        String::from_utf8_lossy(&fs::read(pick(tracked)).unwrap_or_default()).into_owned()
    }

    /// Wait until the container's stdout contains `needle`; fails after 10 s.
    pub fn wait_output(&self, id: &str, needle: &str) {
        let seen = crate::wait_until(Duration::from_secs(10), || {
            self.container_stdout(id).contains(needle)
        });
        assert!(
            seen,
            "container {id} never printed {needle:?}; stdout: {:?} stderr: {:?}",
            self.container_stdout(id),
            self.container_stderr(id)
        );
    }

    /// Entries of the `--root` directory (one per container that exists).
    pub fn root_entries(&self) -> Vec<String> {
        self.driver.root_entries()
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        // `delete --force` each container, then kill (by pid) the runtime
        // processes, or clones of them, started with this wrapper's --root.
        self.driver.delete_all();
        let mut cgroups = std::mem::take(&mut *self.cgroups.borrow_mut());
        cgroups.sort();
        cgroups.dedup();
        // Kills (by pid) whatever is left in this wrapper's cgroups.
        cleanup::release_owner(&cgroups, true);
        corten_testkit::cleanup::remove_tree(self.driver.dir(), Path::new(crate::BASE_DIR));
    }
}

/// The [`Output`] of a command that finished; fails the test if it could
/// not be run or was killed at its bound.
fn finished(ran: Result<Ran, corten_testkit::DriverError>) -> Output {
    let ran = ran.unwrap_or_else(|e| panic!("{e}"));
    match ran.status {
        Some(status) => Output {
            status,
            stdout: ran.stdout,
            stderr: ran.stderr,
        },
        None => panic!(
            "{} did not finish within {:?} (killed)",
            ran.command, ran.bound
        ),
    }
}

/// Convenience accessors for a command's [`Output`].
pub trait OutputExt: Sized {
    /// stdout as (lossy) UTF-8.
    fn stdout_str(&self) -> String;
    /// stderr as (lossy) UTF-8.
    fn stderr_str(&self) -> String;
    /// The exit code, or `128 + signal` if killed by a signal.
    fn code(&self) -> i32;
    /// Fail the test (showing stdout and stderr) unless the command succeeded.
    fn assert_success(self, what: &str) -> Self;
    /// Fail the test unless the command failed (non-zero exit).
    fn assert_failure(self, what: &str) -> Self;
}

impl OutputExt for Output {
    fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    fn code(&self) -> i32 {
        corten_testkit::driver::exit_code(self.status)
    }

    fn assert_success(self, what: &str) -> Self {
        assert!(
            self.status.success(),
            "{what} failed ({}):\nstdout: {}\nstderr: {}",
            self.status,
            self.stdout_str(),
            self.stderr_str()
        );
        self
    }

    fn assert_failure(self, what: &str) -> Self {
        assert!(
            !self.status.success(),
            "{what} unexpectedly succeeded:\nstdout: {}\nstderr: {}",
            self.stdout_str(),
            self.stderr_str()
        );
        self
    }
}
