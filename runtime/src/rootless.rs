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

#[cfg(test)]
mod tests {
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
