//! The `BPF_PROG_TYPE_CGROUP_DEVICE` program for a reduced rule list: an
//! eBPF instruction encoder and the generator. Pure code: loading the
//! program is [`super::bpf`]'s.

use super::reduce::{reduce, Entry, Reduced};
use super::{DeviceRule, ACC_ALL, DEV_BLOCK, DEV_CHAR};

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
pub(super) const R0: u8 = 0;
pub(super) const R1: u8 = 1;
pub(super) const R2: u8 = 2;
pub(super) const R3: u8 = 3;
pub(super) const R4: u8 = 4;
pub(super) const R5: u8 = 5;

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

    /// The destination register (read by the tests' interpreter).
    #[cfg(test)]
    pub fn dst(&self) -> u8 {
        if cfg!(target_endian = "little") {
            self.regs & 0xf
        } else {
            self.regs >> 4
        }
    }

    /// The source register.
    #[cfg(test)]
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
    pub(super) fn mov64_imm(dst: u8, imm: i32) -> Self {
        Self::new(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm)
    }
    /// A forward jump whose offset is patched later.
    fn jmp_imm(op: u8, dst: u8, imm: i32) -> Self {
        Self::new(BPF_JMP | op | BPF_K, dst, 0, 0, imm)
    }
    fn jmp_reg(op: u8, dst: u8, src: u8) -> Self {
        Self::new(BPF_JMP | op | BPF_X, dst, src, 0, 0)
    }
    pub(super) fn exit() -> Self {
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
