//! config-linux.md#seccomp: the filter is installed and each action does
//! what libseccomp's constant means, observed by the checker making a raw
//! `mkdirat(2)` on a tmpfs `/tmp` (a call no runtime makes after
//! installing the filter).

use anyhow::Result;
use corten_conformance::expect::{Check, SyscallArg, SyscallOutcome};
use serde_json::{json, Value};

use super::{case, Case};
use crate::bundle::Bundle;
use crate::ctx::{ensure_err, Ctx};

pub fn cases() -> Vec<Case> {
    vec![
        case(
            "config-linux.seccomp.installed",
            "config-linux.md#seccomp",
            installed,
        ),
        case(
            "config-linux.seccomp.absent-when-unset",
            "config-linux.md#seccomp",
            absent,
        ),
        case(
            "config-linux.seccomp.errno-default-eperm",
            "config-linux.md#seccomp (errnoRet)",
            errno_default,
        ),
        case(
            "config-linux.seccomp.errno-ret",
            "config-linux.md#seccomp (errnoRet)",
            errno_ret,
        ),
        case(
            "config-linux.seccomp.kill",
            "config-linux.md#seccomp (SCMP_ACT_KILL)",
            |cx| killed(cx, "SCMP_ACT_KILL"),
        ),
        case(
            "config-linux.seccomp.kill-process",
            "config-linux.md#seccomp (SCMP_ACT_KILL_PROCESS)",
            |cx| killed(cx, "SCMP_ACT_KILL_PROCESS"),
        ),
        case(
            "config-linux.seccomp.kill-thread",
            "config-linux.md#seccomp (SCMP_ACT_KILL_THREAD)",
            |cx| killed(cx, "SCMP_ACT_KILL_THREAD"),
        ),
        case(
            "config-linux.seccomp.trap",
            "config-linux.md#seccomp (SCMP_ACT_TRAP)",
            |cx| killed(cx, "SCMP_ACT_TRAP"),
        ),
        case(
            "config-linux.seccomp.trace-without-tracer",
            "config-linux.md#seccomp (SCMP_ACT_TRACE)",
            trace,
        ),
        case(
            "config-linux.seccomp.log",
            "config-linux.md#seccomp (SCMP_ACT_LOG)",
            log,
        ),
        case(
            "config-linux.seccomp.args-eq",
            "config-linux.md#seccomp (args, SCMP_CMP_EQ)",
            args_eq,
        ),
        case(
            "config-linux.seccomp.args-masked-eq",
            "config-linux.md#seccomp (args, SCMP_CMP_MASKED_EQ)",
            args_masked_eq,
        ),
        case(
            "config-linux.seccomp.without-no-new-privileges",
            "config-linux.md#seccomp, config.md#linux-process",
            without_nnp,
        ),
        case(
            "config-linux.seccomp.non-root-user",
            "config-linux.md#seccomp, config.md#posix-platform-user",
            non_root,
        ),
        case(
            "config-linux.seccomp.unknown-action",
            "config.md#valid-values",
            unknown_action,
        ),
    ]
}

const AT_FDCWD: i64 = -100;

/// `mkdirat(AT_FDCWD, path, mode)` with the expected outcome.
fn mkdirat(path: &str, mode: u64, outcome: SyscallOutcome) -> Check {
    Check::Syscall {
        nr: libc::SYS_mkdirat,
        args: vec![
            SyscallArg::Int(u64::from_ne_bytes(AT_FDCWD.to_ne_bytes())),
            SyscallArg::Str(path.to_owned()),
            SyscallArg::Int(mode),
        ],
        outcome,
    }
}

/// A bundle with a tmpfs `/tmp` and a filter allowing everything but `rules`.
fn filtered(cx: &mut Ctx, rules: Value) -> Result<Bundle> {
    let mut b = cx.bundle()?;
    b.mount("/tmp", "tmpfs", "tmpfs", &["size=1024k"]);
    b.set(
        "/linux/seccomp",
        json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": rules
        }),
    );
    Ok(b)
}

fn rule(action: &str) -> Value {
    json!([{ "names": ["mkdirat", "mkdir"], "action": action }])
}

fn installed(cx: &mut Ctx) -> Result<()> {
    let mut b = filtered(cx, rule("SCMP_ACT_ERRNO"))?;
    b.expect("seccomp filter mode", Check::SeccompMode { mode: 2 });
    cx.run_checks(&b)
}

fn absent(cx: &mut Ctx) -> Result<()> {
    let mut b = cx.bundle()?;
    b.expect("no seccomp filter", Check::SeccompMode { mode: 0 });
    cx.run_checks(&b)
}

fn errno_default(cx: &mut Ctx) -> Result<()> {
    let mut b = filtered(cx, rule("SCMP_ACT_ERRNO"))?;
    b.expect(
        "mkdirat fails with EPERM",
        mkdirat("/tmp/d", 0o755, SyscallOutcome::Errno(libc::EPERM)),
    );
    cx.run_checks(&b)
}

fn errno_ret(cx: &mut Ctx) -> Result<()> {
    let mut r = rule("SCMP_ACT_ERRNO");
    r[0]["errnoRet"] = json!(libc::EXDEV);
    let mut b = filtered(cx, r)?;
    b.expect(
        "mkdirat fails with EXDEV",
        mkdirat("/tmp/d", 0o755, SyscallOutcome::Errno(libc::EXDEV)),
    );
    cx.run_checks(&b)
}

fn killed(cx: &mut Ctx, action: &str) -> Result<()> {
    let mut b = filtered(cx, rule(action))?;
    b.expect(
        "mkdirat raises SIGSYS",
        mkdirat("/tmp/d", 0o755, SyscallOutcome::Signal(libc::SIGSYS)),
    );
    cx.run_checks(&b)
}

fn trace(cx: &mut Ctx) -> Result<()> {
    let mut b = filtered(cx, rule("SCMP_ACT_TRACE"))?;
    // seccomp(2): with no tracer attached, the call fails with ENOSYS.
    b.expect(
        "mkdirat fails with ENOSYS",
        mkdirat("/tmp/d", 0o755, SyscallOutcome::Errno(libc::ENOSYS)),
    );
    cx.run_checks(&b)
}

fn log(cx: &mut Ctx) -> Result<()> {
    let mut b = filtered(cx, rule("SCMP_ACT_LOG"))?;
    b.expect(
        "mkdirat allowed",
        mkdirat("/tmp/d", 0o755, SyscallOutcome::NotErrno(libc::EPERM)),
    );
    b.expect(
        "the directory exists",
        Check::Exists {
            path: "/tmp/d".into(),
            kind: None,
        },
    );
    cx.run_checks(&b)
}

fn args_eq(cx: &mut Ctx) -> Result<()> {
    let mut r = rule("SCMP_ACT_ERRNO");
    r[0]["args"] = json!([{ "index": 2, "value": 0o711, "op": "SCMP_CMP_EQ" }]);
    let mut b = filtered(cx, r)?;
    b.expect(
        "mode 0711 refused",
        mkdirat("/tmp/a", 0o711, SyscallOutcome::Errno(libc::EPERM)),
    );
    b.expect(
        "mode 0755 allowed",
        mkdirat("/tmp/b", 0o755, SyscallOutcome::NotErrno(libc::EPERM)),
    );
    b.expect(
        "/tmp/b made",
        Check::Exists {
            path: "/tmp/b".into(),
            kind: None,
        },
    );
    cx.run_checks(&b)
}

fn args_masked_eq(cx: &mut Ctx) -> Result<()> {
    let mut r = rule("SCMP_ACT_ERRNO");
    r[0]["args"] =
        json!([{ "index": 2, "value": 0o070, "valueTwo": 0o070, "op": "SCMP_CMP_MASKED_EQ" }]);
    let mut b = filtered(cx, r)?;
    b.expect(
        "group rwx refused",
        mkdirat("/tmp/a", 0o775, SyscallOutcome::Errno(libc::EPERM)),
    );
    b.expect(
        "group r-x allowed",
        mkdirat("/tmp/b", 0o755, SyscallOutcome::NotErrno(libc::EPERM)),
    );
    cx.run_checks(&b)
}

fn without_nnp(cx: &mut Ctx) -> Result<()> {
    let mut b = filtered(cx, rule("SCMP_ACT_ERRNO"))?;
    b.set("/process/noNewPrivileges", json!(false));
    b.expect("no_new_privs unset", Check::NoNewPrivs { set: false });
    b.expect("seccomp filter mode", Check::SeccompMode { mode: 2 });
    b.expect(
        "mkdirat fails with EPERM",
        mkdirat("/tmp/d", 0o755, SyscallOutcome::Errno(libc::EPERM)),
    );
    cx.run_checks(&b)
}

fn non_root(cx: &mut Ctx) -> Result<()> {
    let mut b = filtered(cx, rule("SCMP_ACT_ERRNO"))?;
    b.set("/process/noNewPrivileges", json!(false));
    b.set("/process/user", json!({ "uid": 1000, "gid": 1000 }));
    b.expect(
        "ids",
        Check::Ids {
            uid: 1000,
            gid: 1000,
        },
    );
    b.expect(
        "mkdirat fails with EPERM",
        mkdirat("/tmp/d", 0o755, SyscallOutcome::Errno(libc::EPERM)),
    );
    cx.run_checks(&b)
}

fn unknown_action(cx: &mut Ctx) -> Result<()> {
    let b = filtered(cx, rule("SCMP_ACT_NO_SUCH_ACTION"))?;
    let id = cx.new_id();
    ensure_err(
        &cx.create(&b, &id)?,
        "create with an unknown seccomp action",
    )
}
