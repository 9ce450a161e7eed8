//! What corten's two test suites share: `integration-tests/` (root-only
//! tests of corten itself) and `conformance/` (the OCI runtime-spec suite
//! for any runc-compatible runtime) both build busybox bundles, drive a
//! runtime binary through its command line and clean up after themselves
//! the same way, from this one copy.
//!
//! - [`rootfs`]: the busybox root filesystem ([`Busybox`]).
//! - [`config`]: where `config.json` starts from, the runtime's own `spec`
//!   or the shared [`default_config`], and JSON-pointer edits.
//! - [`bundle`]: a bundle directory, its config edited until saved ([`Bundle`]).
//! - [`driver`]: a runtime binary with its own `--root`; every command and
//!   every wait has a bound ([`Driver`]).
//! - [`cgroup`], [`cleanup`]: removal of the test's own cgroups, below its
//!   own parent ([`CgroupParent`]), of its temporary directories, and of
//!   leftover processes, always killed by pid.
//! - [`procfs`]: `mountinfo`, `status` and the process table.
//!
//! Dev-only: a dependency of the test crates, never of the runtime.
//!
//! # Example
//! ```no_run
//! use std::time::Duration;
//! use corten_testkit::{Bundle, Busybox, CgroupParent, ConfigFrom, Driver, Removal};
//!
//! let parent = CgroupParent::for_process("example");
//! let dir = std::path::PathBuf::from("/tmp/example");
//! let from = ConfigFrom::Spec { runtime: "/usr/sbin/runc".as_ref(), args: &[] };
//! let mut bundle = Bundle::create(dir.join("b"), from, parent.child("b"), &Busybox::host())?;
//! bundle.sh("hostname");
//! bundle.write_config()?;
//! let rt = Driver::new("/usr/sbin/runc", dir.join("rt"), Duration::from_secs(10))?;
//! let mut run = rt.command();
//! corten_testkit::driver::with_bundle(&mut run, &["run"], bundle.path(), "b");
//! let ran = rt.output_tracked(run, "b")?;
//! assert_eq!(String::from_utf8_lossy(&ran.stdout).trim(), "runc");
//! rt.delete_all();
//! parent.remove(Removal::Kill(Duration::from_secs(2)));
//! corten_testkit::cleanup::remove_tree(&dir, &dir);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod bundle;
pub mod cgroup;
pub mod cleanup;
pub mod config;
pub mod driver;
pub mod procfs;
pub mod rootfs;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub use bundle::{Bundle, BundleError};
pub use cgroup::{cgroup_dirs, CgroupParent, Removal};
pub use config::{allow_all_seccomp, default_config, ConfigFrom};
pub use driver::{Driver, DriverError, Ran};
pub use procfs::{
    mounts_under, parse_mountinfo, pid_alive, processes_mentioning, status_field, MountInfo,
};
pub use rootfs::{busybox_tarball, Busybox};

/// Whether this process runs with effective uid 0.
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Why no user namespace can be created here (`None` when one can): the
/// kernel refuses them to a process in a chroot, such as a fresh-install
/// tree. Asked once.
pub fn userns_unavailable() -> Option<String> {
    static WHY: OnceLock<Option<String>> = OnceLock::new();
    WHY.get_or_init(|| {
        match std::process::Command::new("unshare").args(["--user", "true"]).output() {
            Ok(o) if o.status.success() => None,
            Ok(o) => Some(format!(
                "no user namespace can be created here ({}); the kernel refuses them to chrooted processes",
                String::from_utf8_lossy(&o.stderr).trim()
            )),
            Err(e) => Some(format!("unshare --user: {e}")),
        }
    })
    .clone()
}

/// Poll `probe` until it returns `Some` or `bound` passes (`None` then).
/// The interval starts at 1 ms and doubles up to 20 ms, so short waits
/// stay short.
pub fn wait_for<T>(bound: Duration, probe: impl FnMut() -> Option<T>) -> Option<T> {
    poll(
        bound,
        Duration::from_millis(1),
        Duration::from_millis(20),
        probe,
    )
}

/// [`wait_for`] a condition; whether it came true within `bound`.
pub fn wait_until(bound: Duration, mut condition: impl FnMut() -> bool) -> bool {
    wait_for(bound, || condition().then_some(())).is_some()
}

/// Poll `probe` (at least once) until it returns `Some` or `bound` passes;
/// the interval starts at `first` and doubles up to `longest`.
pub(crate) fn poll<T>(
    bound: Duration,
    first: Duration,
    longest: Duration,
    mut probe: impl FnMut() -> Option<T>,
) -> Option<T> {
    let deadline = Instant::now() + bound;
    let mut interval = first;
    loop {
        if let Some(value) = probe() {
            return Some(value);
        }
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        std::thread::sleep(interval.min(deadline - now));
        interval = (interval * 2).min(longest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_are_bounded() {
        let started = Instant::now();
        assert!(!wait_until(Duration::from_millis(50), || false));
        assert!(started.elapsed() >= Duration::from_millis(50));
        assert!(started.elapsed() < Duration::from_secs(2));
        let mut n = 0;
        assert_eq!(
            wait_for(Duration::from_secs(5), || {
                n += 1;
                (n == 3).then_some(n)
            }),
            Some(3)
        );
    }
}
