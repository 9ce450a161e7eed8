//! Helpers for corten's integration tests: real bundles, a real runtime
//! binary, real namespaces and cgroups. The bundles, the runtime driver and
//! the clean-up are [`corten_testkit`]'s (shared with the conformance
//! suite); this crate adds what the tests assume: `/tmp/corten-it`,
//! `CORTEN_BIN`, a failed test where the kit reports an error.
//!
//! The tests drive the runtime binary named by `CORTEN_BIN` (default:
//! `<workspace>/target/release/corten`) exactly as containerd or Docker
//! would: through its runc-compatible command line. Point `CORTEN_BIN` at
//! `/usr/sbin/runc` to check the tests themselves against the reference.
//!
//! # Root only
//! Creating namespaces, cgroups and device nodes needs root. Every test starts
//! with [`require_root!`], which fails the test when the effective uid is not
//! 0: a run that tested nothing must not be reported as passing.
//!
//! # Isolation
//! Everything a test creates is its own and is removed when the test ends,
//! even when it fails:
//! - a [`Bundle`] lives in `/tmp/corten-it/<test>-<pid>-<n>`, with a busybox
//!   root filesystem and a `config.json` produced by the runtime's own `spec`
//!   command; its `cgroupsPath` is `/corten-it-<pid>/<test>-<n>`, so a test
//!   never touches a cgroup it did not create;
//! - a [`Runtime`] has its own `--root` state directory and, on drop, runs
//!   `delete --force` for every container it created, then removes the
//!   cgroup directories of those containers.
//!
//! Containers always get a new mount namespace, so nothing they mount is
//! visible on the host.
//!
//! # Example
//! ```no_run
//! use corten_integration_tests::{require_root, Bundle, OutputExt, Runtime};
//!
//! require_root!();
//! let mut bundle = Bundle::new("example");
//! bundle.sh("hostname");
//! let rt = Runtime::new("example");
//! let out = rt.run("example", &bundle).assert_success("run");
//! assert_eq!(out.stdout_str().trim(), "runc");
//! ```

mod bundle;
mod cleanup;
mod console;
pub mod cri;
mod image;
mod inspect;
mod runtime;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

pub use bundle::{busybox_tarball, Bundle};
pub use cleanup::cgroup_parent;
pub use console::{read_pty, ConsoleSocket};
pub use corten_testkit::{
    allow_all_seccomp, cgroup_dirs, is_root, mounts_under, parse_mountinfo, pid_alive,
    processes_mentioning, status_field, userns_unavailable, MountInfo,
};
pub use image::oci_image_tar;
pub use inspect::{cap_hex, host_ns};
pub use runtime::{OutputExt, Runtime};

/// Where all bundles and runtime roots of the tests live.
pub const BASE_DIR: &str = "/tmp/corten-it";

/// The runtime binary under test: `$CORTEN_BIN`, or the workspace's release build.
pub fn runtime_bin() -> PathBuf {
    env_path_or("CORTEN_BIN", "target/release/corten")
}

/// The path in environment variable `var` when it is set and not empty,
/// else `in_workspace` relative to the workspace root.
pub fn env_path_or(var: &str, in_workspace: &str) -> PathBuf {
    match std::env::var_os(var) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/..")).join(in_workspace),
    }
}

/// Skip the current test (print `SKIP: <reason>` to stderr and return) unless
/// it runs as root. Use as the first statement of every test.
#[macro_export]
macro_rules! require_root {
    () => {
        if !$crate::is_root() {
            // Not a skip: a run without root tests nothing and must not
            // be reported as passing.
            panic!("corten integration tests need root (effective uid 0)");
        }
    };
}

/// Records that a test (or one check of it) was skipped: prints
/// `SKIP <test>: <reason>` to stderr and appends it to the file named by
/// `CORTEN_IT_SKIP_LOG` (default `/tmp/corten-it/skips.log`), which
/// `make integration` prints and counts after the run, so skips are never
/// hidden behind a passing test.
pub fn skip(test: &str, reason: &str) {
    use std::io::Write;
    let line = format!("SKIP {test}: {reason}");
    eprintln!("{line}");
    let path = std::env::var_os("CORTEN_IT_SKIP_LOG").map_or_else(
        || std::path::PathBuf::from(BASE_DIR).join("skips.log"),
        std::path::PathBuf::from,
    );
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
    {
        // One write: tests running in parallel append whole lines.
        let _ = f.write_all(format!("{line}\n").as_bytes());
    }
}

/// Skips the calling test (`skip` with the reason, then `return`) where no
/// user namespace can be created.
#[macro_export]
macro_rules! require_userns {
    ($test:expr) => {
        if let Some(why) = $crate::userns_unavailable() {
            $crate::skip($test, &why);
            return;
        }
    };
}

/// This process's hard `RLIMIT_NOFILE`: no container can be given more.
pub fn nofile_hard_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: limit is a valid, writable rlimit for the duration of the call.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    assert_eq!(rc, 0, "getrlimit: {}", std::io::Error::last_os_error());
    limit.rlim_max
}

/// A name unique within this test process: `<prefix>-<pid>-<n>`.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{n}", std::process::id())
}

/// `timeout` multiplied by `CORTEN_IT_TIME_SCALE` (an integer, default 1).
/// The emulated (TCG) VMs set it: there a `ctr run` takes about 1.5 s of
/// CPU, twenty at once take 30 s, and bounds sized for a real machine fail
/// on a busy one although nothing hangs. Only for bounds on things that are
/// expected to happen: a bound that proves something does *not* happen must
/// stay as it is.
pub fn scaled(timeout: Duration) -> Duration {
    static SCALE: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    let scale = *SCALE.get_or_init(|| {
        std::env::var("CORTEN_IT_TIME_SCALE")
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|&n| n >= 1)
            .unwrap_or(1)
    });
    timeout * scale
}

/// Poll `probe` until it returns `Some` or `timeout` ([`scaled`]) passes
/// ([`corten_testkit::wait_for`]).
pub fn wait_for<T>(timeout: Duration, probe: impl FnMut() -> Option<T>) -> Option<T> {
    corten_testkit::wait_for(scaled(timeout), probe)
}

/// [`wait_for`] for a condition.
pub fn wait_until(timeout: Duration, condition: impl FnMut() -> bool) -> bool {
    corten_testkit::wait_until(scaled(timeout), condition)
}

/// Whether `text` is an RFC 3339 timestamp such as `2024-01-02T03:04:05.123456789Z`
/// or `2024-01-02T03:04:05+01:00`.
pub fn is_rfc3339(text: &str) -> bool {
    let b = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| {
        b.get(range.clone())
            .is_some_and(|s| s.iter().all(u8::is_ascii_digit))
    };
    if b.len() < 20
        || !digits(0..4)
        || b[4] != b'-'
        || !digits(5..7)
        || b[7] != b'-'
        || !digits(8..10)
        || !matches!(b[10], b'T' | b't')
        || !digits(11..13)
        || b[13] != b':'
        || !digits(14..16)
        || b[16] != b':'
        || !digits(17..19)
    {
        return false;
    }
    let mut rest = &text[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return false;
        }
        rest = &frac[n..];
    }
    match rest.as_bytes() {
        [b'Z' | b'z'] => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] => [h1, h2, m1, m2].iter().all(|c| c.is_ascii_digit()),
        _ => false,
    }
}

/// `name` in a directory of `PATH`, if there is one.
pub fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// Runs `script` with `sh -c` in a private mount namespace of its own
/// (`unshare --mount --propagation private`), in `dir`, so that whatever it
/// mounts never reaches the host; stderr is inherited. Returns the exit
/// status and stdout, or fails the test when the run takes longer than
/// `timeout` ([`scaled`]).
pub fn run_in_private_mount_ns(
    dir: &std::path::Path,
    script: &str,
    timeout: Duration,
) -> (std::process::ExitStatus, String) {
    let out_path = std::path::Path::new(BASE_DIR).join(unique_name("mntns-out"));
    std::fs::create_dir_all(BASE_DIR).expect("create the test directory");
    let mut child = std::process::Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", script])
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&out_path).expect("output file"))
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .expect("run unshare");
    let status = wait_for(timeout, || child.try_wait().expect("wait")).unwrap_or_else(|| {
        let _ = child.kill();
        let _ = child.wait();
        panic!("`{script}` did not finish in {timeout:?}")
    });
    let out = std::fs::read_to_string(&out_path).unwrap_or_default();
    let _ = std::fs::remove_file(&out_path);
    (status, out)
}

/// Makes the system calls in `rules` fail with their errno in the process
/// `cmd` starts (a seccomp filter installed before exec, inherited by
/// everything it starts), as on a kernel without them (ENOSYS) or under a
/// profile that forbids them (EPERM). The filter is built here, before the
/// fork; the child only installs it.
pub fn deny_syscalls(cmd: &mut std::process::Command, rules: &[(libc::c_long, i32)]) {
    use std::os::unix::process::CommandExt;
    const LD_W_ABS: u16 = 0x20;
    const JEQ_K: u16 = 0x15;
    const RET_K: u16 = 0x06;
    const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
    const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
    let insn = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
    // The syscall number is at offset 0 of seccomp_data.
    let mut filter = vec![insn(LD_W_ABS, 0, 0, 0)];
    for &(nr, errno) in rules {
        let nr = u32::try_from(nr).expect("syscall number");
        let errno = u32::try_from(errno).expect("errno");
        filter.push(insn(JEQ_K, 0, 1, nr));
        filter.push(insn(RET_K, 0, 0, SECCOMP_RET_ERRNO | errno));
    }
    filter.push(insn(RET_K, 0, 0, SECCOMP_RET_ALLOW));
    let hook = move || {
        let prog = libc::sock_fprog {
            len: u16::try_from(filter.len()).unwrap_or(u16::MAX),
            filter: filter.as_ptr().cast_mut(),
        };
        // SAFETY: prog points to the filter, alive for the call; the
        // kernel copies it. prctl is async-signal-safe.
        let rc = unsafe {
            libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &prog as *const libc::sock_fprog,
            )
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    };
    // SAFETY: the hook only reads its captured filter and calls prctl,
    // which is async-signal-safe; it allocates nothing.
    unsafe { cmd.pre_exec(hook) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339() {
        assert!(is_rfc3339("2026-11-22T08:58:54.906706554Z"));
        assert!(is_rfc3339("2026-11-22T08:58:54Z"));
        assert!(is_rfc3339("2026-11-22T08:58:54+01:00"));
        assert!(!is_rfc3339("2026-11-22 08:58:54"));
        assert!(!is_rfc3339("2026-11-22T08:58:54."));
        assert!(!is_rfc3339("1700000000"));
    }
}
