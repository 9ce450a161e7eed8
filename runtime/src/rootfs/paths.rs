//! `linux.maskedPaths` and `linux.readonlyPaths`.

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::mount::{mount, MsFlags};

use super::mounts::locked_flags;
use super::resolve::open_in_root;
use super::{Rootfs, RootfsError};
use crate::sys::{self, fd_path, RESOLVE_NO_SYMLINKS};

fn open_opt(rfs: &Rootfs<'_>, path: &str) -> Result<Option<OwnedFd>, RootfsError> {
    match open_in_root(rfs.fd(), Path::new(path), 0) {
        Ok(fd) => Ok(Some(fd)),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
        Err(source) => Err(RootfsError::Dest {
            dest: path.to_string(),
            source,
        }),
    }
}

/// Opens the container's `/dev/null` and checks it really is the null device
/// (char 1:3), so a planted file or symlink is never bound over a masked
/// path (CVE-2025-31133).
fn verified_null(rfs: &Rootfs<'_>) -> Result<OwnedFd, RootfsError> {
    let bad = || RootfsError::FakeNull;
    let fd =
        open_in_root(rfs.fd(), Path::new("/dev/null"), RESOLVE_NO_SYMLINKS).map_err(|_| bad())?;
    let st = sys::fstat(fd.as_fd()).map_err(|_| bad())?;
    let is_chr = st.st_mode & libc::S_IFMT == libc::S_IFCHR;
    if !is_chr || libc::major(st.st_rdev) != 1 || libc::minor(st.st_rdev) != 3 {
        return Err(bad());
    }
    Ok(fd)
}

/// Masks each path: a read-only empty tmpfs over directories, `/dev/null`
/// over files. Missing paths are skipped.
pub fn mask(rfs: &Rootfs<'_>, paths: &[String]) -> Result<(), RootfsError> {
    let mut null: Option<OwnedFd> = None;
    for p in paths {
        let Some(fd) = open_opt(rfs, p)? else {
            continue;
        };
        let st = sys::fstat(fd.as_fd()).map_err(|source| RootfsError::Dest {
            dest: p.clone(),
            source,
        })?;
        let res = if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
            mount(
                Some("tmpfs"),
                fd_path(&fd).as_str(),
                Some("tmpfs"),
                MsFlags::MS_RDONLY,
                Some("size=0k"),
            )
        } else {
            if null.is_none() {
                null = Some(verified_null(rfs)?);
            }
            let n = null.as_ref().map(fd_path).unwrap_or_default();
            mount(
                Some(n.as_str()),
                fd_path(&fd).as_str(),
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
        };
        res.map_err(|e| RootfsError::Mount {
            op: "mask",
            dest: p.clone(),
            source: e.into(),
        })?;
    }
    Ok(())
}

/// Makes each path read-only (a read-only bind of itself). Missing paths are skipped.
pub fn readonly(rfs: &Rootfs<'_>, paths: &[String]) -> Result<(), RootfsError> {
    for p in paths {
        let Some(fd) = open_opt(rfs, p)? else {
            continue;
        };
        let fdp = fd_path(&fd);
        let err = |op| {
            let p = p.clone();
            move |e: nix::Error| RootfsError::Mount {
                op,
                dest: p,
                source: e.into(),
            }
        };
        mount(
            Some(fdp.as_str()),
            fdp.as_str(),
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(err("bind read-only path"))?;
        let top = open_opt(rfs, p)?.ok_or(RootfsError::Vanished(p.clone()))?;
        let tp = fd_path(&top);
        let locked = locked_flags(Path::new(&tp)) - MsFlags::MS_RDONLY;
        mount(
            None::<&str>,
            tp.as_str(),
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | locked,
            None::<&str>,
        )
        .map_err(err("remount read-only path"))?;
    }
    Ok(())
}

/// The mount points in `mountinfo` text of full (root `/`) `proc` and
/// `sysfs` mounts outside `rootfs`, deepest last.
fn host_proc_and_sys(mountinfo: &str, rootfs: &Path) -> Vec<std::path::PathBuf> {
    mountinfo
        .lines()
        .filter_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            let f: Vec<&str> = pre.split(' ').collect();
            let fstype = post.split(' ').next()?;
            let point = std::path::PathBuf::from(unescape(f.get(4)?));
            (f.get(3) == Some(&"/")
                && matches!(fstype, "proc" | "sysfs")
                && !point.starts_with(rootfs))
            .then_some(point)
        })
        .collect()
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
pub(super) fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let oct = b
            .get(i + 1..i + 4)
            .filter(|d| b[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match oct {
            Some(d) => {
                out.push(d.iter().fold(0u8, |n, c| n.wrapping_mul(8) + (c - b'0')));
                i += 4;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Before `--no-pivot` moves the rootfs over `/`: detaches every full
/// `proc` and `sysfs` mount of the container's mount namespace outside the
/// rootfs (or covers it with a tmpfs where that is refused), as runc does.
/// Under a chroot they would stay reachable, and the kernel lets a process
/// in a new user namespace mount a fresh procfs whenever an unmasked one is
/// visible in its mount namespace.
pub fn hide_host_proc_and_sys(rootfs: &Path) -> Result<(), RootfsError> {
    let info =
        std::fs::read_to_string("/proc/self/mountinfo").map_err(|source| RootfsError::Dest {
            dest: "/proc/self/mountinfo".into(),
            source,
        })?;
    for point in host_proc_and_sys(&info, rootfs) {
        let step = |op: &'static str| {
            let dest = point.display().to_string();
            move |e: nix::Error| RootfsError::Mount {
                op,
                dest,
                source: e.into(),
            }
        };
        // Slave first, so the detach cannot propagate anywhere.
        match mount(
            None::<&str>,
            &point,
            None::<&str>,
            MsFlags::MS_SLAVE | MsFlags::MS_REC,
            None::<&str>,
        ) {
            // A parent of it is gone already.
            Err(nix::Error::ENOENT) => continue,
            r => r.map_err(step("make rslave"))?,
        }
        match nix::mount::umount2(&point, nix::mount::MntFlags::MNT_DETACH) {
            Ok(()) => {}
            Err(nix::Error::EINVAL | nix::Error::EPERM) => mount(
                Some("tmpfs"),
                &point,
                Some("tmpfs"),
                MsFlags::empty(),
                None::<&str>,
            )
            .map_err(step("cover with tmpfs"))?,
            Err(e) => return Err(step("unmount")(e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_full_proc_and_sys_outside_the_rootfs() {
        let info = "\
22 1 0:5 / /proc rw - proc proc rw
23 1 0:6 / /sys rw - sysfs sysfs rw
24 1 0:5 /sys /mnt/partial rw - proc proc rw
25 1 0:7 / /b/rootfs/proc rw - proc proc rw
26 1 0:8 / /my\\040dir rw - sysfs sysfs rw
27 1 0:9 / /tmp rw - tmpfs tmpfs rw
";
        let got = host_proc_and_sys(info, Path::new("/b/rootfs"));
        assert_eq!(
            got,
            ["/proc", "/sys", "/my dir"].map(std::path::PathBuf::from)
        );
    }
}
