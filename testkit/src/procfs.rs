//! Reading what the kernel reports in `/proc`: `mountinfo`, `status` and
//! the process table.

use std::fs;
use std::path::{Path, PathBuf};

/// One line of `/proc/<pid>/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountInfo {
    /// The path inside the filesystem that is mounted (field 4).
    pub root: String,
    /// Where it is mounted (field 5), unescaped.
    pub mount_point: String,
    /// Per-mount options such as `ro`, `nosuid`, `nodev`, `noexec`.
    pub options: Vec<String>,
    /// Optional fields such as `shared:3`, `master:1` or `unbindable`.
    pub optional: Vec<String>,
    /// The filesystem type (`proc`, `tmpfs`, `ext4`, …).
    pub fs_type: String,
    /// The mount source.
    pub source: String,
    /// Per-superblock options (`size=…`, `mode=…`).
    pub super_options: Vec<String>,
}

impl MountInfo {
    /// Whether the per-mount options contain `option`.
    pub fn has(&self, option: &str) -> bool {
        self.options.iter().any(|o| o == option)
    }

    /// The propagation this entry shows: `shared`, `slave`, `unbindable`,
    /// or else `private`.
    pub fn propagation(&self) -> Vec<&'static str> {
        let mut p = Vec::new();
        if self.optional.iter().any(|o| o.starts_with("shared:")) {
            p.push("shared");
        }
        if self.optional.iter().any(|o| o.starts_with("master:")) {
            p.push("slave");
        }
        if self.optional.iter().any(|o| o == "unbindable") {
            p.push("unbindable");
        }
        if p.is_empty() {
            p.push("private");
        }
        p
    }
}

/// Parse the text of a `mountinfo` file; lines that do not parse are skipped.
pub fn parse_mountinfo(text: &str) -> Vec<MountInfo> {
    text.lines().filter_map(parse_mountinfo_line).collect()
}

fn parse_mountinfo_line(line: &str) -> Option<MountInfo> {
    let (left, right) = line.split_once(" - ")?;
    let fields: Vec<&str> = left.split(' ').collect();
    if fields.len() < 6 {
        return None;
    }
    let mut right = right.split(' ');
    Some(MountInfo {
        root: unescape(fields[3]),
        mount_point: unescape(fields[4]),
        options: split_options(fields[5]),
        optional: fields[6..].iter().map(|s| (*s).to_owned()).collect(),
        fs_type: right.next()?.to_owned(),
        source: unescape(right.next().unwrap_or_default()),
        super_options: split_options(right.next().unwrap_or_default()),
    })
}

fn split_options(field: &str) -> Vec<String> {
    field
        .split(',')
        .filter(|o| !o.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Undo mountinfo's octal escapes (`\040` for a space, …); an escape above
/// `\377` is kept as it is.
pub fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)))
            .map(|d| d.iter().fold(0u32, |n, c| n * 8 + u32::from(c - b'0')))
            .and_then(|n| u8::try_from(n).ok());
        match (bytes[i], octal) {
            (b'\\', Some(byte)) => {
                out.push(byte);
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Mount points in this process's mount namespace at or below `dir`,
/// deepest first.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let text = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut found: Vec<PathBuf> = parse_mountinfo(&text)
        .into_iter()
        .map(|m| PathBuf::from(m.mount_point))
        .filter(|p| p.starts_with(dir))
        .collect();
    found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    found.dedup();
    found
}

/// The value of `field` (e.g. `CapEff`, `NoNewPrivs`) in the text of a
/// `/proc/<pid>/status` file, trimmed.
pub fn status_field<'a>(status: &'a str, field: &str) -> Option<&'a str> {
    status.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        (name == field).then(|| value.trim())
    })
}

/// Whether `pid` names a live process (zombies count as gone).
pub fn pid_alive(pid: i64) -> bool {
    if pid <= 0 {
        return false;
    }
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with(['Z', 'X'])),
        Err(_) => false,
    }
}

/// Live pids (other than this process) whose command line contains `needle`.
pub fn processes_mentioning(needle: &str) -> Vec<i32> {
    let me = std::process::id();
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| u32::try_from(pid).is_ok_and(|p| p != me))
        .filter(|&pid| {
            fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|cmdline| {
                let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
                text.contains(needle)
            })
        })
        .filter(|&pid| pid_alive(pid.into()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_line() {
        let text = "73 72 0:29 /a\\040b /sys/fs/cgroup/cpu ro,nosuid shared:5 master:1 - cgroup cgroup rw,cpu\n\
                    37 35 0:5 / /dev rw,nosuid - tmpfs tmpfs rw,size=64k,mode=755\n";
        let m = parse_mountinfo(text);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].root, "/a b");
        assert_eq!(m[0].mount_point, "/sys/fs/cgroup/cpu");
        assert!(m[0].has("ro") && m[0].has("nosuid") && !m[0].has("rw"));
        assert_eq!(m[0].optional, ["shared:5", "master:1"]);
        assert_eq!(m[0].propagation(), ["shared", "slave"]);
        assert_eq!(m[0].fs_type, "cgroup");
        assert_eq!(m[0].super_options, ["rw", "cpu"]);
        assert_eq!(m[1].super_options, ["rw", "size=64k", "mode=755"]);
        assert_eq!(m[1].propagation(), ["private"]);
    }

    #[test]
    fn unescapes_octal() {
        assert_eq!(unescape("/a\\011b\\134c"), "/a\tb\\c");
        assert_eq!(unescape("/plain"), "/plain");
        assert_eq!(unescape("/end\\"), "/end\\");
        assert_eq!(unescape("/big\\777"), "/big\\777");
    }

    #[test]
    fn status_fields() {
        let status = "Name:\tsh\nCapEff:\t0000000000000020\nNoNewPrivs:\t1\n";
        assert_eq!(status_field(status, "CapEff"), Some("0000000000000020"));
        assert_eq!(status_field(status, "NoNewPrivs"), Some("1"));
        assert_eq!(status_field(status, "CapAmb"), None);
    }

    #[test]
    fn this_process_is_alive() {
        assert!(pid_alive(std::process::id().into()));
        assert!(!pid_alive(0));
    }
}
