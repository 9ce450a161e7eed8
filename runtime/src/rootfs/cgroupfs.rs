//! The `cgroup` mount type: the container sees its own cgroup as the root of
//! `/sys/fs/cgroup`, read-only when asked.

use std::os::fd::AsFd;
use std::path::Path;

use nix::mount::{mount, MsFlags};

use super::mounts::{finish, remount};
use super::options::MountOptions;
use super::resolve::ensure;
use super::{Rootfs, RootfsError};
use crate::sys::fd_path;

fn err<'a>(dest: &'a str, op: &'static str) -> impl FnOnce(nix::Error) -> RootfsError + 'a {
    move |e| RootfsError::Mount {
        op,
        dest: dest.to_string(),
        source: e.into(),
    }
}

/// Mounts the container's cgroups at `dest`.
pub fn mount_cgroup(rfs: &Rootfs<'_>, dest: &str, opts: &MountOptions) -> Result<(), RootfsError> {
    let dfs = |e| RootfsError::Dest {
        dest: dest.to_string(),
        source: e,
    };
    let target = ensure(rfs.fd(), Path::new(dest), false).map_err(dfs)?;
    let flags = opts.flags - (MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_REC);
    if crate::cgroups::is_v2() {
        if rfs.cgroupns {
            mount(
                Some("cgroup2"),
                fd_path(&target).as_str(),
                Some("cgroup2"),
                flags,
                None::<&str>,
            )
            .map_err(err(dest, "mount cgroup2"))?;
        } else if let Some(dir) = rfs.cgroup_paths.v2_dir() {
            bind_ro(rfs, dir, &fd_path(&target), dest, flags)?;
        }
        return finish(rfs, dest, opts);
    }
    // v1: a tmpfs holding one bind mount per controller hierarchy.
    let data = "mode=755";
    mount(
        Some("tmpfs"),
        fd_path(&target).as_str(),
        Some("tmpfs"),
        flags - MsFlags::MS_RDONLY,
        Some(data),
    )
    .map_err(err(dest, "mount cgroup tmpfs"))?;
    // As runc: the hybrid host's unified hierarchy is not shown, and
    // `name=systemd` appears as `systemd`.
    for (name, dir) in rfs.cgroup_paths.v1_hierarchies() {
        let name = name.strip_prefix("name=").unwrap_or(name);
        let sub = format!("{}/{}", dest.trim_end_matches('/'), name);
        let fd = ensure(rfs.fd(), Path::new(&sub), false).map_err(|e| RootfsError::Dest {
            dest: sub.clone(),
            source: e,
        })?;
        bind_ro(rfs, dir, &fd_path(&fd), &sub, flags)?;
        if name.contains(',') {
            for alias in name.split(',') {
                let link = format!("{}/{}", dest.trim_end_matches('/'), alias);
                let parent =
                    ensure(rfs.fd(), Path::new(dest), false).map_err(|e| RootfsError::Dest {
                        dest: link.clone(),
                        source: e,
                    })?;
                let _ = nix::unistd::symlinkat(name, Some(parent.as_fd().as_raw_fd()), alias);
            }
        }
    }
    if flags.contains(MsFlags::MS_RDONLY) {
        remount(rfs, dest, flags, Path::new("/sys/fs/cgroup"))?;
    }
    finish(rfs, dest, opts)
}

fn bind_ro(
    rfs: &Rootfs<'_>,
    src: &Path,
    target: &str,
    dest: &str,
    flags: MsFlags,
) -> Result<(), RootfsError> {
    mount(
        Some(src),
        target,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(err(dest, "bind cgroup"))?;
    let extra = flags - MsFlags::MS_BIND;
    if !extra.is_empty() {
        remount(rfs, dest, extra, src)?;
    }
    Ok(())
}

use std::os::fd::AsRawFd;
