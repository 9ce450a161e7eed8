//! One function per [`Check`]: `Ok(())` or a one-line detail of what differs.

use std::ffi::CString;
use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};

use corten_conformance::expect::{Check, FileKind, SyscallArg, SyscallOutcome};

use crate::procfs;

type Outcome = Result<(), String>;

/// Verify one check.
pub fn run(check: &Check) -> Outcome {
    match check {
        Check::Namespace { ns, inode, same } => namespace(ns, *inode, *same),
        Check::Pid { pid } => equal("pid", std::process::id(), u32::try_from(*pid).unwrap_or(0)),
        Check::ProcPids { pids } => proc_pids(pids),
        Check::Mount {
            path,
            fstype,
            options,
            absent,
            propagation,
        } => mount(
            path,
            fstype.as_deref(),
            options,
            absent,
            propagation.as_deref(),
        ),
        Check::NotMounted { path } => not_mounted(path),
        Check::ReadOnly { path } => read_only(path),
        Check::Writable { path } => writable(path),
        Check::Masked { path } => masked(path),
        Check::Exists { path, kind } => exists(path, *kind),
        Check::Absent { path } => match fs::symlink_metadata(path) {
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(format!("lstat {path}: {e}")),
            Ok(m) => Err(format!("{path} exists ({:?})", m.file_type())),
        },
        Check::FileContains { path, text } => {
            let content = read(path)?;
            if content.contains(text.as_str()) {
                Ok(())
            } else {
                Err(format!("{path} does not contain {text:?}: {content:?}"))
            }
        }
        Check::FileEquals { path, text } => equal(path, read(path)?.trim(), text.as_str()),
        Check::LinkOrSame { path, target } => link_or_same(path, target),
        Check::Device {
            path,
            kind,
            major,
            minor,
            mode,
            uid,
            gid,
        } => device(path, *kind, (*major, *minor), *mode, *uid, *gid),
        Check::Open { path, write, errno } => open(path, *write, *errno),
        Check::ReadsZeros { path, len } => reads_zeros(path, *len),
        Check::WriteResult { path, errno } => write_result(path, *errno),
        Check::Caps { set, mask } => caps(set, *mask),
        Check::Rlimit {
            resource,
            soft,
            hard,
        } => rlimit(resource, *soft, *hard),
        Check::Ids { uid, gid } => ids(*uid, *gid),
        Check::Groups { gids } => groups(gids),
        Check::Umask { mask } => {
            let got = procfs::status_field("Umask")?;
            let got = u32::from_str_radix(&got, 8).map_err(|e| format!("Umask {got}: {e}"))?;
            equal("umask", format!("{got:04o}"), format!("{mask:04o}"))
        }
        Check::NoNewPrivs { set } => equal(
            "NoNewPrivs",
            procfs::status_field("NoNewPrivs")?,
            u8::from(*set).to_string(),
        ),
        Check::OomScoreAdj { value } => equal(
            "oom_score_adj",
            read("/proc/self/oom_score_adj")?.trim(),
            &value.to_string(),
        ),
        Check::Hostname { name } => equal("hostname", uname_field(|u| &u.nodename)?, name.clone()),
        Check::Domainname { name } => {
            equal("domainname", uname_field(|u| &u.domainname)?, name.clone())
        }
        Check::Sysctl { key, value } => {
            let path = format!("/proc/sys/{}", key.replace('.', "/"));
            equal(key, normalise(&read(&path)?), normalise(value))
        }
        Check::Cwd { path } => {
            let cwd = std::env::current_dir().map_err(|e| format!("getcwd: {e}"))?;
            equal("cwd", cwd.to_string_lossy().into_owned(), path.clone())
        }
        Check::Env { name, value } => {
            let got = std::env::var_os(name).map(|v| v.to_string_lossy().into_owned());
            equal(name, got, value.clone())
        }
        Check::Argv { args } => equal("argv", std::env::args().collect::<Vec<_>>(), args.clone()),
        Check::SeccompMode { mode } => equal(
            "Seccomp",
            procfs::status_field("Seccomp")?,
            mode.to_string(),
        ),
        Check::Syscall { nr, args, outcome } => syscall(*nr, args, outcome),
        Check::CgroupFile { v1, v2, value } => cgroup_file(v1.as_deref(), v2.as_deref(), value),
        Check::CgroupNsRoot => cgroup_ns_root(),
        Check::ProcLines { file, lines } => {
            let text = read(&format!("/proc/self/{file}"))?;
            let got: Vec<String> = text
                .lines()
                .map(normalise)
                .filter(|l| !l.is_empty())
                .collect();
            equal(
                file,
                got,
                lines.iter().map(|l| normalise(l)).collect::<Vec<_>>(),
            )
        }
        Check::Personality { persona } => {
            // SAFETY: 0xffffffff only queries the persona, changing nothing.
            let p = unsafe { libc::personality(0xffff_ffff) };
            let got = u32::try_from(p).map_err(|_| "personality query failed".to_owned())?;
            equal("persona", got & 0xff, *persona)
        }
        Check::IoPriority { class, level } => io_priority(*class, *level),
        Check::Scheduler { policy, nice } => scheduler(*policy, *nice),
        Check::IsTty { fd, tty } => {
            // SAFETY: isatty only inspects the descriptor number.
            let got = unsafe { libc::isatty(*fd) } == 1;
            equal(&format!("isatty({fd})"), got, *tty)
        }
        Check::WinSize { rows, cols } => win_size(*rows, *cols),
        Check::OnlyStdioOpen => only_stdio_open(),
    }
}

fn equal<T: PartialEq + std::fmt::Debug>(what: &str, got: T, want: T) -> Outcome {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: got {got:?}, want {want:?}"))
    }
}

fn read(path: &str) -> Result<String, String> {
    fs::read_to_string(path).map_err(|e| format!("read {path}: {e}"))
}

fn normalise(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn errno_of(e: &std::io::Error) -> i32 {
    e.raw_os_error().unwrap_or(0)
}

fn errno_name(errno: Option<i32>) -> String {
    match errno {
        None => "success".to_owned(),
        Some(n) => format!("errno {n} ({})", std::io::Error::from_raw_os_error(n)),
    }
}

fn namespace(ns: &str, inode: u64, same: bool) -> Outcome {
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

fn proc_pids(want: &[i32]) -> Outcome {
    let mut got: Vec<i32> = fs::read_dir("/proc")
        .map_err(|e| format!("read /proc: {e}"))?
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
        .collect();
    got.sort_unstable();
    equal("pids in /proc", got, want.to_vec())
}

fn mount(
    path: &str,
    fstype: Option<&str>,
    options: &[String],
    absent: &[String],
    propagation: Option<&str>,
) -> Outcome {
    let mounts = procfs::mounts()?;
    let m = mounts
        .iter()
        .rev()
        .find(|m| m.mount_point == path)
        .ok_or_else(|| format!("nothing mounted at {path}"))?;
    if let Some(t) = fstype {
        if m.fstype != t {
            return Err(format!("{path}: type {}, want {t}", m.fstype));
        }
    }
    for o in options {
        if !m.mount_options.contains(o) && !m.super_options.contains(o) {
            return Err(format!(
                "{path}: option {o} missing (mount {}, super {})",
                m.mount_options.join(","),
                m.super_options.join(",")
            ));
        }
    }
    for o in absent {
        if m.mount_options.contains(o) {
            return Err(format!(
                "{path}: option {o} present ({})",
                m.mount_options.join(",")
            ));
        }
    }
    if let Some(p) = propagation {
        let got = m.propagation();
        if !got.contains(&p) || (p == "private" && got.len() != 1) {
            return Err(format!(
                "{path}: propagation {got:?} (fields {:?}), want {p}",
                m.optional
            ));
        }
    }
    Ok(())
}

fn not_mounted(path: &str) -> Outcome {
    match procfs::mounts()?.iter().find(|m| m.mount_point == path) {
        None => Ok(()),
        Some(m) => Err(format!("{path} is mounted ({})", m.fstype)),
    }
}

/// Try to write at `path`: a probe file in a directory, or the file itself
/// opened for appending (nothing is written).
fn try_write(path: &str) -> std::io::Result<()> {
    let meta = fs::metadata(path)?;
    if meta.is_dir() {
        let probe = format!(
            "{}/.conformance-probe-{}",
            path.trim_end_matches('/'),
            std::process::id()
        );
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&probe)?;
        fs::remove_file(&probe)
    } else {
        OpenOptions::new()
            .append(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
            .map(drop)
    }
}

fn read_only(path: &str) -> Outcome {
    match try_write(path) {
        Err(e) if errno_of(&e) == libc::EROFS => Ok(()),
        Err(e) => Err(format!("write at {path}: {e}, want EROFS")),
        Ok(()) => Err(format!("write at {path} succeeded, want EROFS")),
    }
}

fn writable(path: &str) -> Outcome {
    try_write(path).map_err(|e| format!("write at {path}: {e}"))
}

fn masked(path: &str) -> Outcome {
    let meta = match fs::metadata(path) {
        Err(e) if e.kind() == ErrorKind::NotFound => return Err(format!("{path} does not exist")),
        Err(e) => return Err(format!("stat {path}: {e}")),
        Ok(m) => m,
    };
    if meta.is_dir() {
        return match fs::read_dir(path) {
            Err(e) if e.kind() == ErrorKind::PermissionDenied => Ok(()),
            Err(e) => Err(format!("read_dir {path}: {e}")),
            Ok(entries) => {
                let names: Vec<String> = entries
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect();
                if names.is_empty() {
                    Ok(())
                } else {
                    Err(format!("{path} lists {names:?}"))
                }
            }
        };
    }
    let mut buf = [0u8; 64];
    match fs::File::open(path).and_then(|mut f| f.read(&mut buf)) {
        Err(e) if e.kind() == ErrorKind::PermissionDenied => Ok(()),
        Err(e) => Err(format!("read {path}: {e}")),
        Ok(0) => Ok(()),
        Ok(n) => Err(format!("{path} is readable ({n} bytes)")),
    }
}

fn kind_of(t: fs::FileType) -> Option<FileKind> {
    Some(if t.is_symlink() {
        FileKind::Symlink
    } else if t.is_dir() {
        FileKind::Dir
    } else if t.is_file() {
        FileKind::File
    } else if t.is_char_device() {
        FileKind::Char
    } else if t.is_block_device() {
        FileKind::Block
    } else if t.is_fifo() {
        FileKind::Fifo
    } else {
        return None;
    })
}

fn exists(path: &str, kind: Option<FileKind>) -> Outcome {
    let meta = fs::symlink_metadata(path).map_err(|e| format!("lstat {path}: {e}"))?;
    match kind {
        Some(k) if kind_of(meta.file_type()) != Some(k) => Err(format!(
            "{path} is {:?}, want {k:?}",
            kind_of(meta.file_type())
        )),
        _ => Ok(()),
    }
}

fn link_or_same(path: &str, target: &str) -> Outcome {
    let meta = fs::symlink_metadata(path).map_err(|e| format!("lstat {path}: {e}"))?;
    if meta.file_type().is_symlink() {
        let link = fs::read_link(path).map_err(|e| format!("readlink {path}: {e}"))?;
        let link = link.to_string_lossy();
        let resolved = fs::canonicalize(path).map_err(|e| format!("resolve {path}: {e}"))?;
        if link == target || resolved.to_string_lossy() == target {
            return Ok(());
        }
        return Err(format!("{path} -> {link}, want {target}"));
    }
    let want = fs::metadata(target).map_err(|e| format!("stat {target}: {e}"))?;
    if kind_of(meta.file_type()) == kind_of(want.file_type()) && meta.rdev() == want.rdev() {
        Ok(())
    } else {
        Err(format!(
            "{path} is neither a link to nor the same device as {target}"
        ))
    }
}

fn device(
    path: &str,
    kind: FileKind,
    (major, minor): (u64, u64),
    mode: Option<u32>,
    uid: Option<u32>,
    gid: Option<u32>,
) -> Outcome {
    let meta = fs::symlink_metadata(path).map_err(|e| format!("lstat {path}: {e}"))?;
    let got = kind_of(meta.file_type());
    if got != Some(kind) {
        return Err(format!("{path} is {got:?}, want {kind:?}"));
    }
    if kind != FileKind::Fifo {
        let (ma, mi) = (
            u64::from(libc::major(meta.rdev())),
            u64::from(libc::minor(meta.rdev())),
        );
        if (ma, mi) != (major, minor) {
            return Err(format!("{path} is {ma}:{mi}, want {major}:{minor}"));
        }
    }
    if let Some(m) = mode {
        equal(
            &format!("{path} mode"),
            format!("{:o}", meta.mode() & 0o7777),
            format!("{m:o}"),
        )?;
    }
    if let Some(u) = uid {
        equal(&format!("{path} uid"), meta.uid(), u)?;
    }
    if let Some(g) = gid {
        equal(&format!("{path} gid"), meta.gid(), g)?;
    }
    Ok(())
}

fn open(path: &str, write: bool, errno: Option<i32>) -> Outcome {
    let got = OpenOptions::new()
        .read(true)
        .write(write)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map(drop)
        .map_err(|e| errno_of(&e))
        .err();
    if got == errno {
        Ok(())
    } else {
        Err(format!(
            "open {path}: {}, want {}",
            errno_name(got),
            errno_name(errno)
        ))
    }
}

fn reads_zeros(path: &str, len: usize) -> Outcome {
    let mut buf = vec![1u8; len];
    fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut buf))
        .map_err(|e| format!("read {path}: {e}"))?;
    if buf.iter().all(|b| *b == 0) {
        Ok(())
    } else {
        Err(format!("{path} returned non-zero bytes"))
    }
}

fn write_result(path: &str, errno: Option<i32>) -> Outcome {
    let got = OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|mut f| f.write_all(b"x"))
        .map_err(|e| errno_of(&e))
        .err();
    if got == errno {
        Ok(())
    } else {
        Err(format!(
            "write {path}: {}, want {}",
            errno_name(got),
            errno_name(errno)
        ))
    }
}

fn caps(set: &str, mask: u64) -> Outcome {
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

fn rlimit(name: &str, soft: u64, hard: u64) -> Outcome {
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

fn ids(uid: u32, gid: u32) -> Outcome {
    let (mut r, mut e, mut s) = (0, 0, 0);
    // SAFETY: the three pointers are valid, writable u32s.
    unsafe { libc::getresuid(&mut r, &mut e, &mut s) };
    equal("uid (real, effective, saved)", (r, e, s), (uid, uid, uid))?;
    // SAFETY: as above.
    unsafe { libc::getresgid(&mut r, &mut e, &mut s) };
    equal("gid (real, effective, saved)", (r, e, s), (gid, gid, gid))
}

fn groups(want: &[u32]) -> Outcome {
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

fn uname_field(pick: impl Fn(&libc::utsname) -> &[libc::c_char; 65]) -> Result<String, String> {
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

fn syscall(nr: i64, args: &[SyscallArg], outcome: &SyscallOutcome) -> Outcome {
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

fn cgroup_file(v1: Option<&str>, v2: Option<&str>, value: &str) -> Outcome {
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

fn cgroup_ns_root() -> Outcome {
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

fn io_priority(class: u32, level: u32) -> Outcome {
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

fn scheduler(policy: i32, nice: Option<i32>) -> Outcome {
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

fn win_size(rows: u16, cols: u16) -> Outcome {
    // SAFETY: winsize is plain data; all-zero is a valid value.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes one winsize into the valid `ws`.
    if unsafe { libc::ioctl(0, libc::TIOCGWINSZ, &mut ws) } != 0 {
        return Err(format!("TIOCGWINSZ: {}", std::io::Error::last_os_error()));
    }
    equal("window (rows, cols)", (ws.ws_row, ws.ws_col), (rows, cols))
}

fn only_stdio_open() -> Outcome {
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
