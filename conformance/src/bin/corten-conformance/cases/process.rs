//! config.md#process, #posix-process, #linux-process, #user, #hostname,
//! #domainname: what the container process must look like from inside.

use std::io::Write;
use std::os::unix::process::CommandExt;

use anyhow::Result;
use corten_conformance::expect::Check;
use corten_conformance::CHECKER_IN_ROOTFS;
use serde_json::json;

use super::{case, Case};
use crate::bundle::{Bundle, CONTAINER_PATH};
use crate::ctx::{checker_verdict, ensure_err, Ctx};

pub fn cases() -> Vec<Case> {
    vec![
        case("config.process.args", "config.md#process (args)", args),
        case("config.process.args-path-lookup", "config.md#process (args: execvp file)", args_path_lookup),
        case("config.process.env", "config.md#process (env)", env),
        case("config.process.env-runtime-not-leaked", "config.md#process (env: environ)", env_not_leaked),
        case("config.process.cwd", "config.md#process (cwd)", cwd),
        case("config.process.terminal-false", "config.md#process (terminal)", terminal_false),
        case("config.process.console-size-ignored", "config.md#process (consoleSize)", console_size_ignored),
        case("config.process.user.uid-gid", "config.md#posix-platform-user", user_ids),
        case("config.process.user.uid-without-passwd-entry", "config.md#posix-platform-user", uid_without_entry),
        case("config.process.user.additional-gids", "config.md#posix-platform-user", additional_gids),
        case("config.process.user.umask", "config.md#posix-platform-user (umask)", umask),
        case("config.process.user.umask-unset", "config.md#posix-platform-user (umask)", umask_unset).runc(
            "runc 1.1 sets umask 0022 when process.user.umask is unset instead of keeping the caller's",
        ),
        case("config.process.rlimits", "config.md#posix-process (rlimits)", rlimits),
        case("config.process.rlimits-above-runtime", "config.md#posix-process (rlimits)", rlimits_raised),
        case("config.process.rlimits-duplicate", "config.md#posix-process (rlimits)", rlimits_duplicate),
        case("config.process.rlimits-unknown-type", "config.md#posix-process (rlimits)", rlimits_unknown),
        case("config.process.capabilities.bounding", "config.md#linux-process (capabilities)", caps_bounding),
        case("config.process.capabilities.inheritable", "config.md#linux-process (capabilities)", caps_inheritable),
        case("config.process.capabilities.ambient-non-root", "config.md#linux-process (capabilities)", caps_ambient),
        case("config.process.capabilities.empty", "config.md#linux-process (capabilities)", caps_empty),
        case("config.process.no-new-privileges-true", "config.md#linux-process (noNewPrivileges)", nnp_true),
        case("config.process.no-new-privileges-false", "config.md#linux-process (noNewPrivileges)", nnp_false),
        case("config.process.oom-score-adj", "config.md#linux-process (oomScoreAdj)", oom_set),
        case("config.process.oom-score-adj-unset", "config.md#linux-process (oomScoreAdj)", oom_unset),
        case("config.process.io-priority", "config.md#linux-process (ioPriority)", io_priority)
            .runc("runc 1.1 ignores process.ioPriority (added in runc 1.2)"),
        case("config.process.scheduler", "config.md#linux-process (scheduler)", scheduler)
            .runc("runc 1.1 ignores process.scheduler (added in runc 1.2)"),
        case("config.process.only-stdio-inherited", "runtime.md#create (runc CLI: --preserve-fds 0)", only_stdio),
        case("config.hostname", "config.md#hostname", hostname),
        case("config.domainname", "config.md#domainname", domainname)
            .runc("runc 1.1 ignores domainname (added in runc 1.2)"),
        case("config-linux.personality", "config-linux.md#personality", personality)
            .runc("runc 1.1 ignores linux.personality (added in runc 1.2)"),
    ]
}

/// Capability numbers of capabilities(7), by name.
const CAPS: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The bit mask of the named capabilities.
pub fn cap_mask(names: &[&str]) -> u64 {
    names
        .iter()
        .filter_map(|n| CAPS.iter().position(|c| c == n))
        .fold(0, |m, bit| m | (1u64 << bit))
}

fn args(cx: &mut Ctx) -> Result<()> {
    let mut b = cx.bundle()?;
    let argv = [
        CHECKER_IN_ROOTFS,
        "/conformance/expect.json",
        "two words",
        "",
        "ünïcödé",
        "--flag=x",
    ];
    b.args(&argv);
    b.expect(
        "argv",
        Check::Argv {
            args: argv.iter().map(|a| (*a).to_owned()).collect(),
        },
    );
    cx.run_checks(&b)
}

fn args_path_lookup(cx: &mut Ctx) -> Result<()> {
    let mut b = cx.bundle()?;
    b.args(&["checker", "/conformance/expect.json"]);
    b.expect(
        "argv",
        Check::Argv {
            args: vec!["checker".into(), "/conformance/expect.json".into()],
        },
    );
    cx.run_checks(&b)
}

fn env_check(b: &mut Bundle, name: &str, value: Option<&str>) {
    b.expect(
        &format!("env {name}"),
        Check::Env {
            name: name.into(),
            value: value.map(str::to_owned),
        },
    );
}

fn env(cx: &mut Ctx) -> Result<()> {
    let mut b = cx.bundle()?;
    b.set(
        "/process/env",
        json!([
            CONTAINER_PATH,
            "CONF_A=1",
            "CONF_B=two words",
            "CONF_EMPTY=",
            "CONF_EQ=a=b"
        ]),
    );
    env_check(&mut b, "CONF_A", Some("1"));
    env_check(&mut b, "CONF_B", Some("two words"));
    env_check(&mut b, "CONF_EMPTY", Some(""));
    env_check(&mut b, "CONF_EQ", Some("a=b"));
    env_check(&mut b, "TERM", None);
    cx.run_checks(&b)
}

fn env_not_leaked(cx: &mut Ctx) -> Result<()> {
    let mut b = cx.bundle()?;
    env_check(&mut b, "CONFORMANCE_RUNTIME_ONLY", None);
    env_check(&mut b, "TERM", Some("xterm"));
    let mut cmd = cx.run_command(&b)?;
    cmd.env("CONFORMANCE_RUNTIME_ONLY", "leaked");
    let out = cx.exec(cmd)?;
    checker_verdict(&out)
}

fn cwd(cx: &mut Ctx) -> Result<()> {
    let mut b = cx.bundle()?;
    b.set("/process/cwd", json!("/home/user"));
    b.expect(
        "cwd",
        Check::Cwd {
            path: "/home/user".into(),
        },
    );
    cx.run_checks(&b)
}

fn terminal_false(cx: &mut Ctx) -> Result<()> {
    let mut b = cx.bundle()?;
    for fd in 0..3 {
        b.expect(
            &format!("fd {fd} is no terminal"),
            Check::IsTty { fd, tty: false },
        );
    }
    cx.run_checks(&b)
}

fn console_size_ignored(cx: &mut Ctx) -> Result<()> {
    let mut b = cx.bundle()?;
    b.set(
        "/process/consoleSize",
        json!({ "height": 40, "width": 100 }),
    );
    b.expect("stdout is no terminal", Check::IsTty { fd: 1, tty: false });
    cx.run_checks(&b)
}

fn user_ids(cx: &mut Ctx) -> Result<()> {
    let mut b = cx.bundle()?;
    b.set("/process/user", json!({ "uid": 1000, "gid": 1001 }));
    b.expect(
        "ids",
        Check::Ids {
            uid: 1000,
            gid: 1001,
        },
    );
    cx.run_checks(&b)
}

fn additional_gids(cx: &mut Ctx) -> Result<()> {
    let mut b = cx.bundle()?;
    b.set(
        "/process/user",
        json!({ "uid": 1000, "gid": 1000, "additionalGids": [5, 1234] }),
    );
    b.expect(
        "ids",
        Check::Ids {
            uid: 1000,
            gid: 1000,
        },
    );
    b.expect(
        "groups",
        Check::Groups {
            gids: vec![5, 1234],
        },
    );
    cx.run_checks(&b)
}

fn umask(cx: &mut Ctx) -> Result<()> {
    let mut b = cx.bundle()?;
    b.set("/process/user/umask", json!(0o027));
    b.expect("umask", Check::Umask { mask: 0o027 });
    cx.run_checks(&b)
}

fn umask_unset(cx: &mut Ctx) -> Result<()> {
    let mut b = cx.bundle()?;
    b.expect("umask inherited", Check::Umask { mask: 0o037 });
    let mut cmd = cx.run_command(&b)?;
    // SAFETY: umask is async-signal-safe and touches only the child.
    unsafe {
        cmd.pre_exec(|| {
            libc::umask(0o037);
            Ok(())
        });
    }
    let out = cx.exec(cmd)?;
    checker_verdict(&out)
}

fn rlimit(b: &mut Bundle, kind: &str, soft: u64, hard: u64) {
    b.push(
        "/process/rlimits",
        json!({ "type": kind, "soft": soft, "hard": hard }),
    );
    b.expect(
        kind,
        Check::Rlimit {
            resource: kind.into(),
            soft,
            hard,
        },
    );
}

fn rlimits(cx: &mut Ctx) -> Result<()> {
    let mut b = cx.bundle()?;
    b.set("/process/rlimits", json!([]));
    rlimit(&mut b, "RLIMIT_NOFILE", 512, 777);
    rlimit(&mut b, "RLIMIT_CORE", 0, 4096);
    rlimit(&mut b, "RLIMIT_MSGQUEUE", 8192, 16384);
    rlimit(&mut b, "RLIMIT_NPROC", 1000, 2000);
    rlimit(&mut b, "RLIMIT_STACK", 8 << 20, u64::MAX);
    cx.run_checks(&b)
}

fn rlimits_raised(cx: &mut Ctx) -> Result<()> {
    const CAP_SYS_RESOURCE: u32 = 24;
    if !cx.host.has_cap(CAP_SYS_RESOURCE) {
        crate::skip!("the runtime lacks CAP_SYS_RESOURCE here, so no hard limit can be raised");
    }
    let mut b = cx.bundle()?;
    b.set("/process/rlimits", json!([]));
    rlimit(&mut b, "RLIMIT_NOFILE", 65536, 1 << 20);
    rlimit(&mut b, "RLIMIT_MEMLOCK", u64::MAX, u64::MAX);
    let mut cmd = cx.run_command(&b)?;
    // SAFETY: setrlimit is async-signal-safe and touches only the child.
    unsafe {
        cmd.pre_exec(|| {
            let low = libc::rlimit {
                rlim_cur: 1024,
                rlim_max: 4096,
            };
            libc::setrlimit(libc::RLIMIT_NOFILE, &low);
            let low = libc::rlimit {
                rlim_cur: 65536,
                rlim_max: 65536,
            };
            libc::setrlimit(libc::RLIMIT_MEMLOCK, &low);
            Ok(())
        });
    }
    let out = cx.exec(cmd)?;
    checker_verdict(&out)
}

fn expect_create_error(cx: &mut Ctx, b: &Bundle, what: &str) -> Result<()> {
    let id = cx.new_id();
    let out = cx.create(b, &id)?;
    ensure_err(&out, what)
}

fn rlimits_duplicate(cx: &mut Ctx) -> Result<()> {
    let mut b = cx.bundle()?;
    b.set(
        "/process/rlimits",
        json!([{ "type": "RLIMIT_NOFILE", "soft": 100, "hard": 100 },
               { "type": "RLIMIT_NOFILE", "soft": 200, "hard": 200 }]),
    );
    expect_create_error(cx, &b, "create with a duplicated rlimit type")
}

fn rlimits_unknown(cx: &mut Ctx) -> Result<()> {
    let mut b = cx.bundle()?;
    b.push(
        "/process/rlimits",
        json!({ "type": "RLIMIT_NO_SUCH_THING", "soft": 1, "hard": 1 }),
    );
    expect_create_error(cx, &b, "create with an unknown rlimit type")
}

fn set_caps(b: &mut Bundle, sets: &[(&str, &[&str])]) {
    b.set("/process/capabilities", json!({}));
    for (set, names) in sets {
        b.set(&format!("/process/capabilities/{set}"), json!(names));
    }
}

fn caps_bounding(cx: &mut Ctx) -> Result<()> {
    let mut b = cx.bundle()?;
    let bnd: &[&str] = &["CAP_CHOWN", "CAP_KILL", "CAP_SETUID"];
    set_caps(
        &mut b,
        &[("bounding", bnd), ("effective", bnd), ("permitted", bnd)],
    );
    b.expect(
        "CapBnd",
        Check::Caps {
            set: "CapBnd".into(),
            mask: cap_mask(bnd),
        },
    );
    cx.run_checks(&b)
}

fn caps_inheritable(cx: &mut Ctx) -> Result<()> {
    let mut b = cx.bundle()?;
    let all: &[&str] = &[
        "CAP_CHOWN",
        "CAP_KILL",
        "CAP_NET_BIND_SERVICE",
        "CAP_SETPCAP",
    ];
    let inh: &[&str] = &["CAP_KILL", "CAP_NET_BIND_SERVICE"];
    set_caps(
        &mut b,
        &[
            ("bounding", all),
            ("effective", all),
            ("permitted", all),
            ("inheritable", inh),
        ],
    );
    b.expect(
        "CapInh",
        Check::Caps {
            set: "CapInh".into(),
            mask: cap_mask(inh),
        },
    );
    b.expect(
        "CapBnd",
        Check::Caps {
            set: "CapBnd".into(),
            mask: cap_mask(all),
        },
    );
    cx.run_checks(&b)
}

fn caps_ambient(cx: &mut Ctx) -> Result<()> {
    let mut b = cx.bundle()?;
    let amb: &[&str] = &["CAP_KILL", "CAP_NET_BIND_SERVICE"];
    let bnd: &[&str] = &["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"];
    set_caps(
        &mut b,
        &[
            ("bounding", bnd),
            ("effective", amb),
            ("permitted", amb),
            ("inheritable", amb),
            ("ambient", amb),
        ],
    );
    b.set("/process/user", json!({ "uid": 1000, "gid": 1000 }));
    // After execve of a file without capabilities by a non-root user, the
    // permitted and effective sets are the ambient set (capabilities(7)).
    for (set, names) in [
        ("CapAmb", amb),
        ("CapInh", amb),
        ("CapPrm", amb),
        ("CapEff", amb),
        ("CapBnd", bnd),
    ] {
        b.expect(
            set,
            Check::Caps {
                set: set.into(),
                mask: cap_mask(names),
            },
        );
    }
    cx.run_checks(&b)
}

fn caps_empty(cx: &mut Ctx) -> Result<()> {
    let mut b = cx.bundle()?;
    set_caps(
        &mut b,
        &[
            ("bounding", &[]),
            ("effective", &[]),
            ("permitted", &[]),
            ("inheritable", &[]),
            ("ambient", &[]),
        ],
    );
    for set in ["CapBnd", "CapInh", "CapAmb", "CapPrm", "CapEff"] {
        b.expect(
            set,
            Check::Caps {
                set: set.into(),
                mask: 0,
            },
        );
    }
    cx.run_checks(&b)
}

fn nnp_true(cx: &mut Ctx) -> Result<()> {
    let mut b = cx.bundle()?;
    b.set("/process/noNewPrivileges", json!(true));
    b.expect("no_new_privs", Check::NoNewPrivs { set: true });
    cx.run_checks(&b)
}

fn nnp_false(cx: &mut Ctx) -> Result<()> {
    let mut b = cx.bundle()?;
    b.set("/process/noNewPrivileges", json!(false));
    b.expect("no_new_privs", Check::NoNewPrivs { set: false });
    cx.run_checks(&b)
}

fn oom_set(cx: &mut Ctx) -> Result<()> {
    let mut b = cx.bundle()?;
    b.set("/process/oomScoreAdj", json!(456));
    b.expect("oom_score_adj", Check::OomScoreAdj { value: 456 });
    cx.run_checks(&b)
}

fn oom_unset(cx: &mut Ctx) -> Result<()> {
    let mut b = cx.bundle()?;
    b.expect("oom_score_adj inherited", Check::OomScoreAdj { value: 123 });
    let mut cmd = cx.run_command(&b)?;
    // SAFETY: only open/write/close, which are async-signal-safe, on the
    // child's own oom_score_adj.
    unsafe {
        cmd.pre_exec(|| {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .open("/proc/self/oom_score_adj")?;
            f.write_all(b"123")
        });
    }
    let out = cx.exec(cmd)?;
    checker_verdict(&out)
}

fn io_priority(cx: &mut Ctx) -> Result<()> {
    let mut b = cx.bundle()?;
    b.set(
        "/process/ioPriority",
        json!({ "class": "IOPRIO_CLASS_BE", "priority": 5 }),
    );
    b.expect("ioprio", Check::IoPriority { class: 2, level: 5 });
    cx.run_checks(&b)
}

fn scheduler(cx: &mut Ctx) -> Result<()> {
    let mut b = cx.bundle()?;
    b.set(
        "/process/scheduler",
        json!({ "policy": "SCHED_BATCH", "nice": 7 }),
    );
    b.expect(
        "scheduler",
        Check::Scheduler {
            policy: libc::SCHED_BATCH,
            nice: Some(7),
        },
    );
    cx.run_checks(&b)
}

fn only_stdio(cx: &mut Ctx) -> Result<()> {
    let mut b = cx.bundle()?;
    b.expect("only stdio open", Check::OnlyStdioOpen);
    cx.run_checks(&b)
}

fn hostname(cx: &mut Ctx) -> Result<()> {
    let mut b = cx.bundle()?;
    b.set("/hostname", json!("conformance-host"));
    b.expect(
        "hostname",
        Check::Hostname {
            name: "conformance-host".into(),
        },
    );
    cx.run_checks(&b)
}

fn domainname(cx: &mut Ctx) -> Result<()> {
    let mut b = cx.bundle()?;
    b.set("/domainname", json!("conformance.example"));
    b.expect(
        "domainname",
        Check::Domainname {
            name: "conformance.example".into(),
        },
    );
    cx.run_checks(&b)
}

fn personality(cx: &mut Ctx) -> Result<()> {
    let mut b = cx.bundle()?;
    b.set("/linux/personality", json!({ "domain": "LINUX32" }));
    b.expect("persona", Check::Personality { persona: 0x0008 });
    cx.run_checks(&b)
}

fn uid_without_entry(cx: &mut Ctx) -> Result<()> {
    let mut b = cx.bundle()?;
    b.set("/process/user", json!({ "uid": 4242, "gid": 4343 }));
    b.expect(
        "ids",
        Check::Ids {
            uid: 4242,
            gid: 4343,
        },
    );
    cx.run_checks(&b)
}
