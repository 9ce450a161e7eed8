//! /dev: the default devices and links, `linux.devices` entries, and the
//! device cgroup.

use corten_integration_tests::{require_root, Bundle, Runtime};
use serde_json::json;

fn run(test: &str, b: &mut Bundle, script: &str) -> String {
    b.sh(script);
    let rt = Runtime::new(test);
    rt.run_ok(b.name(), b)
}

/// `stat` line for a device: type, hex major:minor, octal mode, owner.
fn stat_script(paths: &[&str]) -> String {
    paths
        .iter()
        .map(|p| format!("stat -c '%n %F %t:%T %a %u:%g' {p}; "))
        .collect()
}

#[test]
fn default_devices_exist_with_the_right_numbers() {
    require_root!();
    let mut b = Bundle::new("dev-default");
    let out = run(
        "dev-default",
        &mut b,
        &stat_script(&[
            "/dev/null",
            "/dev/zero",
            "/dev/full",
            "/dev/random",
            "/dev/urandom",
            "/dev/tty",
        ]),
    );
    let expected = [
        "/dev/null character special file 1:3 666 0:0",
        "/dev/zero character special file 1:5 666 0:0",
        "/dev/full character special file 1:7 666 0:0",
        "/dev/random character special file 1:8 666 0:0",
        "/dev/urandom character special file 1:9 666 0:0",
        "/dev/tty character special file 5:0 666 0:0",
    ];
    assert_eq!(out.lines().collect::<Vec<_>>(), expected);
}

#[test]
fn default_devices_work() {
    require_root!();
    let mut b = Bundle::new("dev-usable");
    let out = run(
        "dev-usable",
        &mut b,
        "echo x > /dev/null && echo null-ok; head -c 16 /dev/zero | wc -c; head -c 16 /dev/urandom | wc -c; \
         echo x > /dev/full 2>/dev/null || echo full-refused",
    );
    assert_eq!(out, "null-ok\n16\n16\nfull-refused\n");
}

#[test]
fn dev_symlinks() {
    require_root!();
    let mut b = Bundle::new("dev-links");
    let out = run(
        "dev-links",
        &mut b,
        "for l in fd stdin stdout stderr ptmx; do echo $l $(readlink /dev/$l); done; test -c /dev/pts/ptmx && echo pts-ok",
    );
    let expected = [
        "fd /proc/self/fd",
        "stdin /proc/self/fd/0",
        "stdout /proc/self/fd/1",
        "stderr /proc/self/fd/2",
        "ptmx pts/ptmx",
        "pts-ok",
    ];
    assert_eq!(out.lines().collect::<Vec<_>>(), expected);
}

#[test]
fn dev_directories() {
    require_root!();
    let mut b = Bundle::new("dev-dirs");
    let out = run(
        "dev-dirs",
        &mut b,
        "for d in pts shm mqueue; do test -d /dev/$d && echo $d; done",
    );
    assert_eq!(out, "pts\nshm\nmqueue\n");
}

#[test]
fn linux_devices_entries_are_created() {
    require_root!();
    let mut b = Bundle::new("dev-entries");
    b.push(
        "/linux/devices",
        json!({ "path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o666, "uid": 0, "gid": 0 }),
    )
    .push(
        "/linux/devices",
        json!({ "path": "/dev/my-null", "type": "c", "major": 1, "minor": 3, "fileMode": 0o600, "uid": 1000, "gid": 1000 }),
    )
    .push(
        "/linux/devices",
        json!({ "path": "/dev/sub/loop200", "type": "b", "major": 7, "minor": 200, "fileMode": 0o640, "uid": 0, "gid": 0 }),
    );
    let out = run(
        "dev-entries",
        &mut b,
        &stat_script(&["/dev/fuse", "/dev/my-null", "/dev/sub/loop200"]),
    );
    let expected = [
        "/dev/fuse character special file a:e5 666 0:0",
        "/dev/my-null character special file 1:3 600 1000:1000",
        "/dev/sub/loop200 block special file 7:c8 640 0:0",
    ];
    assert_eq!(out.lines().collect::<Vec<_>>(), expected);
}

#[test]
fn device_cgroup_denies_unlisted_devices() {
    require_root!();
    // /dev/fuse exists, but the default policy (deny all, allow the
    // defaults) does not grant it: opening fails with EPERM.
    let mut b = Bundle::new("dev-cgroup-deny");
    b.push(
        "/linux/devices",
        json!({ "path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o666 }),
    );
    // Only the open is attempted (as in the test below): reading /dev/fuse
    // fails with EPERM from the driver even where the cgroup allows it.
    let out = run(
        "dev-cgroup-deny",
        &mut b,
        "(exec 3</dev/fuse && echo opened) 2>&1; true",
    );
    assert!(out.contains("Operation not permitted"), "{out}");
    assert!(!out.contains("opened"), "{out}");
}

#[test]
fn device_cgroup_allows_listed_devices() {
    require_root!();
    let mut b = Bundle::new("dev-cgroup-allow");
    b.push(
        "/linux/devices",
        json!({ "path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o666 }),
    )
    .push(
        "/linux/resources/devices",
        json!({ "allow": true, "type": "c", "major": 10, "minor": 229, "access": "rwm" }),
    );
    // Opening /dev/fuse succeeds; reading it without a mount fails with
    // EPERM from the fuse driver, so only the open is checked.
    let out = run(
        "dev-cgroup-allow",
        &mut b,
        "exec 3</dev/fuse && echo opened",
    );
    assert_eq!(out, "opened\n");
}
