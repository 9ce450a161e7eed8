//! Misuse of the command line: unknown flags, missing or malformed ids,
//! missing containers, bad paths, and commands an existing container
//! refuses (a duplicate id, bad signals, `start` or `delete` of a running
//! container).

use std::fs;
use std::process::Command;

use anyhow::{ensure, Result};
use serde_json::json;

use super::{expect_refusal, nothing_left, refused_cli, untouched_then_removed};
use crate::cases::runc::{created, running};
use crate::cases::{case, Case};
use crate::ctx::Ctx;

const USAGE: &str = "runc 1.1.5: usage errors";
const IDS: &str = "runtime.md#state (id), runc 1.1.5: container ids";
const MISSING: &str = "runtime.md#operations (an id that does not exist)";

pub fn cases() -> Vec<Case> {
    vec![
        case("bad-input.cli.unknown-global-flag", USAGE, |cx| {
            let words = ["flag provided but not defined: -frobnicate"];
            refused_cli(cx, &["--frobnicate", "list"], 1, &words)
        }),
        case("bad-input.cli.id-looks-like-a-flag", USAGE, |cx| {
            refused_create_args(cx, &["-x"], &["flag provided but not defined: -x"])
        }),
        case("bad-input.cli.create-without-id", USAGE, |cx| {
            let words = [r#""create" requires exactly 1 argument(s)"#];
            refused_create_args(cx, &[], &words)
        }),
        case("bad-input.cli.kill-without-id", USAGE, |cx| {
            let words = [r#""kill" requires a minimum of 1 argument(s)"#];
            refused_cli(cx, &["kill"], 1, &words)
        }),
        case("bad-input.cli.delete-without-id", USAGE, |cx| {
            let words = [r#""delete" requires exactly 1 argument(s)"#];
            refused_cli(cx, &["delete"], 1, &words)
        }),
        case("bad-input.cli.id-climbing-out", IDS, |cx| {
            refused_create_args(cx, &["../x"], &["invalid container ID format"])
        }),
        case("bad-input.cli.id-with-a-slash", IDS, |cx| {
            refused_create_args(cx, &["a/b"], &["invalid container ID format"])
        }),
        case("bad-input.cli.id-dotdot", IDS, |cx| {
            refused_create_args(cx, &[".."], &["invalid container ID format"])
        }),
        case("bad-input.cli.id-with-a-space", IDS, |cx| {
            refused_create_args(cx, &["a b"], &["invalid container ID format"])
        }),
        case("bad-input.cli.id-empty", IDS, |cx| {
            refused_create_args(cx, &[""], &["container id"])
        }),
        case("bad-input.cli.state-of-id-climbing-out", IDS, |cx| {
            refused_cli(cx, &["state", "../x"], 1, &["invalid container ID format"])
        }),
        case("bad-input.cli.delete-force-of-id-climbing-out", IDS, |cx| {
            let args = ["delete", "--force", "../../etc"];
            refused_cli(cx, &args, 1, &["invalid container ID format"])
        }),
        case("bad-input.cli.exec-in-id-climbing-out", IDS, |cx| {
            let words = ["exec failed", "invalid container ID format"];
            refused_cli(cx, &["exec", "../x", "true"], 255, &words)
        }),
        case("bad-input.cli.state-of-missing-container", MISSING, |cx| {
            refused_cli(
                cx,
                &["state", "nosuchctr"],
                1,
                &["container does not exist"],
            )
        }),
        case("bad-input.cli.kill-of-missing-container", MISSING, |cx| {
            refused_cli(cx, &["kill", "nosuchctr"], 1, &["container does not exist"])
        }),
        case("bad-input.cli.delete-of-missing-container", MISSING, |cx| {
            refused_cli(
                cx,
                &["delete", "nosuchctr"],
                1,
                &["container does not exist"],
            )
        }),
        case(
            "bad-input.cli.bundle-missing",
            "runtime.md#create",
            bundle_missing,
        ),
        case(
            "bad-input.cli.pid-file-in-missing-dir",
            "runc 1.1.5: create --pid-file",
            |cx| {
                let pid_file = cx
                    .dir
                    .join("no-such-dir/pid")
                    .to_string_lossy()
                    .into_owned();
                let words = ["no-such-dir", "no such file or directory"];
                refused_create_args(cx, &["--pid-file", &pid_file, "pidfile-ctr"], &words)
            },
        ),
        case(
            "bad-input.cli.console-socket-without-terminal",
            "runc 1.1.5: create --console-socket",
            |cx| {
                let socket = cx.dir.join("no-such.sock").to_string_lossy().into_owned();
                let words = [
                    "cannot use console socket if",
                    "will not detach or allocate tty",
                ];
                refused_create_args(cx, &["--console-socket", &socket, "socket-ctr"], &words)
            },
        ),
        case(
            "bad-input.cli.console-socket-missing",
            "runc 1.1.5: create --console-socket",
            console_socket_missing,
        ),
        case(
            "bad-input.cli.root-a-file",
            "runc 1.1.5: --root",
            root_a_file,
        ),
        case(
            "bad-input.cli.log-in-missing-dir",
            "runc 1.1.5: --log",
            |cx| {
                let log = cx
                    .dir
                    .join("no-such-dir/log")
                    .to_string_lossy()
                    .into_owned();
                let words = ["no-such-dir/log", "no such file or directory"];
                refused_cli(cx, &["--log", &log, "list"], 1, &words)?;
                ensure!(
                    !cx.dir.join("no-such-dir").exists(),
                    "--log made the missing directory"
                );
                Ok(())
            },
        ),
        case(
            "bad-input.cli.create-duplicate-id",
            "runtime.md#create (a unique id)",
            |cx| {
                let words = ["container with given ID already exists"];
                refused_on(
                    cx,
                    "created",
                    &["create", "--bundle", "{bundle}", "{id}"],
                    &words,
                )
            },
        ),
        case("bad-input.cli.kill-unknown-signal", KILL, |cx| {
            let words = [r#"unknown signal "FROBNICATE""#];
            refused_on(cx, "created", &["kill", "{id}", "FROBNICATE"], &words)
        }),
        case("bad-input.cli.kill-all-unknown-signal", KILL, |cx| {
            let words = [r#"unknown signal "FROB""#];
            refused_on(cx, "running", &["kill", "--all", "{id}", "FROB"], &words)
        }),
        case("bad-input.cli.kill-signal-99999", KILL, |cx| {
            let words = ["unable to signal init: invalid argument"];
            refused_on(cx, "running", &["kill", "{id}", "99999"], &words)
        }),
        case(
            "bad-input.cli.start-of-running-container",
            "runtime.md#start",
            |cx| {
                let words = ["cannot start an already running container"];
                refused_on(cx, "running", &["start", "{id}"], &words)
            },
        ),
        case(
            "bad-input.cli.delete-of-running-container",
            "runtime.md#delete",
            |cx| {
                let words = ["cannot delete container", "that is not stopped: running"];
                refused_on(cx, "running", &["delete", "{id}"], &words)
            },
        ),
    ]
}

const KILL: &str = "runtime.md#kill, runc 1.1.5: kill";

/// `create --bundle <a bundle> <args…>` is refused (exit 1) with `words`
/// and leaves nothing.
fn refused_create_args(cx: &mut Ctx, args: &[&str], words: &[&str]) -> Result<()> {
    let b = cx.bundle()?;
    b.save()?;
    let bundle = b.path().to_string_lossy().into_owned();
    let mut argv = vec!["create", "--bundle", &bundle];
    argv.extend_from_slice(args);
    let out = cx.rt(&argv)?;
    expect_refusal(&out, 1, words)?;
    nothing_left(cx, Some(&b), None)
}

/// A container in status `status` (`created` or `running`) is made, then
/// `args` (`{id}`, `{bundle}` replaced) must be refused with exit 1 and
/// `words`, leaving the container as it was.
fn refused_on(cx: &mut Ctx, status: &str, args: &[&str], words: &[&str]) -> Result<()> {
    let (b, id) = if status == "running" {
        running(cx)?
    } else {
        created(cx)?
    };
    let pid = cx.pid(&id)?;
    let bundle = b.path().to_string_lossy().into_owned();
    let argv: Vec<String> = args
        .iter()
        .map(|a| a.replace("{id}", &id).replace("{bundle}", &bundle))
        .collect();
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let out = cx.rt(&argv)?;
    expect_refusal(&out, 1, words)?;
    untouched_then_removed(cx, &b, &id, pid, status)
}

fn bundle_missing(cx: &mut Ctx) -> Result<()> {
    let bundle = cx.dir.join("no-such-bundle").to_string_lossy().into_owned();
    let words = ["no-such-bundle", "no such file or directory"];
    refused_cli(cx, &["create", "--bundle", &bundle, "ctr"], 1, &words)
}

fn console_socket_missing(cx: &mut Ctx) -> Result<()> {
    let mut b = cx.bundle()?;
    b.set("/process/terminal", json!(true));
    b.save()?;
    let bundle = b.path().to_string_lossy().into_owned();
    let socket = cx.dir.join("no-such.sock").to_string_lossy().into_owned();
    let argv = [
        "create",
        "--bundle",
        &bundle,
        "--console-socket",
        &socket,
        "tty-ctr",
    ];
    let out = cx.rt(&argv)?;
    expect_refusal(&out, 1, &["no-such.sock", "no such file or directory"])?;
    nothing_left(cx, Some(&b), None)
}

/// `--root` naming a regular file (the bundle's `config.json`).
fn root_a_file(cx: &mut Ctx) -> Result<()> {
    let b = cx.bundle()?;
    b.save()?;
    let config = b.path().join("config.json");
    let before = fs::read(&config)?;
    let mut cmd = Command::new(&cx.runtime.bin);
    cmd.arg("--root")
        .arg(&config)
        .arg("create")
        .arg("--bundle")
        .arg(b.path())
        .arg("ctr");
    let out = cx.exec(cmd)?;
    expect_refusal(&out, 1, &["mkdir", "config.json"])?;
    ensure!(
        fs::read(&config).ok() == Some(before),
        "the refused create changed the file given as --root"
    );
    nothing_left(cx, Some(&b), None)
}
