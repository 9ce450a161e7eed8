//! OCI hooks: running one hook with the container state on its stdin, its
//! `args`, `env` and `timeout`.
//!
//! Where each kind runs (runtime-spec config.md, "POSIX-platform Hooks"):
//!
//! | hook | run by | namespace | on failure |
//! |---|---|---|---|
//! | `prestart`, `createRuntime` | `create` (parent), after the namespaces exist, before pivot_root | runtime | create fails, everything undone |
//! | `createContainer` | the init, after the mounts, before pivot_root | container | create fails |
//! | `startContainer` | the init, after `start`, before the user process | container | the container fails to start |
//! | `poststart` | `start`, after the process started | runtime | warning, the rest goes on |
//! | `poststop` | `delete`, after the container is gone | runtime | warning, the rest goes on |

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::spec::Hook;

/// A hook that failed.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// Could not be started.
    #[error("error running {kind} hook #{index} {path}: {source}")]
    Spawn {
        /// Hook kind.
        kind: &'static str,
        /// Position in its list.
        index: usize,
        /// Executable.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// Ran and failed.
    #[error("error running {kind} hook #{index} {path}: {status}{output}")]
    Failed {
        /// Hook kind.
        kind: &'static str,
        /// Position in its list.
        index: usize,
        /// Executable.
        path: String,
        /// Exit status text.
        status: String,
        /// `, stdout: …, stderr: …` when there was output.
        output: String,
    },
    /// Did not finish in time; it was killed.
    #[error("error running {kind} hook #{index} {path}: timed out after {secs}s")]
    Timeout {
        /// Hook kind.
        kind: &'static str,
        /// Position in its list.
        index: usize,
        /// Executable.
        path: String,
        /// The timeout.
        secs: i64,
    },
}

fn one_line(b: &[u8]) -> String {
    String::from_utf8_lossy(b).trim().replace('\n', "\\n")
}

/// Runs `hook` with `state` (the OCI state JSON) on its stdin; waits at most
/// `timeout` seconds (killing it then). Output is collected for the error.
pub fn run(kind: &'static str, index: usize, hook: &Hook, state: &str) -> Result<(), HookError> {
    let path = hook.path.clone();
    let spawn_err = |source| HookError::Spawn {
        kind,
        index,
        path: path.clone(),
        source,
    };
    let mut cmd = Command::new(&hook.path);
    if let Some((argv0, rest)) = hook.args.split_first() {
        std::os::unix::process::CommandExt::arg0(&mut cmd, argv0);
        cmd.args(rest);
    }
    cmd.env_clear()
        .envs(hook.env.iter().filter_map(|e| e.split_once('=')))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(spawn_err)?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin closes the pipe: not an error.
        let _ = stdin.write_all(state.as_bytes());
    }
    let deadline = hook
        .timeout
        .filter(|t| *t > 0)
        .map(|t| Instant::now() + Duration::from_secs(t.unsigned_abs()));
    let status = loop {
        match child.try_wait().map_err(spawn_err)? {
            Some(s) => break s,
            None if deadline.is_some_and(|d| Instant::now() >= d) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(HookError::Timeout {
                    kind,
                    index,
                    path,
                    secs: hook.timeout.unwrap_or_default(),
                });
            }
            None => std::thread::sleep(Duration::from_millis(2)),
        }
    };
    if status.success() {
        return Ok(());
    }
    let mut out = Vec::new();
    let mut err = Vec::new();
    if let Some(mut o) = child.stdout.take() {
        let _ = o.read_to_end(&mut out);
    }
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_end(&mut err);
    }
    let mut output = String::new();
    if !out.is_empty() {
        output.push_str(&format!(", stdout: {}", one_line(&out)));
    }
    if !err.is_empty() {
        output.push_str(&format!(", stderr: {}", one_line(&err)));
    }
    Err(HookError::Failed {
        kind,
        index,
        path,
        status: status.to_string(),
        output,
    })
}

/// Runs every hook of a list in order; stops at the first failure.
pub fn run_all(kind: &'static str, hooks: &[Hook], state: &str) -> Result<(), HookError> {
    for (i, h) in hooks.iter().enumerate() {
        run(kind, i, h, state)?;
    }
    Ok(())
}

/// Runs every hook of a list, logging failures as warnings (poststart,
/// poststop).
pub fn run_all_warn(kind: &'static str, hooks: &[Hook], state: &str) {
    for (i, h) in hooks.iter().enumerate() {
        if let Err(e) = run(kind, i, h, state) {
            crate::logging::warn(&e.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str, timeout: Option<i64>) -> Hook {
        Hook {
            path: "/bin/sh".into(),
            args: vec!["sh".into(), "-c".into(), script.into()],
            env: vec!["X=1".into()],
            timeout,
        }
    }

    #[test]
    fn state_on_stdin_args_and_env() {
        let dir = std::env::temp_dir().join(format!("corten-hook-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("out");
        let script = format!("cat > {0}; echo \" $X $0\" >> {0}", out.display());
        run("test", 0, &sh(&script, None), "{\"id\":\"c\"}").unwrap();
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "{\"id\":\"c\"} 1 sh\n"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn failure_and_timeout() {
        let e = run("prestart", 2, &sh("echo bad >&2; exit 3", None), "{}").unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("prestart hook #2"), "{msg}");
        assert!(msg.contains("stderr: bad"), "{msg}");
        let t = Instant::now();
        let e = run("poststop", 0, &sh("sleep 10", Some(1)), "{}").unwrap_err();
        assert!(matches!(e, HookError::Timeout { .. }));
        assert!(t.elapsed() < Duration::from_secs(5));
        assert!(run(
            "x",
            0,
            &Hook {
                path: "/no/such".into(),
                ..sh("", None)
            },
            "{}"
        )
        .is_err());
    }
}
