//! config-linux.md#namespaces, #user-namespace-mappings, #offset-for-time-namespace
//! and #sysctl: namespaces created, inherited and joined, as seen from inside.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use anyhow::{ensure, Result};
use corten_conformance::expect::Check;
use serde_json::json;

use super::lifecycle::waiter;
use super::{case, Case};
use crate::bundle::Bundle;
use crate::ctx::{ensure_err, Ctx};

pub fn cases() -> Vec<Case> {
    vec![
        case(
            "config-linux.namespaces.pid-new",
            "config-linux.md#namespaces",
            |cx| new_ns(cx, "pid"),
        ),
        case(
            "config-linux.namespaces.network-new",
            "config-linux.md#namespaces",
            |cx| new_ns(cx, "network"),
        ),
        case(
            "config-linux.namespaces.ipc-new",
            "config-linux.md#namespaces",
            |cx| new_ns(cx, "ipc"),
        ),
        case(
            "config-linux.namespaces.uts-new",
            "config-linux.md#namespaces",
            |cx| new_ns(cx, "uts"),
        ),
        case(
            "config-linux.namespaces.mount-new",
            "config-linux.md#namespaces",
            |cx| new_ns(cx, "mount"),
        ),
        case(
            "config-linux.namespaces.cgroup-new",
            "config-linux.md#namespaces",
            |cx| new_ns(cx, "cgroup"),
        ),
        case(
            "config-linux.namespaces.time-new",
            "config-linux.md#namespaces",
            |cx| new_ns(cx, "time"),
        )
        .runc("runc 1.1 does not support the time namespace (added in runc 1.2)"),
        case(
            "config-linux.namespaces.pid-isolated",
            "config-linux.md#namespaces (pid)",
            pid_isolated,
        ),
        case(
            "config-linux.namespaces.cgroup-root",
            "config-linux.md#namespaces (cgroup)",
            cgroup_root,
        ),
        case(
            "config-linux.namespaces.network-inherited",
            "config-linux.md#namespaces",
            |cx| inherit(cx, "network"),
        ),
        case(
            "config-linux.namespaces.ipc-inherited",
            "config-linux.md#namespaces",
            |cx| inherit(cx, "ipc"),
        ),
        case(
            "config-linux.namespaces.uts-inherited",
            "config-linux.md#namespaces",
            |cx| inherit(cx, "uts"),
        ),
        case(
            "config-linux.namespaces.pid-inherited",
            "config-linux.md#namespaces",
            |cx| inherit(cx, "pid"),
        ),
        case(
            "config-linux.namespaces.cgroup-inherited",
            "config-linux.md#namespaces",
            |cx| inherit(cx, "cgroup"),
        ),
        case(
            "config-linux.namespaces.user-inherited",
            "config-linux.md#namespaces",
            |cx| inherit(cx, "user"),
        ),
        case(
            "config-linux.namespaces.network-joined",
            "config-linux.md#namespaces (path)",
            |cx| join(cx, "network"),
        ),
        case(
            "config-linux.namespaces.ipc-joined",
            "config-linux.md#namespaces (path)",
            |cx| join(cx, "ipc"),
        ),
        case(
            "config-linux.namespaces.uts-joined",
            "config-linux.md#namespaces (path)",
            |cx| join(cx, "uts"),
        ),
        case(
            "config-linux.namespaces.pid-joined",
            "config-linux.md#namespaces (path)",
            |cx| join(cx, "pid"),
        ),
        case(
            "config-linux.namespaces.cgroup-joined",
            "config-linux.md#namespaces (path)",
            |cx| join(cx, "cgroup"),
        ),
        case(
            "config-linux.namespaces.path-of-wrong-type",
            "config-linux.md#namespaces (path)",
            wrong_type,
        ),
        case(
            "config-linux.namespaces.duplicate-type",
            "config-linux.md#namespaces",
            duplicate_type,
        ),
        case(
            "config-linux.user-namespace.mappings",
            "config-linux.md#user-namespace-mappings",
            user_mappings,
        ),
        case(
            "config-linux.user-namespace.ownership-unchanged",
            "config-linux.md#user-namespace-mappings",
            user_ownership,
        ),
        case(
            "config-linux.time-namespace.offsets",
            "config-linux.md#offset-for-time-namespace",
            time_offsets,
        )
        .runc("runc 1.1 does not support the time namespace (added in runc 1.2)"),
        case(
            "config-linux.sysctl.network",
            "config-linux.md#sysctl",
            sysctl_net,
        ),
        case(
            "config-linux.sysctl.ipc",
            "config-linux.md#sysctl",
            sysctl_ipc,
        ),
        case(
            "config-linux.sysctl.uts",
            "config-linux.md#sysctl",
            sysctl_uts,
        ),
        case(
            "config-linux.namespaces.user-joined",
            "config-linux.md#namespaces (path)",
            user_joined,
        ),
        case(
            "config-linux.namespaces.time-joined",
            "config-linux.md#namespaces (path)",
            |cx| join(cx, "time"),
        )
        .runc("runc 1.1 does not support the time namespace (added in runc 1.2)"),
    ]
}

/// `/proc/<pid>/ns` entry name of a spec namespace type.
fn proc_name(kind: &str) -> &str {
    match kind {
        "network" => "net",
        "mount" => "mnt",
        other => other,
    }
}

fn runtime_inode(cx: &Ctx, kind: &str) -> Result<u64> {
    let ns = proc_name(kind);
    match cx.host.ns_inode(ns) {
        Some(i) => Ok(i),
        None => crate::skip!("the kernel has no {ns} namespace (/proc/self/ns/{ns})"),
    }
}

/// Uid and gid mappings of `size` ids at `host` for container id 0.
fn map_ids(b: &mut Bundle, host: u32, size: u32) {
    let map = json!([{ "containerID": 0, "hostID": host, "size": size }]);
    b.set("/linux/uidMappings", map.clone())
        .set("/linux/gidMappings", map);
    // A cgroup mount is not needed here and not always allowed in a user namespace.
    b.remove_mount("/sys/fs/cgroup");
}

fn new_ns(cx: &mut Ctx, kind: &str) -> Result<()> {
    let inode = runtime_inode(cx, kind)?;
    let mut b = cx.bundle()?;
    b.namespace(kind, None);
    b.expect(
        &format!("{kind} namespace is new"),
        Check::Namespace {
            ns: proc_name(kind).into(),
            inode,
            same: false,
        },
    );
    cx.run_checks(&b)
}

fn pid_isolated(cx: &mut Ctx) -> Result<()> {
    let mut b = cx.bundle()?;
    b.expect("pid 1", Check::Pid { pid: 1 });
    b.expect(
        "only own processes in /proc",
        Check::ProcPids { pids: vec![1] },
    );
    cx.run_checks(&b)
}

fn cgroup_root(cx: &mut Ctx) -> Result<()> {
    let mut b = cx.bundle()?;
    b.namespace("cgroup", None);
    b.expect("own cgroup is the namespace root", Check::CgroupNsRoot);
    cx.run_checks(&b)
}

fn inherit(cx: &mut Ctx, kind: &str) -> Result<()> {
    let inode = runtime_inode(cx, kind)?;
    let mut b = cx.bundle()?;
    b.remove_namespace(kind);
    if kind == "uts" {
        // A hostname would be set in the runtime's own UTS namespace.
        b.remove("/hostname");
    }
    b.expect(
        &format!("{kind} namespace is the runtime's"),
        Check::Namespace {
            ns: proc_name(kind).into(),
            inode,
            same: true,
        },
    );
    cx.run_checks(&b)
}

/// A created container holding new namespaces; its pid.
fn holder(cx: &mut Ctx, extra: impl FnOnce(&mut Bundle)) -> Result<i32> {
    let mut b = waiter(cx)?;
    b.namespace("cgroup", None);
    extra(&mut b);
    let id = cx.new_id();
    cx.create_ok(&b, &id)?;
    cx.pid(&id)
}

fn join(cx: &mut Ctx, kind: &str) -> Result<()> {
    let runtime = runtime_inode(cx, kind)?;
    let pid = holder(cx, |b| {
        b.namespace(kind, None);
    })?;
    let path = format!("/proc/{pid}/ns/{}", proc_name(kind));
    let inode = fs::metadata(&path)?.ino();
    ensure!(
        inode != runtime,
        "the holder container did not get a new {kind} namespace"
    );
    let mut b = cx.bundle()?;
    b.namespace(kind, Some(&path));
    b.expect(
        &format!("{kind} namespace is {path}"),
        Check::Namespace {
            ns: proc_name(kind).into(),
            inode,
            same: true,
        },
    );
    cx.run_checks(&b)
}

fn wrong_type(cx: &mut Ctx) -> Result<()> {
    let pid = holder(cx, |_| {})?;
    let mut b = cx.bundle()?;
    b.namespace("ipc", Some(&format!("/proc/{pid}/ns/uts")));
    let id = cx.new_id();
    ensure_err(
        &cx.create(&b, &id)?,
        "create joining a uts namespace as ipc",
    )
}

fn duplicate_type(cx: &mut Ctx) -> Result<()> {
    let mut b = cx.bundle()?;
    b.push("/linux/namespaces", json!({ "type": "ipc" }));
    let id = cx.new_id();
    ensure_err(
        &cx.create(&b, &id)?,
        "create with two ipc namespace entries",
    )
}

fn user_mappings(cx: &mut Ctx) -> Result<()> {
    cx.host.require_userns()?;
    let inode = runtime_inode(cx, "user")?;
    let mut b = cx.bundle()?;
    b.namespace("user", None);
    map_ids(&mut b, 100_000, 65536);
    b.expect(
        "user namespace is new",
        Check::Namespace {
            ns: "user".into(),
            inode,
            same: false,
        },
    );
    b.expect(
        "uid_map",
        Check::ProcLines {
            file: "uid_map".into(),
            lines: vec!["0 100000 65536".into()],
        },
    );
    b.expect(
        "gid_map",
        Check::ProcLines {
            file: "gid_map".into(),
            lines: vec!["0 100000 65536".into()],
        },
    );
    b.expect("ids", Check::Ids { uid: 0, gid: 0 });
    cx.run_checks(&b)
}

fn user_ownership(cx: &mut Ctx) -> Result<()> {
    cx.host.require_userns()?;
    let mut b = cx.bundle()?;
    b.namespace("user", None);
    map_ids(&mut b, 100_000, 65536);
    b.set("/root/readonly", json!(false));
    b.expect(
        "rootfs files owned by an unmapped id",
        Check::FileContains {
            path: "/proc/self/uid_map".into(),
            text: "100000".into(),
        },
    );
    cx.run_checks(&b)?;
    for rel in ["bin/busybox", "etc/passwd", "conformance", "."] {
        let meta = fs::symlink_metadata(b.rootfs().join(rel))?;
        ensure!(
            meta.uid() == 0 && meta.gid() == 0,
            "rootfs/{rel} is now owned by {}:{}",
            meta.uid(),
            meta.gid()
        );
    }
    Ok(())
}

fn time_offsets(cx: &mut Ctx) -> Result<()> {
    runtime_inode(cx, "time")?;
    let mut b = cx.bundle()?;
    b.namespace("time", None);
    b.set(
        "/linux/timeOffsets",
        json!({ "monotonic": { "secs": 86400, "nanosecs": 0 }, "boottime": { "secs": 3600, "nanosecs": 500 } }),
    );
    b.expect(
        "timens_offsets",
        Check::ProcLines {
            file: "timens_offsets".into(),
            lines: vec!["monotonic 86400 0".into(), "boottime 3600 500".into()],
        },
    );
    cx.run_checks(&b)
}

fn sysctl_net(cx: &mut Ctx) -> Result<()> {
    let mut b = cx.bundle()?;
    b.set(
        "/linux/sysctl",
        json!({ "net.ipv4.ip_forward": "1", "net.core.somaxconn": "256" }),
    );
    b.expect(
        "net.ipv4.ip_forward",
        Check::Sysctl {
            key: "net.ipv4.ip_forward".into(),
            value: "1".into(),
        },
    );
    b.expect(
        "net.core.somaxconn",
        Check::Sysctl {
            key: "net.core.somaxconn".into(),
            value: "256".into(),
        },
    );
    cx.run_checks(&b)
}

fn sysctl_ipc(cx: &mut Ctx) -> Result<()> {
    let mut b = cx.bundle()?;
    b.set(
        "/linux/sysctl",
        json!({ "kernel.msgmax": "4321", "kernel.shmmni": "1234" }),
    );
    b.expect(
        "kernel.msgmax",
        Check::Sysctl {
            key: "kernel.msgmax".into(),
            value: "4321".into(),
        },
    );
    b.expect(
        "kernel.shmmni",
        Check::Sysctl {
            key: "kernel.shmmni".into(),
            value: "1234".into(),
        },
    );
    let host_msgmax = fs::read_to_string(Path::new("/proc/sys/kernel/msgmax"))?;
    cx.run_checks(&b)?;
    let now = fs::read_to_string(Path::new("/proc/sys/kernel/msgmax"))?;
    ensure!(
        now == host_msgmax,
        "the runtime's own kernel.msgmax changed"
    );
    Ok(())
}

fn sysctl_uts(cx: &mut Ctx) -> Result<()> {
    let mut b = cx.bundle()?;
    b.set(
        "/linux/sysctl",
        json!({ "kernel.domainname": "sysctl.example" }),
    );
    b.expect(
        "kernel.domainname",
        Check::Sysctl {
            key: "kernel.domainname".into(),
            value: "sysctl.example".into(),
        },
    );
    cx.run_checks(&b)
}

fn user_joined(cx: &mut Ctx) -> Result<()> {
    cx.host.require_userns()?;
    let pid = holder(cx, |b| {
        b.namespace("user", None);
        map_ids(b, 200_000, 65536);
    })?;
    let path = format!("/proc/{pid}/ns/user");
    let inode = fs::metadata(&path)?.ino();
    let mut b = cx.bundle()?;
    b.namespace("user", Some(&path));
    // runc requires the mappings to be repeated; they match the namespace's.
    map_ids(&mut b, 200_000, 65536);
    b.expect(
        "user namespace is the holder's",
        Check::Namespace {
            ns: "user".into(),
            inode,
            same: true,
        },
    );
    b.expect(
        "uid_map",
        Check::ProcLines {
            file: "uid_map".into(),
            lines: vec!["0 200000 65536".into()],
        },
    );
    cx.run_checks(&b)
}
