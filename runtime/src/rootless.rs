//! Running without root, as runc decides it: whether corten is rootless
//! (`--rootless auto`), and where its state lives then.

use std::path::PathBuf;

/// The state root when `--root` is not given: `$XDG_RUNTIME_DIR/corten`
/// where runc would use `$XDG_RUNTIME_DIR/runc` (when [`auto`] says
/// rootless),
/// else `/run/corten`. The flag is `true` when the XDG directory is used:
/// the caller then makes it (mode 0700, sticky, so that the XDG runtime
/// directory's clean-up leaves it alone).
pub fn default_root() -> (PathBuf, bool) {
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(dir) if auto() => (PathBuf::from(dir).join("corten"), true),
        _ => (PathBuf::from("/run/corten"), false),
    }
}

/// `--rootless auto`, and whether `$XDG_RUNTIME_DIR` holds the state:
/// not root, or root in a user namespace whose `$USER` is not `root`
/// (runc's rule for both). The real root keeps `/run/corten` even with
/// `XDG_RUNTIME_DIR=/run/user/0` set.
pub fn auto() -> bool {
    if !nix::unistd::geteuid().is_root() {
        return true;
    }
    in_user_namespace() && std::env::var("USER").map_or(true, |u| u != "root")
}

/// Whether this process is in a user namespace other than the initial
/// one: its uid map is not the identity over the whole range.
pub fn in_user_namespace() -> bool {
    std::fs::read_to_string("/proc/self/uid_map").is_ok_and(|m| {
        let words: Vec<&str> = m.split_whitespace().collect();
        words != ["0", "0", "4294967295"]
    })
}

/// This process's uid as the host sees it: the real uid, or, in a user
/// namespace (rootless podman runs the runtime as root in its own), the
/// host id its uid is mapped to.
pub fn host_uid() -> u32 {
    let uid = nix::unistd::getuid().as_raw();
    let map = std::fs::read_to_string("/proc/self/uid_map").unwrap_or_default();
    host_id_in(&map, uid).unwrap_or(uid)
}

/// The host id `id` maps to in the map text `map` (`/proc/<pid>/uid_map`
/// lines: inside, outside, count).
fn host_id_in(map: &str, id: u32) -> Option<u32> {
    map.lines().find_map(|l| {
        let n: Vec<u64> = l
            .split_whitespace()
            .filter_map(|w| w.parse().ok())
            .collect();
        let [inside, outside, count] = n[..] else {
            return None;
        };
        let id = u64::from(id);
        (id >= inside && id < inside + count).then(|| u32::try_from(outside + id - inside).ok())?
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn host_ids_through_a_map() {
        let podman = "         0       1000          1\n         1     100000      65536\n";
        assert_eq!(host_id_in(podman, 0), Some(1000));
        assert_eq!(host_id_in(podman, 1), Some(100_000));
        assert_eq!(host_id_in(podman, 65_536), Some(165_535));
        assert_eq!(host_id_in(podman, 65_537), None);
        assert_eq!(host_id_in("0 0 4294967295\n", 1000), Some(1000));
    }

    use super::*;

    #[test]
    fn root_in_the_initial_namespace_is_not_rootless() {
        let root = nix::unistd::geteuid().is_root();
        if root && !in_user_namespace() {
            assert!(!auto());
            // Even with XDG_RUNTIME_DIR set (/run/user/0 on many hosts).
            assert_eq!(default_root(), (PathBuf::from("/run/corten"), false));
        } else if !root {
            assert!(auto());
        }
    }
}
