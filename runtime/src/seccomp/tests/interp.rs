//! A classic-BPF interpreter for the instructions a seccomp filter may use,
//! with the kernel's load-time checks, to run compiled filters in tests.

use crate::seccomp::bpf::{
    ALU_AND_K, JMP_JA, JMP_JEQ_K, JMP_JGE_K, JMP_JGT_K, LD_W_ABS, MAX_INSNS, RET_K,
};

/// `struct seccomp_data`.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Data {
    pub nr: u32,
    pub arch: u32,
    pub instruction_pointer: u64,
    pub args: [u64; 6],
}

impl Data {
    fn bytes(&self) -> [u8; 64] {
        let mut b = [0; 64];
        b[0..4].copy_from_slice(&self.nr.to_ne_bytes());
        b[4..8].copy_from_slice(&self.arch.to_ne_bytes());
        b[8..16].copy_from_slice(&self.instruction_pointer.to_ne_bytes());
        for (i, a) in self.args.iter().enumerate() {
            b[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_ne_bytes());
        }
        b
    }
}

/// What the kernel checks when the filter is loaded (`bpf_check_classic`
/// and `seccomp_check_filter`): length, known opcodes, aligned loads inside
/// `seccomp_data`, jumps inside the program, a return at the end.
pub(super) fn check(program: &[libc::sock_filter]) {
    assert!(
        !program.is_empty() && program.len() <= MAX_INSNS,
        "length {}",
        program.len()
    );
    for (pc, insn) in program.iter().enumerate() {
        let rest = program.len() - pc - 1;
        match insn.code {
            LD_W_ABS => assert!(
                insn.k < 64 && insn.k % 4 == 0,
                "bad load at {pc}: {}",
                insn.k
            ),
            ALU_AND_K | RET_K => {}
            JMP_JA => assert!((insn.k as usize) < rest, "ja out of the program at {pc}"),
            JMP_JEQ_K | JMP_JGE_K | JMP_JGT_K => {
                assert!(
                    usize::from(insn.jt) < rest && usize::from(insn.jf) < rest,
                    "jump out of the program at {pc}"
                );
            }
            code => panic!("opcode {code:#x} at {pc}"),
        }
    }
    assert_eq!(
        program.last().map(|i| i.code),
        Some(RET_K),
        "the program must end with a return"
    );
}

/// Runs `program` over `data` and returns what it returns.
pub(super) fn run(program: &[libc::sock_filter], data: &Data) -> u32 {
    run_counting(program, data).0
}

/// [`run`], with the number of instructions executed.
pub(super) fn run_counting(program: &[libc::sock_filter], data: &Data) -> (u32, usize) {
    let bytes = data.bytes();
    let mut a: u32 = 0;
    let mut pc = 0;
    for steps in 1.. {
        let insn = program[pc];
        pc += 1;
        let k = insn.k;
        let branch = |taken: bool| usize::from(if taken { insn.jt } else { insn.jf });
        match insn.code {
            LD_W_ABS => {
                let at = k as usize;
                a = u32::from_ne_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
            }
            ALU_AND_K => a &= k,
            JMP_JA => pc += k as usize,
            JMP_JEQ_K => pc += branch(a == k),
            JMP_JGT_K => pc += branch(a > k),
            JMP_JGE_K => pc += branch(a >= k),
            RET_K => return (k, steps),
            code => panic!("opcode {code:#x}"),
        }
    }
    unreachable!("the program did not return")
}
