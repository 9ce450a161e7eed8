//! A bad-input catalogue, side by side with runc: malformed and hostile
//! configurations (`config`, `linux`), misuse of the command line (`cli`)
//! and damaged state (`state`), chosen from the integration tests'
//! catalogue (`integration-tests/tests/bad_input.rs`) where runc 1.1.5's
//! behaviour is the reference.
//!
//! Every case requires
//! 1. a non-zero exit, the exact code runc gives (1; 255 for `exec`),
//! 2. the words that name the problem on stderr, matched without regard to
//!    case and chosen from the words runc's own message has too (so the
//!    case passes on runc, which proves runc behaves so), and
//! 3. nothing left behind: no entry under `--root`, no cgroup for the
//!    bundle's `cgroupsPath`, no mount below the bundle, no process naming
//!    the case's directory, no pid file; a container the case made first
//!    (for a command to act on) is left as it was, then `delete --force`
//!    must remove all of it.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{ensure, Result};
use corten_testkit::{cgroup_dirs, mounts_under, processes_mentioning};

use super::Case;
use crate::bundle::{Bundle, Edited};
use crate::command::CmdOut;
use crate::ctx::{alive, Ctx};

mod cli;
mod config;
mod linux;
mod state;

/// Every bad-input case.
pub fn cases() -> Vec<Case> {
    let mut all = config::cases();
    all.extend(linux::cases());
    all.extend(cli::cases());
    all.extend(state::cases());
    all
}

/// Fail unless `out` exited `code` and its stderr holds every one of
/// `words` (case-insensitive; a log line's escaped quotes count as quotes).
fn expect_refusal(out: &CmdOut, code: i32, words: &[&str]) -> Result<()> {
    ensure!(out.code == code, "want exit {code}, got {}", out.describe());
    let text = out.stderr.replace("\\\"", "\"").to_lowercase();
    let missing: Vec<&str> = words
        .iter()
        .copied()
        .filter(|w| !text.contains(&w.to_lowercase()))
        .collect();
    ensure!(
        missing.is_empty(),
        "stderr lacks {missing:?}: {}",
        out.describe()
    );
    Ok(())
}

/// Fail if anything of the case is left: an entry under `--root`, a
/// process naming the case's directory and, for a bundle, its cgroup in
/// any hierarchy, a mount below it and the pid file of `id`.
fn nothing_left(cx: &Ctx, b: Option<&Bundle>, id: Option<&str>) -> Result<()> {
    let entries = cx.root_entries();
    ensure!(entries.is_empty(), "state left under --root: {entries:?}");
    let marker = format!("{}/", cx.dir.display());
    let procs = processes_mentioning(&marker);
    ensure!(procs.is_empty(), "processes left: {procs:?}");
    if let Some(b) = b {
        let cgroups = cgroup_dirs(b.cgroup_path());
        ensure!(cgroups.is_empty(), "cgroups left: {cgroups:?}");
        let mounts = mounts_under(b.path());
        ensure!(mounts.is_empty(), "mounts left: {mounts:?}");
    }
    if let Some(id) = id {
        let pid_file = cx.pid_file(id);
        ensure!(
            !pid_file.exists(),
            "pid file {} written",
            pid_file.display()
        );
    }
    Ok(())
}

/// `create` of the saved bundle `b` is refused (exit 1) with `words` and
/// leaves nothing.
fn refused_bundle(cx: &mut Ctx, b: &Bundle, words: &[&str]) -> Result<()> {
    let id = cx.new_id();
    let out = cx.create_as_is(b, &id)?;
    expect_refusal(&out, 1, words)?;
    nothing_left(cx, Some(b), Some(&id))
}

/// `create` of a bundle whose configuration `edit` changed is refused.
fn refused(
    cx: &mut Ctx,
    edit: impl FnOnce(&mut Bundle) -> &mut Edited,
    words: &[&str],
) -> Result<()> {
    let mut b = cx.bundle()?;
    edit(&mut b);
    b.save()?;
    refused_bundle(cx, &b, words)
}

/// `create` of a bundle that `prepare` changed on disk (a raw
/// `config.json`, a hostile rootfs) is refused; `prepare` saves the
/// bundle itself, before or after its changes.
fn refused_files(
    cx: &mut Ctx,
    prepare: impl FnOnce(&mut Bundle) -> Result<()>,
    words: &[&str],
) -> Result<()> {
    let mut b = cx.bundle()?;
    prepare(&mut b)?;
    refused_bundle(cx, &b, words)
}

/// `<runtime> --root <root> <args…>` is refused with exit `code` and
/// `words`, and leaves nothing (no bundle involved).
fn refused_cli(cx: &mut Ctx, args: &[&str], code: i32, words: &[&str]) -> Result<()> {
    let out = cx.rt(args)?;
    expect_refusal(&out, code, words)?;
    nothing_left(cx, None, None)
}

/// After a command refused on the container `id` (of bundle `b`, init
/// `pid`): the container is still there in status `want`, and
/// `delete --force` then removes all of it.
fn untouched_then_removed(cx: &mut Ctx, b: &Bundle, id: &str, pid: i32, want: &str) -> Result<()> {
    let entries = cx.root_entries();
    ensure!(
        entries == [id],
        "the refused command changed the entries under --root to {entries:?}"
    );
    let status = cx.status(id)?;
    ensure!(
        status == want,
        "the refused command changed the status from {want:?} to {status:?}"
    );
    let out = cx.rt(&["delete", "--force", id])?;
    ensure!(out.ok(), "delete --force afterwards: {}", out.describe());
    nothing_left(cx, Some(b), None)?;
    ensure!(!alive(pid), "the init {pid} outlived delete --force");
    Ok(())
}

/// `<root>/<id>/state.json`.
fn record(cx: &Ctx, id: &str) -> PathBuf {
    cx.root.join(id).join("state.json")
}

/// Remove whatever is at `path` (file, directory or symlink).
fn remove_any(path: &Path) -> Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path)?,
        Ok(_) => fs::remove_file(path)?,
        Err(_) => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(code: i32, stderr: &str) -> CmdOut {
        CmdOut {
            code,
            stdout: String::new(),
            stderr: stderr.to_owned(),
        }
    }

    #[test]
    fn refusal_matches_words_in_any_case_and_unescapes_quotes() {
        let line = r#"level=error msg="unknown signal \"FROB\": Invalid argument""#;
        assert!(expect_refusal(
            &out(1, line),
            1,
            &["unknown signal \"FROB\"", "invalid argument"]
        )
        .is_ok());
        assert!(expect_refusal(&out(1, line), 255, &["unknown signal"]).is_err());
        assert!(expect_refusal(&out(1, line), 1, &["container does not exist"]).is_err());
    }
}
