//! Kernel views: namespaces, `/proc`, raw system calls (seccomp), cgroups.

use std::ffi::CString;
use std::fs;
use std::os::unix::fs::MetadataExt;

use corten_conformance::expect::{SyscallArg, SyscallOutcome};

use super::{equal, errno_name, errno_of, normalise, read, Outcome};

pub(super) fn namespace(ns: &str, inode: u64, same: bool) -> Outcome {
    let path = format!("/proc/self/ns/{ns}");
    let got = fs::metadata(&path)
        .map_err(|e| format!("stat {path}: {e}"))?
        .ino();
    match (same, got == inode) {
        (true, true) | (false, false) => Ok(()),
        (true, false) => Err(format!("{ns} namespace inode {got}, want {inode}")),
        (false, true) => Err(format!(
            "{ns} namespace is the runtime's ({inode}), want a new one"
        )),
    }
}

pub(super) fn proc_pids(want: &[i32]) -> Outcome {
    let mut got: Vec<i32> = fs::read_dir("/proc")
        .map_err(|e| format!("read /proc: {e}"))?
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
        .collect();
    got.sort_unstable();
    equal("pids in /proc", got, want.to_vec())
}

pub(super) fn syscall(nr: i64, args: &[SyscallArg], outcome: &SyscallOutcome) -> Outcome {
    let strings: Vec<Option<CString>> = args
        .iter()
        .map(|a| match a {
            SyscallArg::Str(s) => CString::new(s.as_str()).ok(),
            SyscallArg::Int(_) => None,
        })
        .collect();
    let mut raw = [0 as libc::c_long; 6];
    for (i, a) in args.iter().take(6).enumerate() {
        raw[i] = match (a, &strings[i]) {
            (SyscallArg::Int(v), _) => libc::c_long::from_ne_bytes(v.to_ne_bytes()),
            (SyscallArg::Str(_), Some(c)) => c.as_ptr() as libc::c_long,
            (SyscallArg::Str(s), None) => return Err(format!("argument {s:?} has a NUL")),
        };
    }
    let call = || {
        // SAFETY: the harness picks syscalls whose arguments are integers or
        // pointers to the NUL-terminated strings kept alive in `strings`.
        let rc = unsafe { libc::syscall(nr, raw[0], raw[1], raw[2], raw[3], raw[4], raw[5]) };
        if rc < 0 {
            Some(errno_of(&std::io::Error::last_os_error()))
        } else {
            None
        }
    };
    match outcome {
        SyscallOutcome::Errno(want) => match call() {
            Some(e) if e == *want => Ok(()),
            got => Err(format!(
                "syscall {nr}: {}, want {}",
                errno_name(got),
                errno_name(Some(*want))
            )),
        },
        SyscallOutcome::NotErrno(unwanted) => match call() {
            Some(e) if e == *unwanted => Err(format!("syscall {nr}: {}", errno_name(Some(e)))),
            _ => Ok(()),
        },
        SyscallOutcome::Signal(sig) => syscall_in_child(nr, *sig, call),
    }
}

fn syscall_in_child(nr: i64, sig: i32, call: impl Fn() -> Option<i32>) -> Outcome {
    // SAFETY: the process is single-threaded; the child only makes the
    // system call and `_exit`s.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(format!("fork: {}", std::io::Error::last_os_error()));
    }
    if pid == 0 {
        let code = call().map_or(0, |e| 100 + (e & 0x7f));
        // SAFETY: _exit ends the forked child without running destructors.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: `status` is a valid, writable int; `pid` is our child.
    if unsafe { libc::waitpid(pid, &mut status, 0) } != pid {
        return Err(format!("waitpid: {}", std::io::Error::last_os_error()));
    }
    if libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == sig {
        Ok(())
    } else if libc::WIFSIGNALED(status) {
        Err(format!(
            "syscall {nr}: killed by signal {}, want {sig}",
            libc::WTERMSIG(status)
        ))
    } else {
        let code = libc::WEXITSTATUS(status);
        let how = if code >= 100 {
            errno_name(Some(code - 100))
        } else {
            "success".to_owned()
        };
        Err(format!("syscall {nr}: returned ({how}), want signal {sig}"))
    }
}

fn cgroup_v2() -> bool {
    let path = c"/sys/fs/cgroup";
    // SAFETY: statfs is plain data; all-zero is a valid value.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is NUL-terminated and `st` is valid and writable.
    let rc = unsafe { libc::statfs(path.as_ptr(), &mut st) };
    rc == 0 && st.f_type == libc::CGROUP2_SUPER_MAGIC
}

/// Our cgroup path in the hierarchy of `controller` (`""` for v2), from `/proc/self/cgroup`.
fn own_cgroup(controller: &str) -> Option<String> {
    let text = fs::read_to_string("/proc/self/cgroup").ok()?;
    text.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let (_, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
        let matches = if controller.is_empty() {
            ctrls.is_empty()
        } else {
            ctrls.split(',').any(|c| c == controller)
        };
        matches.then(|| path.to_owned())
    })
}

pub(super) fn cgroup_file(v1: Option<&str>, v2: Option<&str>, value: &str) -> Outcome {
    let (controller, file) = if cgroup_v2() {
        let Some(f) = v2 else { return Ok(()) };
        (String::new(), f.to_owned())
    } else {
        let Some(f) = v1 else { return Ok(()) };
        let (c, f) = f
            .split_once('/')
            .ok_or_else(|| format!("bad v1 file {f}"))?;
        (c.to_owned(), f.to_owned())
    };
    let base = if controller.is_empty() {
        "/sys/fs/cgroup".to_owned()
    } else {
        format!("/sys/fs/cgroup/{controller}")
    };
    let mut candidates = Vec::new();
    if let Some(own) = own_cgroup(&controller) {
        candidates.push(format!("{base}{}/{file}", own.trim_end_matches('/')));
    }
    candidates.push(format!("{base}/{file}"));
    let (path, text) = candidates
        .iter()
        .find_map(|p| fs::read_to_string(p).ok().map(|t| (p.clone(), t)))
        .ok_or_else(|| format!("none of {candidates:?} is readable"))?;
    let lines: Vec<String> = text.lines().map(normalise).collect();
    let want = normalise(value);
    if lines.first() == Some(&want) || (want.contains(' ') && lines.contains(&want)) {
        Ok(())
    } else {
        Err(format!("{path}: {:?}, want {want:?}", lines.join(" | ")))
    }
}

pub(super) fn cgroup_ns_root() -> Outcome {
    let text = read("/proc/self/cgroup")?;
    for l in text.lines() {
        let path = l.splitn(3, ':').nth(2).unwrap_or_default();
        if path != "/" {
            return Err(format!(
                "/proc/self/cgroup line {l:?} is not at the namespace root"
            ));
        }
    }
    Ok(())
}

pub(super) fn sysctl(key: &str, value: &str) -> Outcome {
    let path = format!("/proc/sys/{}", key.replace('.', "/"));
    equal(key, normalise(&read(&path)?), normalise(value))
}

pub(super) fn proc_lines(file: &str, lines: &[String]) -> Outcome {
    let text = read(&format!("/proc/self/{file}"))?;
    let got: Vec<String> = text
        .lines()
        .map(normalise)
        .filter(|l| !l.is_empty())
        .collect();
    let want: Vec<String> = lines.iter().map(|l| normalise(l)).collect();
    equal(file, got, want)
}
