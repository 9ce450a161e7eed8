//! The process's credentials and attributes: capabilities, rlimits, ids,
//! groups, uname fields, I/O priority, scheduler, terminal, descriptors.

use std::fs;

use super::{equal, Outcome};
use crate::procfs;

pub(super) fn caps(set: &str, mask: u64) -> Outcome {
    let text = procfs::status_field(set)?;
    let got = u64::from_str_radix(&text, 16).map_err(|e| format!("{set} {text}: {e}"))?;
    if got == mask {
        Ok(())
    } else {
        Err(format!(
            "{set} {got:016x}, want {mask:016x} (extra {:x}, missing {:x})",
            got & !mask,
            mask & !got
        ))
    }
}

fn rlimit_resource(name: &str) -> Option<libc::__rlimit_resource_t> {
    Some(match name {
        "RLIMIT_CPU" => libc::RLIMIT_CPU,
        "RLIMIT_FSIZE" => libc::RLIMIT_FSIZE,
        "RLIMIT_DATA" => libc::RLIMIT_DATA,
        "RLIMIT_STACK" => libc::RLIMIT_STACK,
        "RLIMIT_CORE" => libc::RLIMIT_CORE,
        "RLIMIT_RSS" => libc::RLIMIT_RSS,
        "RLIMIT_NPROC" => libc::RLIMIT_NPROC,
        "RLIMIT_NOFILE" => libc::RLIMIT_NOFILE,
        "RLIMIT_MEMLOCK" => libc::RLIMIT_MEMLOCK,
        "RLIMIT_AS" => libc::RLIMIT_AS,
        "RLIMIT_LOCKS" => libc::RLIMIT_LOCKS,
        "RLIMIT_SIGPENDING" => libc::RLIMIT_SIGPENDING,
        "RLIMIT_MSGQUEUE" => libc::RLIMIT_MSGQUEUE,
        "RLIMIT_NICE" => libc::RLIMIT_NICE,
        "RLIMIT_RTPRIO" => libc::RLIMIT_RTPRIO,
        "RLIMIT_RTTIME" => libc::RLIMIT_RTTIME,
        _ => return None,
    })
}

pub(super) fn rlimit(name: &str, soft: u64, hard: u64) -> Outcome {
    let resource = rlimit_resource(name).ok_or_else(|| format!("unknown resource {name}"))?;
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit for the duration of the call.
    if unsafe { libc::getrlimit(resource, &mut lim) } != 0 {
        return Err(format!(
            "getrlimit {name}: {}",
            std::io::Error::last_os_error()
        ));
    }
    equal(name, (lim.rlim_cur, lim.rlim_max), (soft, hard))
}

pub(super) fn ids(uid: u32, gid: u32) -> Outcome {
    let (mut r, mut e, mut s) = (0, 0, 0);
    // SAFETY: the three pointers are valid, writable u32s.
    unsafe { libc::getresuid(&mut r, &mut e, &mut s) };
    equal("uid (real, effective, saved)", (r, e, s), (uid, uid, uid))?;
    // SAFETY: as above.
    unsafe { libc::getresgid(&mut r, &mut e, &mut s) };
    equal("gid (real, effective, saved)", (r, e, s), (gid, gid, gid))
}

pub(super) fn groups(want: &[u32]) -> Outcome {
    let mut buf = vec![0 as libc::gid_t; 1024];
    // SAFETY: `buf` has room for the 1024 entries announced.
    let n = unsafe { libc::getgroups(1024, buf.as_mut_ptr()) };
    let n = usize::try_from(n)
        .map_err(|_| format!("getgroups: {}", std::io::Error::last_os_error()))?;
    let mut got: Vec<u32> = buf[..n].to_vec();
    got.sort_unstable();
    got.dedup();
    let mut want = want.to_vec();
    want.sort_unstable();
    want.dedup();
    equal("groups", got, want)
}

pub(super) fn uname_field(
    pick: impl Fn(&libc::utsname) -> &[libc::c_char; 65],
) -> Result<String, String> {
    // SAFETY: utsname is plain data; all-zero is a valid value.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `u` is a valid, writable utsname.
    if unsafe { libc::uname(&mut u) } != 0 {
        return Err(format!("uname: {}", std::io::Error::last_os_error()));
    }
    let field = pick(&u);
    let bytes: Vec<u8> = field
        .iter()
        .take_while(|c| **c != 0)
        .map(|c| c.to_ne_bytes()[0])
        .collect();
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

pub(super) fn io_priority(class: u32, level: u32) -> Outcome {
    const IOPRIO_WHO_PROCESS: libc::c_long = 1;
    // SAFETY: ioprio_get takes two integers and returns an integer.
    let rc = unsafe { libc::syscall(libc::SYS_ioprio_get, IOPRIO_WHO_PROCESS, 0 as libc::c_long) };
    let v = u32::try_from(rc)
        .map_err(|_| format!("ioprio_get: {}", std::io::Error::last_os_error()))?;
    equal(
        "ioprio (class, level)",
        (v >> 13, v & 0x1fff),
        (class, level),
    )
}

pub(super) fn scheduler(policy: i32, nice: Option<i32>) -> Outcome {
    // SAFETY: sched_getscheduler takes a pid and returns an integer.
    let got = unsafe { libc::sched_getscheduler(0) };
    if got < 0 {
        return Err(format!(
            "sched_getscheduler: {}",
            std::io::Error::last_os_error()
        ));
    }
    equal("policy", got & !libc::SCHED_RESET_ON_FORK, policy)?;
    if let Some(n) = nice {
        // SAFETY: getpriority takes two integers and returns an integer.
        let p = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
        equal("nice", p, n)?;
    }
    Ok(())
}

pub(super) fn win_size(rows: u16, cols: u16) -> Outcome {
    // SAFETY: winsize is plain data; all-zero is a valid value.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes one winsize into the valid `ws`.
    if unsafe { libc::ioctl(0, libc::TIOCGWINSZ, &mut ws) } != 0 {
        return Err(format!("TIOCGWINSZ: {}", std::io::Error::last_os_error()));
    }
    equal("window (rows, cols)", (ws.ws_row, ws.ws_col), (rows, cols))
}

pub(super) fn only_stdio_open() -> Outcome {
    let dir = fs::read_dir("/proc/self/fd").map_err(|e| format!("read /proc/self/fd: {e}"))?;
    let mut extra = Vec::new();
    for entry in dir.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(fd) = name.parse::<i32>() else {
            continue;
        };
        if fd <= 2 {
            continue;
        }
        let target = fs::read_link(entry.path()).map(|t| t.to_string_lossy().into_owned());
        match target {
            // The descriptor of the directory being listed.
            Ok(t) if t.starts_with("/proc/") && t.ends_with("/fd") => {}
            Err(_) => {}
            Ok(t) => extra.push(format!("{fd} -> {t}")),
        }
    }
    if extra.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "open descriptors besides stdio: {}",
            extra.join(", ")
        ))
    }
}

pub(super) fn umask(mask: u32) -> Outcome {
    let got = procfs::status_field("Umask")?;
    let got = u32::from_str_radix(&got, 8).map_err(|e| format!("Umask {got}: {e}"))?;
    equal("umask", format!("{got:04o}"), format!("{mask:04o}"))
}

pub(super) fn cwd(path: &str) -> Outcome {
    let cwd = std::env::current_dir().map_err(|e| format!("getcwd: {e}"))?;
    equal("cwd", cwd.to_string_lossy().as_ref(), path)
}

pub(super) fn env(name: &str, value: Option<&str>) -> Outcome {
    let got = std::env::var_os(name).map(|v| v.to_string_lossy().into_owned());
    equal(name, got.as_deref(), value)
}

pub(super) fn personality(persona: u32) -> Outcome {
    // SAFETY: 0xffffffff only queries the persona, changing nothing.
    let p = unsafe { libc::personality(0xffff_ffff) };
    let got = u32::try_from(p).map_err(|_| "personality query failed".to_owned())?;
    equal("persona", got & 0xff, persona)
}

pub(super) fn is_tty(fd: i32, tty: bool) -> Outcome {
    // SAFETY: isatty only inspects the descriptor number.
    let got = unsafe { libc::isatty(fd) } == 1;
    equal(&format!("isatty({fd})"), got, tty)
}
