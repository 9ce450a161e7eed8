//! Performing the `mounts` of the config inside the rootfs.

use std::fs;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};
use nix::sys::statvfs::{statvfs, FsFlags};

use super::options::{self, MountOptions};
use super::resolve::{ensure, open_in_root};
use super::{Rootfs, RootfsError};
use crate::spec::{IdMapping, Mount};
use crate::sys::{self, fd_path, RESOLVE_NO_SYMLINKS};

fn mount_err<'a>(m: &'a str, op: &'static str) -> impl FnOnce(nix::Error) -> RootfsError + 'a {
    move |e| RootfsError::Mount {
        op,
        dest: m.to_string(),
        source: e.into(),
    }
}

/// The host path a bind mount's `source` names (relative to the bundle),
/// and whether it is recursive; `None` for a mount that is no bind.
pub fn bind_source(m: &Mount, bundle: &Path) -> Option<(PathBuf, bool)> {
    let opts = options::parse(&m.options).ok()?;
    if !(opts.is_bind() || m.typ.as_deref() == Some("bind")) {
        return None;
    }
    let src = m.source.as_deref().unwrap_or_default();
    let path = if src.starts_with('/') {
        PathBuf::from(src)
    } else {
        bundle.join(src)
    };
    Some((path, opts.flags.contains(MsFlags::MS_REC)))
}

/// Whether `m` is an idmapped mount: `idmap`/`ridmap` among its options or
/// maps of its own (runtime-spec 1.1).
pub fn is_idmapped(m: &Mount) -> bool {
    !m.uid_mappings.is_empty()
        || !m.gid_mappings.is_empty()
        || options::parse(&m.options).is_ok_and(|o| o.idmap.is_some())
}

/// The sources of the config's bind mounts as detached trees, made by the
/// runtime before the clone ([`sys::clone_tree`]). An idmapped mount's
/// tree is idmapped here, where the runtime still has the privilege
/// (`mount_setattr(MOUNT_ATTR_IDMAP)` with a user namespace made for its
/// maps, or the container's maps when it has none of its own); its failure
/// is the error, with the mount's destination. Other binds are cloned only
/// when `userns` (the container gets a new user namespace, in which a
/// source only the host's root can reach could not be opened: runc opens
/// them before as well); `None` where a mount is no bind or that copy
/// failed (the init then tries the path itself and reports the error).
pub fn prepare_trees(
    mounts: &[Mount],
    bundle: &Path,
    container_maps: (&[IdMapping], &[IdMapping]),
    userns: bool,
) -> Result<Vec<Option<OwnedFd>>, (String, std::io::Error)> {
    // One user namespace per distinct pair of maps.
    let mut namespaces: Vec<(Vec<IdMapping>, Vec<IdMapping>, OwnedFd)> = Vec::new();
    let mut trees = Vec::with_capacity(mounts.len());
    for m in mounts {
        let Some((path, rec)) = bind_source(m, bundle) else {
            trees.push(None);
            continue;
        };
        let idmap = options::parse(&m.options).ok().and_then(|o| o.idmap);
        let own_maps = !m.uid_mappings.is_empty() || !m.gid_mappings.is_empty();
        if idmap.is_none() && !own_maps {
            trees.push(if userns {
                sys::clone_tree(&path, rec).ok()
            } else {
                None
            });
            continue;
        }
        let what = format!("idmapped mount {}", m.destination);
        let (uids, gids) = if !own_maps {
            container_maps
        } else {
            (&m.uid_mappings[..], &m.gid_mappings[..])
        };
        let known = namespaces
            .iter()
            .position(|(u, g, _)| u.as_slice() == uids && g.as_slice() == gids);
        let idx = match known {
            Some(i) => i,
            None => {
                let fd = crate::process::idmap::userns_fd(uids, gids)
                    .map_err(|e| (format!("{what}: make a user namespace for its maps"), e))?;
                namespaces.push((uids.to_vec(), gids.to_vec(), fd));
                namespaces.len() - 1
            }
        };
        let tree = sys::clone_tree(&path, rec)
            .map_err(|e| (format!("{what}: open {}", path.display()), e))?;
        let recursive = idmap == Some(true);
        sys::mount_setattr_idmap(tree.as_fd(), namespaces[idx].2.as_fd(), recursive).map_err(
            |e| {
                let fs = sys::fs_magic(tree.as_fd()).map_or_else(|_| "?".into(), fs_name);
                let why = match e.raw_os_error() {
                    Some(libc::EINVAL) => format!(
                        "{} is on {fs}, which cannot be idmapped (or is idmapped already)",
                        path.display()
                    ),
                    Some(libc::EPERM) => format!(
                        "idmapping {} ({fs}) needs CAP_SYS_ADMIN over its filesystem",
                        path.display()
                    ),
                    _ => format!("idmap {} ({fs})", path.display()),
                };
                (format!("{what}: {why}"), e)
            },
        )?;
        trees.push(Some(tree));
    }
    Ok(trees)
}

/// A filesystem's name from its `statfs` magic, for messages.
fn fs_name(magic: i64) -> String {
    match magic {
        0x6265_6572 => "sysfs".into(),
        0x9fa0 => "proc".into(),
        0x0102_1994 => "tmpfs".into(),
        0xef53 => "ext4".into(),
        0x794c_7630 => "overlay".into(),
        0x9123_683e => "btrfs".into(),
        0x5846_5342 => "xfs".into(),
        0x6969 => "nfs".into(),
        0x6573_5546 => "fuse".into(),
        0x8584_58f6 => "ramfs".into(),
        0x1cd1 => "devpts".into(),
        0x6367_7270 => "cgroup2".into(),
        m => format!("a filesystem of type {m:#x}"),
    }
}

/// Performs one config mount; `tree` is its source already cloned by the
/// runtime ([`prepare_trees`]).
pub fn mount_one(rfs: &Rootfs<'_>, m: &Mount, tree: Option<&OwnedFd>) -> Result<(), RootfsError> {
    let dest = if m.destination.starts_with('/') {
        m.destination.clone()
    } else {
        format!("/{}", m.destination)
    };
    let opts = options::parse(&m.options).map_err(|e| RootfsError::Option {
        dest: dest.clone(),
        source: e,
    })?;
    let typ = m.typ.as_deref().unwrap_or("");
    if opts.is_bind() || typ == "bind" {
        check_proc_dest(rfs, m, &dest)?;
        return bind(rfs, m, &dest, &opts, tree);
    }
    if !matches!(
        typ,
        "proc" | "sysfs" | "mqueue" | "tmpfs" | "cgroup" | "cgroup2"
    ) {
        check_proc_dest(rfs, m, &dest)?;
    }
    match typ {
        "cgroup" | "cgroup2" => return super::cgroupfs::mount_cgroup(rfs, &dest, &opts),
        "proc" | "sysfs" => check_real_dir(rfs, typ, &dest)?,
        _ => {}
    }
    // A tmpfs over a directory of the image keeps that directory's mode
    // unless the options set one (runc does the same; images rely on it,
    // e.g. a 0755 /tmp that a non-root user must not write).
    let existing_mode = (typ == "tmpfs")
        .then(|| open_in_root(rfs.fd(), Path::new(&dest), 0).ok())
        .flatten()
        .and_then(|fd| sys::fstat(fd.as_fd()).ok())
        .filter(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR)
        .map(|st| st.st_mode & 0o7777);
    let target = ensure(rfs.fd(), Path::new(&dest), false).map_err(|e| RootfsError::Dest {
        dest: dest.clone(),
        source: e,
    })?;
    let mut flags = opts.flags - MsFlags::MS_REMOUNT;
    if defers_readonly(typ, &dest) {
        // Read-only only at the end (remount_deferred_readonly): /dev still
        // gets its devices and submounts, a tmpfs its mode.
        flags -= MsFlags::MS_RDONLY;
    }
    let tmpfs_data = existing_mode.map(|mode| {
        if opts.data.is_empty() {
            format!("mode={mode:04o}")
        } else {
            format!("mode={mode:04o},{}", opts.data)
        }
    });
    let data = tmpfs_data
        .as_deref()
        .or((!opts.data.is_empty()).then_some(opts.data.as_str()));
    let res = mount(
        Some(m.source.as_deref().unwrap_or(typ)),
        fd_path(&target).as_str(),
        Some(typ),
        flags,
        data,
    );
    match res {
        Err(nix::Error::EPERM) if typ == "sysfs" => {
            // Without its own network namespace the kernel refuses a new
            // sysfs; bind the host's, as runc does.
            let fake = Mount {
                destination: dest.clone(),
                typ: Some("bind".into()),
                source: Some("/sys".into()),
                options: m
                    .options
                    .iter()
                    .cloned()
                    .chain(["rbind".to_string()])
                    .collect(),
                ..Mount::default()
            };
            let o = options::parse(&fake.options).map_err(|e| RootfsError::Option {
                dest: dest.clone(),
                source: e,
            })?;
            return bind(rfs, &fake, &dest, &o, None);
        }
        r => r.map_err(|e| RootfsError::Mount {
            op: "mount",
            dest: format!("{typ} on {dest} (data {:?})", opts.data),
            source: e.into(),
        })?,
    }
    finish(rfs, &dest, &opts)
}

/// Whether a mount of type `typ` at `dest` is made read-only only after
/// the rootfs is complete (runc: every tmpfs, and `/dev`).
fn defers_readonly(typ: &str, dest: &str) -> bool {
    typ == "tmpfs" || dest.trim_end_matches('/') == "/dev"
}

/// After the root is entered: remounts read-only the mounts whose `ro`
/// was deferred (see [`defers_readonly`]), as runc's `finalizeRootfs`.
pub fn remount_deferred_readonly(spec: &crate::spec::Spec) -> Result<(), RootfsError> {
    for m in &spec.mounts {
        let Ok(opts) = options::parse(&m.options) else {
            continue;
        };
        let typ = m.typ.as_deref().unwrap_or("");
        let dest = if m.destination.starts_with('/') {
            m.destination.clone()
        } else {
            format!("/{}", m.destination)
        };
        if opts.is_bind()
            || typ == "bind"
            || !opts.flags.contains(MsFlags::MS_RDONLY)
            || !defers_readonly(typ, &dest)
        {
            continue;
        }
        let flags = (opts.flags - MsFlags::MS_REMOUNT)
            | MsFlags::MS_BIND
            | MsFlags::MS_REMOUNT
            | MsFlags::MS_RDONLY;
        mount(
            None::<&str>,
            dest.as_str(),
            None::<&str>,
            flags,
            None::<&str>,
        )
        .map_err(mount_err(&dest, "remount read-only"))?;
    }
    Ok(())
}

/// `/proc` and `/sys` must be mounted on real directories, never through a
/// symlink (CVE-2023-27561).
/// The only places under `/proc` a mount may cover (runc's list: files
/// that lxcfs emulates).
const PROC_MOUNTS_ALLOWED: [&str; 10] = [
    "proc/cpuinfo",
    "proc/diskstats",
    "proc/meminfo",
    "proc/stat",
    "proc/swaps",
    "proc/uptime",
    "proc/loadavg",
    "proc/slabinfo",
    "proc/net/dev",
    "proc/sys/kernel/ns_last_pid",
];

/// runc's `checkProcMount`: nothing may be mounted inside the container's
/// `/proc` but the files of [`PROC_MOUNTS_ALLOWED`], and `/proc` itself
/// only from a procfs. A mount there would shadow what the runtime and the
/// kernel interfaces write to (sysctls, LSM attributes: the CVE-2025-52881
/// class). The destination is checked where it resolves inside the rootfs,
/// symlinks followed, as the mount would go.
fn check_proc_dest(rfs: &Rootfs<'_>, m: &Mount, dest: &str) -> Result<(), RootfsError> {
    let rel = where_in_root(rfs, &lexical(Path::new(dest)), &mut 40);
    let source = m.source.clone().unwrap_or_default();
    let err = |what: &str| RootfsError::ProcMount {
        source_path: source.clone(),
        dest: dest.to_owned(),
        message: format!(
            "{:?} cannot be mounted because it {what}",
            rfs.path.join(&rel)
        ),
    };
    if rel == Path::new("proc") {
        return if sys::is_fs(Path::new(&source), crate::procfs::PROC_SUPER_MAGIC) {
            Ok(())
        } else {
            Err(err("is not of type proc"))
        };
    }
    if rel.starts_with("proc") && !PROC_MOUNTS_ALLOWED.iter().any(|a| rel == Path::new(a)) {
        return Err(err("is inside /proc"));
    }
    Ok(())
}

/// `path` with `.` and `..` resolved lexically (`..` clamped at the root,
/// as the kernel does), relative to the root.
fn lexical(path: &Path) -> PathBuf {
    path.components().fold(PathBuf::new(), |mut p, c| {
        match c {
            std::path::Component::Normal(n) => p.push(n),
            std::path::Component::ParentDir => {
                p.pop();
            }
            _ => {}
        }
        p
    })
}

/// Where `rel` (relative to the root, no `..`) resolves inside the rootfs,
/// symlinks followed (at most 40 in all, as the kernel), also when it does not
/// exist yet: a dangling symlink (`/etc/x -> /proc/sys/...`) is followed
/// to where the mount would be made.
fn where_in_root(rfs: &Rootfs<'_>, rel: &Path, links: &mut usize) -> PathBuf {
    if let Ok(fd) = open_in_root(rfs.fd(), rel, 0) {
        let root = std::fs::read_link(fd_path(rfs.fd())).unwrap_or_default();
        let at = std::fs::read_link(fd_path(&fd)).unwrap_or_default();
        return at
            .strip_prefix(&root)
            .map(Path::to_path_buf)
            .unwrap_or_default();
    }
    let (Some(parent), Some(name)) = (rel.parent(), rel.file_name()) else {
        return rel.to_path_buf();
    };
    let parent = where_in_root(rfs, parent, links);
    let here = parent.join(name);
    match nix::fcntl::readlinkat(Some(std::os::fd::AsRawFd::as_raw_fd(&rfs.fd())), &here) {
        Ok(target) if *links > 0 => {
            *links -= 1;
            let target = Path::new(&target);
            let next = if target.is_absolute() {
                lexical(target)
            } else {
                lexical(&parent.join(target))
            };
            where_in_root(rfs, &next, links)
        }
        _ => here,
    }
}

fn check_real_dir(rfs: &Rootfs<'_>, typ: &str, dest: &str) -> Result<(), RootfsError> {
    match open_in_root(rfs.fd(), Path::new(dest), RESOLVE_NO_SYMLINKS) {
        Ok(fd) => {
            let st = sys::fstat(fd.as_fd()).map_err(|e| RootfsError::Dest {
                dest: dest.to_string(),
                source: e,
            })?;
            if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
                return Err(RootfsError::NotDir(dest.to_string()));
            }
            Ok(())
        }
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => Err(RootfsError::Symlink {
            typ: typ.to_string(),
            dest: dest.to_string(),
        }),
        Err(e) => Err(RootfsError::Dest {
            dest: dest.to_string(),
            source: e,
        }),
    }
}

fn bind(
    rfs: &Rootfs<'_>,
    m: &Mount,
    dest: &str,
    opts: &MountOptions,
    tree: Option<&OwnedFd>,
) -> Result<(), RootfsError> {
    let src_path = bind_source(m, rfs.bundle).map_or_else(PathBuf::new, |(p, _)| p);
    let opened;
    let src_fd = match tree {
        Some(t) => t,
        None => {
            opened = fs::File::open(&src_path)
                .or_else(|_| {
                    fs::OpenOptions::new()
                        .custom_flags(libc::O_PATH)
                        .read(true)
                        .open(&src_path)
                })
                .map(OwnedFd::from)
                .map_err(|e| RootfsError::Source {
                    source_path: src_path.clone(),
                    source: e,
                })?;
            &opened
        }
    };
    let is_dir =
        sys::fstat(src_fd.as_fd()).is_ok_and(|s| s.st_mode & libc::S_IFMT == libc::S_IFDIR);
    let target = ensure(rfs.fd(), Path::new(dest), !is_dir).map_err(|e| RootfsError::Dest {
        dest: dest.to_string(),
        source: e,
    })?;
    if tree.is_some() {
        sys::attach_tree(src_fd.as_fd(), target.as_fd()).map_err(|e| RootfsError::Mount {
            op: "attach bind mount",
            dest: dest.to_string(),
            source: e,
        })?;
    } else {
        let rec = opts.flags & MsFlags::MS_REC;
        mount(
            Some(fd_path(src_fd).as_str()),
            fd_path(&target).as_str(),
            None::<&str>,
            MsFlags::MS_BIND | rec,
            None::<&str>,
        )
        .map_err(mount_err(dest, "bind mount"))?;
    }
    let extra = opts.flags - (MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
    if !extra.is_empty() {
        remount(rfs, dest, extra, &src_path)?;
    }
    finish(rfs, dest, opts)
}

/// Remounts a bind mount with `flags`; when the kernel refuses to clear a
/// flag the source mount has locked (user namespaces), keeps those flags.
pub(super) fn remount(
    rfs: &Rootfs<'_>,
    dest: &str,
    flags: MsFlags,
    src: &Path,
) -> Result<(), RootfsError> {
    let fd = reopen(rfs, dest)?;
    let base = MsFlags::MS_BIND | MsFlags::MS_REMOUNT;
    match mount(
        None::<&str>,
        fd_path(&fd).as_str(),
        None::<&str>,
        base | flags,
        None::<&str>,
    ) {
        Err(nix::Error::EPERM) => {
            let locked = locked_flags(src);
            mount(
                None::<&str>,
                fd_path(&fd).as_str(),
                None::<&str>,
                base | flags | locked,
                None::<&str>,
            )
            .map_err(mount_err(dest, "remount"))
        }
        r => r.map_err(mount_err(dest, "remount")),
    }
}

/// The flags of the mount holding `path` that an unprivileged remount may not clear.
pub(super) fn locked_flags(path: &Path) -> MsFlags {
    let Ok(st) = statvfs(path) else {
        return MsFlags::empty();
    };
    let f = st.flags();
    let mut out = MsFlags::empty();
    for (fv, ms) in [
        (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if f.contains(fv) {
            out |= ms;
        }
    }
    out
}

/// Opens `dest` again so the descriptor refers to the mount now on top.
pub(super) fn reopen(rfs: &Rootfs<'_>, dest: &str) -> Result<OwnedFd, RootfsError> {
    open_in_root(rfs.fd(), Path::new(dest), 0).map_err(|e| RootfsError::Dest {
        dest: dest.to_string(),
        source: e,
    })
}

/// Applies propagation and recursive attributes after a mount.
pub(super) fn finish(rfs: &Rootfs<'_>, dest: &str, opts: &MountOptions) -> Result<(), RootfsError> {
    if opts.propagation.is_empty() && opts.rec_set == 0 && opts.rec_clear == 0 {
        return Ok(());
    }
    let fd = reopen(rfs, dest)?;
    for p in &opts.propagation {
        mount(
            None::<&str>,
            fd_path(&fd).as_str(),
            None::<&str>,
            *p,
            None::<&str>,
        )
        .map_err(mount_err(dest, "set propagation"))?;
    }
    if opts.rec_set != 0 || opts.rec_clear != 0 {
        sys::mount_setattr(fd.as_fd(), opts.rec_set, opts.rec_clear, true).map_err(|e| {
            RootfsError::Mount {
                op: "set recursive attributes",
                dest: dest.to_string(),
                source: e,
            }
        })?;
    }
    Ok(())
}

use std::os::unix::fs::OpenOptionsExt;
