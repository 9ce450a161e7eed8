//! User-namespace id maps: checked before anything is made, written for a
//! new container by its parent (directly, or through Debian's setuid
//! `newuidmap`/`newgidmap` for an unprivileged caller's subordinate
//! ranges), and user namespaces made only to carry the maps of an
//! idmapped mount.

use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::bounds::Bound;
use crate::procfs::ProcFs;
use crate::spec::IdMapping;

/// The most lines a `uid_map`/`gid_map` takes (Linux ≥ 4.15).
const MAX_LINES: usize = 340;

/// Checks one map as the kernel would, with a message that names the
/// problem where the kernel only says EINVAL (its words end the message,
/// as runc's `uid_map: invalid argument` does): at most 340 lines, no
/// empty or overflowing range, no two ranges overlapping inside or
/// outside. `kind` is `uid` or `gid`.
pub fn check(kind: &str, maps: &[IdMapping]) -> Result<(), String> {
    problem(kind, maps).map_or(Ok(()), |p| {
        Err(format!("{kind}_map: {p}: invalid argument"))
    })
}

fn problem(kind: &str, maps: &[IdMapping]) -> Option<String> {
    if maps.len() > MAX_LINES {
        return Some(format!(
            "{} mappings, the kernel takes at most {MAX_LINES}",
            maps.len()
        ));
    }
    let end = |start: u32, size: u32| u64::from(start) + u64::from(size);
    let show = |m: &IdMapping| format!("{}:{}:{}", m.container_id, m.host_id, m.size);
    for m in maps {
        if m.size == 0 {
            return Some(format!("mapping {} has size 0", show(m)));
        }
        for (what, start) in [("container", m.container_id), ("host", m.host_id)] {
            // The last id, 4294967295, is (uid_t)-1: no id.
            if end(start, m.size) > u64::from(u32::MAX) {
                return Some(format!(
                    "mapping {} goes past the last {what} {kind} (4294967294)",
                    show(m)
                ));
            }
        }
    }
    for (i, a) in maps.iter().enumerate() {
        for b in &maps[i + 1..] {
            for (what, x, y) in [
                ("container", a.container_id, b.container_id),
                ("host", a.host_id, b.host_id),
            ] {
                if u64::from(x) < end(y, b.size) && u64::from(y) < end(x, a.size) {
                    return Some(format!(
                        "mappings {} and {} overlap in their {what} ids",
                        show(a),
                        show(b)
                    ));
                }
            }
        }
    }
    None
}

/// The map as `/proc/<pid>/uid_map` takes it.
fn text(maps: &[IdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id, m.host_id, m.size))
        .collect()
}

/// Whether an unprivileged caller may write `maps` itself: its own id,
/// once (user_namespaces(7)). Anything else needs the setuid helpers.
fn own_id_only(maps: &[IdMapping], own: u32) -> bool {
    matches!(maps, [m] if m.host_id == own && m.size == 1)
}

/// Writes the id maps of `pid`'s new user namespace, as the container's
/// parent. Root writes them directly. An unprivileged caller writes a map
/// of its own id directly (denying `setgroups` first for the gid map, as
/// the kernel requires and runc does) and hands any other map to
/// `newuidmap`/`newgidmap`, which check it against `/etc/subuid` and
/// `/etc/subgid`; `setgroups` stays allowed then, as with runc.
pub fn write_maps(
    proc: &ProcFs,
    pid: i32,
    uid_maps: &[IdMapping],
    gid_maps: &[IdMapping],
) -> io::Result<()> {
    let unprivileged = !nix::unistd::geteuid().is_root();
    let direct = |file: &str, maps: &[IdMapping]| {
        let p = format!("{pid}/{file}");
        proc.write(&p, text(maps).as_bytes())
            .map_err(|e| annotate(e, &format!("write /proc/{p}")))
    };
    if unprivileged && !own_id_only(uid_maps, nix::unistd::geteuid().as_raw()) {
        helper("newuidmap", pid, uid_maps)?;
    } else {
        direct("uid_map", uid_maps)?;
    }
    if unprivileged && !own_id_only(gid_maps, nix::unistd::getegid().as_raw()) {
        helper("newgidmap", pid, gid_maps)
    } else {
        if unprivileged {
            let p = format!("{pid}/setgroups");
            proc.write(&p, b"deny")
                .map_err(|e| annotate(e, &format!("write /proc/{p}")))?;
        }
        direct("gid_map", gid_maps)
    }
}

fn annotate(e: io::Error, what: &str) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// The helper's path: the first in `$PATH`, else Debian's.
pub fn find(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin")])
        .map(|d| d.join(name))
        .find(|p| nix::unistd::access(p, nix::unistd::AccessFlags::X_OK).is_ok())
}

/// Runs `newuidmap`/`newgidmap <pid> <container> <host> <size>…`, bounded
/// by `CORTEN_TIMEOUT_INIT`; its own message on failure (it names the
/// range `/etc/subuid` does not allow).
fn helper(name: &str, pid: i32, maps: &[IdMapping]) -> io::Result<()> {
    let kind = if name == "newuidmap" { "uid" } else { "gid" };
    let path = find(name).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "{name} not found: an unprivileged user can map only its own {kind} by itself; \
                 other {kind} mappings need {name} (Debian package uidmap) and a range in /etc/sub{kind}"
            ),
        )
    })?;
    let mut cmd = Command::new(&path);
    cmd.arg(pid.to_string());
    for m in maps {
        cmd.args([
            m.container_id.to_string(),
            m.host_id.to_string(),
            m.size.to_string(),
        ]);
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| annotate(e, &format!("run {}", path.display())))?;
    let deadline = Instant::now() + Bound::Init.get();
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                Bound::Init.exceeded(name),
            ));
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    if status.success() {
        return Ok(());
    }
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    let said = err.split_whitespace().collect::<Vec<_>>().join(" ");
    let maps: Vec<String> = maps
        .iter()
        .map(|m| format!("{}:{}:{}", m.container_id, m.host_id, m.size))
        .collect();
    Err(io::Error::new(
        io::ErrorKind::PermissionDenied,
        format!(
            "{name} {pid} {} failed ({}): {said}",
            maps.join(" "),
            crate::gotext::exit_status(status)
        ),
    ))
}

/// A user namespace holding `uid_maps` and `gid_maps` and nothing else,
/// for `mount_setattr(MOUNT_ATTR_IDMAP)`: a child made in it writes
/// nothing and waits; the parent writes its maps, opens its
/// `ns/user`, and ends it. Root only (the maps name any host id).
pub fn userns_fd(uid_maps: &[IdMapping], gid_maps: &[IdMapping]) -> io::Result<OwnedFd> {
    let (ready_r, ready_w) = nix::unistd::pipe()?;
    let (hold_r, hold_w) = nix::unistd::pipe()?;
    // SAFETY: the child calls only async-signal-safe functions (unshare,
    // write, read, _exit) before it exits.
    let pid = match unsafe { nix::unistd::fork() }? {
        nix::unistd::ForkResult::Child => {
            drop(ready_r);
            drop(hold_w);
            // SAFETY: plain syscalls on descriptors this process owns.
            unsafe {
                // 0, or the errno of unshare (each below 256).
                let err = if libc::unshare(libc::CLONE_NEWUSER) == 0 {
                    0u8
                } else {
                    u8::try_from(*libc::__errno_location()).unwrap_or(u8::MAX)
                };
                libc::write(ready_w.as_raw_fd(), (&err as *const u8).cast(), 1);
                let mut b = 0u8;
                libc::read(hold_r.as_raw_fd(), (&mut b as *mut u8).cast(), 1);
                libc::_exit(0);
            }
        }
        nix::unistd::ForkResult::Parent { child } => child,
    };
    drop(ready_w);
    drop(hold_r);
    let result = (|| {
        let mut err = [0u8];
        match nix::unistd::read(ready_r.as_raw_fd(), &mut err)? {
            1 if err[0] == 0 => {}
            1 => {
                let e = io::Error::from_raw_os_error(i32::from(err[0]));
                return Err(annotate(e, "unshare(CLONE_NEWUSER)"));
            }
            _ => {
                return Err(io::Error::other(
                    "the helper making the user namespace died",
                ))
            }
        }
        let proc = ProcFs::open()?;
        let p = pid.as_raw();
        proc.write(&format!("{p}/uid_map"), text(uid_maps).as_bytes())
            .map_err(|e| annotate(e, &format!("write uid map {}", text(uid_maps).trim())))?;
        proc.write(&format!("{p}/gid_map"), text(gid_maps).as_bytes())
            .map_err(|e| annotate(e, &format!("write gid map {}", text(gid_maps).trim())))?;
        let c = std::ffi::CString::new(format!("/proc/{p}/ns/user")).expect("no NUL");
        // SAFETY: a NUL-terminated path; open returns a new descriptor.
        let fd = unsafe { libc::open(c.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: open just returned this descriptor.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    })();
    drop(hold_w);
    let _ = nix::sys::wait::waitpid(pid, None);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(c: u32, h: u32, s: u32) -> IdMapping {
        IdMapping {
            container_id: c,
            host_id: h,
            size: s,
        }
    }

    #[test]
    fn good_maps_pass() {
        assert!(check("uid", &[m(0, 100_000, 65_536)]).is_ok());
        assert!(check("uid", &[m(0, 1000, 1), m(1, 100_000, 65_535)]).is_ok());
        assert!(check("uid", &[m(0, 0, u32::MAX)]).is_ok());
        assert!(check("uid", &[]).is_ok());
    }

    #[test]
    fn overlapping_maps_are_named() {
        let e = check("uid", &[m(0, 100_000, 10), m(5, 200_000, 10)]).unwrap_err();
        assert!(e.contains("overlap in their container ids"), "{e}");
        let e = check("gid", &[m(0, 100_000, 10), m(10, 100_005, 10)]).unwrap_err();
        assert!(
            e.contains("overlap in their host ids") && e.starts_with("gid_map: "),
            "{e}"
        );
        assert!(e.ends_with(": invalid argument"), "{e}");
        // Adjacent ranges do not overlap.
        assert!(check("uid", &[m(0, 100_000, 10), m(10, 100_010, 10)]).is_ok());
    }

    #[test]
    fn empty_overflowing_and_too_many_maps_are_refused() {
        assert!(check("uid", &[m(0, 1, 0)]).unwrap_err().contains("size 0"));
        let e = check("uid", &[m(0, u32::MAX - 5, 10)]).unwrap_err();
        assert!(e.contains("past the last host uid"), "{e}");
        let e = check("uid", &[m(u32::MAX - 5, 0, 10)]).unwrap_err();
        assert!(e.contains("past the last container uid"), "{e}");
        let many: Vec<IdMapping> = (0..341).map(|i| m(i * 2, i * 2, 1)).collect();
        assert!(check("uid", &many).unwrap_err().contains("at most 340"));
        assert!(check("uid", &many[..340]).is_ok());
    }

    #[test]
    fn only_a_single_own_id_is_written_without_helpers() {
        assert!(own_id_only(&[m(0, 1000, 1)], 1000));
        assert!(own_id_only(&[m(5, 1000, 1)], 1000));
        assert!(!own_id_only(&[m(0, 1000, 2)], 1000));
        assert!(!own_id_only(&[m(0, 1001, 1)], 1000));
        assert!(!own_id_only(&[m(0, 1000, 1), m(1, 100_000, 10)], 1000));
    }

    #[test]
    fn a_userns_fd_carries_the_maps() {
        let test = "a_userns_fd_carries_the_maps";
        // qemu-user runs helper threads in every process, and the kernel
        // refuses unshare(CLONE_NEWUSER) to a threaded one (EINVAL).
        if crate::test_support::skip_under_emulation(
            test,
            "unshare(CLONE_NEWUSER) in a threaded process is EINVAL",
        ) {
            return;
        }
        if !nix::unistd::geteuid().is_root() {
            crate::test_support::skip(test, "needs root");
            return;
        }
        let fd = match userns_fd(&[m(0, 100_000, 1000)], &[m(0, 200_000, 1000)]) {
            // A chroot (the fresh-Debian check) or a sysctl forbids them.
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                crate::test_support::skip(test, &format!("no user namespaces here: {e}"));
                return;
            }
            r => r.expect("userns"),
        };
        // A namespace (nsfs, where /proc/self/ns/user lives), not ours.
        use std::os::unix::fs::MetadataExt;
        let ours = std::fs::metadata("/proc/self/ns/user").expect("stat our user namespace");
        let made = crate::sys::fstat(std::os::fd::AsFd::as_fd(&fd)).expect("fstat");
        assert_eq!(made.st_dev, ours.dev());
        assert_ne!(made.st_ino, ours.ino());
    }
}
