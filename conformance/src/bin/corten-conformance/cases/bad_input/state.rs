//! Damaged state: a container's `state.json` emptied, truncated, replaced
//! by a directory or removed, and entries under `--root` no container
//! stands behind.

use std::fs;
use std::path::Path;

use anyhow::{ensure, Result};

use super::{expect_refusal, nothing_left, record, remove_any, untouched_then_removed};
use crate::cases::runc::created;
use crate::cases::{case, Case};
use crate::ctx::{alive, Ctx};

const STATE: &str = "runtime.md#state, runc 1.1.5: a damaged state.json";
const RUNC_RECORD_REMOVED: &str = "runc 1.1's delete of a container whose state.json is \
    gone removes the container's directory and leaves its init and cgroups behind with no \
    record; delete --force then finds nothing";

pub fn cases() -> Vec<Case> {
    vec![
        case("bad-input.state.empty-record", STATE, |cx| {
            damaged(cx, |p| Ok(fs::write(p, "")?), &["state"], &["EOF"])
        }),
        case("bad-input.state.truncated-record", STATE, |cx| {
            damaged(
                cx,
                |p| Ok(fs::write(p, r#"{"id":"#)?),
                &["kill", "{id}", "KILL"],
                &["EOF"],
            )
        }),
        case("bad-input.state.record-a-directory", STATE, |cx| {
            let words = ["state.json: is a directory"];
            damaged(cx, record_to_directory, &["delete"], &words)
        }),
        case("bad-input.state.record-removed", STATE, |cx| {
            let words = ["container does not exist"];
            damaged(cx, |p| Ok(fs::remove_file(p)?), &["start"], &words)
        }),
        case("bad-input.state.entry-a-file", STATE, |cx| {
            ghost_file(cx, &["state", "ghost"])
        }),
        case("bad-input.state.entry-a-file-delete-force", STATE, |cx| {
            ghost_file(cx, &["delete", "--force", "ghost"])
        }),
        case(
            "bad-input.state.record-removed-then-delete",
            STATE,
            record_removed_delete,
        )
        .runc(RUNC_RECORD_REMOVED),
    ]
}

/// A created container's `state.json` is damaged by `damage`; `args`
/// (`{id}` replaced; the id appended when absent) must be refused with
/// exit 1 and `words`. With the record put back, the container must be
/// as it was, and `delete --force` must remove all of it.
fn damaged(
    cx: &mut Ctx,
    damage: fn(&Path) -> Result<()>,
    args: &[&str],
    words: &[&str],
) -> Result<()> {
    let (b, id) = created(cx)?;
    let pid = cx.pid(&id)?;
    let path = record(cx, &id);
    let saved = fs::read(&path)?;
    damage(&path)?;
    let mut argv: Vec<String> = args.iter().map(|a| a.replace("{id}", &id)).collect();
    if !argv.contains(&id) {
        argv.push(id.clone());
    }
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let out = cx.rt(&argv)?;
    let entry_kept = cx.root.join(&id).is_dir();
    if entry_kept {
        remove_any(&path)?;
        fs::write(&path, saved)?;
    }
    expect_refusal(&out, 1, words)?;
    ensure!(
        entry_kept,
        "the refused {} removed the container's directory",
        args[0]
    );
    ensure!(alive(pid), "the refused {} killed the init", args[0]);
    untouched_then_removed(cx, &b, &id, pid, "created")
}

fn record_to_directory(path: &Path) -> Result<()> {
    fs::remove_file(path)?;
    fs::create_dir(path)?;
    Ok(())
}

/// A regular file `ghost` under `--root`: `args` must be refused with the
/// path of the record it cannot read, and leave the file as it was.
fn ghost_file(cx: &mut Ctx, args: &[&str]) -> Result<()> {
    let ghost = cx.root.join("ghost");
    fs::write(&ghost, "x\n")?;
    let out = cx.rt(args)?;
    let kept = fs::read_to_string(&ghost).is_ok_and(|t| t == "x\n");
    fs::remove_file(&ghost)?;
    expect_refusal(&out, 1, &["ghost/state.json", "not a directory"])?;
    ensure!(kept, "the refused {} changed the entry", args[0]);
    nothing_left(cx, None, None)
}

/// `delete` of a container whose `state.json` was removed fails with
/// `container does not exist` and keeps the container's directory (so
/// that `delete --force` can still find and remove everything).
fn record_removed_delete(cx: &mut Ctx) -> Result<()> {
    let (b, id) = created(cx)?;
    let pid = cx.pid(&id)?;
    fs::remove_file(record(cx, &id))?;
    let out = cx.rt(&["delete", &id])?;
    expect_refusal(&out, 1, &["container does not exist"])?;
    ensure!(
        cx.root.join(&id).is_dir(),
        "the refused delete removed the container's directory; its init {pid} is left without a record"
    );
    let out = cx.rt(&["delete", "--force", &id])?;
    ensure!(out.ok(), "delete --force: {}", out.describe());
    nothing_left(cx, Some(&b), None)?;
    ensure!(!alive(pid), "the init {pid} outlived delete --force");
    Ok(())
}
