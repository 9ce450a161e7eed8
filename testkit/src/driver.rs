//! A runtime binary driven through its runc-compatible command line, with
//! its own `--root` and a bound on every command and every wait.

use std::cell::{Cell, RefCell};
use std::fs::{self, File};
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use serde_json::Value;

/// A step of driving the runtime that failed.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// The driver's directories could not be created.
    #[error("mkdir {path}: {source}")]
    Mkdir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A file for a command's stdout or stderr could not be created.
    #[error("create {path}: {source}")]
    OutputFile {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A command could not be started.
    #[error("spawn {command}: {source}")]
    Spawn {
        /// The command.
        command: String,
        /// The cause.
        source: io::Error,
    },
    /// Waiting for a command failed.
    #[error("wait for {command}: {source}")]
    Wait {
        /// The command.
        command: String,
        /// The cause.
        source: io::Error,
    },
    /// `state` failed.
    #[error("state {id} failed: {detail}")]
    State {
        /// The container.
        id: String,
        /// Its exit and stderr.
        detail: String,
    },
    /// `state` printed something that is not JSON.
    #[error("state {id}: invalid JSON ({source}): {stdout}")]
    StateJson {
        /// The container.
        id: String,
        /// The cause.
        source: serde_json::Error,
        /// What it printed.
        stdout: String,
    },
    /// `state` showed no pid.
    #[error("state {id} has no pid: {state}")]
    NoPid {
        /// The container.
        id: String,
        /// The state.
        state: Value,
    },
    /// A container did not reach a status in time.
    #[error(
        "container {id} did not reach status {want:?} within {bound:?}: status stayed {last:?}"
    )]
    Status {
        /// The container.
        id: String,
        /// The status waited for.
        want: String,
        /// The last status seen.
        last: String,
        /// How long the wait was.
        bound: Duration,
    },
}

/// What a command did.
#[derive(Debug)]
pub struct Ran {
    /// The command, for messages.
    pub command: String,
    /// Its exit status; `None` when it did not finish within the bound and
    /// was killed.
    pub status: Option<ExitStatus>,
    /// The bound it ran under.
    pub bound: Duration,
    /// What it wrote to stdout.
    pub stdout: Vec<u8>,
    /// What it wrote to stderr.
    pub stderr: Vec<u8>,
}

impl Ran {
    /// The exit code, `128 + signal` when killed by a signal, `None` when
    /// it timed out.
    pub fn code(&self) -> Option<i32> {
        self.status.map(exit_code)
    }

    /// One line describing how it ended, for failure messages.
    pub fn describe(&self) -> String {
        describe(
            self.code(),
            self.bound,
            &String::from_utf8_lossy(&self.stderr),
        )
    }
}

/// The exit code of `status`, or `128 + signal` when killed by a signal.
pub fn exit_code(status: ExitStatus) -> i32 {
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

/// `exit <code>; stderr: <stderr>` (or `timed out after …`), on one line
/// of at most 300 characters of stderr.
pub fn describe(code: Option<i32>, bound: Duration, stderr: &str) -> String {
    let err = stderr.trim().replace('\n', " | ");
    let err: String = err.chars().take(300).collect();
    match code {
        None => format!("timed out after {}s; stderr: {err}", bound.as_secs()),
        Some(c) => format!("exit {c}; stderr: {err}"),
    }
}

/// A container the driver ran a command for, with the files that command's
/// (and so the container's) stdout and stderr went to.
#[derive(Debug, Clone)]
pub struct Tracked {
    /// The container id.
    pub id: String,
    /// Its stdout.
    pub stdout: PathBuf,
    /// Its stderr.
    pub stderr: PathBuf,
}

/// The runtime binary with its own state directory (`<dir>/root`).
///
/// Every command runs with stdin from `/dev/null` and stdout/stderr in
/// fresh files under `<dir>/io`, never pipes: a detached container inherits
/// them, and a pipe would stay open for as long as the container lives.
/// Every command is killed (by its pid) when it outlives its bound.
/// [`Driver::delete_all`] runs `delete --force` for every container the
/// driver was told about.
#[derive(Debug)]
pub struct Driver {
    bin: PathBuf,
    dir: PathBuf,
    global: Vec<String>,
    envs: Vec<(String, String)>,
    bound: Duration,
    commands: Cell<usize>,
    tracked: RefCell<Vec<Tracked>>,
}

impl Driver {
    /// A driver of `bin` keeping its state, pid files and outputs in `dir`
    /// (created); each command may take `bound`.
    pub fn new(
        bin: impl Into<PathBuf>,
        dir: PathBuf,
        bound: Duration,
    ) -> Result<Driver, DriverError> {
        let driver = Driver {
            bin: bin.into(),
            dir,
            global: Vec::new(),
            envs: Vec::new(),
            bound,
            commands: Cell::new(0),
            tracked: RefCell::new(Vec::new()),
        };
        for path in [driver.root(), driver.io_dir()] {
            fs::create_dir_all(&path).map_err(|source| DriverError::Mkdir { path, source })?;
        }
        Ok(driver)
    }

    /// Drive another binary from now on.
    pub fn set_bin(&mut self, bin: impl Into<PathBuf>) {
        self.bin = bin.into();
    }

    /// Add global options (e.g. `--log FILE`) to every command.
    pub fn add_global_args(&mut self, args: &[&str]) {
        self.global.extend(args.iter().map(|a| (*a).to_owned()));
    }

    /// Set an environment variable for every command.
    pub fn add_env(&mut self, key: &str, value: &str) {
        self.envs.push((key.to_owned(), value.to_owned()));
    }

    /// The runtime binary.
    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// The driver's own directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The `--root` state directory.
    pub fn root(&self) -> PathBuf {
        self.dir.join("root")
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

    /// `create --pid-file <pid file> <extra…> --bundle <bundle> <id>`.
    pub fn create_command(&self, id: &str, bundle: &Path, extra: &[&str]) -> Command {
        let mut cmd = self.command();
        cmd.arg("create").arg("--pid-file").arg(self.pid_file(id));
        with_bundle(&mut cmd, extra, bundle, id);
        cmd
    }

    /// Where `create` asks the runtime to write the pid file of `id`.
    pub fn pid_file(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{}.pid", id.replace('/', "_")))
    }

    /// Fresh paths for a command's stdout and stderr.
    pub fn next_io_files(&self) -> (PathBuf, PathBuf) {
        let n = self.commands.get() + 1;
        self.commands.set(n);
        (
            self.io_dir().join(format!("{n}.out")),
            self.io_dir().join(format!("{n}.err")),
        )
    }

    /// Run a prepared command within the driver's bound.
    pub fn output(&self, cmd: Command) -> Result<Ran, DriverError> {
        self.output_within(cmd, self.bound)
    }

    /// Run a prepared command within `bound`.
    pub fn output_within(&self, cmd: Command, bound: Duration) -> Result<Ran, DriverError> {
        let (out, err) = self.next_io_files();
        output_into(cmd, &out, &err, bound)
    }

    /// Remember container `id` (made, or about to be made, by a command the
    /// caller runs) for its output and for [`Driver::delete_all`].
    pub fn track(&self, id: &str) -> Tracked {
        let (stdout, stderr) = self.next_io_files();
        let tracked = Tracked {
            id: id.to_owned(),
            stdout,
            stderr,
        };
        self.tracked.borrow_mut().push(tracked.clone());
        tracked
    }

    /// Run a command that makes container `id` (`create`, `run`), within
    /// the driver's bound; the container is tracked first (a command that
    /// times out may still leave it) and keeps writing to the same files.
    pub fn output_tracked(&self, cmd: Command, id: &str) -> Result<Ran, DriverError> {
        let t = self.track(id);
        output_into(cmd, &t.stdout, &t.stderr, self.bound)
    }

    /// The latest tracked container `id`.
    pub fn tracked(&self, id: &str) -> Option<Tracked> {
        self.tracked
            .borrow()
            .iter()
            .rev()
            .find(|t| t.id == id)
            .cloned()
    }

    /// The ids of the tracked containers, each once, oldest first.
    pub fn tracked_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = Vec::new();
        for t in self.tracked.borrow().iter() {
            if !ids.contains(&t.id) {
                ids.push(t.id.clone());
            }
        }
        ids
    }

    /// `state <id>`, parsed.
    pub fn state(&self, id: &str) -> Result<Value, DriverError> {
        let mut cmd = self.command();
        cmd.args(["state", id]);
        let ran = self.output(cmd)?;
        if ran.code() != Some(0) {
            return Err(DriverError::State {
                id: id.to_owned(),
                detail: ran.describe(),
            });
        }
        serde_json::from_slice(&ran.stdout).map_err(|source| DriverError::StateJson {
            id: id.to_owned(),
            source,
            stdout: String::from_utf8_lossy(&ran.stdout).into_owned(),
        })
    }

    /// The `status` field of `state <id>`.
    pub fn status(&self, id: &str) -> Result<String, DriverError> {
        Ok(self.state(id)?["status"]
            .as_str()
            .unwrap_or_default()
            .to_owned())
    }

    /// The `pid` field of `state <id>`.
    pub fn pid(&self, id: &str) -> Result<i64, DriverError> {
        let state = self.state(id)?;
        state["pid"].as_i64().ok_or_else(|| DriverError::NoPid {
            id: id.to_owned(),
            state,
        })
    }

    /// Poll `state <id>` until its status is `want`, for at most `bound`.
    pub fn wait_status(&self, id: &str, want: &str, bound: Duration) -> Result<(), DriverError> {
        let mut last = String::new();
        let mut failed = None;
        let reached = crate::wait_until(bound, || match self.status(id) {
            Ok(status) => {
                let done = status == want;
                last = status;
                done
            }
            Err(e) => {
                failed = Some(e);
                true
            }
        });
        match failed {
            Some(e) => Err(e),
            None if reached => Ok(()),
            None => Err(DriverError::Status {
                id: id.to_owned(),
                want: want.to_owned(),
                last,
                bound,
            }),
        }
    }

    /// The names of the entries of the `--root` directory (one per
    /// container that exists), sorted.
    pub fn root_entries(&self) -> Vec<String> {
        let mut names: Vec<String> = match fs::read_dir(self.root()) {
            Ok(entries) => entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect(),
            Err(_) => Vec::new(),
        };
        names.sort();
        names
    }

    /// `delete --force` every tracked container (newest first), then
    /// SIGKILL (by pid) every process still naming the driver's directory:
    /// runtime processes, or clones of them, started with its `--root`.
    pub fn delete_all(&self) {
        let mut ids = self.tracked_ids();
        self.tracked.borrow_mut().clear();
        ids.reverse();
        for id in ids {
            if id.is_empty() || id.contains('/') || id.len() >= 256 {
                continue;
            }
            let mut cmd = self.command();
            cmd.args(["delete", "--force", &id])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let _ = run_bounded(&mut cmd, self.bound);
        }
        let marker = format!("{}/", self.dir.display());
        crate::cleanup::kill_mentioning(&marker, Duration::from_secs(2));
    }
}

/// Append `<args…> --bundle <bundle> <id>` to `cmd`.
pub fn with_bundle(cmd: &mut Command, args: &[&str], bundle: &Path, id: &str) {
    cmd.args(args).arg("--bundle").arg(bundle).arg(id);
}

/// Run `cmd` with stdin from `/dev/null` and stdout/stderr into the files
/// `out` and `err` (created), killing it (by its pid) after `bound`.
pub fn output_into(
    mut cmd: Command,
    out: &Path,
    err: &Path,
    bound: Duration,
) -> Result<Ran, DriverError> {
    let create = |path: &Path| {
        File::create(path).map_err(|source| DriverError::OutputFile {
            path: path.to_owned(),
            source,
        })
    };
    cmd.stdin(Stdio::null())
        .stdout(create(out)?)
        .stderr(create(err)?);
    let status = run_bounded(&mut cmd, bound)?;
    Ok(Ran {
        command: format!("{cmd:?}"),
        status,
        bound,
        stdout: fs::read(out).unwrap_or_default(),
        stderr: fs::read(err).unwrap_or_default(),
    })
}

/// Spawn `cmd` and wait for it; after `bound`, kill it by its pid and
/// return `None`.
pub fn run_bounded(cmd: &mut Command, bound: Duration) -> Result<Option<ExitStatus>, DriverError> {
    let mut child = cmd.spawn().map_err(|source| DriverError::Spawn {
        command: format!("{cmd:?}"),
        source,
    })?;
    wait_bounded(&mut child, bound).map_err(|source| DriverError::Wait {
        command: format!("{cmd:?}"),
        source,
    })
}

/// Wait for `child` for at most `bound`; then kill it (by its pid), reap
/// it and return `None`.
pub fn wait_bounded(child: &mut Child, bound: Duration) -> io::Result<Option<ExitStatus>> {
    let first = Duration::from_micros(200);
    let longest = Duration::from_millis(10);
    match crate::poll(bound, first, longest, || child.try_wait().transpose()) {
        Some(status) => status.map(Some),
        None => {
            // ESRCH/ECHILD races: it ended just now, which is fine.
            let _ = child.kill();
            let _ = child.wait();
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn driver(name: &str) -> Driver {
        let dir =
            std::env::temp_dir().join(format!("testkit-driver-{}-{name}", std::process::id()));
        Driver::new("/bin/echo", dir, Duration::from_secs(5)).unwrap()
    }

    #[test]
    fn commands_get_the_root_and_their_own_output_files() {
        let d = driver("echo");
        let ran = d
            .output(d.create_command("c1", Path::new("/b"), &["--no-pivot"]))
            .unwrap();
        let root = d.root();
        let pid_file = d.pid_file("c1");
        assert_eq!(ran.code(), Some(0));
        assert_eq!(
            String::from_utf8_lossy(&ran.stdout).trim(),
            format!(
                "--root {} create --pid-file {} --no-pivot --bundle /b c1",
                root.display(),
                pid_file.display()
            )
        );
        assert_ne!(d.next_io_files(), d.next_io_files());
        fs::remove_dir_all(d.dir()).unwrap();
    }

    #[test]
    fn a_command_past_its_bound_is_killed() {
        let d = driver("sleep");
        let mut cmd = Command::new("/bin/sleep");
        cmd.arg("10");
        let started = Instant::now();
        let ran = d.output_within(cmd, Duration::from_millis(100)).unwrap();
        assert!(ran.status.is_none() && ran.code().is_none());
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(ran.describe().starts_with("timed out after 0s"));
        fs::remove_dir_all(d.dir()).unwrap();
    }

    #[test]
    fn tracked_ids_are_listed_once() {
        let d = driver("track");
        d.track("a");
        d.track("b");
        d.track("a");
        assert_eq!(d.tracked_ids(), ["a", "b"]);
        assert!(d.tracked("a").is_some() && d.tracked("c").is_none());
        fs::remove_dir_all(d.dir()).unwrap();
    }
}
