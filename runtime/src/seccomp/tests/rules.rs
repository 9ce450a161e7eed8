//! The profile semantics, checked by running compiled filters.

use serde_json::{json, Value};

use super::compile_for;
use super::{build, call, call1, call_nr, cmp, errno, rule, ALLOW, KILL_PROCESS, KILL_THREAD};
use crate::seccomp::arch::{Arch, X32_SYSCALL_BIT};
use crate::seccomp::{syscalls, SeccompError};

const NATIVES: [Arch; 2] = [Arch::X86_64, Arch::Aarch64];

fn compile_err(profile: &Value) -> String {
    match compile_for(profile, Arch::X86_64) {
        Ok(f) => panic!("compiled: {f:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn errno_values_and_default_errno() {
    for native in NATIVES {
        let f = build(
            &json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [
                    { "names": ["getcwd"], "action": "SCMP_ACT_ERRNO" },
                    { "names": ["fchmod", "fchown"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13 },
                    { "names": ["uname"], "action": "SCMP_ACT_ERRNO", "errnoRet": 0 }
                ]
            }),
            native,
        );
        assert_eq!(call1(&f, native, "getcwd", 0), errno(1), "EPERM by default");
        assert_eq!(call1(&f, native, "fchmod", 0), errno(13));
        assert_eq!(call1(&f, native, "fchown", 0), errno(13));
        assert_eq!(call1(&f, native, "uname", 0), errno(0));
        assert_eq!(call1(&f, native, "read", 0), ALLOW);

        let f = build(&json!({ "defaultAction": "SCMP_ACT_ERRNO" }), native);
        assert_eq!(call1(&f, native, "read", 0), errno(1));
        let f = build(
            &json!({ "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38 }),
            native,
        );
        assert_eq!(call1(&f, native, "read", 0), errno(38));
    }
}

#[test]
fn every_action() {
    let f = build(
        &json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 99,
            "listenerPath": "/run/agent.sock",
            "syscalls": [
                { "names": ["read"], "action": "SCMP_ACT_ALLOW" },
                { "names": ["write"], "action": "SCMP_ACT_LOG" },
                { "names": ["getcwd"], "action": "SCMP_ACT_KILL" },
                { "names": ["getpid"], "action": "SCMP_ACT_KILL_THREAD" },
                { "names": ["getppid"], "action": "SCMP_ACT_KILL_PROCESS" },
                { "names": ["uname"], "action": "SCMP_ACT_TRAP" },
                { "names": ["getuid"], "action": "SCMP_ACT_TRACE" },
                { "names": ["getgid"], "action": "SCMP_ACT_TRACE", "errnoRet": 7 },
                { "names": ["mkdirat"], "action": "SCMP_ACT_NOTIFY" }
            ]
        }),
        Arch::X86_64,
    );
    let a = Arch::X86_64;
    assert_eq!(call1(&f, a, "read", 0), ALLOW);
    assert_eq!(call1(&f, a, "write", 0), libc::SECCOMP_RET_LOG);
    assert_eq!(call1(&f, a, "getcwd", 0), KILL_THREAD);
    assert_eq!(call1(&f, a, "getpid", 0), KILL_THREAD);
    assert_eq!(call1(&f, a, "getppid", 0), KILL_PROCESS);
    assert_eq!(call1(&f, a, "uname", 0), libc::SECCOMP_RET_TRAP);
    assert_eq!(call1(&f, a, "getuid", 0), libc::SECCOMP_RET_TRACE | 1);
    assert_eq!(call1(&f, a, "getgid", 0), libc::SECCOMP_RET_TRACE | 7);
    assert_eq!(call1(&f, a, "mkdirat", 0), libc::SECCOMP_RET_USER_NOTIF);
    assert_eq!(call1(&f, a, "close", 0), errno(99));
    assert!(f.uses_notify());
    assert_eq!(f.listener_path(), Some("/run/agent.sock"));
}

/// The reference semantics of one comparison.
fn holds(op: &str, value: u64, value_two: u64, arg: u64) -> bool {
    match op {
        "SCMP_CMP_NE" => arg != value,
        "SCMP_CMP_LT" => arg < value,
        "SCMP_CMP_LE" => arg <= value,
        "SCMP_CMP_EQ" => arg == value,
        "SCMP_CMP_GE" => arg >= value,
        "SCMP_CMP_GT" => arg > value,
        "SCMP_CMP_MASKED_EQ" => arg & value == value_two,
        _ => unreachable!(),
    }
}

const OPS: [&str; 7] = [
    "SCMP_CMP_NE",
    "SCMP_CMP_LT",
    "SCMP_CMP_LE",
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_MASKED_EQ",
];

/// Values around the 32-bit boundary, the sign bits and the extremes.
const VALUES: [u64; 12] = [
    0,
    1,
    5,
    0x7fff_ffff,
    0xffff_ffff,
    0x1_0000_0000,
    0x1_0000_0005,
    0x1_ffff_ffff,
    0x2_0000_0000,
    0x7fff_ffff_ffff_ffff,
    0x8000_0000_0000_0000,
    u64::MAX,
];

/// Every operator against every value, on argument 3, as 64-bit unsigned
/// comparisons on the 64-bit ABIs and on the low 32 bits on i386 and x32.
#[test]
fn every_operator_with_64_bit_values() {
    let x86_arches = json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]);
    for op in OPS {
        for value in VALUES {
            let value_two = if op == "SCMP_CMP_MASKED_EQ" {
                value & 0x1_0000_0005
            } else {
                0
            };
            let profile = json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "architectures": x86_arches,
                "syscalls": [{
                    "names": ["fcntl"],
                    "action": "SCMP_ACT_ERRNO",
                    "errnoRet": 42,
                    "args": [{ "index": 3, "value": value, "valueTwo": value_two, "op": op }]
                }]
            });
            let x86_64 = build(&profile, Arch::X86_64);
            let aarch64 = build(&profile, Arch::Aarch64);
            for arg in VALUES {
                let args = [7, 8, 9, arg, 11, 12];
                let want = |hit: bool| if hit { errno(42) } else { ALLOW };
                let wide = want(holds(op, value, value_two, arg));
                let what = format!("{op} value {value:#x} valueTwo {value_two:#x} arg {arg:#x}");
                assert_eq!(
                    call(&x86_64, Arch::X86_64, "fcntl", args),
                    wide,
                    "x86_64 {what}"
                );
                assert_eq!(
                    call(&aarch64, Arch::Aarch64, "fcntl", args),
                    wide,
                    "aarch64 {what}"
                );
                let low = |v: u64| v & 0xffff_ffff;
                let narrow = want(holds(op, low(value), low(value_two), low(arg)));
                assert_eq!(
                    call(&x86_64, Arch::X86, "fcntl", args),
                    narrow,
                    "i386 {what}"
                );
                assert_eq!(
                    call(&x86_64, Arch::X32, "fcntl", args),
                    narrow,
                    "x32 {what}"
                );
            }
        }
    }
}

#[test]
fn masked_eq_with_a_zero_mask_word() {
    // High mask word 0 with a non-zero high datum never matches; the low
    // word alone decides when the high datum is 0.
    for (value_two, arg, hit) in [
        (0x1_0000_0000u64, 0x1_0000_0000u64, false),
        (0x10, 0xff10, true),
        (0x10, 0xff11, false),
    ] {
        let f = build(
            &json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{ "names": ["ioctl"], "action": "SCMP_ACT_ERRNO",
                    "args": [{ "index": 1, "value": 0xff, "valueTwo": value_two,
                               "op": "SCMP_CMP_MASKED_EQ" }] }]
            }),
            Arch::X86_64,
        );
        let got = call(&f, Arch::X86_64, "ioctl", [0, arg, 0, 0, 0, 0]);
        assert_eq!(
            got,
            if hit { errno(1) } else { ALLOW },
            "{value_two:#x} {arg:#x}"
        );
    }
}

#[test]
fn arguments_of_one_rule_are_anded() {
    let f = build(
        &json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{ "names": ["mmap"], "action": "SCMP_ACT_ERRNO", "args": [
                { "index": 0, "value": 0, "op": "SCMP_CMP_EQ" },
                { "index": 2, "value": 4, "valueTwo": 4, "op": "SCMP_CMP_MASKED_EQ" },
                { "index": 5, "value": 0x1000, "op": "SCMP_CMP_GE" }
            ]}]
        }),
        Arch::Aarch64,
    );
    let a = Arch::Aarch64;
    assert_eq!(call(&f, a, "mmap", [0, 0, 7, 0, 0, 0x1000]), errno(1));
    assert_eq!(call(&f, a, "mmap", [1, 0, 7, 0, 0, 0x1000]), ALLOW);
    assert_eq!(call(&f, a, "mmap", [0, 0, 3, 0, 0, 0x1000]), ALLOW);
    assert_eq!(call(&f, a, "mmap", [0, 0, 7, 0, 0, 0xfff]), ALLOW);
}

#[test]
fn conditions_on_the_same_argument_are_ored_like_runc() {
    let f = build(
        &json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{ "names": ["kill"], "action": "SCMP_ACT_ERRNO", "args": [
                { "index": 1, "value": 9, "op": "SCMP_CMP_EQ" },
                { "index": 1, "value": 15, "op": "SCMP_CMP_EQ" }
            ]}]
        }),
        Arch::X86_64,
    );
    let a = Arch::X86_64;
    assert_eq!(call(&f, a, "kill", [1, 9, 0, 0, 0, 0]), errno(1));
    assert_eq!(call(&f, a, "kill", [1, 15, 0, 0, 0, 0]), errno(1));
    assert_eq!(call(&f, a, "kill", [1, 2, 0, 0, 0, 0]), ALLOW);
}

#[test]
fn rules_for_one_syscall_are_ored_first_match_wins() {
    let a = Arch::X86_64;
    let f = build(
        &json!({
            "defaultAction": "SCMP_ACT_KILL_PROCESS",
            "syscalls": [
                rule(&["personality"], "SCMP_ACT_ALLOW", None, &[cmp(0, "SCMP_CMP_EQ", 8)]),
                rule(&["personality"], "SCMP_ACT_ERRNO", Some(5), &[cmp(0, "SCMP_CMP_EQ", 9)]),
                rule(&["getpriority"], "SCMP_ACT_ERRNO", Some(1), &[cmp(0, "SCMP_CMP_GE", 10)]),
                rule(&["getpriority"], "SCMP_ACT_ERRNO", Some(2), &[cmp(0, "SCMP_CMP_GE", 5)])
            ]
        }),
        a,
    );
    assert_eq!(call1(&f, a, "personality", 8), ALLOW);
    assert_eq!(call1(&f, a, "personality", 9), errno(5));
    assert_eq!(call1(&f, a, "personality", 10), KILL_PROCESS);
    assert_eq!(call1(&f, a, "getpriority", 12), errno(1));
    assert_eq!(call1(&f, a, "getpriority", 7), errno(2));
    assert_eq!(call1(&f, a, "getpriority", 1), KILL_PROCESS);
}

#[test]
fn a_rule_without_arguments_wins_over_rules_with_arguments() {
    let a = Arch::X86_64;
    let f = build(
        &json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [
                rule(&["socket"], "SCMP_ACT_ERRNO", Some(3), &[cmp(0, "SCMP_CMP_EQ", 40)]),
                { "names": ["socket"], "action": "SCMP_ACT_ALLOW" },
                { "names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 4 }
            ]
        }),
        a,
    );
    assert_eq!(call1(&f, a, "socket", 40), ALLOW);
    assert_eq!(call1(&f, a, "socket", 2), ALLOW);
}

#[test]
fn rules_with_the_default_action_are_dropped() {
    let a = Arch::X86_64;
    let f = build(
        &json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [
                rule(&["getcwd"], "SCMP_ACT_ERRNO", None, &[cmp(0, "SCMP_CMP_EQ", 1)]),
                rule(&["getcwd"], "SCMP_ACT_ALLOW", None, &[cmp(0, "SCMP_CMP_GE", 0)]),
                { "names": ["read"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1 },
                { "names": ["read"], "action": "SCMP_ACT_ALLOW" },
                { "names": ["write"], "action": "SCMP_ACT_ERRNO", "errnoRet": 2 }
            ]
        }),
        a,
    );
    // The EQ 1 rule has the default action (ERRNO EPERM): gone, so the GE 0
    // rule decides.
    assert_eq!(call1(&f, a, "getcwd", 1), ALLOW);
    assert_eq!(call1(&f, a, "read", 0), ALLOW);
    // Same action, other errno: not the default, kept.
    assert_eq!(call1(&f, a, "write", 0), errno(2));
}

#[test]
fn unknown_syscall_names_are_skipped() {
    for native in NATIVES {
        let f = build(
            &json!({
                "defaultAction": "SCMP_ACT_ERRNO",
                "syscalls": [rule(&["no_such_syscall", "getcwd", "socketcall", "open"], "SCMP_ACT_ALLOW", None, &[])]
            }),
            native,
        );
        assert_eq!(call1(&f, native, "getcwd", 0), ALLOW);
    }
    let f = build(
        &json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
            "syscalls": [{ "names": ["socketcall", "arch_prctl"], "action": "SCMP_ACT_ALLOW" }]
        }),
        Arch::X86_64,
    );
    assert_eq!(call1(&f, Arch::X86, "socketcall", 1), ALLOW);
    assert_eq!(call1(&f, Arch::X86_64, "arch_prctl", 1), ALLOW);
    assert_eq!(call1(&f, Arch::X86, "arch_prctl", 1), ALLOW);
}

#[test]
fn calls_of_unfiltered_abis_are_killed() {
    let profile = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{ "names": ["getcwd"], "action": "SCMP_ACT_ERRNO" }]
    });
    let f = build(&profile, Arch::X86_64);
    assert_eq!(call1(&f, Arch::X86_64, "getcwd", 0), errno(1));
    assert_eq!(call1(&f, Arch::X86_64, "read", 0), ALLOW);
    assert_eq!(
        call1(&f, Arch::X86, "read", 0),
        KILL_THREAD,
        "i386 not listed"
    );
    assert_eq!(
        call1(&f, Arch::X32, "read", 0),
        KILL_THREAD,
        "x32 not listed"
    );
    assert_eq!(call1(&f, Arch::Aarch64, "read", 0), KILL_THREAD);
    assert_eq!(call_nr(&f, 0xdead_beef, 0, [0; 6]), KILL_THREAD);
    assert_eq!(
        call_nr(&f, Arch::X86_64.audit(), u32::MAX, [0; 6]),
        KILL_THREAD,
        "-1 has bit 30 set"
    );

    let f = build(&profile, Arch::Aarch64);
    assert_eq!(call1(&f, Arch::Aarch64, "getcwd", 0), errno(1));
    assert_eq!(
        call1(&f, Arch::Arm, "getcwd", 0),
        KILL_THREAD,
        "arm not listed"
    );
    assert_eq!(call1(&f, Arch::X86_64, "getcwd", 0), KILL_THREAD);
}

#[test]
fn listed_secondary_abis_use_their_own_numbers() {
    let mut profile = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32",
                          "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM", "SCMP_ARCH_S390X"],
        "syscalls": [{ "names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": 9 }]
    });
    let f = build(&profile, Arch::X86_64);
    for arch in [Arch::X86_64, Arch::X86, Arch::X32] {
        assert_eq!(call1(&f, arch, "getcwd", 0), errno(9), "{arch:?}");
        assert_eq!(call1(&f, arch, "read", 0), ALLOW, "{arch:?}");
    }
    // getcwd's x86_64 number is i386's mount (21 vs 183) and the reverse.
    assert_eq!(call_nr(&f, Arch::X86.audit(), 79, [0; 6]), ALLOW);
    assert_eq!(
        call1(&f, Arch::Arm, "getcwd", 0),
        KILL_THREAD,
        "not an ABI of x86_64"
    );

    let f = build(&profile, Arch::Aarch64);
    for arch in [Arch::Aarch64, Arch::Arm] {
        assert_eq!(call1(&f, arch, "getcwd", 0), errno(9), "{arch:?}");
        assert_eq!(call1(&f, arch, "read", 0), ALLOW, "{arch:?}");
    }
    assert_eq!(call1(&f, Arch::Arm, "set_tls", 0), ALLOW);
    assert_eq!(call1(&f, Arch::X86, "getcwd", 0), KILL_THREAD);

    // Only x32 listed: native x86_64 is still filtered.
    profile["architectures"] = json!(["SCMP_ARCH_X32"]);
    let f = build(&profile, Arch::X86_64);
    assert_eq!(call1(&f, Arch::X86_64, "getcwd", 0), errno(9));
    assert_eq!(call1(&f, Arch::X32, "getcwd", 0), errno(9));
    assert_eq!(call1(&f, Arch::X86, "getcwd", 0), KILL_THREAD);
}

#[test]
fn enosys_for_calls_newer_than_the_profile() {
    let a = Arch::X86_64;
    let profile = |default: &str, arches: Value| {
        json!({
            "defaultAction": default,
            "architectures": arches,
            "syscalls": [
                { "names": ["read", "write", "getcwd"], "action": "SCMP_ACT_ALLOW" },
                { "names": ["clone3"], "action": "SCMP_ACT_ERRNO" }
            ]
        })
    };
    let enosys = errno(38);
    let f = build(
        &profile(
            "SCMP_ACT_ERRNO",
            json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X32"]),
        ),
        a,
    );
    assert_eq!(call1(&f, a, "getcwd", 0), ALLOW);
    assert_eq!(call1(&f, a, "mount", 0), errno(1));
    // clone3 (435) has the default action but still marks the boundary.
    assert_eq!(call1(&f, a, "clone3", 0), errno(1));
    assert_eq!(call_nr(&f, a.audit(), 434, [0; 6]), errno(1));
    assert_eq!(call_nr(&f, a.audit(), 436, [0; 6]), enosys);
    assert_eq!(call1(&f, a, "fchmodat2", 0), enosys);
    assert_eq!(call_nr(&f, a.audit(), 100_000, [0; 6]), enosys);
    assert_eq!(call_nr(&f, a.audit(), X32_SYSCALL_BIT - 1, [0; 6]), enosys);
    let x32_clone3 = syscalls::number(Arch::X32, "clone3").expect("x32 clone3");
    assert_eq!(call_nr(&f, a.audit(), x32_clone3, [0; 6]), errno(1));
    assert_eq!(call_nr(&f, a.audit(), x32_clone3 + 1, [0; 6]), enosys);
    assert_eq!(call1(&f, Arch::X86, "read", 0), KILL_THREAD);

    let f = build(
        &profile("SCMP_ACT_KILL_PROCESS", json!(["SCMP_ARCH_X86_64"])),
        a,
    );
    assert_eq!(call_nr(&f, a.audit(), 436, [0; 6]), enosys);
    assert_eq!(call1(&f, a, "mount", 0), KILL_PROCESS);

    // Not for permissive defaults, and only on listed architectures.
    for default in ["SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_TRACE"] {
        let f = build(&profile(default, json!(["SCMP_ARCH_X86_64"])), a);
        assert_ne!(call_nr(&f, a.audit(), 436, [0; 6]), enosys, "{default}");
    }
    let f = build(&profile("SCMP_ACT_ERRNO", json!([])), a);
    assert_eq!(call_nr(&f, a.audit(), 436, [0; 6]), errno(1));
    let f = build(
        &profile("SCMP_ACT_ERRNO", json!(["SCMP_ARCH_AARCH64"])),
        Arch::Aarch64,
    );
    assert_eq!(call1(&f, Arch::Aarch64, "fchmodat2", 0), enosys);
}

#[test]
fn notify() {
    let profile = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": "/run/agent.sock",
        "listenerMetadata": "meta",
        "flags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
        "syscalls": [{ "names": ["mkdirat"], "action": "SCMP_ACT_NOTIFY" }]
    });
    let f = build(&profile, Arch::X86_64);
    assert!(f.uses_notify());
    assert_eq!(f.listener_metadata(), "meta");
    assert_eq!(
        call1(&f, Arch::X86_64, "mkdirat", 0),
        libc::SECCOMP_RET_USER_NOTIF
    );
    assert_eq!(
        f.flags,
        libc::SECCOMP_FILTER_FLAG_TSYNC
            | libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
            | libc::SECCOMP_FILTER_FLAG_NEW_LISTENER
            | libc::SECCOMP_FILTER_FLAG_TSYNC_ESRCH
    );

    let mut no_path = profile.clone();
    no_path["listenerPath"] = json!("");
    assert_eq!(compile_err(&no_path), "seccomp listenerPath is not set");
    let mut as_default = profile.clone();
    as_default["defaultAction"] = json!("SCMP_ACT_NOTIFY");
    assert_eq!(
        compile_err(&as_default),
        "SCMP_ACT_NOTIFY cannot be used as default action"
    );
    let mut write = profile;
    write["syscalls"][0]["names"] = json!(["read", "write"]);
    assert_eq!(
        compile_err(&write),
        "SCMP_ACT_NOTIFY cannot be used for the write syscall"
    );
}

#[test]
fn flags() {
    let with = |flags: Value| {
        let mut p = json!({ "defaultAction": "SCMP_ACT_ALLOW" });
        if !flags.is_null() {
            p["flags"] = flags;
        }
        compile_for(&p, Arch::X86_64).expect("compiles")
    };
    let f = with(Value::Null);
    assert_eq!(
        (f.flags, f.implied_spec_allow),
        (libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW, true)
    );
    let f = with(json!([]));
    assert_eq!((f.flags, f.implied_spec_allow), (0, false));
    let f = with(json!([
        "SECCOMP_FILTER_FLAG_LOG",
        "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
        "SECCOMP_FILTER_FLAG_TSYNC"
    ]));
    let want = libc::SECCOMP_FILTER_FLAG_LOG
        | libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW
        | libc::SECCOMP_FILTER_FLAG_TSYNC;
    assert_eq!((f.flags, f.implied_spec_allow), (want, false));
    // Without a listener the kernel would refuse WAIT_KILLABLE_RECV.
    assert_eq!(
        with(json!(["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"])).flags,
        0
    );
    assert!(!f.uses_notify());
}

#[test]
fn invalid_profiles_are_refused_with_runc_messages() {
    let one = |r: Value| json!({ "defaultAction": "SCMP_ACT_ALLOW", "syscalls": [r] });
    let errno_rule = |errno_ret: Option<u64>, args: &[Value]| {
        one(rule(&["read"], "SCMP_ACT_ERRNO", errno_ret, args))
    };
    let cases = [
        (
            json!({ "defaultAction": "SCMP_ACT_BOGUS" }),
            "string SCMP_ACT_BOGUS is not a valid action for seccomp",
        ),
        (
            json!({ "syscalls": [rule(&["read"], "SCMP_ACT_ALLOW", None, &[])] }),
            "string  is not a valid action for seccomp",
        ),
        (
            json!({ "defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_VAX"] }),
            "string SCMP_ARCH_VAX is not a valid arch for seccomp",
        ),
        (
            json!({ "defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_BOGUS"] }),
            "seccomp flag SECCOMP_FILTER_FLAG_BOGUS is not known to corten",
        ),
        (
            errno_rule(None, &[cmp(0, "SCMP_CMP_XX", 1)]),
            "string SCMP_CMP_XX is not a valid operator for seccomp",
        ),
        (
            errno_rule(None, &[cmp(6, "SCMP_CMP_EQ", 1)]),
            "seccomp: syscall read: argument index 6 is out of range (0-5)",
        ),
        (
            one(rule(&["read"], "SCMP_ACT_KILL", Some(1), &[])),
            "seccomp: errnoRet is only valid with SCMP_ACT_ERRNO and SCMP_ACT_TRACE, not SCMP_ACT_KILL",
        ),
        (
            json!({ "defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 1 }),
            "seccomp: errnoRet is only valid with SCMP_ACT_ERRNO and SCMP_ACT_TRACE, not SCMP_ACT_ALLOW",
        ),
        (errno_rule(Some(65536), &[]), "seccomp: errnoRet 65536 is out of range (0-65535)"),
        (
            one(rule(&["read", ""], "SCMP_ACT_ERRNO", None, &[])),
            "empty string is not a valid syscall",
        ),
        // Found by the fuzz target: names are escaped, the message is one line.
        (
            errno_rule(None, &[cmp(0, "SCMP_CMP_\n", 1)]),
            "string SCMP_CMP_\\n is not a valid operator for seccomp",
        ),
        (
            one(rule(&["\n"], "SCMP_ACT_ERRNO", None, &[cmp(6, "SCMP_CMP_EQ", 1)])),
            "seccomp: syscall \\n: argument index 6 is out of range (0-5)",
        ),
    ];
    for (profile, message) in cases {
        assert_eq!(compile_err(&profile), message, "{profile}");
    }
    let parse = compile_err(
        &json!({ "defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{ "names": "read" }] }),
    );
    assert!(
        parse.starts_with("invalid seccomp profile: syscalls[0].names: invalid type"),
        "{parse}"
    );
}

#[test]
fn an_empty_profile_installs_nothing() {
    for profile in [
        Value::Null,
        json!({}),
        json!({ "architectures": ["SCMP_ARCH_X86_64"], "syscalls": [] }),
    ] {
        let f = compile_for(&profile, Arch::X86_64).expect("compiles");
        assert!(f.program.is_empty());
        assert!(!f.uses_notify());
        // Safe in the test process: an empty filter makes no system call.
        assert!(f.install().expect("no-op").is_none());
    }
    // A default action alone is a filter.
    let f = build(&json!({ "defaultAction": "SCMP_ACT_ALLOW" }), Arch::X86_64);
    assert_eq!(call1(&f, Arch::X86_64, "read", 0), ALLOW);
}

/// Enough argument rules that the binary search needs jumps longer than a
/// conditional jump's 255 instructions.
#[test]
fn long_jumps_go_through_trampolines() {
    let names = [
        "read", "write", "close", "fstat", "lseek", "mmap", "mprotect", "munmap", "brk", "ioctl",
    ];
    let mut syscalls = Vec::new();
    for (i, name) in names.iter().enumerate() {
        for j in 0..12u64 {
            let args = [cmp(1, "SCMP_CMP_EQ", j << 32 | j), cmp(0, "SCMP_CMP_NE", 0)];
            syscalls.push(rule(
                &[name],
                "SCMP_ACT_ERRNO",
                Some(i as u64 * 100 + j),
                &args,
            ));
        }
    }
    let f = build(
        &json!({ "defaultAction": "SCMP_ACT_ALLOW", "syscalls": syscalls }),
        Arch::X86_64,
    );
    assert!(f.program.len() > 600, "{} instructions", f.program.len());
    assert!(
        f.program
            .iter()
            .any(|i| i.code == crate::seccomp::bpf::JMP_JA),
        "no trampoline"
    );
    for (i, name) in names.iter().enumerate() {
        for j in 0..12u64 {
            let expected = errno(u32::try_from(i as u64 * 100 + j).expect("small"));
            assert_eq!(
                call(&f, Arch::X86_64, name, [1, j << 32 | j, 0, 0, 0, 0]),
                expected,
                "{name} {j}"
            );
            assert_eq!(
                call(&f, Arch::X86_64, name, [0, j << 32 | j, 0, 0, 0, 0]),
                ALLOW,
                "{name} {j}"
            );
            assert_eq!(
                call(&f, Arch::X86_64, name, [1, j, 0, 0, 0, 0]),
                if j == 0 { expected } else { ALLOW }
            );
        }
    }
    assert_eq!(call1(&f, Arch::X86_64, "getcwd", 0), ALLOW);
}

#[test]
fn the_kernel_instruction_limit_is_checked() {
    let syscalls: Vec<Value> = (0..1000u64)
        .map(|v| {
            rule(
                &["ioctl"],
                "SCMP_ACT_ERRNO",
                None,
                &[cmp(1, "SCMP_CMP_EQ", v)],
            )
        })
        .collect();
    match compile_for(
        &json!({ "defaultAction": "SCMP_ACT_ALLOW", "syscalls": syscalls }),
        Arch::X86_64,
    ) {
        Err(SeccompError::TooLarge(n)) => assert!(n > 4096),
        other => panic!("{other:?}"),
    }
}
