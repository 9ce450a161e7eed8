//! Driving the OCI runtime binary (corten, or runc) through runc's command
//! line, exactly as containerd's runc shim does:
//! `<binary> --root <root> --log <bundle>/log.json --log-format json <verb> …`.
//!
//! Every command runs through the [`Reaper`], which owns all exit statuses.
//! A failed command's error is the last `error` record of `log.json`, which is
//! what runc-compatible runtimes write there (falling back to stderr).

use std::ffi::OsString;
use std::fmt;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

use crate::reaper::{Output, Reaper};

/// Which runtime binary, with which global flags.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Runtime {
    /// The runtime binary: a path, or a name looked up on `PATH`.
    pub(crate) binary: PathBuf,
    /// `--root`: the runtime's state directory (already per namespace).
    pub(crate) root: PathBuf,
    /// `--systemd-cgroup`.
    #[serde(default)]
    pub(crate) systemd_cgroup: bool,
    /// `create --no-pivot`.
    #[serde(default)]
    pub(crate) no_pivot: bool,
    /// `create --no-new-keyring`.
    #[serde(default)]
    pub(crate) no_new_keyring: bool,
}

/// A runtime command that failed: the verb and the runtime's own message.
#[derive(Debug)]
pub(crate) struct RuntimeError {
    pub(crate) verb: &'static str,
    pub(crate) message: String,
}

impl fmt::Display for RuntimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // containerd's runc shim words it so; callers match on it.
        write!(f, "OCI runtime {} failed: {}", self.verb, self.message)
    }
}

impl std::error::Error for RuntimeError {}

impl RuntimeError {
    /// Whether the runtime said the container does not exist.
    pub(crate) fn is_not_found(&self) -> bool {
        self.message.contains("does not exist") || self.message.contains("not found")
    }
}

/// The standard streams given to a `create` or `exec`: the container process
/// inherits them.
#[derive(Debug, Default)]
pub(crate) struct ProcessStdio {
    pub(crate) stdin: Option<OwnedFd>,
    pub(crate) stdout: Option<OwnedFd>,
    pub(crate) stderr: Option<OwnedFd>,
}

fn stdio(fd: Option<OwnedFd>) -> Stdio {
    fd.map_or_else(Stdio::null, Stdio::from)
}

/// Options of `create` beyond the id and the bundle.
#[derive(Debug)]
pub(crate) struct CreateOpts<'a> {
    pub(crate) pid_file: &'a Path,
    pub(crate) console_socket: Option<&'a Path>,
    pub(crate) stdio: ProcessStdio,
}

/// Options of `exec --detach`.
#[derive(Debug)]
pub(crate) struct ExecOpts<'a> {
    pub(crate) process: &'a Path,
    pub(crate) pid_file: &'a Path,
    pub(crate) console_socket: Option<&'a Path>,
    pub(crate) stdio: ProcessStdio,
}

impl Runtime {
    fn command(&self, bundle: &Path) -> Command {
        let mut c = Command::new(&self.binary);
        c.arg("--root").arg(&self.root);
        c.arg("--log").arg(bundle.join("log.json"));
        c.args(["--log-format", "json"]);
        if self.systemd_cgroup {
            c.arg("--systemd-cgroup");
        }
        c.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        crate::sys::die_with_parent(&mut c);
        c
    }

    fn run(
        &self,
        reaper: &Reaper,
        bundle: &Path,
        verb: &'static str,
        mut command: Command,
        stdin: Option<&[u8]>,
    ) -> Result<Output, RuntimeError> {
        crate::debug!("running {:?}", command);
        let out = reaper
            .run_command(&mut command, stdin)
            .map_err(|e| RuntimeError {
                verb,
                message: format!("run {}: {e}", self.binary.display()),
            })?;
        if out.status.success() {
            return Ok(out);
        }
        let message = last_error(&bundle.join("log.json"))
            .or_else(|| {
                let text = String::from_utf8_lossy(&out.stderr).trim().to_string();
                (!text.is_empty()).then_some(text)
            })
            .unwrap_or_else(|| format!("{} {verb} failed: {}", self.binary.display(), out.status));
        Err(RuntimeError { verb, message })
    }

    /// `create --bundle <bundle> --pid-file … [--console-socket …] <id>`.
    pub(crate) fn create(
        &self,
        reaper: &Reaper,
        id: &str,
        bundle: &Path,
        opts: CreateOpts<'_>,
    ) -> Result<(), RuntimeError> {
        let mut c = self.command(bundle);
        c.arg("create").arg("--bundle").arg(bundle);
        c.arg("--pid-file").arg(opts.pid_file);
        if let Some(socket) = opts.console_socket {
            c.arg("--console-socket").arg(socket);
        }
        if self.no_pivot {
            c.arg("--no-pivot");
        }
        if self.no_new_keyring {
            c.arg("--no-new-keyring");
        }
        c.arg(id);
        c.stdin(stdio(opts.stdio.stdin))
            .stdout(stdio(opts.stdio.stdout))
            .stderr(stdio(opts.stdio.stderr));
        self.run(reaper, bundle, "create", c, None).map(drop)
    }

    /// `start <id>`.
    pub(crate) fn start(
        &self,
        reaper: &Reaper,
        id: &str,
        bundle: &Path,
    ) -> Result<(), RuntimeError> {
        let mut c = self.command(bundle);
        c.args(["start", id]);
        self.run(reaper, bundle, "start", c, None).map(drop)
    }

    /// `kill [--all] <id> <signal>`.
    pub(crate) fn kill(
        &self,
        reaper: &Reaper,
        id: &str,
        bundle: &Path,
        signal: u32,
        all: bool,
    ) -> Result<(), RuntimeError> {
        let mut c = self.command(bundle);
        c.arg("kill");
        if all {
            c.arg("--all");
        }
        c.arg(id).arg(signal.to_string());
        self.run(reaper, bundle, "kill", c, None).map(drop)
    }

    /// `delete [--force] <id>`.
    pub(crate) fn delete(
        &self,
        reaper: &Reaper,
        id: &str,
        bundle: &Path,
        force: bool,
    ) -> Result<(), RuntimeError> {
        let mut c = self.command(bundle);
        c.arg("delete");
        if force {
            c.arg("--force");
        }
        c.arg(id);
        self.run(reaper, bundle, "delete", c, None).map(drop)
    }

    /// `exec --process <file> --detach --pid-file <file> [--console-socket …] <id>`.
    pub(crate) fn exec(
        &self,
        reaper: &Reaper,
        id: &str,
        bundle: &Path,
        opts: ExecOpts<'_>,
    ) -> Result<(), RuntimeError> {
        let mut c = self.command(bundle);
        c.arg("exec").arg("--process").arg(opts.process);
        c.arg("--detach").arg("--pid-file").arg(opts.pid_file);
        if let Some(socket) = opts.console_socket {
            c.arg("--console-socket").arg(socket);
        }
        c.arg(id);
        c.stdin(stdio(opts.stdio.stdin))
            .stdout(stdio(opts.stdio.stdout))
            .stderr(stdio(opts.stdio.stderr));
        self.run(reaper, bundle, "exec", c, None).map(drop)
    }

    /// `ps --format json <id>`: the pids of every process of the container.
    pub(crate) fn ps(
        &self,
        reaper: &Reaper,
        id: &str,
        bundle: &Path,
    ) -> Result<Vec<u32>, RuntimeError> {
        let mut c = self.command(bundle);
        c.args(["ps", "--format", "json", id]);
        let out = self.run(reaper, bundle, "ps", c, None)?;
        serde_json::from_slice::<Option<Vec<u32>>>(&out.stdout)
            .map(Option::unwrap_or_default)
            .map_err(|e| RuntimeError {
                verb: "ps",
                message: format!("parse the pid list: {e}"),
            })
    }

    /// `pause <id>` or `resume <id>`.
    pub(crate) fn pause_or_resume(
        &self,
        reaper: &Reaper,
        id: &str,
        bundle: &Path,
        pause: bool,
    ) -> Result<(), RuntimeError> {
        let verb = if pause { "pause" } else { "resume" };
        let mut c = self.command(bundle);
        c.args([verb, id]);
        self.run(reaper, bundle, verb, c, None).map(drop)
    }

    /// `update --resources - <id>` with the OCI `LinuxResources` JSON on stdin.
    pub(crate) fn update(
        &self,
        reaper: &Reaper,
        id: &str,
        bundle: &Path,
        resources: &[u8],
    ) -> Result<(), RuntimeError> {
        let mut c = self.command(bundle);
        c.args(["update", "--resources", "-", id]);
        c.stdin(Stdio::piped());
        self.run(reaper, bundle, "update", c, Some(resources))
            .map(drop)
    }

    /// `events --stats <id>`: runc's stats event, as JSON.
    pub(crate) fn stats(
        &self,
        reaper: &Reaper,
        id: &str,
        bundle: &Path,
    ) -> Result<serde_json::Value, RuntimeError> {
        let mut c = self.command(bundle);
        c.args(["events", "--stats", id]);
        let out = self.run(reaper, bundle, "events", c, None)?;
        serde_json::from_slice(&out.stdout).map_err(|e| RuntimeError {
            verb: "events",
            message: format!("parse the stats: {e}"),
        })
    }

    /// The arguments of a `delete --force` for a shim without a reaper
    /// (the `delete` action): run them with [`Command::output`].
    pub(crate) fn delete_command(&self, id: &str, bundle: &Path) -> Command {
        let mut c = self.command(bundle);
        c.args([OsString::from("delete"), "--force".into(), id.into()]);
        c
    }
}

/// The message of the last `"level":"error"` record in a runc JSON log.
pub(crate) fn last_error(log: &Path) -> Option<String> {
    last_error_in(&std::fs::read_to_string(log).ok()?)
}

/// [`last_error`] of the log's text.
pub(crate) fn last_error_in(text: &str) -> Option<String> {
    text.lines().rev().find_map(|line| {
        let v: serde_json::Value = serde_json::from_str(line).ok()?;
        (v.get("level")?.as_str()? == "error").then(|| v.get("msg")?.as_str().map(str::to_owned))?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_error_takes_the_last_error_record() {
        let dir = std::env::temp_dir().join(format!("corten-shim-log-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("log.json");
        std::fs::write(
            &log,
            concat!(
                r#"{"level":"error","msg":"first","time":"t"}"#,
                "\n",
                r#"{"level":"error","msg":"container \"x\" does not exist","time":"t"}"#,
                "\n",
                r#"{"level":"info","msg":"later info","time":"t"}"#,
                "\nnot json\n"
            ),
        )
        .unwrap();
        assert_eq!(
            last_error(&log).as_deref(),
            Some("container \"x\" does not exist")
        );
        assert_eq!(last_error(&dir.join("missing")), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn command_line_matches_runc_shim() {
        let rt = Runtime {
            binary: "/bin/corten".into(),
            root: "/run/x/ns".into(),
            systemd_cgroup: true,
            no_pivot: false,
            no_new_keyring: false,
        };
        let c = rt.delete_command("c1", Path::new("/b"));
        let args: Vec<_> = c
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            args,
            [
                "--root",
                "/run/x/ns",
                "--log",
                "/b/log.json",
                "--log-format",
                "json",
                "--systemd-cgroup",
                "delete",
                "--force",
                "c1"
            ]
        );
    }
}
