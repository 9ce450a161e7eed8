//! The container's root filesystem: propagation, the config's mounts,
//! `/dev`, masked and read-only paths, `pivot_root` and the read-only root.
//!
//! Everything before the pivot resolves paths inside the rootfs with
//! `openat2(RESOLVE_IN_ROOT)` and mounts through `/proc/self/fd/N`, so no
//! symlink in the rootfs can redirect a mount to the host.

mod cgroupfs;
mod devices;
pub mod mounts;
pub mod options;
mod paths;
pub mod resolve;

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};

use crate::spec::Spec;

/// Errors from setting up the rootfs.
#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    /// A mount syscall failed.
    #[error("{op} {dest}: {source}")]
    Mount {
        /// What was done.
        op: &'static str,
        /// Destination in the container.
        dest: String,
        /// Cause.
        source: io::Error,
    },
    /// A destination could not be resolved or created.
    #[error("mount destination {dest}: {source}")]
    Dest {
        /// Destination in the container.
        dest: String,
        /// Cause.
        source: io::Error,
    },
    /// A bind source could not be opened.
    #[error("mount source {source_path}: {source}")]
    Source {
        /// The host path.
        source_path: PathBuf,
        /// Cause.
        source: io::Error,
    },
    /// A bad mount option.
    #[error("mount {dest}: {source}")]
    Option {
        /// Destination.
        dest: String,
        /// Cause.
        source: options::UnsupportedOption,
    },
    /// `/proc` or `/sys` reached through a symlink (runc's words).
    #[error("error mounting {typ:?} to rootfs at {dest:?}: filesystem {typ:?} must be mounted on ordinary directory")]
    Symlink {
        /// `proc` or `sysfs`.
        typ: String,
        /// The destination.
        dest: String,
    },
    /// A mount inside `/proc` (runc's words).
    #[error("error mounting {source_path:?} to rootfs at {dest:?}: {message}")]
    ProcMount {
        /// The mount's source.
        source_path: String,
        /// The destination in the container.
        dest: String,
        /// What is wrong.
        message: String,
    },
    /// `/proc` or `/sys` on something not a directory.
    #[error("mount destination {0} is not a directory")]
    NotDir(String),
    /// A device node.
    #[error("create device {path}: {source}")]
    Device {
        /// Path in the container.
        path: String,
        /// Cause.
        source: io::Error,
    },
    /// `/dev/null` is not the null device.
    #[error("/dev/null in the container is not the null device (char 1:3); refusing to use it to mask paths")]
    FakeNull,
    /// A path disappeared between two steps.
    #[error("{0} vanished during set-up")]
    Vanished(String),
    /// Opening the rootfs.
    #[error("open rootfs {path}: {source}")]
    Open {
        /// The rootfs.
        path: PathBuf,
        /// Cause.
        source: io::Error,
    },
    /// An unknown propagation mode.
    #[error("rootfsPropagation={0} is not supported")]
    Propagation(String),
    /// `pivot_root` or its fallback.
    #[error("{op}: {source}")]
    Pivot {
        /// The step.
        op: &'static str,
        /// Cause.
        source: nix::Error,
    },
}

/// Makes the mount that holds `path` private when it is shared (runc's
/// `rootfsParentMountPrivate`): the rootfs bind made on it then stays in
/// this namespace, and `pivot_root` accepts it.
fn parent_mount_private(path: &Path) -> Result<(), RootfsError> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let Some((point, shared)) = holding_mount(&info, path) else {
        return Ok(());
    };
    if shared {
        mount(
            None::<&str>,
            Path::new(&point),
            None::<&str>,
            MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .map_err(pivot_err("make the rootfs's parent mount private"))?;
    }
    Ok(())
}

/// The mount point (the last, topmost, of the longest match) holding
/// `path` in `mountinfo` text, and whether it is shared.
fn holding_mount(mountinfo: &str, path: &Path) -> Option<(String, bool)> {
    let mut best: Option<(String, bool)> = None;
    for line in mountinfo.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let Some(point) = fields.get(4).map(|p| paths::unescape(p)) else {
            continue;
        };
        if !path.starts_with(&point) {
            continue;
        }
        let shared = fields
            .iter()
            .skip(6)
            .take_while(|f| **f != "-")
            .any(|f| f.starts_with("shared:"));
        if best.as_ref().is_none_or(|(b, _)| point.len() >= b.len()) {
            best = Some((point, shared));
        }
    }
    best
}

/// How many mounts are stacked at `path` in the caller's mount namespace.
pub fn mounts_at(path: &Path) -> usize {
    let want = path.to_string_lossy().replace(' ', "\\040");
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.split(' ').nth(4) == Some(want.as_str()))
        .count()
}

/// For a container without a mount namespace, whose mounts live in the
/// caller's: detaches what corten stacked on its rootfs (the rootfs bind
/// and everything mounted under it) until `base` mounts are left, the
/// number there was before the container. runc leaves them all behind.
pub fn unmount_to(path: &Path, base: usize) {
    let mut left = mounts_at(path);
    while left > base {
        if umount2(path, MntFlags::MNT_DETACH).is_err() {
            break;
        }
        left -= 1;
    }
}

/// The flags of a `rootfsPropagation` value.
pub fn propagation_flag(name: &str) -> Result<MsFlags, RootfsError> {
    options::propagation(name).ok_or_else(|| RootfsError::Propagation(name.to_string()))
}

/// The rootfs being prepared, and what its set-up needs to know.
#[derive(Debug)]
pub struct Rootfs<'a> {
    /// Host path of the rootfs.
    pub path: PathBuf,
    root: OwnedFd,
    /// The bundle (relative bind sources resolve against it).
    pub bundle: &'a Path,
    /// The container is in a user namespace other than the host's (its
    /// own, or its caller's): device nodes are bound, not made.
    pub userns: bool,
    /// The container has its own cgroup namespace.
    pub cgroupns: bool,
    /// The container's cgroup directories.
    pub cgroup_paths: &'a crate::cgroups::Cgroup,
    /// Bind mount sources cloned by the runtime, by mount index (see
    /// [`mounts::prepare_trees`]); empty when there are none.
    pub bind_trees: &'a [Option<OwnedFd>],
    /// The container has a mount namespace; without one (runc allows it)
    /// everything is mounted in the caller's namespace and the root is
    /// entered with `chroot`.
    pub own_mnt_ns: bool,
}

impl Rootfs<'_> {
    /// The descriptor of the rootfs (the bind mount of it on itself).
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.root.as_fd()
    }
}

fn pivot_err(op: &'static str) -> impl FnOnce(nix::Error) -> RootfsError {
    move |source| RootfsError::Pivot { op, source }
}

impl<'a> Rootfs<'a> {
    /// Makes the mount tree private to the container and binds the rootfs
    /// onto itself so it can become the root.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        path: &Path,
        bundle: &'a Path,
        userns: bool,
        cgroupns: bool,
        cgroup_paths: &'a crate::cgroups::Cgroup,
        own_mnt_ns: bool,
        root_propagation: Option<&str>,
        bind_trees: &'a [Option<OwnedFd>],
    ) -> Result<Rootfs<'a>, RootfsError> {
        if own_mnt_ns {
            // The whole tree rslave (host mounts reach the container, none
            // goes back); the `rootfsPropagation` given is applied on the
            // new root after the pivot. A shared one (`rshared`, as
            // containerd's CRI asks for Kubernetes' Bidirectional volumes)
            // is applied here instead, as runc applies it, so that the
            // host's peer groups stay: a `rshared` volume's mounts made
            // inside then reach the host. (runc applies every value here;
            // for `slave` and `private` that loses what the spec asks,
            // see conformance/README.)
            let shared = match root_propagation.map(propagation_flag).transpose()? {
                Some(f) if f.contains(MsFlags::MS_SHARED) => Some(f),
                _ => None,
            };
            let flags = shared.unwrap_or(MsFlags::MS_SLAVE | MsFlags::MS_REC);
            mount(None::<&str>, "/", None::<&str>, flags, None::<&str>)
                .map_err(pivot_err("set the propagation of /"))?;
            if shared.is_some() {
                // The bind of the rootfs below must not reach the host's
                // peers (runc's rootfsParentMountPrivate).
                parent_mount_private(path)?;
            }
        }
        mount(
            Some(path),
            path,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(pivot_err("bind rootfs"))?;
        if !own_mnt_ns {
            // In the caller's namespace: only this bind (and what is mounted
            // on it) is made private, so no container mount reaches the
            // host's peers. runc makes the host's whole `/` rslave instead.
            mount(
                None::<&str>,
                path,
                None::<&str>,
                MsFlags::MS_PRIVATE | MsFlags::MS_REC,
                None::<&str>,
            )
            .map_err(pivot_err("make the rootfs bind private"))?;
        }
        let root = File::open(path)
            .map(OwnedFd::from)
            .map_err(|source| RootfsError::Open {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(Rootfs {
            path: path.to_path_buf(),
            root,
            bundle,
            userns,
            cgroupns,
            cgroup_paths,
            bind_trees,
            own_mnt_ns,
        })
    }

    /// Performs the config's mounts and creates `/dev`.
    pub fn mount_all(&self, spec: &Spec) -> Result<(), RootfsError> {
        for (i, m) in spec.mounts.iter().enumerate() {
            let tree = self.bind_trees.get(i).and_then(Option::as_ref);
            mounts::mount_one(self, m, tree)?;
        }
        let dev_bound = spec.mounts.iter().any(|m| {
            m.destination.trim_end_matches('/') == "/dev"
                && (m.typ.as_deref() == Some("bind")
                    || m.options.iter().any(|o| o == "bind" || o == "rbind"))
        });
        devices::create_all(self, &spec.linux().devices, !dev_bound)
    }

    /// Applies read-only and masked paths.
    pub fn protect_paths(&self, spec: &Spec) -> Result<(), RootfsError> {
        let l = spec.linux();
        paths::readonly(self, &l.readonly_paths)?;
        paths::mask(self, &l.masked_paths)
    }

    /// Makes the rootfs the root: `pivot_root` (or `MS_MOVE` + `chroot` with
    /// `no_pivot`), then the read-only root and the propagation.
    pub fn enter(self, spec: &Spec, no_pivot: bool) -> Result<(), RootfsError> {
        nix::unistd::fchdir(self.root.as_raw_fd()).map_err(pivot_err("chdir to rootfs"))?;
        drop(self.root);
        if !self.own_mnt_ns {
            // No mount namespace: the root can only be changed with chroot.
            nix::unistd::chroot(".").map_err(pivot_err("chroot"))?;
        } else if no_pivot {
            paths::hide_host_proc_and_sys(&self.path)?;
            mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>)
                .map_err(pivot_err("move rootfs to /"))?;
            nix::unistd::chroot(".").map_err(pivot_err("chroot"))?;
        } else {
            // The old root, held open to come back to it after the pivot.
            let old_root = File::open("/").map_err(|source| RootfsError::Open {
                path: PathBuf::from("/"),
                source,
            })?;
            nix::unistd::pivot_root(".", ".").map_err(pivot_err("pivot_root"))?;
            // The old root is stacked on the new one: made rslave (its tree
            // only: the new root is no longer below it), so that detaching
            // it cannot propagate to the host even where
            // `rootfsPropagation` kept the host's peer groups, then
            // detached, as runc does. "." must be the old root itself, not
            // the new root under it: hence the fchdir.
            nix::unistd::fchdir(old_root.as_raw_fd())
                .map_err(pivot_err("fchdir to the old root"))?;
            drop(old_root);
            mount(
                None::<&str>,
                ".",
                None::<&str>,
                MsFlags::MS_SLAVE | MsFlags::MS_REC,
                None::<&str>,
            )
            .map_err(pivot_err("make the old root rslave"))?;
            umount2(".", MntFlags::MNT_DETACH).map_err(pivot_err("unmount old root"))?;
        }
        nix::unistd::chdir("/").map_err(pivot_err("chdir /"))?;
        mounts::remount_deferred_readonly(spec)?;
        if spec.root.as_ref().is_some_and(|r| r.readonly) {
            let locked = mounts::locked_flags(Path::new("/")) - MsFlags::MS_RDONLY;
            mount(
                None::<&str>,
                "/",
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | locked,
                None::<&str>,
            )
            .map_err(pivot_err("remount root read-only"))?;
        }
        if let Some(p) = spec
            .linux()
            .rootfs_propagation
            .as_ref()
            .filter(|_| self.own_mnt_ns)
        {
            let mut flags = propagation_flag(p)?;
            if flags.contains(MsFlags::MS_SHARED) {
                // Applied recursively before the mounts (see `new`), each of
                // which then got its own propagation: recursively again here,
                // a `private` volume would become shared (a peer group of its
                // own) and a `slave` one shared and slave, where runc leaves
                // them as asked. The root itself is made shared, as the spec
                // asks (runc 1.1 leaves it private).
                flags.remove(MsFlags::MS_REC);
            }
            mount(None::<&str>, "/", None::<&str>, flags, None::<&str>)
                .map_err(pivot_err("set rootfs propagation"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mount_holding_a_path_and_whether_it_is_shared() {
        let info = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
30 22 0:5 / /tmp rw shared:7 - tmpfs tmpfs rw
31 30 0:6 / /tmp/bundle\\040x rw master:7 - tmpfs tmpfs rw
32 30 0:7 / /tmp/b rw - tmpfs tmpfs rw
";
        let h = |p: &str| holding_mount(info, Path::new(p));
        assert_eq!(h("/var/lib/x"), Some(("/".into(), true)));
        assert_eq!(h("/tmp/c/rootfs"), Some(("/tmp".into(), true)));
        assert_eq!(
            h("/tmp/bundle x/rootfs"),
            Some(("/tmp/bundle x".into(), false))
        );
        // A path component, not a prefix of the name.
        assert_eq!(h("/tmp/bb/rootfs"), Some(("/tmp".into(), true)));
        assert_eq!(h("/tmp/b/rootfs"), Some(("/tmp/b".into(), false)));
    }
}
