//! The cgroup v2 device controller: `linux.resources.devices` compiled into
//! an eBPF program of type `BPF_PROG_TYPE_CGROUP_DEVICE` and attached to the
//! container's cgroup directory.
//!
//! cgroup v2 has no `devices.allow`/`devices.deny`. On every `open` or
//! `mknod` of a device node the kernel runs the `BPF_CGROUP_DEVICE` programs
//! attached to the caller's cgroup and its ancestors with a
//! `bpf_cgroup_dev_ctx` (`access_type = access << 16 | type`, `major`,
//! `minor`), and grants the access only if every program returns 1.
//!
//! # Semantics
//!
//! A rule list means here what it means on cgroup v1, where the rules are
//! written one by one to `devices.allow`/`devices.deny`, so a config behaves
//! the same on both. [`program`] first reduces the list the way the v1
//! controller would end up after each write:
//!
//! - before the first rule every device is denied (runc's starting point);
//! - a rule of type `a` (whatever its numbers and access) resets: allowing
//!   one allows everything, denying one denies everything, and every earlier
//!   exception is forgotten;
//! - a `c`/`b` rule whose verdict differs from the current default adds an
//!   exception; access letters merge into an existing exception with exactly
//!   the same type and numbers;
//! - a `c`/`b` rule with the default's verdict takes its access letters away
//!   from the exception with exactly the same type and numbers.
//!
//! A request (one device type, major, minor and a set of access bits) is
//! then decided as v1 decides it:
//!
//! - default deny: allowed if **one** exception names the device and grants
//!   every requested access;
//! - default allow: denied if **any** exception names the device and shares
//!   any requested access (runc's v2 filter checks deny exceptions like allow
//!   ones, so a `w` deny does not stop a read-write open there; here it does).
//!
//! One deliberate difference from v1: a rule that would punch a hole into a
//! wider wildcard exception of the other verdict (`c *:* rwm` allowed, then
//! `c 1:3 w` denied) is silently ignored by v1 and refused by runc. Here the
//! hole is kept: the wider exceptions stop granting (or denying) those
//! accesses of those devices until a rule of their verdict names the same or
//! more devices again. Lists runc accepts have no such hole and behave
//! exactly as with runc.
//!
//! # Replacing the program
//!
//! [`apply`] attaches the new program with `BPF_F_ALLOW_MULTI` before it
//! detaches the ones corten attached earlier (recognised by their name,
//! [`PROG_NAME`]), so there is never a moment without a filter. Programs
//! attached by anyone else are left alone: they can only restrict further.

use std::fs::OpenOptions;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// The name corten gives its device programs (at most 15 bytes).
pub const PROG_NAME: &str = "corten_devices";

/// `bpf_cgroup_dev_ctx` device types.
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;
/// `bpf_cgroup_dev_ctx` access bits.
const ACC_MKNOD: u8 = 1;
const ACC_READ: u8 = 2;
const ACC_WRITE: u8 = 4;
const ACC_ALL: u8 = ACC_MKNOD | ACC_READ | ACC_WRITE;

/// Errors from the v2 device controller.
#[derive(Debug, thiserror::Error)]
pub enum BpfError {
    /// `linux.resources.devices` is present but not an array.
    #[error("linux.resources.devices is not an array")]
    NotAList,
    /// One entry of `linux.resources.devices` is malformed.
    #[error("linux.resources.devices[{index}]: {reason}")]
    Rule {
        /// Position in the array.
        index: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// The cgroup directory could not be opened.
    #[error("open cgroup {path}: {source}")]
    OpenCgroup {
        /// The directory.
        path: PathBuf,
        /// Cause.
        source: io::Error,
    },
    /// The kernel refused the program; `log` holds the verifier's reasons.
    #[error("load the device filter (BPF_PROG_LOAD): {source}{log}")]
    Load {
        /// Cause.
        source: io::Error,
        /// `": verifier log: ..."`, or empty when the kernel gave none.
        log: String,
    },
    /// Listing the programs attached to the cgroup failed.
    #[error("query device filters of {path} (BPF_PROG_QUERY): {source}")]
    Query {
        /// The cgroup directory.
        path: PathBuf,
        /// Cause.
        source: io::Error,
    },
    /// An attached program could not be opened or inspected.
    #[error("open attached device filter id {id}: {source}")]
    OpenProg {
        /// The program id.
        id: u32,
        /// Cause.
        source: io::Error,
    },
    /// Attaching the new program failed.
    #[error("attach the device filter to {path} (BPF_PROG_ATTACH): {source}")]
    Attach {
        /// The cgroup directory.
        path: PathBuf,
        /// Cause.
        source: io::Error,
    },
    /// Detaching a replaced program failed (the new one is attached).
    #[error("detach the old device filter id {id} from {path} (BPF_PROG_DETACH): {source}")]
    Detach {
        /// The cgroup directory.
        path: PathBuf,
        /// The old program's id.
        id: u32,
        /// Cause.
        source: io::Error,
    },
}

/// The device types a rule can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceKind {
    /// `a`: every device (such a rule always resets the whole list).
    All,
    /// `c`: character devices.
    Char,
    /// `b`: block devices.
    Block,
}

/// One device rule as in the OCI spec's `linux.resources.devices[]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRule {
    /// Allow (`true`) or deny.
    pub allow: bool,
    /// Device type.
    pub kind: DeviceKind,
    /// Major number; `None` is the wildcard.
    pub major: Option<i64>,
    /// Minor number; `None` is the wildcard.
    pub minor: Option<i64>,
    /// A subset of `"rwm"` (other letters are ignored here and refused by
    /// [`rules_from_spec`]).
    pub access: String,
}

impl DeviceRule {
    /// Parses a rule in v1's `devices.allow` syntax, e.g. `c 136:* rwm`.
    pub fn from_v1(allow: bool, line: &str) -> Option<Self> {
        let mut words = line.split_whitespace();
        let kind = match words.next()? {
            "a" => DeviceKind::All,
            "c" => DeviceKind::Char,
            "b" => DeviceKind::Block,
            _ => return None,
        };
        let (major, minor) = words.next().unwrap_or("*:*").split_once(':')?;
        let num = |s: &str| {
            if s == "*" {
                Some(None)
            } else {
                s.parse().ok().map(Some)
            }
        };
        Some(Self {
            allow,
            kind,
            major: num(major)?,
            minor: num(minor)?,
            access: words.next().unwrap_or("rwm").to_string(),
        })
    }
}

/// The rules of the spec's `linux.resources.devices` array, with the spec's
/// defaults for missing fields: type `a`, wildcard major and minor, access
/// `rwm`, and (as runc) deny when `allow` is missing. A major or minor of -1
/// is the wildcard too, as in runc; an unknown type or access letter is
/// refused, as runc refuses it.
pub fn rules_from_spec(devices: &Value) -> Result<Vec<DeviceRule>, BpfError> {
    let list = match devices {
        Value::Null => return Ok(Vec::new()),
        Value::Array(list) => list,
        _ => return Err(BpfError::NotAList),
    };
    list.iter()
        .enumerate()
        .map(|(index, d)| rule_from_spec(d).map_err(|reason| BpfError::Rule { index, reason }))
        .collect()
}

fn rule_from_spec(d: &Value) -> Result<DeviceRule, String> {
    let obj = d.as_object().ok_or("not an object")?;
    let field = |k: &str| obj.get(k).filter(|v| !v.is_null());
    let allow = match field("allow") {
        None => false,
        Some(v) => v.as_bool().ok_or("allow is not a boolean")?,
    };
    let kind = match field("type").map(|t| t.as_str().ok_or("type is not a string")) {
        None => DeviceKind::All,
        Some(Err(e)) => return Err(e.into()),
        Some(Ok("a")) => DeviceKind::All,
        Some(Ok("c")) => DeviceKind::Char,
        Some(Ok("b")) => DeviceKind::Block,
        Some(Ok(t)) => return Err(format!("invalid device type {t:?} (want a, b or c)")),
    };
    let number = |k: &str| match field(k) {
        None => Ok(None),
        Some(v) => match v.as_i64() {
            Some(-1) => Ok(None),
            Some(n) => Ok(Some(n)),
            None => Err(format!("{k} is not an integer")),
        },
    };
    let access = match field("access") {
        None => "rwm".to_string(),
        Some(v) => v.as_str().ok_or("access is not a string")?.to_string(),
    };
    if let Some(c) = access.chars().find(|c| !"rwm".contains(*c)) {
        return Err(format!(
            "invalid device access {c:?} in {access:?} (want r, w, m)"
        ));
    }
    Ok(DeviceRule {
        allow,
        kind,
        major: number("major")?,
        minor: number("minor")?,
        access,
    })
}

/// runc's default allow-list, appended after the config's rules: `mknod` of
/// any character or block device, then read, write and `mknod` of `/dev/null`
/// (1:3), `zero` (1:5), `full` (1:7), `random` (1:8), `urandom` (1:9), `tty`
/// (5:0), `ptmx` (5:2), the pty slaves (136:*) and `net/tun` (10:200).
pub fn default_allowed() -> Vec<DeviceRule> {
    super::resources::DEFAULT_ALLOWED
        .iter()
        .filter_map(|line| DeviceRule::from_v1(true, line))
        .collect()
}

// ---------------------------------------------------------------------------
// Reduction: the rule list as the v1 controller ends up with it.
// ---------------------------------------------------------------------------

/// What an exception names: a type (`c` or `b`) and two numbers or wildcards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Key {
    block: bool,
    major: Option<i64>,
    minor: Option<i64>,
}

impl Key {
    /// Whether `self` names every device `other` names, and more.
    fn strictly_wider(&self, other: &Key) -> bool {
        self != other
            && self.block == other.block
            && (self.major.is_none() || self.major == other.major)
            && (self.minor.is_none() || self.minor == other.minor)
    }
}

/// Access bits for the devices a key names: an exception (the verdict
/// opposite to the default) or a hole (back to the default, inside a wider
/// exception).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    key: Key,
    bits: u8,
}

/// The reduced rule list: a default verdict, exceptions, and holes.
#[derive(Debug, Clone, Default)]
struct Reduced {
    default_allow: bool,
    exceptions: Vec<Entry>,
    holes: Vec<Entry>,
}

fn access_bits(access: &str) -> u8 {
    access.chars().fold(0, |acc, c| match c {
        'r' => acc | ACC_READ,
        'w' => acc | ACC_WRITE,
        'm' => acc | ACC_MKNOD,
        _ => acc,
    })
}

/// Adds `bits` to the entry for exactly `key` in `list`, creating it.
fn merge(list: &mut Vec<Entry>, key: Key, bits: u8) {
    match list.iter_mut().find(|e| e.key == key) {
        Some(e) => e.bits |= bits,
        None => list.push(Entry { key, bits }),
    }
}

/// Reduces `rules` as described in the module documentation.
fn reduce(rules: &[DeviceRule]) -> Reduced {
    let mut r = Reduced::default();
    for rule in rules {
        let block = match rule.kind {
            DeviceKind::All => {
                r = Reduced {
                    default_allow: rule.allow,
                    ..Reduced::default()
                };
                continue;
            }
            DeviceKind::Char => false,
            DeviceKind::Block => true,
        };
        let key = Key {
            block,
            major: rule.major,
            minor: rule.minor,
        };
        let bits = access_bits(&rule.access);
        if rule.allow == r.default_allow {
            r.withdraw(key, bits);
        } else {
            r.grant(key, bits);
        }
    }
    r
}

impl Reduced {
    /// Adds `bits` to the exception for `key`, as v1 does, and closes them in
    /// the holes that `key` covers.
    fn grant(&mut self, key: Key, bits: u8) {
        if bits == 0 {
            return;
        }
        merge(&mut self.exceptions, key, bits);
        for h in self
            .holes
            .iter_mut()
            .filter(|h| h.key == key || key.strictly_wider(&h.key))
        {
            h.bits &= !bits;
        }
        self.holes.retain(|h| h.bits != 0);
    }

    /// Takes `bits` from the exception for exactly `key`, as v1 does; where a
    /// wider exception still grants some of them, opens a hole.
    fn withdraw(&mut self, key: Key, bits: u8) {
        if let Some(e) = self.exceptions.iter_mut().find(|e| e.key == key) {
            e.bits &= !bits;
        }
        self.exceptions.retain(|e| e.bits != 0);
        let wider: u8 = self
            .exceptions
            .iter()
            .filter(|e| e.key.strictly_wider(&key))
            .fold(0, |acc, e| acc | e.bits);
        if wider & bits != 0 {
            merge(&mut self.holes, key, wider & bits);
        }
    }
}

// ---------------------------------------------------------------------------
// Code generation.
// ---------------------------------------------------------------------------

/// One eBPF instruction (`struct bpf_insn`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    /// Opcode: class | size/operation | source.
    pub code: u8,
    /// Destination register (low nibble on little-endian) and source register.
    pub regs: u8,
    /// Jump offset, in instructions after the next one; or memory offset.
    pub off: i16,
    /// Immediate operand.
    pub imm: i32,
}

// Opcode parts (linux/bpf_common.h, linux/bpf.h).
const BPF_LDX: u8 = 0x01;
const BPF_ALU: u8 = 0x04;
const BPF_JMP: u8 = 0x05;
const BPF_ALU64: u8 = 0x07;
const BPF_W: u8 = 0x00;
const BPF_MEM: u8 = 0x60;
const BPF_K: u8 = 0x00;
const BPF_X: u8 = 0x08;
const BPF_AND: u8 = 0x50;
const BPF_RSH: u8 = 0x70;
const BPF_MOV: u8 = 0xb0;
const BPF_JEQ: u8 = 0x10;
const BPF_JNE: u8 = 0x50;
const BPF_EXIT: u8 = 0x90;

// Registers: R0 the verdict, R1 the context (then scratch), R2 the device
// type, R3 the requested access, R4 the major, R5 the minor.
const R0: u8 = 0;
const R1: u8 = 1;
const R2: u8 = 2;
const R3: u8 = 3;
const R4: u8 = 4;
const R5: u8 = 5;

impl Insn {
    fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Self {
        let regs = if cfg!(target_endian = "little") {
            src << 4 | dst
        } else {
            dst << 4 | src
        };
        Self {
            code,
            regs,
            off,
            imm,
        }
    }

    /// The destination register.
    pub fn dst(&self) -> u8 {
        if cfg!(target_endian = "little") {
            self.regs & 0xf
        } else {
            self.regs >> 4
        }
    }

    /// The source register.
    pub fn src(&self) -> u8 {
        if cfg!(target_endian = "little") {
            self.regs >> 4
        } else {
            self.regs & 0xf
        }
    }

    fn load_u32(dst: u8, src: u8, off: i16) -> Self {
        Self::new(BPF_LDX | BPF_MEM | BPF_W, dst, src, off, 0)
    }
    fn alu32_imm(op: u8, dst: u8, imm: i32) -> Self {
        Self::new(BPF_ALU | op | BPF_K, dst, 0, 0, imm)
    }
    fn alu32_reg(op: u8, dst: u8, src: u8) -> Self {
        Self::new(BPF_ALU | op | BPF_X, dst, src, 0, 0)
    }
    fn mov64_imm(dst: u8, imm: i32) -> Self {
        Self::new(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm)
    }
    /// A forward jump whose offset is patched later.
    fn jmp_imm(op: u8, dst: u8, imm: i32) -> Self {
        Self::new(BPF_JMP | op | BPF_K, dst, 0, 0, imm)
    }
    fn jmp_reg(op: u8, dst: u8, src: u8) -> Self {
        Self::new(BPF_JMP | op | BPF_X, dst, src, 0, 0)
    }
    fn exit() -> Self {
        Self::new(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)
    }
}

/// A major or minor as the program compares it. Device numbers are below
/// 2^31, and the comparison is against a sign-extended 32-bit immediate, so a
/// number outside `0..=i32::MAX` can never match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Num {
    Any,
    Is(i32),
    Never,
}

fn num(n: Option<i64>) -> Num {
    match n {
        None => Num::Any,
        Some(n) => i32::try_from(n)
            .ok()
            .filter(|n| *n >= 0)
            .map_or(Num::Never, Num::Is),
    }
}

/// The check of one exception: when the device matches, the access bits it
/// holds, less those that holes matching the device take away.
#[derive(Debug)]
struct Block {
    kind: i32,
    major: Num,
    minor: Num,
    bits: u8,
    /// (major, minor, bits taken away): holes are narrower than the
    /// exception, so only the numbers it leaves open need checking.
    holes: Vec<(Num, Num, u8)>,
}

impl Reduced {
    fn block(&self, e: &Entry) -> Option<Block> {
        let (major, minor) = (num(e.key.major), num(e.key.minor));
        if major == Num::Never || minor == Num::Never {
            return None;
        }
        let mut holes: Vec<(Num, Num, u8)> = Vec::new();
        for h in self.holes.iter().filter(|h| e.key.strictly_wider(&h.key)) {
            let mask = h.bits & e.bits;
            let (hmajor, hminor) = (num(h.key.major), num(h.key.minor));
            if mask == 0 || hmajor == Num::Never || hminor == Num::Never {
                continue;
            }
            let hmajor = if major == Num::Any { hmajor } else { Num::Any };
            let hminor = if minor == Num::Any { hminor } else { Num::Any };
            match holes
                .iter_mut()
                .find(|(a, b, _)| (*a, *b) == (hmajor, hminor))
            {
                Some(same) => same.2 |= mask,
                None => holes.push((hmajor, hminor, mask)),
            }
        }
        let kind = if e.key.block { DEV_BLOCK } else { DEV_CHAR };
        Some(Block {
            kind,
            major,
            minor,
            bits: e.bits,
            holes,
        })
    }
}

/// Points the jumps at `from` to the next instruction to be emitted.
fn patch(code: &mut [Insn], from: &[usize]) {
    let target = code.len();
    for &i in from {
        code[i].off =
            i16::try_from(target - i - 1).expect("a device rule's check is under 32k instructions");
    }
}

/// `if reg != n goto (recorded jump)`, nothing for a wildcard.
fn check_num(code: &mut Vec<Insn>, jumps: &mut Vec<usize>, reg: u8, n: Num) {
    if let Num::Is(n) = n {
        jumps.push(code.len());
        code.push(Insn::jmp_imm(BPF_JNE, reg, n));
    }
}

fn emit_block(code: &mut Vec<Insn>, b: &Block, default_allow: bool) {
    let mut to_next = vec![code.len()];
    code.push(Insn::jmp_imm(BPF_JNE, R2, b.kind));
    check_num(code, &mut to_next, R4, b.major);
    check_num(code, &mut to_next, R5, b.minor);
    if !(b.holes.is_empty() && b.bits == ACC_ALL) {
        // R1 = the bits the exception holds for this device.
        code.push(Insn::alu32_imm(BPF_MOV, R1, i32::from(b.bits)));
        for &(major, minor, mask) in &b.holes {
            let mut to_skip = Vec::new();
            check_num(code, &mut to_skip, R4, major);
            check_num(code, &mut to_skip, R5, minor);
            code.push(Insn::alu32_imm(BPF_AND, R1, i32::from(ACC_ALL & !mask)));
            patch(code, &to_skip);
        }
        code.push(Insn::alu32_reg(BPF_AND, R1, R3));
        to_next.push(code.len());
        code.push(if default_allow {
            // A deny exception applies when it shares any requested bit.
            Insn::jmp_imm(BPF_JEQ, R1, 0)
        } else {
            // An allow exception applies when it holds every requested bit.
            Insn::jmp_reg(BPF_JNE, R1, R3)
        });
    }
    code.push(Insn::mov64_imm(R0, i32::from(!default_allow)));
    code.push(Insn::exit());
    patch(code, &to_next);
}

/// Generates the `BPF_PROG_TYPE_CGROUP_DEVICE` program for `rules` (see the
/// module documentation for what the rules mean): a preamble that loads the
/// context into registers, one block per exception that returns the
/// exception's verdict when it applies, and the default verdict at the end.
pub fn program(rules: &[DeviceRule]) -> Vec<Insn> {
    let reduced = reduce(rules);
    let blocks: Vec<Block> = reduced
        .exceptions
        .iter()
        .filter_map(|e| reduced.block(e))
        .collect();
    let mut code = Vec::new();
    if !blocks.is_empty() {
        code.extend([
            Insn::load_u32(R2, R1, 0),
            Insn::alu32_reg(BPF_MOV, R3, R2),
            Insn::alu32_imm(BPF_RSH, R3, 16),
            Insn::alu32_imm(BPF_AND, R2, 0xffff),
            Insn::load_u32(R4, R1, 4),
            Insn::load_u32(R5, R1, 8),
        ]);
    }
    for b in &blocks {
        emit_block(&mut code, b, reduced.default_allow);
    }
    code.push(Insn::mov64_imm(R0, i32::from(reduced.default_allow)));
    code.push(Insn::exit());
    code
}

// ---------------------------------------------------------------------------
// Loading and attaching.
// ---------------------------------------------------------------------------

/// Loads the program for `rules` and attaches it to the cgroup v2 directory
/// `cgroup_dir`, then detaches the programs corten attached there before.
pub fn apply(cgroup_dir: &Path, rules: &[DeviceRule]) -> Result<(), BpfError> {
    let code = program(rules);
    let dir = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY)
        .open(cgroup_dir)
        .map(OwnedFd::from)
        .map_err(|source| BpfError::OpenCgroup {
            path: cgroup_dir.to_path_buf(),
            source,
        })?;
    let old = attached_by_corten(cgroup_dir, dir.as_fd())?;
    let prog = load(&code, PROG_NAME)?;
    sys::prog_attach(dir.as_fd(), prog.as_fd()).map_err(|source| BpfError::Attach {
        path: cgroup_dir.to_path_buf(),
        source,
    })?;
    for (id, fd) in old {
        match sys::prog_detach(dir.as_fd(), fd.as_fd()) {
            // Already detached by someone else: nothing left to do.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(source) => {
                let path = cgroup_dir.to_path_buf();
                return Err(BpfError::Detach { path, id, source });
            }
            Ok(()) => {}
        }
    }
    Ok(())
}

/// The programs attached directly to `dir` whose name is [`PROG_NAME`]. Those
/// that vanish meanwhile, or that an LSM does not let us open, are skipped.
fn attached_by_corten(path: &Path, dir: BorrowedFd<'_>) -> Result<Vec<(u32, OwnedFd)>, BpfError> {
    let ids = sys::prog_query(dir).map_err(|source| BpfError::Query {
        path: path.to_path_buf(),
        source,
    })?;
    let mut ours = Vec::new();
    for id in ids {
        let fd = match sys::prog_get_fd_by_id(id) {
            Ok(fd) => fd,
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ENOENT | libc::EPERM | libc::EACCES)
                ) =>
            {
                continue
            }
            Err(source) => return Err(BpfError::OpenProg { id, source }),
        };
        let name =
            sys::prog_name(fd.as_fd()).map_err(|source| BpfError::OpenProg { id, source })?;
        if name == PROG_NAME.as_bytes() {
            ours.push((id, fd));
        }
    }
    Ok(ours)
}

/// Loads `code` as a device program named `name`. On kernels that charge BPF
/// memory to `RLIMIT_MEMLOCK` (before 5.11) a first `EPERM` is retried with
/// the limit raised, then restored so the container does not inherit it. A
/// refused program is loaded once more with a log to explain why.
fn load(code: &[Insn], name: &str) -> Result<OwnedFd, BpfError> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource, RLIM_INFINITY};
    let mut first = sys::prog_load(code, name, None);
    if first
        .as_ref()
        .is_err_and(|e| e.raw_os_error() == Some(libc::EPERM))
    {
        if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_MEMLOCK) {
            if setrlimit(Resource::RLIMIT_MEMLOCK, RLIM_INFINITY, RLIM_INFINITY).is_ok() {
                first = sys::prog_load(code, name, None);
                // Lowering a limit back is always permitted.
                let _ = setrlimit(Resource::RLIMIT_MEMLOCK, soft, hard);
            }
        }
    }
    let source = match first {
        Ok(fd) => return Ok(fd),
        Err(e) => e,
    };
    if !matches!(source.raw_os_error(), Some(libc::EINVAL | libc::EACCES)) {
        return Err(BpfError::Load {
            source,
            log: String::new(),
        });
    }
    let mut log = vec![0u8; 1 << 16];
    match sys::prog_load(code, name, Some(&mut log)) {
        Ok(fd) => Ok(fd),
        Err(source) => {
            let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
            let text = String::from_utf8_lossy(&log[..end])
                .trim()
                .replace('\n', "; ");
            let log = if text.is_empty() {
                String::new()
            } else {
                format!(": verifier log: {text}")
            };
            Err(BpfError::Load { source, log })
        }
    }
}

/// The `bpf(2)` commands this module uses, each a safe wrapper around the
/// system call with its own `bpf_attr` layout (linux/bpf.h). The kernel
/// accepts an attr shorter than its own union and treats the rest as zero.
mod sys {
    use super::Insn;
    use std::io;
    use std::mem::size_of;
    use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

    const BPF_PROG_LOAD: u32 = 5;
    const BPF_PROG_ATTACH: u32 = 8;
    const BPF_PROG_DETACH: u32 = 9;
    const BPF_PROG_GET_FD_BY_ID: u32 = 13;
    const BPF_OBJ_GET_INFO_BY_FD: u32 = 15;
    const BPF_PROG_QUERY: u32 = 16;
    const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
    const BPF_CGROUP_DEVICE: u32 = 6;
    const BPF_F_ALLOW_MULTI: u32 = 1 << 1;
    /// The most programs one cgroup can hold per attach type.
    const MAX_PROGS: usize = 64;
    /// The program needs no GPL-only helper; any license string is accepted.
    const LICENSE: &[u8] = b"Apache-2.0\0";

    #[repr(C)]
    #[derive(Default)]
    struct ProgLoadAttr {
        prog_type: u32,
        insn_cnt: u32,
        insns: u64,
        license: u64,
        log_level: u32,
        log_size: u32,
        log_buf: u64,
        kern_version: u32,
        prog_flags: u32,
        prog_name: [u8; 16],
    }

    #[repr(C)]
    #[derive(Default)]
    struct AttachAttr {
        target_fd: u32,
        attach_bpf_fd: u32,
        attach_type: u32,
        attach_flags: u32,
        replace_bpf_fd: u32,
    }

    #[repr(C)]
    #[derive(Default)]
    struct QueryAttr {
        target_fd: u32,
        attach_type: u32,
        query_flags: u32,
        attach_flags: u32,
        prog_ids: u64,
        prog_cnt: u32,
        _pad: u32,
    }

    #[repr(C)]
    #[derive(Default)]
    struct GetFdByIdAttr {
        prog_id: u32,
        next_id: u32,
        open_flags: u32,
    }

    #[repr(C)]
    #[derive(Default)]
    struct InfoAttr {
        bpf_fd: u32,
        info_len: u32,
        info: u64,
    }

    /// The head of `struct bpf_prog_info`, up to the name.
    #[repr(C)]
    #[derive(Default)]
    struct ProgInfo {
        prog_type: u32,
        id: u32,
        tag: [u8; 8],
        jited_prog_len: u32,
        xlated_prog_len: u32,
        jited_prog_insns: u64,
        xlated_prog_insns: u64,
        load_time: u64,
        created_by_uid: u32,
        nr_map_ids: u32,
        map_ids: u64,
        name: [u8; 16],
    }

    /// `bpf(cmd, attr, sizeof *attr)`.
    ///
    /// # Safety
    ///
    /// `T` must be the `bpf_attr` layout of `cmd`, and every address in
    /// `attr` must point to memory that is valid, for the length `attr` gives
    /// it, to read (or, for output buffers, to write) during the call.
    unsafe fn bpf<T>(cmd: u32, attr: &mut T) -> io::Result<libc::c_long> {
        // SAFETY: `attr` is a live, exclusively borrowed `T` of the size we
        // pass; the caller guarantees the addresses inside it are valid.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                libc::c_long::from(cmd),
                std::ptr::from_mut(attr).cast::<libc::c_void>(),
                size_of::<T>(),
            )
        };
        if ret < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(ret)
        }
    }

    fn fd_u32(fd: BorrowedFd<'_>) -> u32 {
        u32::try_from(fd.as_raw_fd()).unwrap_or(u32::MAX)
    }

    fn owned_fd(ret: libc::c_long) -> io::Result<OwnedFd> {
        let raw = i32::try_from(ret).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
        // SAFETY: the command returned a new descriptor that nothing else
        // owns; the OwnedFd takes over closing it.
        Ok(unsafe { OwnedFd::from_raw_fd(raw) })
    }

    /// `BPF_PROG_LOAD` of a cgroup device program, with a verifier log into
    /// `log` when given.
    pub(super) fn prog_load(
        code: &[Insn],
        name: &str,
        log: Option<&mut [u8]>,
    ) -> io::Result<OwnedFd> {
        let too_big = |_| io::Error::from_raw_os_error(libc::E2BIG);
        let mut attr = ProgLoadAttr {
            prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
            insn_cnt: u32::try_from(code.len()).map_err(too_big)?,
            insns: code.as_ptr() as u64,
            license: LICENSE.as_ptr() as u64,
            ..ProgLoadAttr::default()
        };
        let n = name.len().min(attr.prog_name.len() - 1);
        attr.prog_name[..n].copy_from_slice(&name.as_bytes()[..n]);
        if let Some(log) = log {
            attr.log_level = 1;
            attr.log_size = u32::try_from(log.len()).map_err(too_big)?;
            attr.log_buf = log.as_mut_ptr() as u64;
        }
        // SAFETY: ProgLoadAttr is the BPF_PROG_LOAD layout. `insns` points to
        // `insn_cnt` instructions and `license` to a NUL-terminated string,
        // both borrowed for the whole call (the kernel copies them); the log
        // buffer, when set, is an exclusively borrowed slice of `log_size`
        // bytes that the kernel writes at most that much of.
        let ret = unsafe { bpf(BPF_PROG_LOAD, &mut attr)? };
        owned_fd(ret)
    }

    fn attach_attr(cgroup: BorrowedFd<'_>, prog: BorrowedFd<'_>, flags: u32) -> AttachAttr {
        AttachAttr {
            target_fd: fd_u32(cgroup),
            attach_bpf_fd: fd_u32(prog),
            attach_type: BPF_CGROUP_DEVICE,
            attach_flags: flags,
            ..AttachAttr::default()
        }
    }

    /// `BPF_PROG_ATTACH` of `prog` to `cgroup`, beside the programs already
    /// there (`BPF_F_ALLOW_MULTI`).
    pub(super) fn prog_attach(cgroup: BorrowedFd<'_>, prog: BorrowedFd<'_>) -> io::Result<()> {
        let mut attr = attach_attr(cgroup, prog, BPF_F_ALLOW_MULTI);
        // SAFETY: AttachAttr is the BPF_PROG_ATTACH layout; it holds only
        // descriptors, which the borrows keep open during the call.
        unsafe { bpf(BPF_PROG_ATTACH, &mut attr) }.map(drop)
    }

    /// `BPF_PROG_DETACH` of `prog` from `cgroup`.
    pub(super) fn prog_detach(cgroup: BorrowedFd<'_>, prog: BorrowedFd<'_>) -> io::Result<()> {
        let mut attr = attach_attr(cgroup, prog, 0);
        // SAFETY: AttachAttr is also the BPF_PROG_DETACH layout; it holds only
        // descriptors, which the borrows keep open during the call.
        unsafe { bpf(BPF_PROG_DETACH, &mut attr) }.map(drop)
    }

    /// `BPF_PROG_QUERY`: the ids of the device programs attached directly to
    /// `cgroup` (not those inherited from its ancestors).
    pub(super) fn prog_query(cgroup: BorrowedFd<'_>) -> io::Result<Vec<u32>> {
        let mut ids = vec![0u32; MAX_PROGS];
        loop {
            let mut attr = QueryAttr {
                target_fd: fd_u32(cgroup),
                attach_type: BPF_CGROUP_DEVICE,
                prog_ids: ids.as_mut_ptr() as u64,
                prog_cnt: u32::try_from(ids.len()).unwrap_or(u32::MAX),
                ..QueryAttr::default()
            };
            // SAFETY: QueryAttr is the BPF_PROG_QUERY layout; `prog_ids`
            // points to `prog_cnt` u32s of the exclusively borrowed `ids`,
            // which the kernel writes at most that many of.
            let res = unsafe { bpf(BPF_PROG_QUERY, &mut attr) };
            let count = usize::try_from(attr.prog_cnt).unwrap_or(usize::MAX);
            match res {
                Ok(_) => {
                    ids.truncate(count);
                    return Ok(ids);
                }
                // More programs than room: the kernel said how many.
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) && count > ids.len() => {
                    ids = vec![0; count];
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// `BPF_PROG_GET_FD_BY_ID`.
    pub(super) fn prog_get_fd_by_id(id: u32) -> io::Result<OwnedFd> {
        let mut attr = GetFdByIdAttr {
            prog_id: id,
            ..GetFdByIdAttr::default()
        };
        // SAFETY: GetFdByIdAttr is the BPF_PROG_GET_FD_BY_ID layout; it holds
        // no addresses.
        let ret = unsafe { bpf(BPF_PROG_GET_FD_BY_ID, &mut attr)? };
        owned_fd(ret)
    }

    /// The program's name (`BPF_OBJ_GET_INFO_BY_FD`), without the NUL.
    pub(super) fn prog_name(prog: BorrowedFd<'_>) -> io::Result<Vec<u8>> {
        let mut info = ProgInfo::default();
        let mut attr = InfoAttr {
            bpf_fd: fd_u32(prog),
            info_len: u32::try_from(size_of::<ProgInfo>()).unwrap_or(0),
            info: std::ptr::from_mut(&mut info) as u64,
        };
        // SAFETY: InfoAttr is the BPF_OBJ_GET_INFO_BY_FD layout; `info` points
        // to the exclusively borrowed `info` of `info_len` bytes, which the
        // kernel fills at most that much of. Its buffer addresses are zero,
        // so the kernel copies out nothing else.
        unsafe { bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr)? };
        let end = info
            .name
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(info.name.len());
        Ok(info.name[..end].to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn allow(line: &str) -> DeviceRule {
        DeviceRule::from_v1(true, line).expect(line)
    }
    fn deny(line: &str) -> DeviceRule {
        DeviceRule::from_v1(false, line).expect(line)
    }

    /// A request: block?, major, minor, access bits.
    type Request = (bool, u32, u32, u8);

    /// Parses `"c 1:3 rw"` into a request.
    fn request(s: &str) -> Request {
        let r = DeviceRule::from_v1(true, s).expect(s);
        let n = |n: Option<i64>| u32::try_from(n.expect(s)).expect(s);
        (
            r.kind == DeviceKind::Block,
            n(r.major),
            n(r.minor),
            access_bits(&r.access),
        )
    }

    fn word(imm: i32) -> u32 {
        u32::from_ne_bytes(imm.to_ne_bytes())
    }

    /// Runs `code` as the kernel would for one request, for the subset of
    /// eBPF the generator emits. Like the verifier it refuses reads of
    /// uninitialised registers, context loads through anything but the
    /// context pointer, backward or out-of-range jumps, and a verdict other
    /// than 0 or 1.
    fn run(code: &[Insn], (block, major, minor, access): Request) -> bool {
        let ctx = [
            u32::from(access) << 16 | if block { 1 } else { 2 },
            major,
            minor,
        ];
        let mut reg: [Option<u64>; 11] = [None; 11];
        let mut is_ctx = [false; 11];
        reg[1] = Some(0);
        is_ctx[1] = true;
        let mut pc = 0;
        loop {
            let i = *code
                .get(pc)
                .unwrap_or_else(|| panic!("ran off the end at {pc}"));
            let (d, s) = (usize::from(i.dst()), usize::from(i.src()));
            let at = pc;
            let get = |reg: &[Option<u64>; 11], r: usize| {
                reg[r].unwrap_or_else(|| panic!("r{r} read uninitialised at {at}"))
            };
            let low = |x: u64| u32::try_from(x & 0xffff_ffff).unwrap_or(0);
            pc += 1;
            let val = match i.code {
                0x61 => {
                    assert!(
                        is_ctx[s],
                        "load through r{s}, not the context, at {}",
                        pc - 1
                    );
                    let off = usize::try_from(i.off).expect("negative context offset");
                    assert!(off % 4 == 0 && off < 12, "context offset {off}");
                    u64::from(ctx[off / 4])
                }
                0xb4 => u64::from(word(i.imm)),
                0xbc => u64::from(low(get(&reg, s))),
                0xb7 => u64::from_ne_bytes(i64::from(i.imm).to_ne_bytes()),
                0x54 => u64::from(low(get(&reg, d)) & word(i.imm)),
                0x5c => u64::from(low(get(&reg, d)) & low(get(&reg, s))),
                0x74 => u64::from(low(get(&reg, d)) >> word(i.imm)),
                0x15 | 0x55 | 0x5d => {
                    let a = get(&reg, d);
                    let b = if i.code == 0x5d {
                        get(&reg, s)
                    } else {
                        u64::from_ne_bytes(i64::from(i.imm).to_ne_bytes())
                    };
                    if (a == b) == (i.code == 0x15) {
                        let off = usize::try_from(i.off).expect("backward jump");
                        pc += off;
                        assert!(pc < code.len(), "jump out of the program");
                    }
                    continue;
                }
                0x95 => {
                    let r0 = get(&reg, 0);
                    assert!(r0 <= 1, "verdict {r0}");
                    return r0 == 1;
                }
                other => panic!("opcode {other:#x} at {}", pc - 1),
            };
            reg[d] = Some(val);
            is_ctx[d] = false;
        }
    }

    /// Checks `(request, allowed?)` pairs against the program for `rules`.
    fn check(rules: &[DeviceRule], table: &[(&str, bool)]) {
        let code = program(rules);
        for &(req, want) in table {
            assert_eq!(run(&code, request(req)), want, "{req} with rules {rules:?}");
        }
    }

    fn with_defaults(mut rules: Vec<DeviceRule>) -> Vec<DeviceRule> {
        rules.extend(default_allowed());
        rules
    }

    #[test]
    fn runc_default_spec() {
        let rules = with_defaults(vec![deny("a *:* rwm")]);
        check(
            &rules,
            &[
                ("c 1:3 rw", true),
                ("c 1:3 r", true),
                ("c 1:5 r", true),
                ("c 1:7 w", true),
                ("c 1:8 r", true),
                ("c 1:9 r", true),
                ("c 5:0 rw", true),
                ("c 5:2 rw", true),
                ("c 136:0 rw", true),
                ("c 136:42 rw", true),
                ("c 10:200 rw", true),
                ("c 1:1 m", true),
                ("b 8:0 m", true),
                ("c 1:1 r", false),
                ("c 1:1 rw", false),
                ("c 1:1 rm", false),
                ("c 10:229 rw", false),
                ("c 4:0 w", false),
                ("c 137:0 r", false),
                ("b 8:0 r", false),
                ("b 1:3 r", false),
            ],
        );
    }

    #[test]
    fn no_rules_denies_everything_and_allow_all_allows_everything() {
        check(&[], &[("c 1:3 r", false), ("b 8:0 m", false)]);
        let all = [allow("a *:* rwm")];
        assert_eq!(program(&all).len(), 2, "allow-all needs no checks");
        check(
            &all,
            &[("c 1:3 rw", true), ("b 8:0 rw", true), ("c 10:229 m", true)],
        );
        check(&[deny("a")], &[("c 1:3 r", false)]);
    }

    #[test]
    fn deny_all_then_allow_one_device() {
        let rules = [deny("a *:* rwm"), allow("c 10:229 rw")];
        check(
            &rules,
            &[
                ("c 10:229 r", true),
                ("c 10:229 w", true),
                ("c 10:229 rw", true),
                ("c 10:229 m", false),
                ("c 10:228 r", false),
                ("c 11:229 r", false),
                ("b 10:229 r", false),
            ],
        );
    }

    #[test]
    fn wildcard_majors_and_minors() {
        let rules = [
            deny("a"),
            allow("c 4:* rw"),
            allow("b *:0 r"),
            allow("c *:* m"),
        ];
        check(
            &rules,
            &[
                ("c 4:0 rw", true),
                ("c 4:63 w", true),
                ("c 5:7 r", false),
                ("b 9:0 r", true),
                ("b 9:1 r", false),
                ("b 9:0 w", false),
                ("c 5:5 m", true),
                ("b 5:5 m", false),
            ],
        );
    }

    #[test]
    fn later_rules_override_earlier_ones() {
        let rules = [deny("a"), allow("c 1:3 rwm"), deny("c 1:3 w")];
        check(
            &rules,
            &[
                ("c 1:3 r", true),
                ("c 1:3 m", true),
                ("c 1:3 w", false),
                ("c 1:3 rw", false),
            ],
        );
        // A reset forgets every exception before it.
        let rules = [deny("a"), allow("c 1:3 rwm"), deny("a"), allow("c 1:5 r")];
        check(
            &rules,
            &[("c 1:3 r", false), ("c 1:5 r", true), ("c 1:5 w", false)],
        );
        let rules = [deny("a"), allow("c 1:3 r"), allow("a")];
        check(&rules, &[("c 1:3 rw", true), ("b 8:0 rw", true)]);
        let rules = [allow("a"), deny("c 1:3 w"), allow("c 1:3 w")];
        check(&rules, &[("c 1:3 rw", true)]);
        // Letters merge into the exception with the same numbers.
        let rules = [deny("a"), allow("c 1:3 r"), allow("c 1:3 w")];
        check(&rules, &[("c 1:3 rw", true), ("c 1:3 m", false)]);
        // Type `a` resets whatever its numbers and access, as on v1.
        let rules = [deny("a"), allow("a 1:3 r")];
        check(&rules, &[("b 8:0 w", true)]);
    }

    #[test]
    fn block_and_char_are_distinct() {
        let rules = [deny("a"), allow("b 8:* rw")];
        check(
            &rules,
            &[("b 8:1 rw", true), ("c 8:1 r", false), ("b 9:1 r", false)],
        );
        let rules = [allow("a"), deny("c *:* rwm")];
        check(
            &rules,
            &[("c 1:3 r", false), ("b 8:0 rw", true), ("b 8:0 m", true)],
        );
    }

    #[test]
    fn mknod_only() {
        let rules = [deny("a"), allow("c *:* m"), allow("b *:* m")];
        check(
            &rules,
            &[
                ("c 1:3 m", true),
                ("c 1:3 r", false),
                ("b 8:0 m", true),
                ("b 8:0 w", false),
                ("c 1:3 rm", false),
            ],
        );
    }

    #[test]
    fn deny_exceptions_deny_any_requested_bit_as_on_v1() {
        let rules = [allow("a"), deny("c 1:3 w")];
        check(
            &rules,
            &[
                ("c 1:3 r", true),
                ("c 1:3 w", false),
                ("c 1:3 rw", false),
                ("c 1:4 w", true),
                ("b 1:3 w", true),
            ],
        );
    }

    #[test]
    fn one_exception_must_grant_every_requested_bit_as_on_v1() {
        let rules = [deny("a"), allow("c *:* r"), allow("c 1:3 w")];
        check(
            &rules,
            &[
                ("c 1:3 r", true),
                ("c 1:3 w", true),
                ("c 1:3 rw", false),
                ("c 2:3 r", true),
            ],
        );
    }

    #[test]
    fn a_deny_inside_a_wider_allow_takes_effect() {
        // v1 ignores the deny, runc refuses the list; it applies here.
        let rules = [deny("a"), allow("c *:* rwm"), deny("c 1:3 w")];
        check(
            &rules,
            &[
                ("c 1:3 w", false),
                ("c 1:3 rw", false),
                ("c 1:3 r", true),
                ("c 1:4 w", true),
            ],
        );
        let more = [&rules[..], &[allow("c 1:3 w")]].concat();
        check(&more, &[("c 1:3 rw", true)]);
        let rules = [
            deny("a"),
            allow("c *:* rwm"),
            deny("c 1:* w"),
            allow("c *:* w"),
        ];
        check(&rules, &[("c 1:3 w", true)]);
        let rules = [
            deny("a"),
            allow("c *:* rwm"),
            deny("c 1:* rw"),
            allow("c 1:3 r"),
        ];
        check(
            &rules,
            &[
                ("c 1:3 r", true),
                ("c 1:3 w", false),
                ("c 1:4 r", false),
                ("c 1:4 m", true),
                ("c 2:4 rw", true),
            ],
        );
        let rules = [
            deny("a"),
            allow("c *:3 rwm"),
            deny("c 1:3 w"),
            deny("c *:3 r"),
        ];
        check(
            &rules,
            &[
                ("c 1:3 w", false),
                ("c 1:3 r", false),
                ("c 1:3 m", true),
                ("c 2:3 w", true),
            ],
        );
        // The mirror image with a default allow.
        let rules = [allow("a"), deny("c *:* w"), allow("c 1:3 w")];
        check(
            &rules,
            &[("c 1:3 w", true), ("c 1:4 w", false), ("c 1:4 r", true)],
        );
    }

    #[test]
    fn a_wide_deny_leaves_narrower_allows_as_on_v1() {
        // v1 and runc take letters only from the exception with the same
        // numbers; the narrower one stays.
        let rules = [deny("a"), allow("c 1:3 rwm"), deny("c *:* rwm")];
        check(&rules, &[("c 1:3 rw", true), ("c 1:4 r", false)]);
    }

    #[test]
    fn impossible_numbers_never_match() {
        let rules = [
            deny("a"),
            DeviceRule {
                allow: true,
                kind: DeviceKind::Char,
                major: Some(1 << 32 | 1),
                minor: None,
                access: "rwm".into(),
            },
            DeviceRule {
                allow: true,
                kind: DeviceKind::Char,
                major: Some(-5),
                minor: Some(3),
                access: "rwm".into(),
            },
        ];
        assert_eq!(program(&rules).len(), 2);
        check(&rules, &[("c 1:3 r", false)]);
    }

    /// The v1 controller, as the kernel implements it, for a cross-check; the
    /// flag says whether runc would refuse the list (a hole punched into a
    /// wider exception, which v1 ignores).
    fn v1_reference(rules: &[DeviceRule]) -> ((bool, Vec<(Key, u8)>), bool) {
        let (mut default_allow, mut ex): (bool, Vec<(Key, u8)>) = (false, Vec::new());
        let mut refused = false;
        for rule in rules {
            let block = match rule.kind {
                DeviceKind::All => {
                    (default_allow, ex) = (rule.allow, Vec::new());
                    continue;
                }
                kind => kind == DeviceKind::Block,
            };
            let key = Key {
                block,
                major: rule.major,
                minor: rule.minor,
            };
            let bits = access_bits(&rule.access);
            let pos = ex.iter().position(|(k, _)| *k == key);
            if rule.allow != default_allow {
                match pos {
                    Some(p) => ex[p].1 |= bits,
                    None => ex.push((key, bits)),
                }
                continue;
            }
            refused |= ex
                .iter()
                .any(|(k, b)| k.strictly_wider(&key) && b & bits != 0);
            if let Some(p) = pos {
                ex[p].1 &= !bits;
                if ex[p].1 == 0 {
                    ex.remove(p);
                }
            }
        }
        ((default_allow, ex), refused)
    }

    fn v1_decide(
        (default_allow, ex): &(bool, Vec<(Key, u8)>),
        (block, major, minor, access): Request,
    ) -> bool {
        let names = |k: &Key| {
            k.block == block
                && k.major.is_none_or(|m| m == i64::from(major))
                && k.minor.is_none_or(|m| m == i64::from(minor))
        };
        if *default_allow {
            !ex.iter().any(|(k, bits)| names(k) && bits & access != 0)
        } else {
            ex.iter().any(|(k, bits)| names(k) && access & !bits == 0)
        }
    }

    #[test]
    fn matches_the_v1_controller_on_random_lists() {
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            usize::try_from(seed % u64::try_from(n).unwrap_or(1)).unwrap_or(0)
        };
        let nums = [None, Some(1), Some(5), Some(1 << 32 | 1)];
        let access = ["r", "w", "m", "rw", "rm", "wm", "rwm"];
        let (mut compared, mut refused) = (0, 0);
        for _ in 0..3000 {
            let len = next(7);
            let rules: Vec<DeviceRule> = (0..len)
                .map(|_| DeviceRule {
                    allow: next(2) == 0,
                    kind: [
                        DeviceKind::All,
                        DeviceKind::Char,
                        DeviceKind::Char,
                        DeviceKind::Block,
                    ][next(4)],
                    major: nums[next(4)],
                    minor: nums[next(3)],
                    access: access[next(7)].to_string(),
                })
                .collect();
            let (reference, runc_refuses) = v1_reference(&rules);
            if runc_refuses {
                refused += 1;
            } else {
                compared += 1;
            }
            let code = program(&rules);
            for block in [false, true] {
                for major in [1, 5, 7] {
                    for minor in [1, 5, 9] {
                        for acc in 1..=ACC_ALL {
                            let req = (block, major, minor, acc);
                            let (ours, v1) = (run(&code, req), v1_decide(&reference, req));
                            if !runc_refuses {
                                assert_eq!(ours, v1, "{req:?} with {rules:?}");
                            } else if !reference.0 {
                                // With a default deny, honouring the hole v1
                                // ignores can only deny more.
                                assert!(!ours || v1, "{req:?} allowed beyond v1 with {rules:?}");
                            }
                        }
                    }
                }
            }
        }
        assert!(
            compared > 2000 && refused > 50,
            "compared {compared}, refused {refused}"
        );
    }

    #[test]
    fn rules_from_spec_applies_the_spec_defaults() {
        let spec = json!([
            { "allow": false, "access": "rwm" },
            { "allow": true, "type": "c", "major": 10, "minor": 229, "access": "rw" },
            { "allow": true, "type": "b", "major": -1, "minor": null },
            {}
        ]);
        let rules = rules_from_spec(&spec).expect("valid");
        assert_eq!(
            rules,
            vec![
                deny("a *:* rwm"),
                allow("c 10:229 rw"),
                allow("b *:* rwm"),
                DeviceRule {
                    allow: false,
                    kind: DeviceKind::All,
                    major: None,
                    minor: None,
                    access: "rwm".into()
                },
            ]
        );
        assert_eq!(rules_from_spec(&Value::Null).expect("null").len(), 0);
        assert!(rules_from_spec(&json!({})).is_err());
        let bad = [
            json!([{ "allow": true, "type": "u" }]),
            json!([{ "allow": true, "access": "rwx" }]),
            json!([{ "allow": true, "major": "1" }]),
            json!([{ "allow": "yes" }]),
            json!([7]),
        ];
        for b in bad {
            let e = rules_from_spec(&b).expect_err("invalid");
            assert!(
                e.to_string().starts_with("linux.resources.devices[0]: "),
                "{e}"
            );
        }
    }

    #[test]
    fn default_allowed_is_runcs_list() {
        let rules = default_allowed();
        assert_eq!(rules.len(), 11);
        assert!(rules.iter().all(|r| r.allow));
        assert_eq!(rules[0], allow("c *:* m"));
        assert_eq!(rules[1], allow("b *:* m"));
        assert_eq!(rules[8], allow("c 136:* rwm"));
        assert_eq!(rules[10], allow("c 10:200 rwm"));
    }

    // ---- against the kernel -------------------------------------------------

    const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;

    /// Removes the test's own cgroup when the test ends, even on failure.
    struct TestCgroup(PathBuf);

    impl Drop for TestCgroup {
        fn drop(&mut self) {
            // The shells have exited, but the cgroup may take a moment to
            // become empty.
            for _ in 0..200 {
                if std::fs::remove_dir(&self.0).is_ok() || !self.0.exists() {
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            eprintln!("could not remove {}", self.0.display());
        }
    }

    /// Moves a shell into `dir` and has it read one byte of `dev`: `Ok` when
    /// that worked, else `Err(stderr)`.
    fn read_in_cgroup(dir: &Path, dev: &str) -> Result<(), String> {
        let out = std::process::Command::new("/bin/sh")
            .args([
                "-c",
                r#"echo $$ > "$0/cgroup.procs" || exit 90; exec head -c1 "$1""#,
            ])
            .arg(dir)
            .arg(dev)
            .output()
            .expect("run /bin/sh");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_ne!(
            out.status.code(),
            Some(90),
            "could not join {}: {stderr}",
            dir.display()
        );
        if out.status.success() {
            Ok(())
        } else {
            Err(stderr)
        }
    }

    fn attached_names(dir: &Path) -> Vec<String> {
        let fd = OwnedFd::from(std::fs::File::open(dir).expect("open cgroup"));
        sys::prog_query(fd.as_fd())
            .expect("BPF_PROG_QUERY")
            .into_iter()
            .map(|id| {
                let prog = sys::prog_get_fd_by_id(id).expect("BPF_PROG_GET_FD_BY_ID");
                String::from_utf8_lossy(&sys::prog_name(prog.as_fd()).expect("prog name"))
                    .into_owned()
            })
            .collect()
    }

    #[test]
    fn kernel_enforces_and_replaces_the_filter() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("bpf_devices kernel test SKIPPED: needs root and a cgroup2 mount");
            return;
        }
        let root = ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"]
            .iter()
            .map(Path::new)
            .find(|p| crate::sys::is_fs(p, CGROUP2_SUPER_MAGIC))
            .unwrap_or_else(|| {
                panic!("no cgroup2 hierarchy at /sys/fs/cgroup/unified or /sys/fs/cgroup")
            });
        let dir = root.join(format!("corten-bpf-test-{}", std::process::id()));
        std::fs::create_dir(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        let _cleanup = TestCgroup(dir.clone());

        let mut rules = vec![deny("a *:* rwm"), allow("c 1:3 rwm")];
        if sys::prog_query(std::fs::File::open(&dir).expect("open the cgroup").as_fd())
            .is_err_and(|e| e.raw_os_error() == Some(libc::ENOSYS))
            && crate::test_support::skip_under_emulation(
                "cgroups::bpf_devices::tests::kernel_enforces_and_replaces_the_filter",
                "the emulator has no bpf(2) (ENOSYS); covered by the arm64 VM",
            )
        {
            return;
        }
        apply(&dir, &rules).unwrap_or_else(|e| {
            panic!(
                "apply to {}: {e} (EPERM/ENOSYS: no usable bpf(2) here)",
                dir.display()
            )
        });
        assert_eq!(attached_names(&dir), [PROG_NAME]);
        read_in_cgroup(&dir, "/dev/null").expect("/dev/null is allowed");
        let err = read_in_cgroup(&dir, "/dev/zero").expect_err("/dev/zero is denied");
        assert!(err.contains("Operation not permitted"), "{err}");

        // `corten update`: the new program replaces the old one.
        rules.push(allow("c 1:5 r"));
        apply(&dir, &rules).expect("second apply");
        assert_eq!(attached_names(&dir), [PROG_NAME]);
        read_in_cgroup(&dir, "/dev/zero").expect("/dev/zero is allowed after the update");
        read_in_cgroup(&dir, "/dev/null").expect("/dev/null is still allowed");

        // A program someone else attached stays.
        let other = sys::prog_load(
            &[Insn::mov64_imm(R0, 1), Insn::exit()],
            "other_filter",
            None,
        )
        .expect("load");
        let fd = OwnedFd::from(std::fs::File::open(&dir).expect("open cgroup"));
        sys::prog_attach(fd.as_fd(), other.as_fd()).expect("attach other");
        apply(&dir, &rules).expect("third apply");
        let mut names = attached_names(&dir);
        names.sort();
        assert_eq!(names, ["corten_devices", "other_filter"]);

        // A refused program comes back with the verifier's reasons.
        let err = load(&[Insn::exit()], "bad").expect_err("r0 is never set");
        assert!(
            err.to_string().contains("verifier log: ") && err.to_string().contains("R0"),
            "{err}"
        );

        // Every shape of block the generator emits passes the verifier.
        let holes = [
            deny("a"),
            allow("c *:* rwm"),
            deny("c 1:* w"),
            allow("b 8:* rw"),
            deny("b 8:3 r"),
        ];
        apply(&dir, &holes).expect("hole program loads");
        let blacklist = [
            allow("a"),
            deny("c *:* w"),
            allow("c 1:3 w"),
            deny("b 8:0 rwm"),
        ];
        apply(&dir, &blacklist).expect("deny-list program loads");
        read_in_cgroup(&dir, "/dev/zero").expect("/dev/zero is allowed with a deny-list");
    }
}
