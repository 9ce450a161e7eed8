//! Running runtime commands with a deadline and collecting their output.

use std::fs::{self, File};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

/// How long any runtime command may take.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// What a command did.
#[derive(Debug, Clone)]
pub struct CmdOut {
    /// Exit code, `128 + signal` when killed, `-1` when it timed out.
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl CmdOut {
    /// Exit code 0.
    pub fn ok(&self) -> bool {
        self.code == 0
    }

    /// One line describing the result, for failure messages.
    pub fn describe(&self) -> String {
        let err = self.stderr.trim().replace('\n', " | ");
        let err: String = err.chars().take(300).collect();
        match self.code {
            -1 => format!("timed out after {}s; stderr: {err}", TIMEOUT.as_secs()),
            c => format!("exit {c}; stderr: {err}"),
        }
    }
}

/// Run `cmd` with stdin from `/dev/null` and stdout/stderr into
/// `<out_base>.out` / `.err` (files, not pipes: a container may inherit
/// them and outlive the command). After `timeout`, the command is killed
/// (by its own pid) and the result has code -1.
pub fn run(mut cmd: Command, out_base: &Path, timeout: Duration) -> Result<CmdOut> {
    let out_path = out_base.with_extension("out");
    let err_path = out_base.with_extension("err");
    let stdout =
        File::create(&out_path).with_context(|| format!("create {}", out_path.display()))?;
    let stderr =
        File::create(&err_path).with_context(|| format!("create {}", err_path.display()))?;
    cmd.stdin(Stdio::null()).stdout(stdout).stderr(stderr);
    let mut child = cmd.spawn().with_context(|| format!("spawn {cmd:?}"))?;
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    let code = loop {
        if let Some(status) = child.try_wait().context("wait for runtime command")? {
            break status
                .code()
                .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break -1;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    };
    Ok(CmdOut {
        code,
        stdout: read_lossy(&out_path),
        stderr: read_lossy(&err_path),
    })
}

/// A file's content as (lossy) UTF-8, empty if unreadable.
pub fn read_lossy(path: &Path) -> String {
    fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}
