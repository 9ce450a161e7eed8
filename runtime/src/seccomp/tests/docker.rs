//! A profile modelled on Docker's default (as the runtime receives it, for a
//! container without extra capabilities): default `ERRNO(EPERM)`, ~330 names
//! allowed, argument rules for `clone`, `personality` and `socket`.

use serde_json::{json, Value};

use super::reference::{self, Outcome};
use super::{build, call1, call_nr, errno, interp, ALLOW, KILL_THREAD};
use crate::seccomp::arch::{Arch, X32_SYSCALL_BIT};
use crate::seccomp::syscalls;

const ALLOWED: &str = "accept accept4 access adjtimex alarm bind brk cachestat capget capset chdir chmod chown
    chown32 clock_adjtime clock_adjtime64 clock_getres clock_getres_time64 clock_gettime clock_gettime64
    clock_nanosleep clock_nanosleep_time64 close close_range connect copy_file_range creat dup dup2 dup3
    epoll_create epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2 epoll_wait epoll_wait_old
    eventfd eventfd2 execve execveat exit exit_group faccessat faccessat2 fadvise64 fadvise64_64 fallocate
    fanotify_mark fchdir fchmod fchmodat fchmodat2 fchown fchown32 fchownat fcntl fcntl64 fdatasync
    fgetxattr flistxattr flock fork fremovexattr fsetxattr fstat fstat64 fstatat64 fstatfs fstatfs64 fsync
    ftruncate ftruncate64 futex futex_requeue futex_time64 futex_wait futex_waitv futex_wake futimesat
    getcpu getcwd getdents getdents64 getegid getegid32 geteuid geteuid32 getgid getgid32 getgroups
    getgroups32 getitimer getpeername getpgid getpgrp getpid getppid getpriority getrandom getresgid
    getresgid32 getresuid getresuid32 getrlimit get_robust_list getrusage getsid getsockname getsockopt
    get_thread_area gettid gettimeofday getuid getuid32 getxattr inotify_add_watch inotify_init
    inotify_init1 inotify_rm_watch io_cancel ioctl io_destroy io_getevents io_pgetevents
    io_pgetevents_time64 ioprio_get ioprio_set io_setup io_submit ipc kill landlock_add_rule
    landlock_create_ruleset landlock_restrict_self lchown lchown32 lgetxattr link linkat listen listxattr
    llistxattr _llseek lremovexattr lseek lsetxattr lstat lstat64 madvise map_shadow_stack membarrier
    memfd_create memfd_secret mincore mkdir mkdirat mknod mknodat mlock mlock2 mlockall mmap mmap2 mprotect
    mq_getsetattr mq_notify mq_open mq_timedreceive mq_timedreceive_time64 mq_timedsend
    mq_timedsend_time64 mq_unlink mremap mseal msgctl msgget msgrcv msgsnd msync munlock munlockall munmap
    name_to_handle_at nanosleep newfstatat _newselect open openat openat2 pause pidfd_open
    pidfd_send_signal pipe pipe2 pkey_alloc pkey_free pkey_mprotect poll ppoll ppoll_time64 prctl pread64
    preadv preadv2 prlimit64 process_mrelease pselect6 pselect6_time64 pwrite64 pwritev pwritev2 read
    readahead readlink readlinkat readv recv recvfrom recvmmsg recvmmsg_time64 recvmsg remap_file_pages
    removexattr rename renameat renameat2 restart_syscall rmdir rseq rt_sigaction rt_sigpending
    rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend rt_sigtimedwait rt_sigtimedwait_time64
    rt_tgsigqueueinfo sched_getaffinity sched_getattr sched_getparam sched_get_priority_max
    sched_get_priority_min sched_getscheduler sched_rr_get_interval sched_rr_get_interval_time64
    sched_setaffinity sched_setattr sched_setparam sched_setscheduler sched_yield seccomp select semctl
    semget semop semtimedop semtimedop_time64 send sendfile sendfile64 sendmmsg sendmsg sendto setfsgid
    setfsgid32 setfsuid setfsuid32 setgid setgid32 setgroups setgroups32 setitimer setpgid setpriority
    setregid setregid32 setresgid setresgid32 setresuid setresuid32 setreuid setreuid32 setrlimit
    set_robust_list setsid setsockopt set_thread_area set_tid_address setuid setuid32 setxattr shmat
    shmctl shmdt shmget shutdown sigaltstack signalfd signalfd4 sigprocmask sigreturn socketcall
    socketpair splice stat stat64 statfs statfs64 statx symlink symlinkat sync sync_file_range syncfs
    sysinfo tee tgkill time timer_create timer_delete timer_getoverrun timer_gettime timer_gettime64
    timer_settime timer_settime64 timerfd_create timerfd_gettime timerfd_gettime64 timerfd_settime
    timerfd_settime64 times tkill truncate truncate64 ugetrlimit umask uname unlink unlinkat uretprobe
    utime utimensat utimensat_time64 utimes vfork vmsplice wait4 waitid waitpid write writev
    process_vm_readv process_vm_writev ptrace arch_prctl modify_ldt arm_fadvise64_64 arm_sync_file_range
    sync_file_range2 breakpoint cacheflush set_tls";

/// The flags `clone`'s rule forbids: every `CLONE_NEW*`.
const CLONE_NAMESPACES: u64 = 0x7e02_0000;

fn docker_profile(architectures: &[&str]) -> Value {
    let allowed: Vec<&str> = ALLOWED.split_whitespace().collect();
    let mut syscalls = vec![json!({ "names": allowed, "action": "SCMP_ACT_ALLOW" })];
    for persona in [0u64, 8, 0x20000, 0x20008, 0xffff_ffff] {
        syscalls.push(
            json!({ "names": ["personality"], "action": "SCMP_ACT_ALLOW",
            "args": [{ "index": 0, "value": persona, "op": "SCMP_CMP_EQ" }] }),
        );
    }
    syscalls.push(json!({ "names": ["clone"], "action": "SCMP_ACT_ALLOW",
        "args": [{ "index": 0, "value": CLONE_NAMESPACES, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ" }] }));
    syscalls.push(json!({ "names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38 }));
    syscalls.push(json!({ "names": ["socket"], "action": "SCMP_ACT_ALLOW",
        "args": [{ "index": 0, "value": 40, "op": "SCMP_CMP_NE" }] }));
    json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "architectures": architectures,
        "syscalls": syscalls
    })
}

const CLONE_THREAD_FLAGS: u64 = 0x003d_0f00;

#[test]
fn docker_profile_on_x86_64() {
    let profile = docker_profile(&["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]);
    let f = build(&profile, Arch::X86_64);
    println!("x86_64 + x86 + x32: {} instructions", f.program.len());
    assert!(f.program.len() < 1500, "{} instructions", f.program.len());

    for arch in [Arch::X86_64, Arch::X86, Arch::X32] {
        for name in ALLOWED.split_whitespace() {
            if syscalls::number(arch, name).is_some() {
                assert_eq!(call1(&f, arch, name, 0), ALLOW, "{arch:?} {name}");
            }
        }
        for name in [
            "mount",
            "umount2",
            "unshare",
            "setns",
            "pivot_root",
            "keyctl",
            "bpf",
            "reboot",
            "init_module",
            "chroot",
        ] {
            assert_eq!(call1(&f, arch, name, 0), errno(1), "{arch:?} {name}");
        }
        assert_eq!(call1(&f, arch, "clone3", 0), errno(38));
        assert_eq!(
            call1(&f, arch, "clone", CLONE_THREAD_FLAGS),
            ALLOW,
            "{arch:?}"
        );
        assert_eq!(call1(&f, arch, "clone", 0x11), ALLOW, "{arch:?}");
        assert_eq!(
            call1(&f, arch, "clone", 0x1000_0011),
            errno(1),
            "CLONE_NEWUSER {arch:?}"
        );
        assert_eq!(
            call1(&f, arch, "clone", 0x0002_0011),
            errno(1),
            "CLONE_NEWNS {arch:?}"
        );
        assert_eq!(call1(&f, arch, "socket", 2), ALLOW, "AF_INET {arch:?}");
        assert_eq!(call1(&f, arch, "socket", 40), errno(1), "AF_VSOCK {arch:?}");
        for persona in [0, 8, 0x20000, 0x20008, 0xffff_ffff] {
            assert_eq!(
                call1(&f, arch, "personality", persona),
                ALLOW,
                "{arch:?} {persona:#x}"
            );
        }
        assert_eq!(call1(&f, arch, "personality", 1), errno(1), "{arch:?}");
    }
    // 64-bit comparisons on x86_64 only.
    assert_eq!(
        call1(&f, Arch::X86_64, "clone", 0x1_0000_0011),
        ALLOW,
        "mask has no high bits"
    );
    assert_eq!(call1(&f, Arch::X86_64, "socket", 0x1_0000_0028), ALLOW);
    assert_eq!(call1(&f, Arch::X86, "socket", 0x1_0000_0028), errno(1));
    assert_eq!(
        call1(&f, Arch::X86_64, "personality", 0x1_0000_0008),
        errno(1)
    );
    // Newer than every name: -ENOSYS.
    assert_eq!(call_nr(&f, Arch::X86_64.audit(), 470, [0; 6]), errno(38));
    assert_eq!(call_nr(&f, Arch::X86.audit(), 470, [0; 6]), errno(38));
    assert_eq!(
        call_nr(&f, Arch::X86_64.audit(), X32_SYSCALL_BIT + 600, [0; 6]),
        errno(38)
    );
    assert_eq!(call1(&f, Arch::Aarch64, "read", 0), KILL_THREAD);

    check_against_reference(
        &profile,
        &f,
        Arch::X86_64,
        &[Arch::X86_64, Arch::X86, Arch::X32],
    );
}

#[test]
fn docker_profile_on_aarch64() {
    let profile = docker_profile(&["SCMP_ARCH_ARM", "SCMP_ARCH_AARCH64"]);
    let f = build(&profile, Arch::Aarch64);
    println!("aarch64 + arm: {} instructions", f.program.len());
    assert!(f.program.len() < 1000, "{} instructions", f.program.len());
    assert_eq!(call1(&f, Arch::Aarch64, "openat", 0), ALLOW);
    assert_eq!(call1(&f, Arch::Arm, "set_tls", 0), ALLOW);
    assert_eq!(call1(&f, Arch::Aarch64, "mount", 0), errno(1));
    assert_eq!(call1(&f, Arch::Aarch64, "clone", 0x1000_0011), errno(1));
    assert_eq!(call1(&f, Arch::X86_64, "read", 0), KILL_THREAD);
    check_against_reference(&profile, &f, Arch::Aarch64, &[Arch::Aarch64, Arch::Arm]);
}

/// Every number of every ABI up to past the last one, with argument values
/// that hit and miss each rule, against [`reference`].
fn check_against_reference(
    profile: &Value,
    f: &crate::seccomp::Filter,
    native: Arch,
    arches: &[Arch],
) {
    let Outcome::Filter(model) = reference::model(profile) else {
        panic!("the reference refuses the profile");
    };
    let samples: [[u64; 6]; 6] = [
        [0; 6],
        [8, 0, 0, 0, 0, 0],
        [40, 1, 2, 3, 4, 5],
        [0x1000_0011, 0, 0, 0, 0, 0],
        [CLONE_THREAD_FLAGS, 0, 0, 0, 0, 0],
        [0xffff_ffff, u64::MAX, 0, 0, 0, 0],
    ];
    let mut longest = 0;
    for &arch in arches {
        let (first, _) = arch.numbers();
        for nr in
            (first..first + 600).chain([first + 0x0f_0001, first + 0x0f_0005, first + 0x10_0000])
        {
            for args in samples {
                assert_eq!(
                    call_nr(f, arch.audit(), nr, args),
                    model.verdict(native, arch.audit(), nr, args),
                    "{arch:?} {nr} {args:x?}"
                );
                let data = interp::Data {
                    nr,
                    arch: arch.audit(),
                    instruction_pointer: 0,
                    args,
                };
                longest = longest.max(interp::run_counting(&f.program, &data).1);
            }
        }
    }
    // A binary search plus the longest argument rules (personality's five).
    println!("at most {longest} instructions run for one call");
    assert!(longest <= 40, "{longest} instructions for one call");
}
