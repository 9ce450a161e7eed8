//! Translation of fstab-style mount options (`mounts[].options`) into mount
//! flags, propagation changes, recursive attributes and filesystem data.

use nix::mount::MsFlags;

use crate::sys::mount_attr;

/// A mount option corten does not support.
#[derive(Debug, thiserror::Error)]
#[error("mount option {0:?} is not supported")]
pub struct UnsupportedOption(pub String);

/// The parsed options of one mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountOptions {
    /// Flags for `mount(2)`.
    pub flags: MsFlags,
    /// Propagation changes, applied after the mount in order.
    pub propagation: Vec<MsFlags>,
    /// Recursive attributes to set (`rro`, `rnosuid`, …).
    pub rec_set: u64,
    /// Recursive attributes to clear (`rrw`, `rsuid`, …).
    pub rec_clear: u64,
    /// Filesystem-specific data, comma-joined.
    pub data: String,
    /// `idmap` (`Some(false)`) or `ridmap` (`Some(true)`, every submount
    /// of an `rbind` idmapped too).
    pub idmap: Option<bool>,
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            flags: MsFlags::empty(),
            propagation: Vec::new(),
            rec_set: 0,
            rec_clear: 0,
            data: String::new(),
            idmap: None,
        }
    }
}

impl MountOptions {
    /// Whether this is a bind mount.
    pub fn is_bind(&self) -> bool {
        self.flags.contains(MsFlags::MS_BIND)
    }
}

fn flag(opt: &str) -> Option<(bool, MsFlags)> {
    Some(match opt {
        "ro" => (false, MsFlags::MS_RDONLY),
        "rw" => (true, MsFlags::MS_RDONLY),
        "nosuid" => (false, MsFlags::MS_NOSUID),
        "suid" => (true, MsFlags::MS_NOSUID),
        "nodev" => (false, MsFlags::MS_NODEV),
        "dev" => (true, MsFlags::MS_NODEV),
        "noexec" => (false, MsFlags::MS_NOEXEC),
        "exec" => (true, MsFlags::MS_NOEXEC),
        "sync" => (false, MsFlags::MS_SYNCHRONOUS),
        "async" => (true, MsFlags::MS_SYNCHRONOUS),
        "dirsync" => (false, MsFlags::MS_DIRSYNC),
        "remount" => (false, MsFlags::MS_REMOUNT),
        "mand" => (false, MsFlags::MS_MANDLOCK),
        "nomand" => (true, MsFlags::MS_MANDLOCK),
        "noatime" => (false, MsFlags::MS_NOATIME),
        "atime" => (true, MsFlags::MS_NOATIME),
        "nodiratime" => (false, MsFlags::MS_NODIRATIME),
        "diratime" => (true, MsFlags::MS_NODIRATIME),
        "relatime" => (false, MsFlags::MS_RELATIME),
        "norelatime" => (true, MsFlags::MS_RELATIME),
        "strictatime" => (false, MsFlags::MS_STRICTATIME),
        "nostrictatime" => (true, MsFlags::MS_STRICTATIME),
        "bind" => (false, MsFlags::MS_BIND),
        "rbind" => (false, MsFlags::MS_BIND.union(MsFlags::MS_REC)),
        "silent" => (false, MsFlags::MS_SILENT),
        "loud" => (true, MsFlags::MS_SILENT),
        _ => return None,
    })
}

/// Maps a propagation name (`rprivate`, `shared`, …) to its flags.
pub fn propagation(opt: &str) -> Option<MsFlags> {
    Some(match opt {
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
        _ => return None,
    })
}

fn recursive(opt: &str) -> Option<(bool, u64)> {
    use mount_attr::*;
    Some(match opt {
        "rro" => (false, RDONLY),
        "rrw" => (true, RDONLY),
        "rnosuid" => (false, NOSUID),
        "rsuid" => (true, NOSUID),
        "rnodev" => (false, NODEV),
        "rdev" => (true, NODEV),
        "rnoexec" => (false, NOEXEC),
        "rexec" => (true, NOEXEC),
        "rnodiratime" => (false, NODIRATIME),
        "rdiratime" => (true, NODIRATIME),
        "rrelatime" => (false, RELATIME),
        "rnorelatime" => (true, RELATIME),
        "rnoatime" => (false, NOATIME),
        "ratime" => (true, NOATIME),
        "rstrictatime" => (false, STRICTATIME),
        "rnostrictatime" => (true, STRICTATIME),
        "rnosymfollow" => (false, NOSYMFOLLOW),
        "rsymfollow" => (true, NOSYMFOLLOW),
        _ => return None,
    })
}

/// Every option name `parse` understands (for `corten features`), besides
/// filesystem data such as `mode=755`, which is passed to the kernel.
pub const KNOWN: &[&str] = &[
    "ro",
    "rw",
    "nosuid",
    "suid",
    "nodev",
    "dev",
    "noexec",
    "exec",
    "sync",
    "async",
    "dirsync",
    "remount",
    "mand",
    "nomand",
    "noatime",
    "atime",
    "nodiratime",
    "diratime",
    "relatime",
    "norelatime",
    "strictatime",
    "nostrictatime",
    "bind",
    "rbind",
    "silent",
    "loud",
    "private",
    "rprivate",
    "shared",
    "rshared",
    "slave",
    "rslave",
    "unbindable",
    "runbindable",
    "rro",
    "rrw",
    "rnosuid",
    "rsuid",
    "rnodev",
    "rdev",
    "rnoexec",
    "rexec",
    "rnodiratime",
    "rdiratime",
    "rrelatime",
    "rnorelatime",
    "rnoatime",
    "ratime",
    "rstrictatime",
    "rnostrictatime",
    "rnosymfollow",
    "rsymfollow",
    "idmap",
    "ridmap",
];

/// Whether `opt` is one of the named options (not filesystem data).
#[cfg(test)]
pub fn is_named(opt: &str) -> bool {
    flag(opt).is_some()
        || propagation(opt).is_some()
        || recursive(opt).is_some()
        || matches!(opt, "idmap" | "ridmap")
}

/// Parses the options of one mount.
pub fn parse(options: &[String]) -> Result<MountOptions, UnsupportedOption> {
    let mut out = MountOptions::default();
    let mut data = Vec::new();
    for opt in options {
        let opt = opt.as_str();
        if let Some((clear, f)) = flag(opt) {
            if clear {
                out.flags.remove(f);
            } else {
                out.flags.insert(f);
            }
        } else if let Some(p) = propagation(opt) {
            out.propagation.push(p);
        } else if let Some((clear, a)) = recursive(opt) {
            if a & mount_attr::ATIME_MASK != 0 || a == mount_attr::RELATIME {
                // The access-time attributes are one field: clearing the mask
                // then setting the value selects one of them.
                out.rec_clear |= mount_attr::ATIME_MASK;
            }
            if clear {
                out.rec_clear |= a;
            } else {
                out.rec_set |= a;
            }
        } else if matches!(opt, "idmap" | "ridmap") {
            out.idmap = Some(opt == "ridmap");
        } else if opt == "tmpcopyup" {
            // runc extension that copies the directory's content into the
            // new tmpfs; not implemented yet, and harmless to skip.
        } else {
            data.push(opt);
        }
    }
    out.data = data.join(",");
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn known_lists_exactly_the_named_options() {
        for o in KNOWN {
            assert!(is_named(o), "{o}");
        }
        assert!(!is_named("mode=755"));
    }

    use super::*;

    fn p(opts: &[&str]) -> MountOptions {
        parse(&opts.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn flags_and_data() {
        let o = p(&["nosuid", "strictatime", "mode=755", "size=65536k"]);
        assert_eq!(o.flags, MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME);
        assert_eq!(o.data, "mode=755,size=65536k");
        assert!(!o.is_bind());
    }

    #[test]
    fn later_option_wins() {
        let o = p(&["ro", "rw"]);
        assert!(!o.flags.contains(MsFlags::MS_RDONLY));
    }

    #[test]
    fn bind_propagation_and_recursive() {
        let o = p(&["rbind", "rro", "rprivate", "rnosuid"]);
        assert!(o.is_bind());
        assert!(o.flags.contains(MsFlags::MS_REC));
        assert_eq!(o.propagation, vec![MsFlags::MS_PRIVATE | MsFlags::MS_REC]);
        assert_eq!(o.rec_set, mount_attr::RDONLY | mount_attr::NOSUID);
    }

    #[test]
    fn idmap_and_ridmap() {
        assert_eq!(p(&["bind"]).idmap, None);
        assert_eq!(p(&["bind", "idmap"]).idmap, Some(false));
        assert_eq!(p(&["rbind", "ridmap"]).idmap, Some(true));
        assert!(p(&["idmap"]).data.is_empty());
    }
}
