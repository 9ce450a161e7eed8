//! The busybox root filesystem of every test bundle: the static
//! `/bin/busybox` with one symlink per applet, the usual top-level
//! directories, and `/etc/passwd` and `/etc/group` naming `root`, `user`
//! (1000) and `nobody`.

use std::fs;
use std::io;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::sync::OnceLock;

/// The host's static busybox (Debian's `busybox-static`).
pub const BUSYBOX: &str = "/bin/busybox";

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
user:x:1000:1000:user:/home/user:/bin/sh\n\
nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
const GROUP: &str = "root:x:0:\ntty:x:5:\nuser:x:1000:\nnogroup:x:65534:\n";

/// The directories of the root filesystem besides `/tmp` (mode 1777).
const DIRS: [&str; 9] = [
    "bin",
    "proc",
    "sys",
    "dev",
    "etc",
    "root",
    "home",
    "home/user",
    "mnt",
];

/// A step of assembling a root filesystem that failed.
#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    /// A directory could not be created.
    #[error("mkdir {path}: {source}")]
    Mkdir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A directory's mode could not be set.
    #[error("chmod {path}: {source}")]
    Chmod {
        /// The directory.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A file could not be copied (or hard-linked).
    #[error("copy {from} to {to}: {source} (is busybox-static installed?)")]
    Copy {
        /// The source file.
        from: PathBuf,
        /// The destination.
        to: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// An applet's symlink could not be made.
    #[error("symlink {path}: {source}")]
    Symlink {
        /// The link.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// `/etc/passwd` or `/etc/group` could not be written.
    #[error("write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// `busybox --list` could not be run.
    #[error("{BUSYBOX} --list: {source} (install busybox-static)")]
    Applets {
        /// The cause.
        source: io::Error,
    },
    /// `tar` could not be run.
    #[error("tar -C {rootfs}: {source}")]
    TarSpawn {
        /// The root filesystem being packed.
        rootfs: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// `tar` failed.
    #[error("tar -C {rootfs}: {status}")]
    Tar {
        /// The root filesystem being packed.
        rootfs: PathBuf,
        /// Its exit status.
        status: ExitStatus,
    },
}

/// Where root filesystems take busybox from.
#[derive(Debug, Clone)]
pub struct Busybox {
    path: PathBuf,
    hard_link: bool,
}

impl Busybox {
    /// The host's [`BUSYBOX`], copied into each root filesystem (never
    /// linked: a container that overwrites its busybox must not reach the
    /// host's).
    pub fn host() -> Busybox {
        Busybox {
            path: PathBuf::from(BUSYBOX),
            hard_link: false,
        }
    }

    /// A private copy of [`BUSYBOX`] made once as `dir/busybox` and
    /// hard-linked into each root filesystem (copied where it cannot be).
    pub fn master_copy(dir: &Path) -> Result<Busybox, RootfsError> {
        let path = dir.join("busybox");
        fs::copy(BUSYBOX, &path).map_err(|source| RootfsError::Copy {
            from: PathBuf::from(BUSYBOX),
            to: path.clone(),
            source,
        })?;
        Ok(Busybox {
            path,
            hard_link: true,
        })
    }

    /// The busybox binary the root filesystems get.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Assemble the busybox root filesystem in `rootfs` (created if missing).
    pub fn populate(&self, rootfs: &Path) -> Result<(), RootfsError> {
        make_dir(rootfs, 0o755)?;
        for dir in DIRS {
            make_dir(&rootfs.join(dir), 0o755)?;
        }
        make_dir(&rootfs.join("tmp"), 0o1777)?;
        let bin = rootfs.join("bin");
        if self.hard_link {
            link_or_copy(&self.path, &bin.join("busybox"))?;
        } else {
            copy(&self.path, &bin.join("busybox"))?;
        }
        for applet in applets()? {
            let path = bin.join(applet);
            symlink("busybox", &path).map_err(|source| RootfsError::Symlink { path, source })?;
        }
        write(&rootfs.join("etc/passwd"), PASSWD)?;
        write(&rootfs.join("etc/group"), GROUP)
    }
}

/// busybox's applet names (without `busybox` itself), listed once.
pub fn applets() -> Result<&'static [String], RootfsError> {
    static APPLETS: OnceLock<Vec<String>> = OnceLock::new();
    if let Some(applets) = APPLETS.get() {
        return Ok(applets);
    }
    let out = Command::new(BUSYBOX)
        .arg("--list")
        .output()
        .map_err(|source| RootfsError::Applets { source })?;
    let listed = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|a| !a.is_empty() && *a != "busybox" && !a.contains('/'))
        .map(str::to_owned)
        .collect();
    Ok(APPLETS.get_or_init(|| listed))
}

/// The host's busybox root filesystem, assembled in `dir/rootfs` and packed
/// as `dir/busybox.tar` (for `docker import` / `podman import`); returns
/// the tarball.
pub fn busybox_tarball(dir: &Path) -> Result<PathBuf, RootfsError> {
    let rootfs = dir.join("rootfs");
    Busybox::host().populate(&rootfs)?;
    let tar = dir.join("busybox.tar");
    let status = Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .map_err(|source| RootfsError::TarSpawn {
            rootfs: rootfs.clone(),
            source,
        })?;
    if !status.success() {
        return Err(RootfsError::Tar { rootfs, status });
    }
    Ok(tar)
}

/// Create the directory `path` (if missing) and set its mode.
pub fn make_dir(path: &Path, mode: u32) -> Result<(), RootfsError> {
    match fs::create_dir(path) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => {
            return Err(RootfsError::Mkdir {
                path: path.to_owned(),
                source: e,
            })
        }
        _ => {}
    }
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(|source| {
        RootfsError::Chmod {
            path: path.to_owned(),
            source,
        }
    })
}

/// Hard-link `master` to `dest`, copying when a hard link is impossible.
pub fn link_or_copy(master: &Path, dest: &Path) -> Result<(), RootfsError> {
    if fs::hard_link(master, dest).is_err() {
        copy(master, dest)?;
    }
    Ok(())
}

fn copy(from: &Path, to: &Path) -> Result<(), RootfsError> {
    fs::copy(from, to)
        .map(drop)
        .map_err(|source| RootfsError::Copy {
            from: from.to_owned(),
            to: to.to_owned(),
            source,
        })
}

fn write(path: &Path, contents: &str) -> Result<(), RootfsError> {
    fs::write(path, contents).map_err(|source| RootfsError::Write {
        path: path.to_owned(),
        source,
    })
}
