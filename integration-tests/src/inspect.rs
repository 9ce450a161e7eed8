//! Reading what the kernel reports about capabilities and namespaces
//! (`mountinfo`, `status` and the process table: [`corten_testkit::procfs`]).

use std::fs;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps() {
        assert_eq!(cap_hex(&[5, 10, 29]), "0000000020000420");
    }
}
