//! The ABIs a filter can check: `SCMP_ARCH_*` names, `AUDIT_ARCH_*` values.

use crate::logging::one_line;

/// `__AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE` and the ELF machine numbers of
/// `<linux/audit.h>`.
const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const AUDIT_ARCH_I386: u32 = 0x4000_0003;
const AUDIT_ARCH_AARCH64: u32 = 0xc000_00b7;
const AUDIT_ARCH_ARM: u32 = 0x4000_0028;

/// x32 calls come with `AUDIT_ARCH_X86_64` and this bit set in the number.
pub(super) const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// An ABI whose system call numbers corten knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Arch {
    X86_64,
    X86,
    X32,
    Aarch64,
    Arm,
}

impl Arch {
    /// The ABI corten itself runs on.
    pub(super) fn native() -> Option<Arch> {
        if cfg!(target_arch = "x86_64") {
            Some(Arch::X86_64)
        } else if cfg!(target_arch = "aarch64") {
            Some(Arch::Aarch64)
        } else {
            None
        }
    }

    /// The ABIs a process on a `self` kernel may also use.
    pub(super) fn compat(self) -> &'static [Arch] {
        match self {
            Arch::X86_64 => &[Arch::X86, Arch::X32],
            Arch::Aarch64 => &[Arch::Arm],
            Arch::X86 | Arch::X32 | Arch::Arm => &[],
        }
    }

    /// `seccomp_data.arch` for calls of this ABI.
    pub(super) fn audit(self) -> u32 {
        match self {
            Arch::X86_64 | Arch::X32 => AUDIT_ARCH_X86_64,
            Arch::X86 => AUDIT_ARCH_I386,
            Arch::Aarch64 => AUDIT_ARCH_AARCH64,
            Arch::Arm => AUDIT_ARCH_ARM,
        }
    }

    /// Whether arguments are compared on 64 bits (libseccomp compares only
    /// the low word on its 32-bit ABIs, x32 included).
    pub(super) fn wide_args(self) -> bool {
        matches!(self, Arch::X86_64 | Arch::Aarch64)
    }

    /// The system call numbers this ABI owns under its audit architecture,
    /// `(first, last)`: x86_64 and x32 split `AUDIT_ARCH_X86_64` at bit 30.
    pub(super) fn numbers(self) -> (u32, u32) {
        match self {
            Arch::X86_64 => (0, X32_SYSCALL_BIT - 1),
            Arch::X32 => (X32_SYSCALL_BIT, u32::MAX),
            Arch::X86 | Arch::Aarch64 | Arch::Arm => (0, u32::MAX),
        }
    }
}

/// `SCMP_ARCH_*` names: `Some` for the ABIs corten compiles, `None` for the
/// ones it accepts and ignores (no process on this host can use them).
pub(super) fn parse(name: &str) -> Result<Option<Arch>, super::SeccompError> {
    Ok(Some(match name {
        "SCMP_ARCH_X86_64" => Arch::X86_64,
        "SCMP_ARCH_X86" => Arch::X86,
        "SCMP_ARCH_X32" => Arch::X32,
        "SCMP_ARCH_AARCH64" => Arch::Aarch64,
        "SCMP_ARCH_ARM" => Arch::Arm,
        "SCMP_ARCH_MIPS"
        | "SCMP_ARCH_MIPS64"
        | "SCMP_ARCH_MIPS64N32"
        | "SCMP_ARCH_MIPSEL"
        | "SCMP_ARCH_MIPSEL64"
        | "SCMP_ARCH_MIPSEL64N32"
        | "SCMP_ARCH_PPC"
        | "SCMP_ARCH_PPC64"
        | "SCMP_ARCH_PPC64LE"
        | "SCMP_ARCH_S390"
        | "SCMP_ARCH_S390X"
        | "SCMP_ARCH_PARISC"
        | "SCMP_ARCH_PARISC64"
        | "SCMP_ARCH_RISCV64"
        | "SCMP_ARCH_LOONGARCH64" => return Ok(None),
        _ => return Err(super::SeccompError::UnknownArch(one_line(name))),
    }))
}
