//! `/dev`: the default devices, `linux.devices`, and the standard symlinks.

use std::os::fd::{AsFd, AsRawFd};
use std::path::Path;

use nix::mount::{mount, MsFlags};
use nix::sys::stat::{makedev, Mode, SFlag};

use super::resolve::{ensure, mkdir_all};
use super::{Rootfs, RootfsError};
use crate::spec::Device;
use crate::sys::{self, fd_path};

/// runc's default devices: path, major, minor (all `c`, mode 0666).
const DEFAULT_DEVICES: [(&str, i64, i64); 6] = [
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/tty", 5, 0),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
];

const SYMLINKS: [(&str, &str); 5] = [
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
    ("core", "/proc/kcore"),
];

fn dev_err(path: &str) -> impl FnOnce(std::io::Error) -> RootfsError + '_ {
    move |source| RootfsError::Device {
        path: path.to_string(),
        source,
    }
}

/// Creates the default devices (unless `/dev` is bound from outside), the
/// config's devices and the `/dev` symlinks.
pub fn create_all(rfs: &Rootfs<'_>, devices: &[Device], own_dev: bool) -> Result<(), RootfsError> {
    if own_dev {
        for (path, major, minor) in DEFAULT_DEVICES {
            if devices.iter().any(|d| d.path == path) {
                continue;
            }
            let d = Device {
                typ: "c".into(),
                path: path.into(),
                major,
                minor,
                file_mode: Some(0o666),
                uid: Some(0),
                gid: Some(0),
            };
            create(rfs, &d)?;
        }
    }
    for d in devices {
        create(rfs, d)?;
    }
    if own_dev {
        symlinks(rfs)?;
    }
    Ok(())
}

fn symlinks(rfs: &Rootfs<'_>) -> Result<(), RootfsError> {
    let dev = mkdir_all(rfs.fd(), Path::new("/dev")).map_err(dev_err("/dev"))?;
    for (name, target) in SYMLINKS {
        match nix::unistd::symlinkat(target, Some(dev.as_raw_fd()), name) {
            Ok(()) | Err(nix::Error::EEXIST) => {}
            Err(e) => return Err(dev_err(name)(e.into())),
        }
    }
    // /dev/ptmx must be the container's devpts instance.
    let _ = nix::unistd::unlinkat(
        Some(dev.as_raw_fd()),
        "ptmx",
        nix::unistd::UnlinkatFlags::NoRemoveDir,
    );
    nix::unistd::symlinkat("pts/ptmx", Some(dev.as_raw_fd()), "ptmx")
        .map_err(|e| dev_err("/dev/ptmx")(e.into()))
}

fn create(rfs: &Rootfs<'_>, d: &Device) -> Result<(), RootfsError> {
    let rel = Path::new(&d.path);
    let parent =
        mkdir_all(rfs.fd(), rel.parent().unwrap_or(Path::new("/dev"))).map_err(dev_err(&d.path))?;
    let name = rel
        .file_name()
        .ok_or_else(|| dev_err(&d.path)(std::io::Error::from_raw_os_error(libc::EINVAL)))?;
    let kind = match d.typ.as_str() {
        "b" => SFlag::S_IFBLK,
        "p" => SFlag::S_IFIFO,
        _ => SFlag::S_IFCHR,
    };
    let major = u64::try_from(d.major).unwrap_or(0);
    let minor = u64::try_from(d.minor).unwrap_or(0);
    let mode = d.file_mode.unwrap_or(0o666) & 0o7777;
    // Replace whatever is there (a file from the image, a stale node).
    let _ = nix::unistd::unlinkat(
        Some(parent.as_raw_fd()),
        name,
        nix::unistd::UnlinkatFlags::NoRemoveDir,
    );
    if rfs.userns {
        // mknod is not allowed in a user namespace: bind the host's node.
        let target = ensure(rfs.fd(), rel, true).map_err(dev_err(&d.path))?;
        mount(
            Some(d.path.as_str()),
            fd_path(&target).as_str(),
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| dev_err(&d.path)(e.into()))?;
        return Ok(());
    }
    sys::mknodat(
        parent.as_fd(),
        Path::new(name),
        kind.bits() | mode,
        makedev(major, minor),
    )
    .map_err(dev_err(&d.path))?;
    let fd = sys::openat(
        parent.as_fd(),
        Path::new(name),
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_NOFOLLOW | nix::fcntl::OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(dev_err(&d.path))?;
    let p = fd_path(&fd);
    nix::sys::stat::fchmodat(
        None,
        p.as_str(),
        Mode::from_bits_truncate(mode),
        nix::sys::stat::FchmodatFlags::FollowSymlink,
    )
    .map_err(|e| dev_err(&d.path)(e.into()))?;
    nix::unistd::chown(
        p.as_str(),
        Some(nix::unistd::Uid::from_raw(d.uid.unwrap_or(0))),
        Some(nix::unistd::Gid::from_raw(d.gid.unwrap_or(0))),
    )
    .map_err(|e| dev_err(&d.path)(e.into()))
}
