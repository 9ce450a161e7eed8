//! Reading `/proc/self/mountinfo` and `/proc/self/status` (parsed by
//! [`corten_testkit::procfs`]).

use corten_testkit::MountInfo;

/// The current process's mounts.
pub fn mounts() -> Result<Vec<MountInfo>, String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .map(|t| corten_testkit::parse_mountinfo(&t))
        .map_err(|e| format!("read /proc/self/mountinfo: {e}"))
}

/// The value of `key:` in `/proc/self/status`.
pub fn status_field(key: &str) -> Result<String, String> {
    let text = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| format!("read /proc/self/status: {e}"))?;
    corten_testkit::status_field(&text, key)
        .map(str::to_owned)
        .ok_or_else(|| format!("no {key} in /proc/self/status"))
}
