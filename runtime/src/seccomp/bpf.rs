//! A small classic-BPF assembler for seccomp programs: instructions with
//! symbolic forward jump targets, resolved to `sock_filter`s.
//!
//! A conditional jump has 8-bit offsets; a target further than 255
//! instructions away is reached through a `ja` (32-bit offset) placed right
//! after the conditional jump. Which branches need one depends on the
//! layout, which depends on the trampolines, so [`Asm::assemble`] repeats
//! until no branch is out of reach (trampolines are only ever added, so this
//! ends).

/// `BPF_LD | BPF_W | BPF_ABS`: `A = *(u32 *)(seccomp_data + k)`.
pub(super) const LD_W_ABS: u16 = 0x20;
/// `BPF_ALU | BPF_AND | BPF_K`: `A &= k`.
pub(super) const ALU_AND_K: u16 = 0x54;
/// `BPF_JMP | BPF_JA`: `pc += k`.
pub(super) const JMP_JA: u16 = 0x05;
/// `BPF_JMP | BPF_JEQ | BPF_K`.
pub(super) const JMP_JEQ_K: u16 = 0x15;
/// `BPF_JMP | BPF_JGT | BPF_K` (unsigned).
pub(super) const JMP_JGT_K: u16 = 0x25;
/// `BPF_JMP | BPF_JGE | BPF_K` (unsigned).
pub(super) const JMP_JGE_K: u16 = 0x35;
/// `BPF_RET | BPF_K`.
pub(super) const RET_K: u16 = 0x06;

/// The kernel's limit on one classic BPF program (`BPF_MAXINSNS`).
pub(super) const MAX_INSNS: usize = 4096;

/// A position in the program, bound once, after every jump to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Label(usize);

/// Where a conditional jump goes.
#[derive(Clone, Copy, Debug)]
pub(super) enum To {
    /// The instruction after this one.
    Next,
    Label(Label),
}

/// The condition of a conditional jump, against the constant `k`.
#[derive(Clone, Copy, Debug)]
pub(super) enum Cond {
    Eq,
    Gt,
    Ge,
}

#[derive(Debug)]
enum Item {
    Stmt { code: u16, k: u32 },
    Jump { cond: Cond, k: u32, jt: To, jf: To },
    Ja(Label),
    Bind(Label),
}

/// A program under construction.
#[derive(Debug, Default)]
pub(super) struct Asm {
    items: Vec<Item>,
    labels: usize,
}

fn insn(code: u16, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

impl Asm {
    /// A new label, to be bound later with [`Asm::bind`].
    pub(super) fn label(&mut self) -> Label {
        self.labels += 1;
        Label(self.labels - 1)
    }

    /// Places `label` before the next instruction.
    pub(super) fn bind(&mut self, label: Label) {
        self.items.push(Item::Bind(label));
    }

    /// `A = seccomp_data[offset..offset + 4]`.
    pub(super) fn load(&mut self, offset: u32) {
        self.items.push(Item::Stmt {
            code: LD_W_ABS,
            k: offset,
        });
    }

    /// `A &= k`.
    pub(super) fn and(&mut self, k: u32) {
        self.items.push(Item::Stmt { code: ALU_AND_K, k });
    }

    /// `if A <cond> k goto jt else goto jf`.
    pub(super) fn jump(&mut self, cond: Cond, k: u32, jt: To, jf: To) {
        self.items.push(Item::Jump { cond, k, jt, jf });
    }

    /// `goto label`.
    pub(super) fn ja(&mut self, label: Label) {
        self.items.push(Item::Ja(label));
    }

    /// `return k`.
    pub(super) fn ret(&mut self, k: u32) {
        self.items.push(Item::Stmt { code: RET_K, k });
    }

    /// Resolves the labels. Panics if a label is unbound or bound before a
    /// jump to it: both are bugs of the code generator, not of a profile.
    pub(super) fn assemble(&self) -> Vec<libc::sock_filter> {
        // (true branch, false branch) of each item needs a trampoline.
        let mut long = vec![(false, false); self.items.len()];
        loop {
            let (pos, labels) = self.layout(&long);
            let mut changed = false;
            for (i, item) in self.items.iter().enumerate() {
                if let Item::Jump { jt, jf, .. } = item {
                    let end = pos[i] + size(&long[i]);
                    let far = |to: To| {
                        forward(target(to, end, &labels), pos[i] + 1) > usize::from(u8::MAX)
                    };
                    if !long[i].0 && far(*jt) {
                        long[i].0 = true;
                        changed = true;
                    }
                    if !long[i].1 && far(*jf) {
                        long[i].1 = true;
                        changed = true;
                    }
                }
            }
            if !changed {
                return self.emit(&pos, &labels, &long);
            }
        }
    }

    /// The address of every item and every label.
    fn layout(&self, long: &[(bool, bool)]) -> (Vec<usize>, Vec<usize>) {
        let mut pos = Vec::with_capacity(self.items.len());
        let mut labels = vec![usize::MAX; self.labels];
        let mut addr = 0;
        for (item, long) in self.items.iter().zip(long) {
            pos.push(addr);
            addr += match item {
                Item::Bind(Label(l)) => {
                    assert_eq!(labels[*l], usize::MAX, "seccomp: label bound twice");
                    labels[*l] = addr;
                    0
                }
                Item::Jump { .. } => size(long),
                Item::Stmt { .. } | Item::Ja(_) => 1,
            };
        }
        (pos, labels)
    }

    fn emit(
        &self,
        pos: &[usize],
        labels: &[usize],
        long: &[(bool, bool)],
    ) -> Vec<libc::sock_filter> {
        let short = |n: usize| u8::try_from(n).expect("seccomp: short jump out of range");
        let far = |n: usize| u32::try_from(n).expect("seccomp: program too large");
        let mut out = Vec::with_capacity(pos.last().map_or(0, |p| p + 3));
        for (i, item) in self.items.iter().enumerate() {
            let p = pos[i];
            match *item {
                Item::Stmt { code, k } => out.push(insn(code, 0, 0, k)),
                Item::Bind(_) => {}
                Item::Ja(Label(l)) => out.push(insn(JMP_JA, 0, 0, far(forward(labels[l], p + 1)))),
                Item::Jump { cond, k, jt, jf } => {
                    let (lt, lf) = long[i];
                    let end = p + size(&long[i]);
                    let (tt, tf) = (target(jt, end, labels), target(jf, end, labels));
                    let code = match cond {
                        Cond::Eq => JMP_JEQ_K,
                        Cond::Gt => JMP_JGT_K,
                        Cond::Ge => JMP_JGE_K,
                    };
                    // Trampolines follow the jump: true's first, then false's.
                    let jt_off = if lt { 0 } else { short(forward(tt, p + 1)) };
                    let jf_off = if lf {
                        u8::from(lt)
                    } else {
                        short(forward(tf, p + 1))
                    };
                    out.push(insn(code, jt_off, jf_off, k));
                    if lt {
                        out.push(insn(JMP_JA, 0, 0, far(forward(tt, p + 2))));
                    }
                    if lf {
                        let q = p + 1 + usize::from(lt);
                        out.push(insn(JMP_JA, 0, 0, far(forward(tf, q + 1))));
                    }
                }
            }
        }
        out
    }
}

/// Instructions a conditional jump takes with its trampolines.
fn size(long: &(bool, bool)) -> usize {
    1 + usize::from(long.0) + usize::from(long.1)
}

fn target(to: To, end: usize, labels: &[usize]) -> usize {
    match to {
        To::Next => end,
        To::Label(Label(l)) => {
            assert_ne!(labels[l], usize::MAX, "seccomp: label never bound");
            labels[l]
        }
    }
}

/// The offset from `from` to `to`; BPF jumps only forward.
fn forward(to: usize, from: usize) -> usize {
    to.checked_sub(from).expect("seccomp: backward jump")
}
