//! What a profile means, computed straight from its JSON with none of the
//! compiler's code (no `profile`, `codegen` or `arch` logic; only the
//! system call tables): the reference the compiled programs are checked
//! against, for the Docker-like profile (`docker`) and random ones (`fuzz`).
//!
//! The semantics are those the module documentation of `seccomp` states
//! (runc + libseccomp), written down as directly as possible: find the ABI
//! of the call, then the rules naming its number, first the unconditional
//! ones, then the others in profile order; else -ENOSYS past the profile's
//! last call on a listed architecture, else the default action.

use serde_json::Value;

use crate::seccomp::arch::Arch;
use crate::seccomp::syscalls;

/// `SECCOMP_RET_*` values (`<linux/seccomp.h>`).
const KILL_THREAD: u32 = 0;
const KILL_PROCESS: u32 = 0x8000_0000;
const TRAP: u32 = 0x0003_0000;
const ERRNO: u32 = 0x0005_0000;
const USER_NOTIF: u32 = 0x7fc0_0000;
const TRACE: u32 = 0x7ff0_0000;
const LOG: u32 = 0x7ffc_0000;
const ALLOW: u32 = 0x7fff_0000;
const ENOSYS: u32 = ERRNO | 38;

/// An ABI as the kernel reports its calls.
struct Abi {
    name: &'static str,
    /// The key of its system call table.
    table: Arch,
    /// `AUDIT_ARCH_*` (`<linux/audit.h>`).
    audit: u32,
    /// The numbers it owns under `audit`.
    numbers: std::ops::RangeInclusive<u32>,
    /// Arguments compared on 64 bits (else on their low 32 bits).
    wide: bool,
}

const ABIS: [Abi; 5] = [
    Abi {
        name: "SCMP_ARCH_X86_64",
        table: Arch::X86_64,
        audit: 0xc000_003e,
        numbers: 0..=0x3fff_ffff,
        wide: true,
    },
    Abi {
        name: "SCMP_ARCH_X86",
        table: Arch::X86,
        audit: 0x4000_0003,
        numbers: 0..=u32::MAX,
        wide: false,
    },
    Abi {
        name: "SCMP_ARCH_X32",
        table: Arch::X32,
        audit: 0xc000_003e,
        numbers: 0x4000_0000..=u32::MAX,
        wide: false,
    },
    Abi {
        name: "SCMP_ARCH_AARCH64",
        table: Arch::Aarch64,
        audit: 0xc000_00b7,
        numbers: 0..=u32::MAX,
        wide: true,
    },
    Abi {
        name: "SCMP_ARCH_ARM",
        table: Arch::Arm,
        audit: 0x4000_0028,
        numbers: 0..=u32::MAX,
        wide: false,
    },
];

/// The `SCMP_ARCH_*` names libseccomp knows that no process on an x86_64
/// or aarch64 host can use.
const FOREIGN_ARCHES: [&str; 15] = [
    "SCMP_ARCH_MIPS",
    "SCMP_ARCH_MIPS64",
    "SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL",
    "SCMP_ARCH_MIPSEL64",
    "SCMP_ARCH_MIPSEL64N32",
    "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64",
    "SCMP_ARCH_PPC64LE",
    "SCMP_ARCH_S390",
    "SCMP_ARCH_S390X",
    "SCMP_ARCH_PARISC",
    "SCMP_ARCH_PARISC64",
    "SCMP_ARCH_RISCV64",
    "SCMP_ARCH_LOONGARCH64",
];

const FLAGS: [(&str, libc::c_ulong); 4] = [
    ("SECCOMP_FILTER_FLAG_TSYNC", 1),
    ("SECCOMP_FILTER_FLAG_LOG", 2),
    ("SECCOMP_FILTER_FLAG_SPEC_ALLOW", 4),
    ("SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV", 32),
];
const FLAG_NEW_LISTENER: libc::c_ulong = 8;
const FLAG_TSYNC_ESRCH: libc::c_ulong = 16;

/// The ABIs a host of ABI `native` runs.
fn host_abis(native: Arch) -> &'static [&'static str] {
    match native {
        Arch::X86_64 => &["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        Arch::Aarch64 => &["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
        other => panic!("{other:?} is no host ABI"),
    }
}

/// What a profile is.
#[derive(Debug)]
pub(super) enum Outcome {
    /// Seccomp disabled: no filter at all.
    Disabled,
    /// Refused, for this reason.
    Invalid(String),
    /// A filter with these semantics.
    Filter(Model),
}

/// A valid profile's semantics.
#[derive(Debug)]
pub(super) struct Model {
    default: u32,
    /// The `architectures` named.
    listed: Vec<String>,
    /// -ENOSYS past the last named call (non-permissive default).
    enosys: bool,
    /// One per name (and per argument when arguments repeat an index).
    rules: Vec<Rule>,
    /// Some `syscalls[]` entry has `SCMP_ACT_NOTIFY`.
    pub(super) notify: bool,
    /// The `SECCOMP_FILTER_FLAG_*` the filter is installed with.
    pub(super) flags: libc::c_ulong,
    /// `flags` was absent: SPEC_ALLOW is implied.
    pub(super) implied_spec_allow: bool,
}

/// One rule, for choosing calls that reach it: see [`Model::targets`].
#[derive(Debug)]
pub(super) struct Target {
    pub(super) calls: Vec<(u32, u32)>,
    pub(super) cmps: Vec<(usize, u64, u64)>,
}

#[derive(Debug)]
struct Rule {
    name: String,
    action: u32,
    args: Vec<Cmp>,
}

#[derive(Debug, Clone)]
struct Cmp {
    index: usize,
    op: String,
    value: u64,
    value_two: u64,
}

/// The kernel's value for action `name` with `errno` (`errnoRet`).
fn action(name: &str, errno: Option<u64>) -> Result<u32, String> {
    let data = || match errno {
        None => Ok(1), // EPERM
        Some(e) if e <= 0xffff => Ok(e as u32),
        Some(e) => Err(format!("errnoRet {e} out of range")),
    };
    let takes_no_errno = |v: u32| match errno {
        None => Ok(v),
        Some(_) => Err(format!("errnoRet with {name}")),
    };
    match name {
        "SCMP_ACT_ERRNO" => Ok(ERRNO | data()?),
        "SCMP_ACT_TRACE" => Ok(TRACE | data()?),
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => takes_no_errno(KILL_THREAD),
        "SCMP_ACT_KILL_PROCESS" => takes_no_errno(KILL_PROCESS),
        "SCMP_ACT_TRAP" => takes_no_errno(TRAP),
        "SCMP_ACT_LOG" => takes_no_errno(LOG),
        "SCMP_ACT_ALLOW" => takes_no_errno(ALLOW),
        "SCMP_ACT_NOTIFY" => takes_no_errno(USER_NOTIF),
        _ => Err(format!("unknown action {name:?}")),
    }
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .into_iter()
        .flatten()
        .map(|s| s.as_str().expect("a string"))
        .collect()
}

/// Reads `profile` (a well-typed `linux.seccomp`) into its meaning.
pub(super) fn model(profile: &Value) -> Outcome {
    match read(profile) {
        Ok(Some(m)) => Outcome::Filter(m),
        Ok(None) => Outcome::Disabled,
        Err(why) => Outcome::Invalid(why),
    }
}

fn read(p: &Value) -> Result<Option<Model>, String> {
    let default_name = p["defaultAction"].as_str().unwrap_or_default();
    let calls: &[Value] = p["syscalls"].as_array().map_or(&[], Vec::as_slice);
    if p.is_null() || (default_name.is_empty() && calls.is_empty()) {
        return Ok(None);
    }
    let mut flags = 0;
    for f in strings(&p["flags"]) {
        let (_, bit) = FLAGS
            .iter()
            .find(|(n, _)| *n == f)
            .ok_or(format!("unknown flag {f:?}"))?;
        flags |= bit;
    }
    let listed: Vec<String> = strings(&p["architectures"])
        .into_iter()
        .map(str::to_string)
        .collect();
    for a in &listed {
        if !ABIS.iter().any(|abi| abi.name == a) && !FOREIGN_ARCHES.contains(&a.as_str()) {
            return Err(format!("unknown architecture {a:?}"));
        }
    }
    let default = action(default_name, p["defaultErrnoRet"].as_u64())?;
    if default_name == "SCMP_ACT_NOTIFY" {
        return Err("NOTIFY as the default".into());
    }
    let mut rules = Vec::new();
    let mut notify = false;
    for call in calls {
        let name = call["action"].as_str().unwrap_or_default();
        let act = action(name, call["errnoRet"].as_u64())?;
        notify |= name == "SCMP_ACT_NOTIFY";
        let names = strings(&call["names"]);
        if names.contains(&"") {
            return Err("an empty name".into());
        }
        if name == "SCMP_ACT_NOTIFY" && names.contains(&"write") {
            return Err("NOTIFY for write".into());
        }
        let mut args = Vec::new();
        for a in call["args"].as_array().into_iter().flatten() {
            let index = a["index"].as_u64().unwrap_or(0);
            let op = a["op"].as_str().unwrap_or_default();
            if index > 5 {
                return Err(format!("argument index {index}"));
            }
            if !matches!(
                op,
                "SCMP_CMP_NE"
                    | "SCMP_CMP_LT"
                    | "SCMP_CMP_LE"
                    | "SCMP_CMP_EQ"
                    | "SCMP_CMP_GE"
                    | "SCMP_CMP_GT"
                    | "SCMP_CMP_MASKED_EQ"
            ) {
                return Err(format!("unknown operator {op:?}"));
            }
            args.push(Cmp {
                index: index as usize,
                op: op.to_string(),
                value: a["value"].as_u64().unwrap_or(0),
                value_two: a["valueTwo"].as_u64().unwrap_or(0),
            });
        }
        let repeated = (0..args.len()).any(|i| (0..i).any(|j| args[j].index == args[i].index));
        for n in names {
            if repeated {
                // runc: each condition becomes a rule of its own.
                for a in &args {
                    rules.push(Rule {
                        name: n.to_string(),
                        action: act,
                        args: vec![a.clone()],
                    });
                }
            } else {
                rules.push(Rule {
                    name: n.to_string(),
                    action: act,
                    args: args.clone(),
                });
            }
        }
    }
    let listener = p["listenerPath"].as_str().unwrap_or_default();
    if notify && listener.is_empty() {
        return Err("NOTIFY without a listenerPath".into());
    }
    let implied_spec_allow = p["flags"].is_null();
    if implied_spec_allow {
        flags = 4;
    }
    if notify {
        flags |= FLAG_NEW_LISTENER;
        if flags & 1 != 0 {
            flags |= FLAG_TSYNC_ESRCH;
        }
    } else {
        flags &= !32;
    }
    let permissive = [ALLOW, LOG, TRACE].contains(&(default & 0xffff_0000));
    Ok(Some(Model {
        default,
        listed,
        enosys: !permissive,
        rules,
        notify,
        flags,
        implied_spec_allow,
    }))
}

impl Cmp {
    fn holds(&self, args: &[u64; 6], wide: bool) -> bool {
        let narrow = |v: u64| if wide { v } else { v & 0xffff_ffff };
        let (a, v, v2) = (
            narrow(args[self.index]),
            narrow(self.value),
            narrow(self.value_two),
        );
        match self.op.as_str() {
            "SCMP_CMP_NE" => a != v,
            "SCMP_CMP_LT" => a < v,
            "SCMP_CMP_LE" => a <= v,
            "SCMP_CMP_EQ" => a == v,
            "SCMP_CMP_GE" => a >= v,
            "SCMP_CMP_GT" => a > v,
            "SCMP_CMP_MASKED_EQ" => a & v == v2,
            op => unreachable!("{op}"),
        }
    }
}

impl Model {
    /// The value the filter returns, on a host of ABI `native`, for a call
    /// with `seccomp_data` `audit`, `nr` and `args`.
    pub(super) fn verdict(&self, native: Arch, audit: u32, nr: u32, args: [u64; 6]) -> u32 {
        let host = host_abis(native);
        // The host's own ABI always; the others it runs when listed.
        let Some(abi) = ABIS.iter().find(|abi| {
            abi.audit == audit
                && abi.numbers.contains(&nr)
                && host.contains(&abi.name)
                && (abi.name == host[0] || self.listed.iter().any(|l| l == abi.name))
        }) else {
            return KILL_THREAD; // libseccomp's bad-arch action
        };
        let number = |r: &Rule| syscalls::number(abi.table, &r.name);
        let last_named = self.rules.iter().filter_map(number).max();
        let mine: Vec<&Rule> = self
            .rules
            .iter()
            .filter(|r| number(r) == Some(nr) && r.action != self.default)
            .collect();
        if let Some(r) = mine.iter().find(|r| r.args.is_empty()) {
            return r.action;
        }
        if let Some(r) = mine
            .iter()
            .find(|r| r.args.iter().all(|c| c.holds(&args, abi.wide)))
        {
            return r.action;
        }
        if self.enosys
            && self.listed.iter().any(|l| l == abi.name)
            && last_named.is_some_and(|last| nr > last)
        {
            return ENOSYS;
        }
        self.default
    }

    /// Where to look for disagreements: per rule, the calls it names
    /// (`(audit, nr)` on every ABI that has the name) and its comparisons
    /// (`(index, value, valueTwo)`).
    pub(super) fn targets(&self) -> Vec<Target> {
        self.rules
            .iter()
            .map(|r| Target {
                calls: ABIS
                    .iter()
                    .filter_map(|a| Some((a.audit, syscalls::number(a.table, &r.name)?)))
                    .collect(),
                cmps: r
                    .args
                    .iter()
                    .map(|c| (c.index, c.value, c.value_two))
                    .collect(),
            })
            .filter(|t| !t.calls.is_empty())
            .collect()
    }
}
