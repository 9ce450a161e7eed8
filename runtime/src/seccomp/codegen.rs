//! The profile as a BPF program.
//!
//! ```text
//!   ld  [arch]
//!   jeq AUDIT_ARCH_X86_64 -> x86_64      one per filtered audit architecture
//!   jeq AUDIT_ARCH_I386   -> i386
//!   ret KILL_THREAD                      libseccomp's bad-arch action
//! x86_64:
//!   ld  [nr]
//!   jge 231 -> right                     binary search over intervals of
//!   jge 59 -> ...                        numbers with one outcome each
//!   ret ALLOW                            a leaf: one outcome ...
//!   ld  [args[0].hi] ; jeq ...           ... or one call's argument rules
//!   ret ALLOW ; ... ; ret <default>
//! ```
//!
//! On x86_64 the x32 ABI shares `AUDIT_ARCH_X86_64` and owns the numbers
//! with bit 30 set: they are the x32 rules' intervals when `SCMP_ARCH_X32` is
//! listed, the bad-arch action otherwise.

use std::collections::BTreeMap;

use super::arch::Arch;
use super::bpf::{Asm, Cond, Label, To, MAX_INSNS};
use super::profile::{ArgCmp, Op, Profile, Rule};
use super::{syscalls, SeccompError};

/// Offsets in `struct seccomp_data`.
const NR: u32 = 0;
const ARCH: u32 = 4;
const ARGS: u32 = 16;

/// libseccomp's default action for an ABI the filter does not cover.
const BAD_ARCH: u32 = libc::SECCOMP_RET_KILL_THREAD;
/// runc's answer to system calls newer than the profile.
const ENOSYS: u32 = libc::SECCOMP_RET_ERRNO | libc::ENOSYS.unsigned_abs();

/// What the filter does with the calls of one interval of numbers.
#[derive(Debug)]
enum Leaf<'a> {
    Ret(u32),
    /// The argument rules of one system call, tried in order; `default`
    /// when none matches. `wide`: compare 64-bit arguments.
    Rules {
        rules: Vec<&'a Rule>,
        wide: bool,
        default: u32,
    },
}

/// The numbers from `first` up to the next interval's `first`.
#[derive(Debug)]
struct Interval<'a> {
    first: u32,
    leaf: Leaf<'a>,
}

/// Builds the program for a host whose own ABI is `native`.
pub(super) fn program(
    profile: &Profile,
    native: Arch,
) -> Result<Vec<libc::sock_filter>, SeccompError> {
    // The native ABI always (libseccomp's filter starts with it), then the
    // listed ones this host can run; grouped by audit architecture.
    // (audit arch, last number covered, intervals)
    let mut groups: Vec<(u32, u32, Vec<Interval<'_>>)> = Vec::new();
    let compat = native
        .compat()
        .iter()
        .filter(|a| profile.listed.contains(a));
    for &arch in std::iter::once(&native).chain(compat) {
        let at = match groups.iter().position(|(audit, ..)| *audit == arch.audit()) {
            Some(at) => at,
            None => {
                groups.push((arch.audit(), 0, Vec::new()));
                groups.len() - 1
            }
        };
        arch_intervals(profile, arch, &mut groups[at].2);
        groups[at].1 = arch.numbers().1;
    }
    for (_, last, intervals) in &mut groups {
        // x86_64 without x32: the numbers with bit 30 set are a bad arch.
        if let Some(rest) = last.checked_add(1) {
            push(intervals, rest, Leaf::Ret(BAD_ARCH));
        }
    }

    let mut asm = Asm::default();
    asm.load(ARCH);
    let labels: Vec<Label> = groups.iter().map(|_| asm.label()).collect();
    for ((audit, ..), label) in groups.iter().zip(&labels) {
        asm.jump(Cond::Eq, *audit, To::Label(*label), To::Next);
    }
    asm.ret(BAD_ARCH);
    for ((.., intervals), label) in groups.iter().zip(&labels) {
        asm.bind(*label);
        if intervals.len() > 1 {
            asm.load(NR);
        }
        search(&mut asm, intervals);
    }
    let program = asm.assemble();
    if program.len() > MAX_INSNS {
        return Err(SeccompError::TooLarge(program.len()));
    }
    Ok(program)
}

/// Appends the intervals of `arch`'s numbers, in ascending order.
fn arch_intervals<'a>(profile: &'a Profile, arch: Arch, out: &mut Vec<Interval<'a>>) {
    // Per number: the first rule without arguments, else the argument rules.
    let mut calls: BTreeMap<u32, (Option<u32>, Vec<&'a Rule>)> = BTreeMap::new();
    let mut last_named = None;
    for rule in &profile.rules {
        let Some(nr) = syscalls::number(arch, &rule.name) else {
            continue; // unknown here: skipped, as libseccomp and runc do
        };
        last_named = last_named.max(Some(nr));
        if rule.action == profile.default_action {
            continue;
        }
        let (unconditional, conditional) = calls.entry(nr).or_default();
        if rule.args.is_empty() {
            unconditional.get_or_insert(rule.action);
        } else {
            conditional.push(rule);
        }
    }
    let enosys_from = if profile.enosys_stub && profile.listed.contains(&arch) {
        last_named.and_then(|n: u32| n.checked_add(1))
    } else {
        None
    };
    let gap = |out: &mut Vec<Interval<'a>>, from: u32, to: u32| match enosys_from {
        Some(e) if e <= to => {
            if from < e {
                push(out, from, Leaf::Ret(profile.default_action));
            }
            push(out, from.max(e), Leaf::Ret(ENOSYS));
        }
        _ => push(out, from, Leaf::Ret(profile.default_action)),
    };

    let (first, last) = arch.numbers();
    let mut next = first;
    for (nr, (unconditional, rules)) in calls {
        if nr > next {
            gap(out, next, nr - 1);
        }
        let leaf = match unconditional {
            Some(action) => Leaf::Ret(action),
            None => Leaf::Rules {
                rules,
                wide: arch.wide_args(),
                default: profile.default_action,
            },
        };
        push(out, nr, leaf);
        match nr.checked_add(1) {
            Some(n) => next = n,
            None => return,
        }
    }
    if next <= last {
        gap(out, next, last);
    }
}

/// Appends an interval, merged into the previous one when both return the
/// same value.
fn push<'a>(out: &mut Vec<Interval<'a>>, first: u32, leaf: Leaf<'a>) {
    if let (
        Leaf::Ret(k),
        Some(Interval {
            leaf: Leaf::Ret(prev),
            ..
        }),
    ) = (&leaf, out.last())
    {
        if k == prev {
            return;
        }
    }
    out.push(Interval { first, leaf });
}

/// Binary search for `A` (the number) among `intervals`, all of whose
/// numbers are at least `intervals[0].first`.
fn search(asm: &mut Asm, intervals: &[Interval<'_>]) {
    if let [only] = intervals {
        return leaf(asm, &only.leaf);
    }
    let mid = intervals.len() / 2;
    let upper = asm.label();
    asm.jump(Cond::Ge, intervals[mid].first, To::Label(upper), To::Next);
    search(asm, &intervals[..mid]);
    asm.bind(upper);
    search(asm, &intervals[mid..]);
}

fn leaf(asm: &mut Asm, leaf: &Leaf<'_>) {
    match leaf {
        Leaf::Ret(k) => asm.ret(*k),
        Leaf::Rules {
            rules,
            wide,
            default,
        } => {
            for rule in rules {
                let next_rule = asm.label();
                for cmp in &rule.args {
                    arg(asm, cmp, *wide, next_rule);
                }
                asm.ret(rule.action);
                asm.bind(next_rule);
            }
            asm.ret(*default);
        }
    }
}

/// `seccomp_data` offsets of the (low, high) words of argument `index`.
fn words(index: u8) -> (u32, u32) {
    let at = ARGS + 8 * u32::from(index);
    if cfg!(target_endian = "little") {
        (at, at + 4)
    } else {
        (at + 4, at)
    }
}

/// (low, high) 32-bit halves.
fn halves(v: u64) -> (u32, u32) {
    (v as u32, (v >> 32) as u32)
}

/// Falls through when the comparison holds, jumps to `fail` otherwise.
/// Unsigned; on 64-bit ABIs the high words decide unless they are equal.
fn arg(asm: &mut Asm, cmp: &ArgCmp, wide: bool, fail: Label) {
    let (lo, hi) = words(cmp.index);
    let (v_lo, v_hi) = halves(cmp.value);
    let fail_to = To::Label(fail);
    match cmp.op {
        Op::MaskedEq => {
            let (d_lo, d_hi) = halves(cmp.value_two);
            if wide {
                masked_word(asm, hi, v_hi, d_hi, fail);
            }
            masked_word(asm, lo, v_lo, d_lo, fail);
        }
        Op::Eq => {
            if wide {
                asm.load(hi);
                asm.jump(Cond::Eq, v_hi, To::Next, fail_to);
            }
            asm.load(lo);
            asm.jump(Cond::Eq, v_lo, To::Next, fail_to);
        }
        Op::Ne => {
            let pass = asm.label();
            if wide {
                asm.load(hi);
                asm.jump(Cond::Eq, v_hi, To::Next, To::Label(pass));
            }
            asm.load(lo);
            asm.jump(Cond::Eq, v_lo, fail_to, To::Next);
            asm.bind(pass);
        }
        Op::Gt | Op::Ge => {
            // hi > v_hi: pass; hi < v_hi: fail; equal: the low words decide.
            let low = if cmp.op == Op::Gt { Cond::Gt } else { Cond::Ge };
            let pass = asm.label();
            if wide {
                asm.load(hi);
                asm.jump(Cond::Gt, v_hi, To::Label(pass), To::Next);
                asm.jump(Cond::Eq, v_hi, To::Next, fail_to);
            }
            asm.load(lo);
            asm.jump(low, v_lo, To::Next, fail_to);
            asm.bind(pass);
        }
        Op::Lt | Op::Le => {
            // a < v is !(a >= v); a <= v is !(a > v).
            let low = if cmp.op == Op::Lt { Cond::Ge } else { Cond::Gt };
            let pass = asm.label();
            if wide {
                asm.load(hi);
                asm.jump(Cond::Gt, v_hi, fail_to, To::Next);
                asm.jump(Cond::Eq, v_hi, To::Next, To::Label(pass));
            }
            asm.load(lo);
            asm.jump(low, v_lo, fail_to, To::Next);
            asm.bind(pass);
        }
    }
}

/// `(word & mask) == datum` for one 32-bit word.
fn masked_word(asm: &mut Asm, offset: u32, mask: u32, datum: u32, fail: Label) {
    if mask == 0 {
        if datum != 0 {
            asm.ja(fail); // never holds
        }
        return;
    }
    asm.load(offset);
    if mask != u32::MAX {
        asm.and(mask);
    }
    asm.jump(Cond::Eq, datum, To::Next, To::Label(fail));
}
