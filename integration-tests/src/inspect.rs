//! Reading what the kernel reports: `/proc/<pid>/mountinfo`, `status`,
//! namespaces, and the process table.

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
    /// Optional fields such as `shared:3` or `master:1`.
    pub optional: Vec<String>,
    /// The filesystem type (`proc`, `tmpfs`, `ext4`, …).
    pub fs_type: String,
    /// The mount source.
    pub source: String,
    /// Per-superblock options.
    pub super_options: Vec<String>,
}

impl MountInfo {
    /// Whether the per-mount options contain `option`.
    pub fn has(&self, option: &str) -> bool {
        self.options.iter().any(|o| o == option)
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
    let split = |s: &str| s.split(',').map(str::to_owned).collect::<Vec<_>>();
    Some(MountInfo {
        root: unescape(fields[3]),
        mount_point: unescape(fields[4]),
        options: split(fields[5]),
        optional: fields[6..].iter().map(|s| (*s).to_owned()).collect(),
        fs_type: right.next()?.to_owned(),
        source: unescape(right.next().unwrap_or_default()),
        super_options: split(right.next().unwrap_or_default()),
    })
}

/// Undo mountinfo's octal escapes (`\040` for a space, …).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (bytes[i], octal) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
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

/// Mount points in this process's mount namespace at or below `dir`.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let text = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    parse_mountinfo(&text)
        .into_iter()
        .map(|m| PathBuf::from(m.mount_point))
        .filter(|p| p.starts_with(dir))
        .collect()
}

/// The value of `field` (e.g. `CapEff`, `NoNewPrivs`) in the text of a
/// `/proc/<pid>/status` file, trimmed.
pub fn status_field<'a>(status: &'a str, field: &str) -> Option<&'a str> {
    status.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        (name == field).then(|| value.trim())
    })
}

/// The 16-digit hex mask that `/proc/<pid>/status` shows for a set of
/// capability numbers.
pub fn cap_hex(caps: &[u32]) -> String {
    format!(
        "{:016x}",
        caps.iter().fold(0u64, |mask, cap| mask | (1u64 << cap))
    )
}

/// The host's (this test process's) namespace of `kind`, as
/// `readlink /proc/self/ns/<kind>` shows it, e.g. `uts:[4026531838]`.
pub fn host_ns(kind: &str) -> String {
    let link = fs::read_link(format!("/proc/self/ns/{kind}"))
        .unwrap_or_else(|e| panic!("readlink /proc/self/ns/{kind}: {e}"));
    link.to_string_lossy().into_owned()
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

/// Pids (other than this process) whose command line contains `needle`.
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
        let text = "73 72 0:29 /a\\040b /sys/fs/cgroup/cpu ro,nosuid shared:5 master:1 - cgroup cgroup rw,cpu\n";
        let m = &parse_mountinfo(text)[0];
        assert_eq!(m.root, "/a b");
        assert_eq!(m.mount_point, "/sys/fs/cgroup/cpu");
        assert!(m.has("ro") && m.has("nosuid") && !m.has("rw"));
        assert_eq!(m.optional, ["shared:5", "master:1"]);
        assert_eq!(m.fs_type, "cgroup");
        assert_eq!(m.super_options, ["rw", "cpu"]);
    }

    #[test]
    fn caps() {
        assert_eq!(cap_hex(&[5, 10, 29]), "0000000020000420");
        let status = "Name:\tsh\nCapEff:\t0000000000000020\nNoNewPrivs:\t1\n";
        assert_eq!(status_field(status, "CapEff"), Some("0000000000000020"));
        assert_eq!(status_field(status, "NoNewPrivs"), Some("1"));
        assert_eq!(status_field(status, "CapAmb"), None);
    }
}
