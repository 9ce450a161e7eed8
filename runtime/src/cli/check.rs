//! `corten check`: whether this host can run corten's containers, and which
//! of the kernel features corten uses it has. Each check probes the kernel
//! itself (a call it refuses before doing anything, see `sys::probe`, and
//! whose answer tells a kernel with the call from one without it or a
//! seccomp profile refusing it) or reads what the kernel and the system
//! publish; nothing is changed (for a user without `--root`, the state
//! root under `$XDG_RUNTIME_DIR` is made, as by every command).
//!
//! A status is `ok` (works), `fallback` (missing; corten works around it),
//! `missing` (what needs it is refused with an error), `info` (a fact about
//! the host), or `error` (corten cannot run containers here): the exit code
//! is 1 when any check is an `error`, else 0.

use std::io;
use std::os::fd::AsFd;
use std::path::Path;

use serde::Serialize;

use super::Globals;
use crate::sys::probe;

/// The oldest kernel corten supports: what its unconditional calls need
/// (`TIOCGPTPEER` 4.13, `SECCOMP_RET_KILL_PROCESS` 4.14, cgroup v2's
/// threaded mode 4.14) and the oldest long-term kernel in a supported
/// distribution (RHEL 8 and Debian 10 ship 4.18/4.19).
pub const MIN_KERNEL: (u32, u32) = (4, 18);

/// `check [--format text|json]`
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Output format [possible values: text, json].
    #[arg(long, short = 'f', default_value = "text", value_name = "FORMAT")]
    format: String,
}

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Status {
    Ok,
    Fallback,
    Missing,
    Info,
    Error,
}

impl Status {
    fn word(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Fallback => "fallback",
            Status::Missing => "missing",
            Status::Info => "info",
            Status::Error => "error",
        }
    }
}

/// One line of the report.
#[derive(Debug, Serialize)]
struct Check {
    name: &'static str,
    status: Status,
    detail: String,
}

fn check(name: &'static str, status: Status, detail: impl Into<String>) -> Check {
    Check {
        name,
        status,
        detail: detail.into(),
    }
}

/// The report as JSON: `ready` (no `error`), the kernel, every check.
#[derive(Debug, Serialize)]
struct Report {
    ready: bool,
    kernel: String,
    arch: &'static str,
    checks: Vec<Check>,
}

/// Runs `check`; the exit code is 1 when corten cannot run containers here.
pub fn run(g: &Globals, a: Args) -> anyhow::Result<u8> {
    if !matches!(a.format.as_str(), "text" | "json") {
        anyhow::bail!("invalid format {:?}: use text or json", a.format);
    }
    let release = probe::kernel_release();
    let checks = checks(g, &release);
    let report = Report {
        ready: checks.iter().all(|c| c.status != Status::Error),
        kernel: release,
        arch: std::env::consts::ARCH,
        checks,
    };
    if a.format == "json" {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", text(&report));
    }
    Ok(u8::from(!report.ready))
}

fn text(r: &Report) -> String {
    let verdict = if r.ready {
        "this host can run corten's containers"
    } else {
        "corten cannot run containers on this host (see the error lines)"
    };
    let mut out = format!(
        "corten check: {verdict} (Linux {}, {})\n\n{:<9} {:<26} {}\n",
        r.kernel, r.arch, "STATUS", "CHECK", "DETAIL"
    );
    for c in &r.checks {
        out.push_str(&format!(
            "{:<9} {:<26} {}\n",
            c.status.word(),
            c.name,
            c.detail
        ));
    }
    out
}

/// `(major, minor)` of a release string such as `6.1.0-28-amd64`.
pub fn parse_release(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// What a probe's answer says.
enum Answer {
    /// The kernel's answer for a call it has (`want`, or success).
    Known,
    /// ENOSYS: the kernel (or a profile) does not have it.
    Missing,
    /// Another error: most likely a seccomp profile refusing the call.
    Refused(io::Error),
}

/// Classifies a probe's error against what a kernel with the call answers
/// (`want`: an errno, or `None` for success).
fn answer(e: Option<io::Error>, want: Option<i32>) -> Answer {
    match e {
        None if want.is_none() => Answer::Known,
        Some(e) if e.raw_os_error() == want => Answer::Known,
        Some(e) if e.raw_os_error() == Some(libc::ENOSYS) => Answer::Missing,
        Some(e) => Answer::Refused(e),
        None => Answer::Refused(io::Error::other("succeeded where an error was expected")),
    }
}

/// "not available (ENOSYS: Linux older than 5.3, or a seccomp profile …)"
fn why_missing(since: &str) -> String {
    format!("not available (ENOSYS: Linux older than {since}, or a seccomp profile around corten forbids it)")
}

/// A probed call's line: `ok`, or `unavailable` with `without` said.
fn syscall_check(
    name: &'static str,
    since: &str,
    a: Answer,
    ok: &str,
    unavailable: Status,
    without: &str,
) -> Check {
    match a {
        Answer::Known => check(name, Status::Ok, format!("available (Linux {since}): {ok}")),
        Answer::Missing => check(
            name,
            unavailable,
            format!("{}; {without}", why_missing(since)),
        ),
        Answer::Refused(e) => check(
            name,
            unavailable,
            format!("refused ({e}: a seccomp profile around corten?); {without}"),
        ),
    }
}

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

fn checks(g: &Globals, release: &str) -> Vec<Check> {
    let mut out = Vec::new();
    out.push(match parse_release(release) {
        Some(v) if v >= MIN_KERNEL => check(
            "kernel",
            Status::Ok,
            format!(
                "Linux {release} (corten needs {}.{} or newer)",
                MIN_KERNEL.0, MIN_KERNEL.1
            ),
        ),
        Some(_) => check(
            "kernel",
            Status::Error,
            format!(
                "Linux {release} is older than {}.{}, the oldest corten supports",
                MIN_KERNEL.0, MIN_KERNEL.1
            ),
        ),
        None => check(
            "kernel",
            Status::Info,
            format!("cannot read the version from {release:?}"),
        ),
    });
    out.push(syscall_check(
        "clone3",
        "5.3",
        answer(probe::clone3(), Some(libc::EINVAL)),
        "the init and exec'd processes are cloned with it",
        Status::Fallback,
        "corten uses clone",
    ));
    out.push(syscall_check(
        "openat2",
        "5.6",
        answer(probe::openat2(), Some(libc::EINVAL)),
        "paths in the rootfs resolve with RESOLVE_IN_ROOT",
        Status::Fallback,
        "corten resolves paths in the rootfs one component at a time, never leaving it",
    ));
    out.push(syscall_check(
        "close_range",
        "5.11, for CLOSE_RANGE_CLOEXEC",
        answer(probe::close_range_cloexec(), None),
        "descriptors are marked close-on-exec in one call",
        Status::Fallback,
        "corten marks them close-on-exec one by one",
    ));
    let v2 = crate::cgroups::is_v2();
    let unified = Path::new("/sys/fs/cgroup/unified/cgroup.controllers").exists();
    out.push(if !v2 && !unified {
        check(
            "CLONE_INTO_CGROUP",
            Status::Info,
            "not used: the host has no cgroup v2 hierarchy",
        )
    } else {
        match std::fs::File::open("/").map(|f| probe::clone_into_cgroup(f.as_fd())) {
            Ok(Some(e)) if e.raw_os_error() == Some(libc::EBADF) => check(
                "CLONE_INTO_CGROUP",
                Status::Ok,
                if v2 {
                    "available (Linux 5.7): the init is born in its cgroup"
                } else {
                    "available (Linux 5.7): the init is born in its cgroup of the unified hierarchy"
                },
            ),
            Ok(e) => check(
                "CLONE_INTO_CGROUP",
                Status::Fallback,
                format!(
                    "not available ({}): the init joins its cgroup right after the clone",
                    e.map_or_else(|| "no error".to_string(), |e| e.to_string())
                ),
            ),
            Err(e) => check(
                "CLONE_INTO_CGROUP",
                Status::Info,
                format!("not probed: open /: {e}"),
            ),
        }
    });
    out.push(syscall_check(
        "open_tree",
        "5.2",
        answer(probe::open_tree(), Some(libc::ENOENT)),
        "the init runs corten from a read-only bind mount of its binary",
        Status::Fallback,
        "the init runs corten from a sealed memfd copy of its binary",
    ));
    let setattr = syscall_check(
        "mount_setattr",
        "5.12",
        answer(probe::mount_setattr(), Some(libc::EINVAL)),
        "recursive mount attributes (rro, rnosuid, …) work",
        Status::Missing,
        "recursive mount attributes (rro, …) are refused",
    );
    let has_setattr = setattr.status == Status::Ok;
    out.push(setattr);
    out.push(if has_setattr {
        check(
            "idmapped mounts",
            Status::Ok,
            "MOUNT_ATTR_IDMAP available; each filesystem needs its own support (ext4, xfs: 5.12; btrfs: 5.15; overlayfs: 5.19; tmpfs: 6.3)",
        )
    } else {
        check(
            "idmapped mounts",
            Status::Missing,
            "need mount_setattr (Linux 5.12): mounts with uidMappings/gidMappings are refused",
        )
    });
    let seccomp =
        read("/proc/self/status").is_some_and(|s| s.lines().any(|l| l.starts_with("Seccomp:")));
    out.push(if seccomp {
        check("seccomp", Status::Ok, "filters available: linux.seccomp is applied")
    } else {
        check(
            "seccomp",
            Status::Missing,
            "the kernel has no seccomp (no Seccomp: line in /proc/self/status): containers with linux.seccomp are refused",
        )
    });
    const SECCOMP_RET_USER_NOTIF: u32 = 0x7fc0_0000;
    let notify = seccomp
        && probe::seccomp_action(SECCOMP_RET_USER_NOTIF).is_none()
        && matches!(
            answer(probe::pidfd_getfd(), Some(libc::EBADF)),
            Answer::Known
        );
    out.push(if notify {
        check(
            "seccomp user notification",
            Status::Ok,
            "SCMP_ACT_NOTIFY works: the listener reaches listenerPath (pidfd_getfd, Linux 5.6)",
        )
    } else {
        check(
            "seccomp user notification",
            Status::Missing,
            "needs SECCOMP_RET_USER_NOTIF (5.0) and pidfd_getfd (5.6): SCMP_ACT_NOTIFY is refused",
        )
    });
    cgroup_checks(&mut out, v2, unified);
    out.push(if Path::new("/run/systemd/system").is_dir() {
        check("systemd", Status::Ok, "systemd is PID 1: --systemd-cgroup (SystemdCgroup = true) works")
    } else {
        check(
            "systemd",
            Status::Info,
            "systemd is not running: --systemd-cgroup (SystemdCgroup = true) is refused; cgroupfs works",
        )
    });
    userns_checks(&mut out);
    out.push(lsm_check(
        "AppArmor",
        crate::process::attrs::apparmor_enabled(),
        "process.apparmorProfile is applied",
        "process.apparmorProfile is refused (as runc)",
    ));
    out.push(lsm_check(
        "SELinux",
        crate::process::attrs::selinux_enabled(),
        "process.selinuxLabel and mountLabel are applied",
        "process.selinuxLabel is refused (as runc)",
    ));
    out.push(check(
        "state root",
        Status::Info,
        format!(
            "{} ({})",
            g.root.display(),
            if g.root.is_dir() {
                "exists"
            } else {
                "made by the first create"
            }
        ),
    ));
    out
}

fn lsm_check(name: &'static str, enabled: bool, yes: &str, no: &str) -> Check {
    if enabled {
        check(name, Status::Ok, format!("enabled: {yes}"))
    } else {
        check(name, Status::Info, format!("not enabled: {no}"))
    }
}

/// `unified`: a hybrid host's v2 hierarchy is mounted.
fn cgroup_checks(out: &mut Vec<Check>, v2: bool, unified: bool) {
    if v2 {
        out.push(check(
            "cgroups",
            Status::Ok,
            "cgroup v2 (unified hierarchy)",
        ));
        let available = read("/sys/fs/cgroup/cgroup.controllers").unwrap_or_default();
        out.push(check(
            "cgroup controllers",
            if available.contains("memory") && available.contains("pids") {
                Status::Ok
            } else {
                Status::Missing
            },
            format!(
                "available at the root: {available} (limits of a missing controller are refused)"
            ),
        ));
        if !nix::unistd::geteuid().is_root() {
            let uid = nix::unistd::getuid();
            let path = format!(
                "/sys/fs/cgroup/user.slice/user-{uid}.slice/user@{uid}.service/cgroup.controllers"
            );
            out.push(match read(&path) {
                Some(c) if !c.is_empty() => check(
                    "delegated controllers",
                    Status::Ok,
                    format!("systemd delegates to uid {uid}: {c}"),
                ),
                _ => check(
                    "delegated controllers",
                    Status::Missing,
                    format!("nothing delegated to uid {uid} ({path}): a rootless container gets no cgroup limits"),
                ),
            });
        }
        return;
    }
    let v1: Vec<String> = read("/proc/cgroups")
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 4 && f[3] == "1").then(|| f[0].to_string())
        })
        .collect();
    if v1.is_empty() && !unified {
        out.push(check(
            "cgroups",
            Status::Error,
            "no cgroup hierarchy is mounted at /sys/fs/cgroup",
        ));
        return;
    }
    let mode = if unified {
        "hybrid: v1 controllers, v2 at /sys/fs/cgroup/unified (no controllers there)"
    } else {
        "cgroup v1"
    };
    out.push(check(
        "cgroups",
        Status::Ok,
        format!("{mode}; Docker, containerd and Kubernetes nodes increasingly expect pure v2"),
    ));
    out.push(check(
        "cgroup controllers",
        if v1.iter().any(|c| c == "memory") {
            Status::Ok
        } else {
            Status::Missing
        },
        format!("enabled v1 controllers: {}", v1.join(" ")),
    ));
}

fn userns_checks(out: &mut Vec<Check>) {
    let max: u64 = read("/proc/sys/user/max_user_namespaces")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let unprivileged = read("/proc/sys/kernel/unprivileged_userns_clone");
    let restricted = read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns");
    out.push(if max == 0 {
        check(
            "user namespaces",
            Status::Missing,
            "user.max_user_namespaces is 0: containers with a user namespace and rootless corten are refused",
        )
    } else if unprivileged.as_deref() == Some("0") {
        check(
            "user namespaces",
            Status::Ok,
            "available to root only (kernel.unprivileged_userns_clone = 0): rootless corten does not work",
        )
    } else if restricted.as_deref() == Some("1") {
        check(
            "user namespaces",
            Status::Ok,
            "available; AppArmor restricts unprivileged ones (apparmor_restrict_unprivileged_userns = 1): rootless corten needs a profile allowing userns",
        )
    } else {
        check(
            "user namespaces",
            Status::Ok,
            format!("available, also without privileges (max {max})"),
        )
    });
    let (name, uid) = invoking_user();
    let has = |file: &str| {
        read(file).is_some_and(|t| {
            t.lines()
                .any(|l| l.split(':').next().is_some_and(|u| u == name || u == uid))
        })
    };
    let tools = ["newuidmap", "newgidmap"]
        .iter()
        .all(|t| crate::process::idmap::find(t).is_some());
    out.push(match (has("/etc/subuid") && has("/etc/subgid"), tools) {
        (true, true) => check(
            "subordinate ids",
            Status::Ok,
            format!("{name} has ranges in /etc/subuid and /etc/subgid; newuidmap/newgidmap found"),
        ),
        (true, false) => check(
            "subordinate ids",
            Status::Missing,
            format!("{name} has ranges, but newuidmap/newgidmap are missing (Debian: uidmap): rootless containers map only the user's own id"),
        ),
        (false, _) => check(
            "subordinate ids",
            Status::Info,
            format!("no range for {name} in /etc/subuid and /etc/subgid: rootless containers map only the user's own id"),
        ),
    });
}

/// The user who asked (`$SUDO_USER` under sudo), as name and uid.
fn invoking_user() -> (String, String) {
    let uid = std::env::var("SUDO_UID").unwrap_or_else(|_| nix::unistd::getuid().to_string());
    let name = std::env::var("SUDO_USER").ok().or_else(|| {
        read("/etc/passwd")?.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() > 2 && f[2] == uid).then(|| f[0].to_string())
        })
    });
    (name.unwrap_or_else(|| uid.clone()), uid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_parse() {
        assert_eq!(parse_release("6.1.0-28-amd64"), Some((6, 1)));
        assert_eq!(parse_release("4.18.0-553.el8_10.x86_64"), Some((4, 18)));
        assert_eq!(parse_release("5.10"), Some((5, 10)));
        assert_eq!(parse_release("x"), None);
        assert!(parse_release("4.19.0").unwrap() >= MIN_KERNEL);
        assert!(parse_release("4.9.0").unwrap() < MIN_KERNEL);
    }
}
