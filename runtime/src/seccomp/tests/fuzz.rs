//! Fuzz target: random profiles through the compiler, the programs through
//! the interpreter, against [`reference`].
//!
//! A profile: names from the system call tables of every ABI (and unknown
//! ones), drawn from a small pool so that rules collide; every action with
//! and without `errnoRet`; arguments with every operator and values around
//! the 32-bit boundary; `defaultAction`/`defaultErrnoRet`, `architectures`
//! (known, foreign, unknown), `flags`, `listenerPath`; now and then
//! something invalid. Each is compiled for an x86_64 and an aarch64 host;
//! the compiler must refuse exactly the profiles the reference refuses, the
//! program must pass the kernel's load-time checks, and on random
//! `seccomp_data` (numbers the rules name, their neighbours, unknown and
//! far-off numbers, every audit architecture and unknown ones, argument
//! values at and around the rules' values) it must return what the
//! reference says.

use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{json, Map, Value};

use super::compile_for;
use super::reference::{self, Outcome};
use super::{interp, syscalls};
use crate::fuzz_support::{self as fz, one_line};
use crate::seccomp::arch::Arch;
use crate::seccomp::SeccompError;

/// Every name of every table, sorted, once.
fn table_names() -> Vec<&'static str> {
    let mut all: Vec<&'static str> = [Arch::X86_64, Arch::X86, Arch::X32, Arch::Aarch64, Arch::Arm]
        .into_iter()
        .flat_map(|a| syscalls::table(a).iter().map(|(n, _)| *n))
        .collect();
    all.sort_unstable();
    all.dedup();
    all
}

fn syscall_name() -> BoxedStrategy<String> {
    prop_oneof![
        20 => prop::sample::select(table_names()).prop_map(str::to_string),
        1 => Just("no_such_call".to_string()),
        1 => Just("write".to_string()),
        1 => fz::text(),
    ]
    .boxed()
}

const ACTIONS: [&str; 9] = [
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_TRAP",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_LOG",
    "SCMP_ACT_NOTIFY",
];

fn action_name(notify: bool) -> BoxedStrategy<String> {
    let valid: Vec<&'static str> = ACTIONS
        .into_iter()
        .filter(|a| notify || *a != "SCMP_ACT_NOTIFY")
        .collect();
    prop_oneof![
        60 => prop::sample::select(valid).prop_map(str::to_string),
        1 => prop::sample::select(vec!["SCMP_ACT_NOTIFY", "SCMP_ACT_BOGUS", ""]).prop_map(str::to_string),
    ]
    .boxed()
}

fn errno_value() -> BoxedStrategy<u64> {
    prop_oneof![
        4 => prop::sample::select(vec![0u64, 1, 13, 38, 0xffff]),
        4 => 0u64..0x1_0000,
        1 => prop::sample::select(vec![0x1_0000u64, u64::MAX]),
    ]
    .boxed()
}

/// `(action, errnoRet)`: `errnoRet` mostly only where it is allowed.
fn action_and_errno(notify: bool) -> BoxedStrategy<(String, Option<u64>)> {
    (
        action_name(notify),
        prop::option::of(errno_value()),
        0u8..64,
    )
        .prop_map(|(action, errno, spoil)| {
            let takes = action == "SCMP_ACT_ERRNO" || action == "SCMP_ACT_TRACE";
            let errno = if takes {
                errno
            } else if spoil == 0 {
                errno.or(Some(1))
            } else {
                None
            };
            (action, errno)
        })
        .boxed()
}

fn arg_value() -> BoxedStrategy<u64> {
    prop_oneof![
        4 => prop::sample::select(vec![
            0u64, 1, 2, 5, 8, 40, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff,
            0x1_0000_0000, 0x1_0000_0005, 0x7fff_ffff_ffff_ffff, 0x8000_0000_0000_0000, u64::MAX,
        ]),
        2 => 0u64..64,
        2 => any::<u64>(),
        1 => any::<u32>().prop_map(u64::from),
    ]
    .boxed()
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

fn arg() -> BoxedStrategy<Value> {
    let index = prop_oneof![200 => 0u64..6, 1 => 6u64..8, 1 => Just(u64::MAX)];
    let op = prop_oneof![
        200 => prop::sample::select(OPS.to_vec()),
        1 => prop::sample::select(vec!["SCMP_CMP_XX", ""]),
    ];
    (index, op, arg_value(), arg_value(), any::<bool>())
        .prop_map(|(index, op, value, two, masked)| {
            // A datum inside the mask now and then, or it rarely matches.
            let value_two = if masked { value & two } else { two };
            let mut a = json!({ "index": index, "op": op, "value": value });
            if value_two != 0 || masked {
                a["valueTwo"] = json!(value_two);
            }
            a
        })
        .boxed()
}

/// A `syscalls[]` entry naming calls from `pool`.
fn syscall(pool: Vec<String>, notify: bool) -> BoxedStrategy<Value> {
    let names = prop_oneof![
        20 => prop::collection::vec(prop::sample::select(pool), 0..4).prop_map(Some),
        1 => Just(None),
    ];
    let args = prop_oneof![
        1 => Just(None),
        1 => Just(Some(Vec::new())),
        3 => prop::collection::vec(arg(), 1..4).prop_map(Some),
    ];
    (names, action_and_errno(notify), args)
        .prop_map(|(names, (action, errno), args)| {
            let mut r = Map::new();
            if let Some(n) = names {
                r.insert("names".into(), json!(n));
            }
            r.insert("action".into(), json!(action));
            if let Some(e) = errno {
                r.insert("errnoRet".into(), json!(e));
            }
            if let Some(a) = args {
                r.insert("args".into(), Value::Array(a));
            }
            Value::Object(r)
        })
        .boxed()
}

const ARCHES: [&str; 9] = [
    "SCMP_ARCH_X86_64",
    "SCMP_ARCH_X86",
    "SCMP_ARCH_X32",
    "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_ARM",
    "SCMP_ARCH_S390X",
    "SCMP_ARCH_RISCV64",
    "SCMP_ARCH_PPC64LE",
    "SCMP_ARCH_MIPS",
];

const FLAGS: [&str; 4] = [
    "SECCOMP_FILTER_FLAG_TSYNC",
    "SECCOMP_FILTER_FLAG_LOG",
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
];

/// A random `linux.seccomp` profile (see the module docs).
pub(crate) fn profile() -> BoxedStrategy<Value> {
    let pool = prop::collection::vec(syscall_name(), 1..7);
    (pool, any::<bool>())
        .prop_flat_map(|(pool, notify)| {
            // The hosts' own ABIs most often: listing them changes the
            // semantics (-ENOSYS, secondary ABIs filtered).
            let arches = prop::option::of(prop::collection::vec(
                prop_oneof![
                    60 => prop::sample::select(ARCHES[..5].to_vec()),
                    20 => prop::sample::select(ARCHES[5..].to_vec()),
                    1 => Just("SCMP_ARCH_VAX"),
                ],
                0..5,
            ));
            let flags = prop::option::of(prop::collection::vec(
                prop_oneof![
                    40 => prop::sample::select(FLAGS.to_vec()),
                    1 => Just("SECCOMP_FILTER_FLAG_BOGUS"),
                ],
                0..3,
            ));
            let listener = prop_oneof![
                8 => Just(Some("/run/agent.sock")),
                1 => Just(Some("")),
                1 => Just(None),
            ];
            (
                action_and_errno(false),
                arches,
                flags,
                listener,
                // Some rules with exactly the default action (dropped, but
                // they still count for the -ENOSYS boundary).
                prop::collection::vec((syscall(pool, notify), prop::bool::weighted(0.2)), 0..8),
            )
        })
        .prop_map(|((default, errno), arches, flags, listener, calls)| {
            let calls: Vec<Value> = calls
                .into_iter()
                .map(|(mut call, as_default)| {
                    if as_default {
                        call["action"] = json!(default);
                        match errno {
                            Some(e) => call["errnoRet"] = json!(e),
                            None => drop(call.as_object_mut().map(|c| c.remove("errnoRet"))),
                        }
                    }
                    call
                })
                .collect();
            let mut p = Map::new();
            p.insert("defaultAction".into(), json!(default));
            if let Some(e) = errno {
                p.insert("defaultErrnoRet".into(), json!(e));
            }
            if let Some(a) = arches {
                p.insert("architectures".into(), json!(a));
            }
            if let Some(f) = flags {
                p.insert("flags".into(), json!(f));
            }
            if let Some(l) = listener {
                p.insert("listenerPath".into(), json!(l));
            }
            p.insert("syscalls".into(), Value::Array(calls));
            Value::Object(p)
        })
        .boxed()
}

/// A `seccomp_data`, as choices resolved against the profile (see
/// [`resolve`]).
#[derive(Debug, Clone)]
struct Sample {
    /// Aimed at one rule: its call (or a neighbour: -ENOSYS starts past the
    /// last call named), its arguments at and around its values.
    target: Option<(Index, Index, u8, [u8; 6])>,
    audit: (u8, u32),
    nr: (u8, Index, u32),
    args: [(u8, Index, u64); 6],
}

fn sample() -> BoxedStrategy<Sample> {
    let arg = (0u8..4, any::<Index>(), any::<u64>());
    (
        prop::option::of((
            any::<Index>(),
            any::<Index>(),
            any::<u8>(),
            any::<[u8; 6]>(),
        )),
        (0u8..6, any::<u32>()),
        (0u8..5, any::<Index>(), any::<u32>()),
        [
            arg.clone(),
            arg.clone(),
            arg.clone(),
            arg.clone(),
            arg.clone(),
            arg,
        ],
    )
        .prop_map(|(target, audit, nr, args)| Sample {
            target,
            audit,
            nr,
            args,
        })
        .boxed()
}

const AUDITS: [u32; 5] = [0xc000_003e, 0x4000_0003, 0xc000_00b7, 0x4000_0028, 0];

/// An argument for comparison `(value, valueTwo)`: equal, next to it, in
/// its mask, one half equal, or `raw`.
fn near(value: u64, value_two: u64, choice: u8, raw: u64) -> u64 {
    const LOW: u64 = 0xffff_ffff;
    match choice % 8 {
        0 => value,
        1 => value.wrapping_add(1),
        2 => value.wrapping_sub(1),
        3 => value_two | (raw & !value),
        4 => value ^ (1 << 32),
        5 => (value & LOW) | (raw & !LOW),
        6 => (raw & LOW) | (value & !LOW),
        _ => raw,
    }
}

/// `(audit, nr, args)` for `s`, with numbers and values taken from the
/// profile's rules (`targets`) where the choices say so.
fn resolve(s: &Sample, targets: &[reference::Target]) -> (u32, u32, [u64; 6]) {
    let numbers: Vec<u32> = targets
        .iter()
        .flat_map(|t| t.calls.iter().map(|(_, nr)| *nr))
        .collect();
    let values: Vec<u64> = targets
        .iter()
        .flat_map(|t| t.cmps.iter().flat_map(|(_, v, v2)| [*v, *v2]))
        .collect();
    let mut audit = match s.audit.0 {
        5 => s.audit.1,
        i => AUDITS[usize::from(i)],
    };
    let (mode, at, raw) = &s.nr;
    let named = (!numbers.is_empty()).then(|| *at.get(&numbers));
    let mut nr = match (mode, named) {
        (0, Some(n)) => n,
        (1, Some(n)) => n.wrapping_add(1),
        (2, Some(n)) => n.wrapping_sub(1),
        (3, _) => {
            const EDGES: [u32; 9] = [
                0,
                1,
                0x3fff_ffff,
                0x4000_0000,
                0x4000_0001,
                0x4000_0258,
                0x000f_0005,
                1000,
                u32::MAX,
            ];
            EDGES[*raw as usize % EDGES.len()]
        }
        (4, _) => *raw,
        _ => raw % 600 + if raw & (1 << 31) != 0 { 0x4000_0000 } else { 0 },
    };
    let mut args = [0; 6];
    for (out, (mode, at, raw)) in args.iter_mut().zip(&s.args) {
        let v = (!values.is_empty()).then(|| *at.get(&values));
        *out = match (mode, v) {
            (1, Some(v)) => v,
            (2, Some(v)) => near(v, 0, (*raw % 7) as u8, raw.rotate_left(17)),
            _ => *raw,
        };
    }
    if let Some((rule, call, offset, choices)) = &s.target {
        if !targets.is_empty() {
            let t = rule.get(targets);
            (audit, nr) = *call.get(&t.calls);
            nr = match offset % 8 {
                6 => nr.wrapping_add(1),
                7 => nr.wrapping_sub(1),
                _ => nr,
            };
            for (i, (index, value, value_two)) in t.cmps.iter().enumerate() {
                args[*index] = near(*value, *value_two, choices[i % 6], args[*index]);
            }
        }
    }
    (audit, nr, args)
}

fn check(profile: &Value, samples: &[Sample]) -> Result<(), TestCaseError> {
    let expected = reference::model(profile);
    for native in [Arch::X86_64, Arch::Aarch64] {
        let compiled = compile_for(profile, native);
        let filter = match (&expected, compiled) {
            (_, Err(SeccompError::TooLarge(_))) => continue, // not modelled
            (Outcome::Invalid(_), Err(e)) => {
                one_line(&e.to_string())?;
                continue;
            }
            (Outcome::Invalid(why), Ok(_)) => {
                return Err(TestCaseError::fail(format!(
                    "{native:?}: compiled a profile the reference refuses ({why})"
                )))
            }
            (_, Err(e)) => {
                return Err(TestCaseError::fail(format!(
                    "{native:?}: refused a valid profile: {e}"
                )))
            }
            (_, Ok(f)) => f,
        };
        let model = match &expected {
            Outcome::Filter(m) => m,
            _ => {
                prop_assert!(
                    filter.program.is_empty(),
                    "{native:?}: a filter for a disabled profile"
                );
                continue;
            }
        };
        interp::check(&filter.program);
        prop_assert_eq!(filter.uses_notify(), model.notify);
        prop_assert_eq!(
            (filter.flags, filter.implied_spec_allow),
            (model.flags, model.implied_spec_allow)
        );
        let targets = model.targets();
        for s in samples {
            let (audit, nr, args) = resolve(s, &targets);
            let data = interp::Data {
                nr,
                arch: audit,
                instruction_pointer: 0,
                args,
            };
            let got = interp::run(&filter.program, &data);
            let want = model.verdict(native, audit, nr, args);
            prop_assert_eq!(
                got,
                want,
                "{:?} host: arch {:#x} nr {} args {:x?}: program {:#x}, reference {:#x}",
                native,
                audit,
                nr,
                args,
                got,
                want
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(fz::config(256))]

    #[test]
    fn compiled_profiles_match_the_reference(
        profile in profile(),
        samples in prop::collection::vec(sample(), 1..48),
    ) {
        check(&profile, &samples)?;
    }
}
