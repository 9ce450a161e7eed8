//! Files, mounts and devices: what exists, how it is mounted, what can be
//! opened, read and written.

use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};

use corten_conformance::expect::FileKind;

use super::{equal, errno_name, errno_of, Outcome};
use crate::procfs;

pub(super) fn mount(
    path: &str,
    fstype: Option<&str>,
    options: &[String],
    absent: &[String],
    propagation: Option<&str>,
) -> Outcome {
    let mounts = procfs::mounts()?;
    let m = mounts
        .iter()
        .rev()
        .find(|m| m.mount_point == path)
        .ok_or_else(|| format!("nothing mounted at {path}"))?;
    if let Some(t) = fstype {
        if m.fs_type != t {
            return Err(format!("{path}: type {}, want {t}", m.fs_type));
        }
    }
    for o in options {
        if !m.options.contains(o) && !m.super_options.contains(o) {
            return Err(format!(
                "{path}: option {o} missing (mount {}, super {})",
                m.options.join(","),
                m.super_options.join(",")
            ));
        }
    }
    for o in absent {
        if m.options.contains(o) {
            return Err(format!(
                "{path}: option {o} present ({})",
                m.options.join(",")
            ));
        }
    }
    if let Some(p) = propagation {
        let got = m.propagation();
        if !got.contains(&p) || (p == "private" && got.len() != 1) {
            return Err(format!(
                "{path}: propagation {got:?} (fields {:?}), want {p}",
                m.optional
            ));
        }
    }
    Ok(())
}

pub(super) fn not_mounted(path: &str) -> Outcome {
    match procfs::mounts()?.iter().find(|m| m.mount_point == path) {
        None => Ok(()),
        Some(m) => Err(format!("{path} is mounted ({})", m.fs_type)),
    }
}

/// Try to write at `path`: a probe file in a directory, or the file itself
/// opened for appending (nothing is written).
fn try_write(path: &str) -> std::io::Result<()> {
    let meta = fs::metadata(path)?;
    if meta.is_dir() {
        let probe = format!(
            "{}/.conformance-probe-{}",
            path.trim_end_matches('/'),
            std::process::id()
        );
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&probe)?;
        fs::remove_file(&probe)
    } else {
        OpenOptions::new()
            .append(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
            .map(drop)
    }
}

pub(super) fn read_only(path: &str) -> Outcome {
    match try_write(path) {
        Err(e) if errno_of(&e) == libc::EROFS => Ok(()),
        Err(e) => Err(format!("write at {path}: {e}, want EROFS")),
        Ok(()) => Err(format!("write at {path} succeeded, want EROFS")),
    }
}

pub(super) fn writable(path: &str) -> Outcome {
    try_write(path).map_err(|e| format!("write at {path}: {e}"))
}

pub(super) fn masked(path: &str) -> Outcome {
    let meta = match fs::metadata(path) {
        Err(e) if e.kind() == ErrorKind::NotFound => return Err(format!("{path} does not exist")),
        Err(e) => return Err(format!("stat {path}: {e}")),
        Ok(m) => m,
    };
    if meta.is_dir() {
        return match fs::read_dir(path) {
            Err(e) if e.kind() == ErrorKind::PermissionDenied => Ok(()),
            Err(e) => Err(format!("read_dir {path}: {e}")),
            Ok(entries) => {
                let names: Vec<String> = entries
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect();
                if names.is_empty() {
                    Ok(())
                } else {
                    Err(format!("{path} lists {names:?}"))
                }
            }
        };
    }
    let mut buf = [0u8; 64];
    match fs::File::open(path).and_then(|mut f| f.read(&mut buf)) {
        Err(e) if e.kind() == ErrorKind::PermissionDenied => Ok(()),
        Err(e) => Err(format!("read {path}: {e}")),
        Ok(0) => Ok(()),
        Ok(n) => Err(format!("{path} is readable ({n} bytes)")),
    }
}

fn kind_of(t: fs::FileType) -> Option<FileKind> {
    Some(if t.is_symlink() {
        FileKind::Symlink
    } else if t.is_dir() {
        FileKind::Dir
    } else if t.is_file() {
        FileKind::File
    } else if t.is_char_device() {
        FileKind::Char
    } else if t.is_block_device() {
        FileKind::Block
    } else if t.is_fifo() {
        FileKind::Fifo
    } else {
        return None;
    })
}

pub(super) fn exists(path: &str, kind: Option<FileKind>) -> Outcome {
    let meta = fs::symlink_metadata(path).map_err(|e| format!("lstat {path}: {e}"))?;
    match kind {
        Some(k) if kind_of(meta.file_type()) != Some(k) => Err(format!(
            "{path} is {:?}, want {k:?}",
            kind_of(meta.file_type())
        )),
        _ => Ok(()),
    }
}

pub(super) fn link_or_same(path: &str, target: &str) -> Outcome {
    let meta = fs::symlink_metadata(path).map_err(|e| format!("lstat {path}: {e}"))?;
    if meta.file_type().is_symlink() {
        let link = fs::read_link(path).map_err(|e| format!("readlink {path}: {e}"))?;
        let link = link.to_string_lossy();
        let resolved = fs::canonicalize(path).map_err(|e| format!("resolve {path}: {e}"))?;
        if link == target || resolved.to_string_lossy() == target {
            return Ok(());
        }
        return Err(format!("{path} -> {link}, want {target}"));
    }
    let want = fs::metadata(target).map_err(|e| format!("stat {target}: {e}"))?;
    if kind_of(meta.file_type()) == kind_of(want.file_type()) && meta.rdev() == want.rdev() {
        Ok(())
    } else {
        Err(format!(
            "{path} is neither a link to nor the same device as {target}"
        ))
    }
}

pub(super) fn device(
    path: &str,
    kind: FileKind,
    (major, minor): (u64, u64),
    mode: Option<u32>,
    uid: Option<u32>,
    gid: Option<u32>,
) -> Outcome {
    let meta = fs::symlink_metadata(path).map_err(|e| format!("lstat {path}: {e}"))?;
    let got = kind_of(meta.file_type());
    if got != Some(kind) {
        return Err(format!("{path} is {got:?}, want {kind:?}"));
    }
    if kind != FileKind::Fifo {
        let (ma, mi) = (
            u64::from(libc::major(meta.rdev())),
            u64::from(libc::minor(meta.rdev())),
        );
        if (ma, mi) != (major, minor) {
            return Err(format!("{path} is {ma}:{mi}, want {major}:{minor}"));
        }
    }
    if let Some(m) = mode {
        equal(
            &format!("{path} mode"),
            format!("{:o}", meta.mode() & 0o7777),
            format!("{m:o}"),
        )?;
    }
    if let Some(u) = uid {
        equal(&format!("{path} uid"), meta.uid(), u)?;
    }
    if let Some(g) = gid {
        equal(&format!("{path} gid"), meta.gid(), g)?;
    }
    Ok(())
}

pub(super) fn open(path: &str, write: bool, errno: Option<i32>) -> Outcome {
    let got = OpenOptions::new()
        .read(true)
        .write(write)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map(drop)
        .map_err(|e| errno_of(&e))
        .err();
    if got == errno {
        Ok(())
    } else {
        Err(format!(
            "open {path}: {}, want {}",
            errno_name(got),
            errno_name(errno)
        ))
    }
}

pub(super) fn reads_zeros(path: &str, len: usize) -> Outcome {
    let mut buf = vec![1u8; len];
    fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut buf))
        .map_err(|e| format!("read {path}: {e}"))?;
    if buf.iter().all(|b| *b == 0) {
        Ok(())
    } else {
        Err(format!("{path} returned non-zero bytes"))
    }
}

pub(super) fn write_result(path: &str, errno: Option<i32>) -> Outcome {
    let got = OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|mut f| f.write_all(b"x"))
        .map_err(|e| errno_of(&e))
        .err();
    if got == errno {
        Ok(())
    } else {
        Err(format!(
            "write {path}: {}, want {}",
            errno_name(got),
            errno_name(errno)
        ))
    }
}

pub(super) fn absent(path: &str) -> Outcome {
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("lstat {path}: {e}")),
        Ok(m) => Err(format!("{path} exists ({:?})", m.file_type())),
    }
}

pub(super) fn file_contains(path: &str, text: &str) -> Outcome {
    let content = super::read(path)?;
    if content.contains(text) {
        Ok(())
    } else {
        Err(format!("{path} does not contain {text:?}: {content:?}"))
    }
}
