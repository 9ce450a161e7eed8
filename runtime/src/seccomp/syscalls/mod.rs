//! System call names to numbers, one table per ABI, generated from the
//! kernel's UAPI headers by `generate.py` (see there).

mod aarch64;
mod arm;
mod x32;
mod x86;
mod x86_64;

use super::arch::Arch;

/// The `(name, number)` table of `arch`, sorted by name.
pub(super) fn table(arch: Arch) -> &'static [(&'static str, u32)] {
    match arch {
        Arch::X86_64 => x86_64::SYSCALLS,
        Arch::X86 => x86::SYSCALLS,
        Arch::X32 => x32::SYSCALLS,
        Arch::Aarch64 => aarch64::SYSCALLS,
        Arch::Arm => arm::SYSCALLS,
    }
}

/// The number of system call `name` on `arch`, if that ABI has it.
pub(super) fn number(arch: Arch, name: &str) -> Option<u32> {
    let t = table(arch);
    t.binary_search_by(|(n, _)| n.cmp(&name))
        .ok()
        .map(|i| t[i].1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_sorted_and_unique() {
        for arch in [Arch::X86_64, Arch::X86, Arch::X32, Arch::Aarch64, Arch::Arm] {
            let t = table(arch);
            assert!(t.windows(2).all(|w| w[0].0 < w[1].0), "{arch:?}");
            let (first, last) = arch.numbers();
            assert!(
                t.iter().all(|(_, nr)| (first..=last).contains(nr)),
                "{arch:?}"
            );
        }
    }

    #[test]
    fn known_numbers() {
        assert_eq!(number(Arch::X86_64, "read"), Some(0));
        assert_eq!(number(Arch::X86_64, "getcwd"), Some(79));
        assert_eq!(number(Arch::X86_64, "clone3"), Some(435));
        assert_eq!(number(Arch::X86, "socketcall"), Some(102));
        assert_eq!(number(Arch::X86, "read"), Some(3));
        assert_eq!(number(Arch::X32, "read"), Some(0x4000_0000));
        assert_eq!(number(Arch::X32, "execve"), Some(0x4000_0000 + 520));
        assert_eq!(number(Arch::Aarch64, "openat"), Some(56));
        assert_eq!(number(Arch::Aarch64, "open"), None);
        assert_eq!(number(Arch::Arm, "set_tls"), Some(0x0f_0005));
        assert_eq!(number(Arch::X86_64, "fchmodat2"), Some(452));
        assert_eq!(number(Arch::X86_64, "socketcall"), None);
        assert_eq!(number(Arch::X86_64, "no_such_call"), None);
    }

    /// The generated table of the build's own ABI agrees with libc.
    #[test]
    fn native_table_matches_libc() {
        macro_rules! check {
            ($($name:ident)*) => {
                let native = Arch::native().expect("supported host");
                $(
                    let name = stringify!($name).trim_start_matches("SYS_");
                    assert_eq!(number(native, name).map(libc::c_long::from), Some(libc::$name), "{name}");
                )*
            };
        }
        check!(
            SYS_read SYS_write SYS_openat SYS_close SYS_getcwd SYS_clone SYS_clone3
            SYS_execve SYS_execveat SYS_exit_group SYS_mount SYS_umount2 SYS_pivot_root
            SYS_socket SYS_connect SYS_bind SYS_personality SYS_ptrace SYS_seccomp
            SYS_bpf SYS_keyctl SYS_unshare SYS_setns SYS_memfd_create SYS_openat2
            SYS_pidfd_open SYS_close_range SYS_mount_setattr SYS_futex_waitv
            SYS_io_uring_setup SYS_landlock_create_ruleset SYS_process_madvise
            SYS_getpgid SYS_lseek SYS_fchdir SYS_dup SYS_getpid SYS_mseal
        );
    }
}
