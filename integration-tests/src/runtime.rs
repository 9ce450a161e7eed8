//! The runtime under test, driven through its command line with a private
//! `--root`.

use std::cell::RefCell;
use std::fs::{self, File};
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{cleanup, Bundle};

/// How long any single runtime command may take before the test fails.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

/// A container this runtime wrapper created, for output retrieval and cleanup.
#[derive(Debug)]
struct Tracked {
    id: String,
    stdout: PathBuf,
    stderr: PathBuf,
    cgroup: String,
}

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
    bin: PathBuf,
    dir: PathBuf,
    global: Vec<String>,
    envs: Vec<(String, String)>,
    tracked: RefCell<Vec<Tracked>>,
    commands: RefCell<usize>,
}

impl Runtime {
    /// A runtime wrapper for the test `test_name`, with an empty root.
    pub fn new(test_name: &str) -> Runtime {
        cleanup::register_owner();
        let dir = Path::new(crate::BASE_DIR).join(format!("{}.rt", crate::unique_name(test_name)));
        let rt = Runtime {
            bin: crate::runtime_bin(),
            dir,
            global: Vec::new(),
            envs: Vec::new(),
            tracked: RefCell::new(Vec::new()),
            commands: RefCell::new(0),
        };
        assert!(
            rt.bin.exists(),
            "runtime binary {} not found (set CORTEN_BIN)",
            rt.bin.display()
        );
        fs::create_dir_all(rt.root()).expect("create runtime root");
        fs::create_dir_all(rt.io_dir()).expect("create io dir");
        rt
    }

    /// Drive another runtime binary (e.g. runc, for a side-by-side check).
    pub fn with_bin(mut self, bin: &str) -> Runtime {
        self.bin = PathBuf::from(bin);
        self
    }

    /// Add global options (e.g. `--log FILE --log-format json`) to every command.
    pub fn with_global_args(mut self, args: &[&str]) -> Runtime {
        self.global.extend(args.iter().map(|a| (*a).to_owned()));
        self
    }

    /// Set an environment variable for every command (the runtime's own
    /// environment, which must not leak into containers).
    pub fn with_env(mut self, key: &str, value: &str) -> Runtime {
        self.envs.push((key.to_owned(), value.to_owned()));
        self
    }

    /// The `--root` state directory.
    pub fn root(&self) -> PathBuf {
        self.dir.join("root")
    }

    /// A scratch directory of this runtime wrapper (for logs, sockets, pid files).
    pub fn scratch(&self) -> PathBuf {
        self.dir.clone()
    }

    /// The runtime binary.
    pub fn bin(&self) -> &Path {
        &self.bin
    }

    fn io_dir(&self) -> PathBuf {
        self.dir.join("io")
    }

    /// `<bin> --root <root> <global options>`, ready for more arguments.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.arg("--root").arg(self.root()).args(&self.global);
        cmd.envs(self.envs.iter().map(|(k, v)| (k, v)));
        cmd
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
        let (out, err) = self.next_io_files();
        self.output_into(cmd, &out, &err)
    }

    /// Fresh paths for a command's stdout and stderr.
    fn next_io_files(&self) -> (PathBuf, PathBuf) {
        let n = {
            let mut counter = self.commands.borrow_mut();
            *counter += 1;
            *counter
        };
        (
            self.io_dir().join(format!("{n}.out")),
            self.io_dir().join(format!("{n}.err")),
        )
    }

    fn output_into(&self, mut cmd: Command, out_path: &Path, err_path: &Path) -> Output {
        let stdout = File::create(out_path).expect("create stdout file");
        let stderr = File::create(err_path).expect("create stderr file");
        cmd.stdin(Stdio::null()).stdout(stdout).stderr(stderr);
        let status = run_with_timeout(&mut cmd, COMMAND_TIMEOUT);
        Output {
            status,
            stdout: fs::read(out_path).unwrap_or_default(),
            stderr: fs::read(err_path).unwrap_or_default(),
        }
    }

    fn track(&self, id: &str, bundle: &Bundle, stdout: PathBuf, stderr: PathBuf) {
        self.tracked.borrow_mut().push(Tracked {
            id: id.to_owned(),
            stdout,
            stderr,
            cgroup: bundle.cgroup_path().to_owned(),
        });
    }

    /// Remember container `id` of `bundle` for the clean-up at drop (for a
    /// container created by a command the test runs itself).
    pub fn track_id(&self, id: &str, bundle: &Bundle) {
        let (out, err) = self.next_io_files();
        self.track(id, bundle, out, err);
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
        let pid_file = self.pid_file(id);
        let mut args = vec![
            "create",
            "--pid-file",
            pid_file.to_str().expect("utf-8 scratch path"),
        ];
        args.extend_from_slice(extra);
        self.bundle_command(&args, id, bundle, fds)
    }

    /// `create --bundle <bundle> --pid-file <scratch>/<id>.pid <id>`.
    pub fn create(&self, id: &str, bundle: &Bundle) -> Output {
        self.create_with(id, bundle, &[])
    }

    /// Where `create` asked the runtime to write the pid file of `id`.
    pub fn pid_file(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{}.pid", id.replace('/', "_")))
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
        let mut args = vec!["run"];
        args.extend_from_slice(extra);
        self.bundle_command(&args, id, bundle, fds)
    }

    /// `<args…> --bundle <bundle> <id>`, with `fds` installed in the runtime
    /// process; the container is tracked for output and cleanup.
    fn bundle_command(
        &self,
        args: &[&str],
        id: &str,
        bundle: &Bundle,
        fds: &[(BorrowedFd<'_>, RawFd)],
    ) -> Output {
        bundle.save();
        let mut cmd = self.command();
        cmd.args(args).arg("--bundle").arg(bundle.path()).arg(id);
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
        // Track first: a command that times out may still leave a container.
        let (out, err) = self.next_io_files();
        self.track(id, bundle, out.clone(), err.clone());
        self.output_into(cmd, &out, &err)
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
        let out = self
            .cmd(&["state", id])
            .assert_success(&format!("state {id}"));
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("state {id}: invalid JSON ({e}): {}", out.stdout_str()))
    }

    /// The `status` field of `state <id>`.
    pub fn status(&self, id: &str) -> String {
        self.state(id)["status"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The `pid` field of `state <id>`.
    pub fn pid(&self, id: &str) -> i64 {
        self.state(id)["pid"]
            .as_i64()
            .unwrap_or_else(|| panic!("state {id} has no pid"))
    }

    /// Poll `state <id>` until its status is `status`; fails the test after 10 s.
    pub fn wait_status(&self, id: &str, status: &str) {
        let reached = crate::wait_until(Duration::from_secs(10), || self.status(id) == status);
        assert!(
            reached,
            "container {id} did not reach status {status:?}: {}",
            self.state(id)
        );
    }

    /// What the container `id` (made by `create`/`run`) wrote to stdout so far.
    pub fn container_stdout(&self, id: &str) -> String {
        self.tracked_file(id, |t| &t.stdout)
    }

    /// What the container `id` (and the runtime's `create`/`run`) wrote to stderr so far.
    pub fn container_stderr(&self, id: &str) -> String {
        self.tracked_file(id, |t| &t.stderr)
    }

    fn tracked_file(&self, id: &str, pick: impl Fn(&Tracked) -> &PathBuf) -> String {
        let tracked = self.tracked.borrow();
        let t = tracked
            .iter()
            .rev()
            .find(|t| t.id == id)
            .unwrap_or_else(|| panic!("no container {id}"));
        String::from_utf8_lossy(&fs::read(pick(t)).unwrap_or_default()).into_owned()
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
        match fs::read_dir(self.root()) {
            Ok(entries) => entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect(),
            Err(_) => Vec::new(),
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        let tracked = std::mem::take(&mut *self.tracked.borrow_mut());
        let mut cgroups = Vec::new();
        for t in tracked.iter().rev() {
            if !t.id.is_empty() && !t.id.contains('/') && t.id.len() < 256 {
                let mut cmd = self.command();
                cmd.args(["delete", "--force", &t.id]);
                cmd.stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null());
                spawn_and_wait(&mut cmd, COMMAND_TIMEOUT);
            }
            cgroups.push(t.cgroup.clone());
        }
        cgroups.sort();
        cgroups.dedup();
        // Whatever `delete --force` missed: processes in this wrapper's
        // cgroups, and runtime processes (or clones of them) started with
        // this wrapper's --root.
        cleanup::kill_leftovers(&cgroups, &format!("{}/", self.dir.display()));
        cleanup::remove_temp_tree(&self.dir);
        cleanup::release_owner(&cgroups, true);
    }
}

/// Spawn `cmd` and wait for it; kill it (by its own pid) and fail the test
/// if it is still running after `timeout`.
fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> ExitStatus {
    match spawn_and_wait(cmd, timeout) {
        Some(status) => status,
        None => panic!(
            "{cmd:?} did not finish within {:?} (killed)",
            crate::scaled(timeout)
        ),
    }
}

/// Spawn `cmd` and wait for it; after `timeout`, kill it by its pid and
/// return `None`.
fn spawn_and_wait(cmd: &mut Command, timeout: Duration) -> Option<ExitStatus> {
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let deadline = Instant::now() + crate::scaled(timeout);
    let mut interval = Duration::from_micros(200);
    loop {
        if let Some(status) = child.try_wait().expect("wait for runtime command") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(interval);
        interval = (interval * 2).min(Duration::from_millis(10));
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
        self.status
            .code()
            .unwrap_or_else(|| 128 + self.status.signal().unwrap_or(0))
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
