//! Bad input in config.md's fields: `config.json` itself, `root`,
//! `process` (with `rlimits`), `hostname`, `mounts` and `hooks`.

use std::fs;
use std::os::unix::fs::symlink;

use anyhow::Result;
use serde_json::json;

use super::{refused, refused_files};
use crate::bundle::{Bundle, Edited, CONTAINER_PATH};
use crate::cases::{case, Case};

pub fn cases() -> Vec<Case> {
    vec![
        case("bad-input.config.truncated-json", "config.md", |cx| {
            refused_files(cx, raw(r#"{ "ociVersion": "1.0.2", "process": "#), &["EOF"])
        }),
        case("bad-input.config.empty-file", "config.md", |cx| {
            refused_files(cx, raw(""), &["EOF"])
        }),
        case("bad-input.root.missing", "config.md#root", |cx| {
            refused(cx, |b| b.remove("/root"), &["root must be specified"])
        }),
        case("bad-input.root.path-missing", "config.md#root", |cx| {
            let words = [
                "invalid rootfs",
                "no-such-rootfs: no such file or directory",
            ];
            refused(cx, |b| b.set("/root/path", json!("no-such-rootfs")), &words)
        }),
        case("bad-input.root.relative-symlink", "config.md#root", |cx| {
            let words = ["invalid rootfs: not an absolute path, or a symlink"];
            refused_files(cx, |b| replace_rootfs(b, "real"), &words)
        }),
        case("bad-input.root.symlink-loop", "config.md#root", |cx| {
            let words = ["invalid rootfs", "too many levels of symbolic links"];
            refused_files(cx, |b| replace_rootfs(b, "rootfs"), &words)
        }),
        case("bad-input.process.missing", "config.md#process", |cx| {
            let words = ["process property must not be empty"];
            refused(cx, |b| b.remove("/process"), &words)
        }),
        case("bad-input.process.args-empty", "config.md#process", |cx| {
            refused(cx, |b| b.args(&[]), &["args must not be empty"])
        }),
        case(
            "bad-input.process.binary-missing",
            "config.md#process",
            |cx| {
                let words = [
                    r#"exec: "/bin/does-not-exist""#,
                    "no such file or directory",
                ];
                refused(cx, |b| b.args(&["/bin/does-not-exist"]), &words)
            },
        ),
        case(
            "bad-input.process.binary-not-in-path",
            "config.md#process",
            |cx| {
                let words = [r#""frobnicate-cmd""#, "executable file not found in $PATH"];
                refused(cx, |b| b.args(&["frobnicate-cmd"]), &words)
            },
        ),
        case(
            "bad-input.process.binary-a-directory",
            "config.md#process",
            |cx| {
                let words = [r#"exec: "/tmp": permission denied"#];
                refused(cx, |b| b.args(&["/tmp"]), &words)
            },
        ),
        case("bad-input.process.cwd-a-file", "config.md#process", |cx| {
            let words = ["/etc/passwd", "not a directory"];
            refused(cx, |b| b.set("/process/cwd", json!("/etc/passwd")), &words)
        }),
        case(
            "bad-input.process.env-without-equals",
            "config.md#process",
            |cx| {
                let env = json!([CONTAINER_PATH, "FOO"]);
                refused(cx, |b| b.set("/process/env", env), &["env", r#""FOO""#])
            },
        ),
        case(
            "bad-input.process.terminal-without-console-socket",
            "config.md#process",
            |cx| {
                let words = [
                    "cannot allocate tty if",
                    "will detach without setting console socket",
                ];
                refused(cx, |b| b.set("/process/terminal", json!(true)), &words)
            },
        ),
        case(
            "bad-input.process.capabilities-a-string",
            "config.md#linux-process",
            |cx| {
                let caps = json!("CAP_KILL");
                refused(
                    cx,
                    |b| b.set("/process/capabilities", caps),
                    &["capabilities", "string"],
                )
            },
        ),
        case(
            "bad-input.process.70000-additional-gids",
            "config.md#posix-platform-user",
            |cx| {
                let gids = json!((0..70_000).collect::<Vec<u32>>());
                let words = ["setgroups: invalid argument"];
                refused(cx, |b| b.set("/process/user/additionalGids", gids), &words)
            },
        ),
        case(
            "bad-input.process.oom-score-adj-5000",
            "config.md#linux-process",
            |cx| {
                let words = ["oom_score_adj", "invalid argument"];
                refused(cx, |b| b.set("/process/oomScoreAdj", json!(5000)), &words)
            },
        ),
        case(
            "bad-input.rlimits.soft-above-hard",
            "config.md#posix-process",
            |cx| {
                let rlimits = json!([{ "type": "RLIMIT_NOFILE", "soft": 100, "hard": 10 }]);
                refused(cx, |b| b.set("/process/rlimits", rlimits), &["rlimit"])
            },
        ),
        case(
            "bad-input.rlimits.above-nr-open",
            "config.md#posix-process",
            |cx| {
                let max = json!(u64::MAX);
                let rlimits = json!([{ "type": "RLIMIT_NOFILE", "soft": max, "hard": max }]);
                let words = ["error setting rlimit type", "operation not permitted"];
                refused(cx, |b| b.set("/process/rlimits", rlimits), &words)
            },
        ),
        case("bad-input.hostname.too-long", "config.md#hostname", |cx| {
            let name = json!("h".repeat(100));
            refused(
                cx,
                |b| b.set("/hostname", name),
                &["sethostname: invalid argument"],
            )
        }),
        case("bad-input.mounts.type-unknown", "config.md#mounts", |cx| {
            let words = ["/mnt", "no such device"];
            refused(cx, |b| b.mount("/mnt", "nosuchfs", "none", &[]), &words)
        }),
        case(
            "bad-input.mounts.option-unknown",
            "config.md#mounts",
            |cx| {
                let words = ["frobnicate", "invalid argument"];
                refused(
                    cx,
                    |b| b.mount("/mnt", "tmpfs", "tmpfs", &["frobnicate"]),
                    &words,
                )
            },
        ),
        case(
            "bad-input.mounts.bind-source-missing",
            "config.md#mounts",
            |cx| {
                let source = "/nonexistent-corten-conformance";
                let words = [source, "no such file or directory"];
                refused(cx, |b| b.mount("/mnt", "bind", source, &["bind"]), &words)
            },
        ),
        case("bad-input.mounts.inside-proc", "config.md#mounts", |cx| {
            let words = ["cannot be mounted because it is inside /proc"];
            refused(cx, |b| bind_config_at(b, "/proc/sys/kernel/shmmax"), &words)
        }),
        case(
            "bad-input.mounts.symlink-into-proc",
            "config.md#mounts",
            |cx| {
                let words = ["cannot be mounted because it is inside /proc"];
                refused_files(cx, symlink_into_proc, &words)
            },
        ),
        case(
            "bad-input.mounts.tmpfs-on-a-file",
            "config.md#mounts",
            |cx| {
                let words = ["/etc/passwd", "not a directory"];
                refused(
                    cx,
                    |b| b.mount("/etc/passwd", "tmpfs", "tmpfs", &[]),
                    &words,
                )
            },
        ),
        case("bad-input.mounts.below-a-file", "config.md#mounts", |cx| {
            let words = ["/etc/passwd", "not a directory"];
            refused(
                cx,
                |b| b.mount("/etc/passwd/x", "tmpfs", "tmpfs", &[]),
                &words,
            )
        }),
        case("bad-input.mounts.symlink-loop", "config.md#mounts", |cx| {
            let words = ["/loop/x", "too many levels of symbolic links"];
            refused_files(cx, symlink_loop_mount, &words)
        }),
        case(
            "bad-input.hooks.path-relative",
            "config.md#posix-platform-hooks",
            |cx| {
                let hooks = json!({ "prestart": [{ "path": "bin/true" }] });
                refused(cx, |b| b.set("/hooks", hooks), &["hook", "bin/true"])
            },
        ),
        case(
            "bad-input.hooks.path-a-directory",
            "config.md#posix-platform-hooks",
            |cx| {
                let hooks = json!({ "prestart": [{ "path": "/tmp" }] });
                let words = ["error running hook #0", "/tmp: permission denied"];
                refused(cx, |b| b.set("/hooks", hooks), &words)
            },
        ),
        case(
            "bad-input.hooks.create-runtime-fails",
            "config.md#createruntime-hooks",
            |cx| {
                let hooks = json!({ "createRuntime": [{ "path": "/bin/false" }] });
                let words = ["error running hook #0", "exit status 1"];
                refused(cx, |b| b.set("/hooks", hooks), &words)
            },
        ),
        case(
            "bad-input.hooks.timeout-zero",
            "config.md#posix-platform-hooks",
            |cx| {
                let hooks = json!({ "prestart": [{ "path": "/bin/true", "timeout": 0 }] });
                refused(cx, |b| b.set("/hooks", hooks), &["hook", "timeout"])
            },
        ),
    ]
}

/// Save the bundle, then replace its `config.json` by `text`.
fn raw(text: &'static str) -> impl FnOnce(&mut Bundle) -> Result<()> {
    move |b| {
        b.save()?;
        fs::write(b.path().join("config.json"), text)?;
        Ok(())
    }
}

/// Save the bundle, move its rootfs to `real` and put a symlink to
/// `target` at `rootfs`.
fn replace_rootfs(b: &mut Bundle, target: &str) -> Result<()> {
    b.save()?;
    let rootfs = b.rootfs();
    fs::rename(&rootfs, b.path().join("real"))?;
    symlink(target, &rootfs)?;
    Ok(())
}

/// A bind mount of the bundle's `config.json` at `dest`.
fn bind_config_at<'a>(b: &'a mut Bundle, dest: &str) -> &'a mut Edited {
    let source = b.path().join("config.json").to_string_lossy().into_owned();
    b.mount(dest, "bind", &source, &["bind"])
}

/// `/evil` in the rootfs points to `/proc/sys/kernel`; a bind mount goes
/// to `/evil/shmmax`.
fn symlink_into_proc(b: &mut Bundle) -> Result<()> {
    symlink("/proc/sys/kernel", b.rootfs().join("evil"))?;
    bind_config_at(b, "/evil/shmmax");
    b.save()
}

/// `/loop` in the rootfs points to itself; a tmpfs goes to `/loop/x`.
fn symlink_loop_mount(b: &mut Bundle) -> Result<()> {
    symlink("loop", b.rootfs().join("loop"))?;
    b.mount("/loop/x", "tmpfs", "tmpfs", &[]);
    b.save()
}
