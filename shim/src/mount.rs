//! The container's root filesystem as containerd passes it in `Create`: a
//! list of mounts (an overlay from the snapshotter, or a bind) to stack on
//! `<bundle>/rootfs`, in the shim's (containerd's) mount namespace. The
//! runtime later makes its own private bind of that directory.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};

use containerd_shim::protos::types::mount::Mount;

/// The flags and the filesystem data of an fstab option list.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ParsedOptions {
    pub(crate) flags: MsFlags,
    /// Propagation flags, applied with a separate mount call.
    pub(crate) propagation: MsFlags,
    pub(crate) data: String,
}

/// Splits fstab-style options into mount flags and the data string.
pub(crate) fn parse_options(options: &[String]) -> ParsedOptions {
    let mut flags = MsFlags::empty();
    let mut propagation = MsFlags::empty();
    let mut data = Vec::new();
    for option in options {
        let (set, clear) = match option.as_str() {
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
            "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty()),
            "mand" => (MsFlags::MS_MANDLOCK, MsFlags::empty()),
            "nomand" => (MsFlags::empty(), MsFlags::MS_MANDLOCK),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
            "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME),
            "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
            "diratime" => (MsFlags::empty(), MsFlags::MS_NODIRATIME),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
            "norelatime" => (MsFlags::empty(), MsFlags::MS_RELATIME),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
            "nostrictatime" => (MsFlags::empty(), MsFlags::MS_STRICTATIME),
            "bind" => (MsFlags::MS_BIND, MsFlags::empty()),
            "rbind" => (MsFlags::MS_BIND | MsFlags::MS_REC, MsFlags::empty()),
            "remount" => (MsFlags::MS_REMOUNT, MsFlags::empty()),
            "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave" => {
                propagation |= match option.as_str() {
                    "private" => MsFlags::MS_PRIVATE,
                    "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
                    "shared" => MsFlags::MS_SHARED,
                    "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
                    "slave" => MsFlags::MS_SLAVE,
                    _ => MsFlags::MS_SLAVE | MsFlags::MS_REC,
                };
                continue;
            }
            _ => {
                data.push(option.as_str());
                continue;
            }
        };
        flags.insert(set);
        flags.remove(clear);
    }
    ParsedOptions {
        flags,
        propagation,
        data: data.join(","),
    }
}

/// Mounts each of `mounts` on `target`, in order. On failure, whatever was
/// mounted is unmounted again.
pub(crate) fn mount_rootfs(mounts: &[Mount], target: &Path) -> Result<()> {
    for (done, m) in mounts.iter().enumerate() {
        if let Err(e) = mount_one(m, target) {
            for _ in 0..done {
                let _ = umount2(target, MntFlags::MNT_DETACH);
            }
            return Err(e);
        }
    }
    Ok(())
}

fn mount_one(m: &Mount, target: &Path) -> Result<()> {
    let opts = parse_options(&m.options);
    let data = (!opts.data.is_empty()).then_some(opts.data.as_str());
    let fstype = (!m.type_.is_empty()).then_some(m.type_.as_str());
    let bind = opts.flags.contains(MsFlags::MS_BIND);
    // A read-only bind takes a bind, then a read-only remount.
    let first = if bind {
        opts.flags & (MsFlags::MS_BIND | MsFlags::MS_REC)
    } else {
        opts.flags
    };
    mount(Some(m.source.as_str()), target, fstype, first, data).with_context(|| {
        format!(
            "mount {} {} on {} ({})",
            m.type_,
            m.source,
            target.display(),
            m.options.join(",")
        )
    })?;
    let rest = opts.flags - (MsFlags::MS_BIND | MsFlags::MS_REC);
    if bind && !rest.is_empty() {
        mount(
            None::<&str>,
            target,
            None::<&str>,
            rest | MsFlags::MS_BIND | MsFlags::MS_REMOUNT,
            None::<&str>,
        )
        .with_context(|| format!("remount {} with {:?}", target.display(), rest))?;
    }
    if !opts.propagation.is_empty() {
        mount(
            None::<&str>,
            target,
            None::<&str>,
            opts.propagation,
            None::<&str>,
        )
        .with_context(|| format!("set the propagation of {}", target.display()))?;
    }
    Ok(())
}

/// Unmounts everything stacked on `target` (nothing if it is not a mount
/// point). A busy mount is retried for a second, then detached.
pub(crate) fn unmount_all(target: &Path) -> Result<()> {
    let mut busy = 0;
    for _ in 0..1000 {
        match umount2(target, MntFlags::empty()) {
            Ok(()) => {}
            Err(Errno::EINVAL | Errno::ENOENT) => return Ok(()),
            Err(Errno::EBUSY) if busy < 100 => {
                busy += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(Errno::EBUSY) => {
                umount2(target, MntFlags::MNT_DETACH)
                    .with_context(|| format!("detach {}", target.display()))?;
            }
            Err(e) => return Err(e).with_context(|| format!("unmount {}", target.display())),
        }
    }
    bail!(
        "unmount {}: still mounted after 1000 unmounts",
        target.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn overlay_options_become_data() {
        let p = parse_options(&opts(&[
            "index=off",
            "workdir=/w",
            "upperdir=/u",
            "lowerdir=/l1:/l2",
        ]));
        assert_eq!(p.flags, MsFlags::empty());
        assert_eq!(p.data, "index=off,workdir=/w,upperdir=/u,lowerdir=/l1:/l2");
    }

    #[test]
    fn bind_options_become_flags() {
        let p = parse_options(&opts(&["rbind", "ro", "nosuid", "rprivate"]));
        assert_eq!(
            p.flags,
            MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_RDONLY | MsFlags::MS_NOSUID
        );
        assert_eq!(p.propagation, MsFlags::MS_PRIVATE | MsFlags::MS_REC);
        assert!(p.data.is_empty());
        let p = parse_options(&opts(&["ro", "rw"]));
        assert_eq!(p.flags, MsFlags::empty());
    }
}
