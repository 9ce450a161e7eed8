//! Namespaces: each of the eight created new, joined by path, and the
//! settings that live in them (hostname, domainname, sysctls).

use std::fs;

use corten_integration_tests::{host_ns, require_root, Bundle, OutputExt, Runtime};
use serde_json::json;

/// `/proc/self/ns` names of the config's namespace types.
const NS_FILES: [(&str, &str); 8] = [
    ("pid", "pid"),
    ("mount", "mnt"),
    ("uts", "uts"),
    ("ipc", "ipc"),
    ("network", "net"),
    ("cgroup", "cgroup"),
    ("user", "user"),
    ("time", "time"),
];

/// A script printing `readlink /proc/self/ns/<file>` for each of `files`.
fn readlink_script(files: &[&str]) -> String {
    files
        .iter()
        .map(|f| format!("readlink /proc/self/ns/{f}"))
        .collect::<Vec<_>>()
        .join("; ")
}

fn with_user_namespace(b: &mut Bundle) {
    let map = json!([{ "containerID": 0, "hostID": 100000, "size": 65536 }]);
    b.user_namespace(map.clone(), map);
}

fn with_time_namespace(b: &mut Bundle) {
    b.push_namespace("time").set(
        "/linux/timeOffsets",
        json!({ "boottime": { "secs": 1_000_000, "nanosecs": 0 }, "monotonic": { "secs": 500_000, "nanosecs": 0 } }),
    );
}

/// Run `script` with the bundle's namespaces and assert that the container's
/// namespace of each `file` differs from the host's.
fn assert_new_namespaces(b: &mut Bundle, files: &[&str]) {
    b.sh(&readlink_script(files));
    let rt = Runtime::new("ns");
    let out = rt.run_ok(b.name(), b);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), files.len(), "{out}");
    for (file, line) in files.iter().zip(lines) {
        let host = host_ns(file);
        assert!(
            line.starts_with(&format!("{file}:[")),
            "unexpected readlink output {line:?}"
        );
        assert_ne!(
            line, host,
            "the container shares the host's {file} namespace"
        );
    }
}

#[test]
fn all_eight_namespaces_are_new() {
    require_root!();
    let mut b = Bundle::new("ns-all");
    for (kind, _) in NS_FILES {
        b.push_namespace(kind);
    }
    let mut files: Vec<&str> = NS_FILES.iter().map(|(_, f)| *f).collect();
    // Where no user namespace can be made, the other seven are checked.
    match corten_integration_tests::userns_unavailable() {
        Some(why) => {
            corten_integration_tests::skip("all_eight_namespaces_are_new (user)", &why);
            b.remove_namespace("user");
            files.retain(|f| *f != "user");
        }
        None => with_user_namespace(&mut b),
    }
    with_time_namespace(&mut b);
    assert_new_namespaces(&mut b, &files);
}

#[test]
fn pid_namespace_makes_the_process_pid_1() {
    require_root!();
    let mut b = Bundle::new("ns-pid");
    b.sh("echo $$; cat /proc/1/cmdline; echo; ls /proc | grep -c '^[0-9]'; readlink /proc/self/ns/pid");
    let rt = Runtime::new("ns-pid");
    let out = rt.run_ok(b.name(), &b);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "1", "the container process is not pid 1: {out}");
    assert!(
        lines[1].starts_with("sh\0-c\0echo $$"),
        "pid 1 cmdline: {:?}",
        lines[1]
    );
    // sh, and ls itself (grep may or may not be counted).
    let visible: usize = lines[2].parse().expect("count");
    assert!(
        visible <= 4,
        "host processes visible in the pid namespace: {visible}"
    );
    assert_ne!(lines[3], host_ns("pid"));
}

#[test]
fn mount_namespace_is_new() {
    require_root!();
    let mut b = Bundle::new("ns-mnt");
    assert_new_namespaces(&mut b, &["mnt"]);
}

#[test]
fn uts_namespace_sets_hostname() {
    require_root!();
    let host_before = fs::read_to_string("/proc/sys/kernel/hostname").expect("host hostname");
    let mut b = Bundle::new("ns-uts");
    b.set("/hostname", json!("corten-uts-test"))
        .sh("hostname; readlink /proc/self/ns/uts");
    let rt = Runtime::new("ns-uts");
    let out = rt.run_ok(b.name(), &b);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "corten-uts-test", "{out}");
    assert_ne!(lines[1], host_ns("uts"));
    assert_eq!(
        fs::read_to_string("/proc/sys/kernel/hostname").expect("host hostname"),
        host_before
    );
}

#[test]
fn uts_namespace_sets_domainname() {
    require_root!();
    let host_before = fs::read_to_string("/proc/sys/kernel/domainname").expect("host domainname");
    let mut b = Bundle::new("ns-domainname");
    b.set("/domainname", json!("corten.example"))
        .sh("cat /proc/sys/kernel/domainname");
    let rt = Runtime::new("ns-domainname");
    assert_eq!(rt.run_ok(b.name(), &b), "corten.example\n");
    assert_eq!(
        fs::read_to_string("/proc/sys/kernel/domainname").expect("host"),
        host_before
    );
}

#[test]
fn ipc_namespace_with_kernel_shmmax_sysctl() {
    require_root!();
    let host_before = fs::read_to_string("/proc/sys/kernel/shmmax").expect("host shmmax");
    let mut b = Bundle::new("ns-ipc");
    b.set("/linux/sysctl", json!({ "kernel.shmmax": "68719476736" }))
        .sh("cat /proc/sys/kernel/shmmax; readlink /proc/self/ns/ipc");
    let rt = Runtime::new("ns-ipc");
    let out = rt.run_ok(b.name(), &b);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "68719476736");
    assert_ne!(lines[1], host_ns("ipc"));
    assert_eq!(
        fs::read_to_string("/proc/sys/kernel/shmmax").expect("host shmmax"),
        host_before
    );
}

#[test]
fn network_namespace_has_only_loopback_and_own_sysctls() {
    require_root!();
    let host_before = fs::read_to_string("/proc/sys/net/ipv4/ip_forward").expect("host ip_forward");
    let wanted = if host_before.trim() == "1" { "0" } else { "1" };
    let mut b = Bundle::new("ns-net");
    b.set("/linux/sysctl", json!({ "net.ipv4.ip_forward": wanted }))
        .sh("cat /proc/sys/net/ipv4/ip_forward; readlink /proc/self/ns/net; tail -n +3 /proc/net/dev | cut -d: -f1");
    let rt = Runtime::new("ns-net");
    let out = rt.run_ok(b.name(), &b);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], wanted, "sysctl not applied: {out}");
    assert_ne!(lines[1], host_ns("net"));
    let interfaces: Vec<&str> = lines[2..].iter().map(|l| l.trim()).collect();
    assert_eq!(interfaces, ["lo"], "a new network namespace has only lo");
    assert_eq!(
        fs::read_to_string("/proc/sys/net/ipv4/ip_forward").expect("host"),
        host_before
    );
}

#[test]
fn cgroup_namespace_hides_the_cgroup_path() {
    require_root!();
    let mut b = Bundle::new("ns-cgroup");
    b.push_namespace("cgroup")
        .sh("cat /proc/self/cgroup; readlink /proc/self/ns/cgroup");
    let rt = Runtime::new("ns-cgroup");
    let out = rt.run_ok(b.name(), &b);
    let lines: Vec<&str> = out.lines().collect();
    let (cgroup_lines, ns) = lines.split_at(lines.len() - 1);
    assert_ne!(ns[0], host_ns("cgroup"));
    for line in cgroup_lines {
        if line.contains("pids") {
            assert!(
                line.ends_with(":/"),
                "cgroup path visible inside a cgroup namespace: {line}"
            );
        }
    }
    assert!(!out.contains(b.cgroup_path()), "{out}");
}

#[test]
fn cgroup_path_visible_without_cgroup_namespace() {
    require_root!();
    let mut b = Bundle::new("ns-no-cgroup");
    b.remove_namespace("cgroup").sh("cat /proc/self/cgroup");
    let rt = Runtime::new("ns-no-cgroup");
    let out = rt.run_ok(b.name(), &b);
    let pids = out
        .lines()
        .find(|l| l.contains(":pids:") || l.starts_with("0::") && !l.contains(":pids:"))
        .unwrap_or_else(|| panic!("no pids line: {out}"));
    assert!(
        pids.ends_with(b.cgroup_path()),
        "{pids} is not in {}",
        b.cgroup_path()
    );
}

#[test]
fn user_namespace_maps_ids() {
    require_root!();
    corten_integration_tests::require_userns!("user_namespace_maps_ids");
    let mut b = Bundle::new("ns-user");
    with_user_namespace(&mut b);
    b.sh("id -u; id -g; cat /proc/self/uid_map; cat /proc/self/gid_map; stat -c %u /bin/busybox; readlink /proc/self/ns/user");
    let rt = Runtime::new("ns-user");
    let out = rt.run_ok(b.name(), &b);
    let lines: Vec<String> = out
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        lines[..4],
        ["0", "0", "0 100000 65536", "0 100000 65536"],
        "{out}"
    );
    assert_eq!(
        lines[4], "65534",
        "host root's files must appear unmapped (nobody)"
    );
    assert_ne!(lines[5], host_ns("user"));
}

#[test]
fn user_namespace_process_runs_as_mapped_host_uid() {
    require_root!();
    corten_integration_tests::require_userns!("user_namespace_process_runs_as_mapped_host_uid");
    let mut b = Bundle::new("ns-user-host");
    with_user_namespace(&mut b);
    b.args(&["sleep", "1000"]);
    let rt = Runtime::new("ns-user-host");
    let id = b.name();
    rt.run_with(id, &b, &["--detach"])
        .assert_success("run --detach");
    let status = fs::read_to_string(format!("/proc/{}/status", rt.pid(id))).expect("status");
    let uid = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .expect("Uid line");
    assert_eq!(uid.split_whitespace().nth(1), Some("100000"), "{uid}");
}

#[test]
fn time_namespace_applies_offsets() {
    require_root!();
    let mut b = Bundle::new("ns-time");
    with_time_namespace(&mut b);
    b.sh("cut -d. -f1 /proc/uptime; readlink /proc/self/ns/time");
    let rt = Runtime::new("ns-time");
    let out = rt.run_ok(b.name(), &b);
    let lines: Vec<&str> = out.lines().collect();
    let uptime: u64 = lines[0].parse().expect("uptime");
    let host_uptime: u64 = fs::read_to_string("/proc/uptime")
        .expect("uptime")
        .split('.')
        .next()
        .and_then(|s| s.parse().ok())
        .expect("host uptime");
    assert!(
        uptime >= host_uptime + 1_000_000 - 5,
        "boottime offset not applied: {uptime} vs host {host_uptime}"
    );
    assert_ne!(lines[1], host_ns("time"));
}

#[test]
fn second_container_joins_namespaces_by_path() {
    require_root!();
    let mut first = Bundle::new("ns-join-a");
    first
        .set("/hostname", json!("joined-host"))
        .args(&["sleep", "1000"]);
    let rt = Runtime::new("ns-join");
    rt.run_with(first.name(), &first, &["--detach"])
        .assert_success("run first");
    let pid = rt.pid(first.name());

    let mut second = Bundle::new("ns-join-b");
    // Joining a UTS namespace must not change its hostname.
    second.remove("/hostname");
    for (kind, file) in [("uts", "uts"), ("network", "net"), ("ipc", "ipc")] {
        second.join_namespace(kind, &format!("/proc/{pid}/ns/{file}"));
    }
    second.sh(&format!(
        "hostname; {}",
        readlink_script(&["uts", "net", "ipc", "mnt"])
    ));
    let out = rt.run_ok(second.name(), &second);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "joined-host", "{out}");
    for (file, line) in ["uts", "net", "ipc"].iter().zip(&lines[1..4]) {
        let theirs = fs::read_link(format!("/proc/{pid}/ns/{file}")).expect("first's ns");
        assert_eq!(
            *line,
            theirs.to_string_lossy(),
            "{file} namespace not joined"
        );
    }
    let theirs = fs::read_link(format!("/proc/{pid}/ns/mnt")).expect("first's mnt ns");
    assert_ne!(
        lines[4],
        theirs.to_string_lossy(),
        "the mount namespace must still be new"
    );
    assert_eq!(rt.status(first.name()), "running");
}
