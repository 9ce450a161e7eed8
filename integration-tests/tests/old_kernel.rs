//! corten on a kernel without the newer system calls it prefers (issue
//! 21): clone3 (5.3), openat2 (5.6), close_range (5.9), fsopen (5.2) answered with ENOSYS
//! by a seccomp filter around corten, as an older kernel answers. Without
//! clone3 there is no CLONE_INTO_CGROUP either, so on a cgroup v2 host
//! (the cgroup v2 VM) that fallback is exercised too. The whole lifecycle
//! must work, paths in the rootfs must still resolve inside it, and the
//! debug log says which fallbacks were taken.

use std::fs;
use std::path::Path;

use corten_integration_tests::{deny_syscalls, require_root, Bundle, OutputExt, Runtime};

/// What an old kernel lacks. Without `fsopen` (5.2) corten cannot make a
/// private procfs, so its writes under `/proc` go through the host's
/// `/proc` with `openat2(RESOLVE_NO_XDEV | …)` emulated: the weakest path.
const MISSING: [(libc::c_long, i32); 4] = [
    (libc::SYS_clone3, libc::ENOSYS),
    (libc::SYS_openat2, libc::ENOSYS),
    (libc::SYS_close_range, libc::ENOSYS),
    (libc::SYS_fsopen, libc::ENOSYS),
];

/// `corten ARGS` under the filter.
fn old_kernel(rt: &Runtime, args: &[&str]) -> std::process::Output {
    let mut cmd = rt.command();
    cmd.args(args);
    deny_syscalls(&mut cmd, &MISSING);
    rt.output(cmd)
}

#[test]
fn the_lifecycle_works_without_clone3_openat2_and_close_range() {
    require_root!();
    let rt = Runtime::new("old-kernel");
    let log = rt.scratch().join("debug.log");
    let rt = rt.with_global_args(&["--debug", "--log", log.to_str().expect("utf-8")]);
    let mut b = Bundle::new("old-kernel");
    // A symlink planted in the rootfs that points out of it, and a mount
    // whose destination goes through it: resolved in user space now, it
    // must still land inside the rootfs.
    let outside = rt.scratch().join("escaped");
    std::os::unix::fs::symlink(
        format!("../../../../../../../..{}", outside.display()),
        b.rootfs().join("evil"),
    )
    .expect("symlink");
    b.push(
        "/mounts",
        serde_json::json!({"destination": "/evil/inside", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]}),
    );
    b.set("/root/readonly", serde_json::json!(false));
    b.sh("stat -f -c %T /evil/inside > /fstype; sleep 1000");
    b.save();
    let id = b.name().to_string();
    rt.track_id(&id, &b);
    let pid_file = rt.pid_file(&id);
    let bundle = b.path().to_str().expect("utf-8").to_string();
    old_kernel(
        &rt,
        &[
            "create",
            "--bundle",
            &bundle,
            "--pid-file",
            pid_file.to_str().expect("utf-8"),
            &id,
        ],
    )
    .assert_success("create without clone3/openat2/close_range");
    old_kernel(&rt, &["start", &id]).assert_success("start");
    let fstype = b.rootfs().join("fstype");
    let seen = corten_integration_tests::wait_until(
        corten_integration_tests::scaled(std::time::Duration::from_secs(10)),
        || fs::read_to_string(&fstype).is_ok_and(|t| t.trim() == "tmpfs"),
    );
    assert!(
        seen,
        "/evil/inside is not the tmpfs inside the container: {:?}",
        fs::read_to_string(&fstype)
    );
    assert!(
        !outside.exists(),
        "the mount's destination was made outside the rootfs: {}",
        outside.display()
    );
    assert!(
        b.rootfs()
            .join(outside.strip_prefix("/").expect("absolute"))
            .join("inside")
            .is_dir(),
        "the symlink's target was not made inside the rootfs"
    );
    // The init is in its cgroup although it could not be born there.
    let pid = rt.pid(&id);
    let cgroups = fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("cgroup");
    assert!(
        cgroups.contains(b.cgroup_path()),
        "init {pid} is not in {}: {cgroups}",
        b.cgroup_path()
    );
    let out = old_kernel(&rt, &["exec", &id, "sh", "-c", "echo exec-ok"]).assert_success("exec");
    assert_eq!(out.stdout_str().trim(), "exec-ok");
    old_kernel(&rt, &["delete", "--force", &id]).assert_success("delete --force");
    assert!(
        !Path::new(&rt.root()).join(&id).exists(),
        "state left after delete"
    );
    let text = fs::read_to_string(&log).expect("debug log");
    for said in [
        "clone3: not available (ENOSYS); using clone",
        "openat2: not available (ENOSYS); resolving paths one component at a time",
    ] {
        assert!(
            text.contains(said),
            "the debug log does not say {said:?}:\n{text}"
        );
    }
    if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
        || std::path::Path::new("/sys/fs/cgroup/unified/cgroup.controllers").exists()
    {
        assert!(
            text.contains("CLONE_INTO_CGROUP refused"),
            "the CLONE_INTO_CGROUP fallback is not in the log:\n{text}"
        );
    }
}

#[test]
fn a_time_namespace_works_without_clone3() {
    require_root!();
    if !Path::new("/proc/self/ns/time").exists() {
        corten_integration_tests::skip(
            "old_kernel::a_time_namespace_works_without_clone3",
            "this kernel has no time namespaces",
        );
        return;
    }
    // corten unshares the time namespace and clones the init after, which
    // clone can do as well as clone3.
    let rt = Runtime::new("old-kernel-timens");
    let mut b = Bundle::new("old-kernel-timens");
    b.push_namespace("time");
    b.sh("readlink /proc/self/ns/time");
    b.save();
    let id = b.name().to_string();
    rt.track_id(&id, &b);
    let bundle = b.path().to_str().expect("utf-8").to_string();
    let out = old_kernel(&rt, &["run", "--bundle", &bundle, &id])
        .assert_success("run with a time namespace");
    let host = fs::read_link("/proc/self/ns/time").expect("host time ns");
    let inside = out.stdout_str();
    assert!(inside.trim().starts_with("time:["), "{inside:?}");
    assert_ne!(
        inside.trim(),
        host.to_string_lossy(),
        "the container shares the host's time namespace"
    );
}

#[test]
fn check_reports_the_fallbacks() {
    require_root!();
    let rt = Runtime::new("old-kernel-check");
    let out = old_kernel(&rt, &["check", "--format", "json"]).assert_success("check");
    let report: serde_json::Value = serde_json::from_str(&out.stdout_str()).expect("JSON");
    assert_eq!(report["ready"], true, "{report}");
    for name in ["clone3", "openat2", "close_range"] {
        let c = report["checks"]
            .as_array()
            .expect("checks")
            .iter()
            .find(|c| c["name"] == name)
            .expect("check");
        assert_eq!(c["status"], "fallback", "{c}");
        assert!(
            c["detail"].as_str().unwrap_or_default().contains("ENOSYS"),
            "{c}"
        );
    }
}
