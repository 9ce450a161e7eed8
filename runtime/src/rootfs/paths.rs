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
