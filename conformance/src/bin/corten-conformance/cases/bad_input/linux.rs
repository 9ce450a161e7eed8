//! Bad input in config-linux.md's fields: namespaces, user namespace
//! mappings, sysctl, seccomp, cgroups and devices.

use std::fs;

use anyhow::Result;
use corten_testkit::allow_all_seccomp as seccomp;
use serde_json::{json, Value};

use super::refused;
use crate::bundle::{Bundle, Edited};
use crate::cases::{case, Case};
use crate::ctx::Ctx;

pub fn cases() -> Vec<Case> {
    vec![
        case("bad-input.namespaces.duplicated-with-path", NS, |cx| {
            let ns = json!({ "type": "pid", "path": "/proc/self/ns/pid" });
            let words = ["duplicated ns", "/proc/self/ns/pid"];
            refused(cx, |b| b.push("/linux/namespaces", ns), &words)
        }),
        case("bad-input.namespaces.path-missing", NS, |cx| {
            let words = ["namespace", "/nonexistent/ns", "no such file or directory"];
            refused(cx, |b| b.namespace("uts", Some("/nonexistent/ns")), &words)
        }),
        case("bad-input.namespaces.path-relative", NS, |cx| {
            let words = ["namespace path", "ns/uts"];
            refused(cx, |b| b.namespace("uts", Some("ns/uts")), &words)
        }),
        case("bad-input.namespaces.path-of-another-type", NS, |cx| {
            let words = ["uts", "namespace", "invalid argument"];
            refused(
                cx,
                |b| b.namespace("uts", Some("/proc/self/ns/net")),
                &words,
            )
        }),
        case("bad-input.namespaces.path-a-directory", NS, |cx| {
            let words = ["uts", "namespace", "invalid argument"];
            refused(cx, |b| b.namespace("uts", Some("/tmp")), &words)
        }),
        case("bad-input.idmaps.no-gid-mappings", IDMAPS, |cx| {
            let words = ["User namespaces enabled, but no gid mappings found"];
            refused(cx, |b| user_ns(b, json!([]), map()), &words)
        }),
        case("bad-input.idmaps.overlapping-uid-mappings", IDMAPS, |cx| {
            cx.host.require_userns()?;
            let uids = json!([
                { "containerID": 0, "hostID": 100_000, "size": 10 },
                { "containerID": 5, "hostID": 200_000, "size": 10 }
            ]);
            let words = ["uid_map", "invalid argument"];
            refused(cx, |b| user_ns(b, map(), uids), &words)
        }),
        case("bad-input.sysctl.unknown", SYSCTL, |cx| {
            let sysctl = json!({ "frob.nicate": "1" });
            let words = [r#"sysctl "frob.nicate" is not in a separate kernel namespace"#];
            refused(cx, |b| b.set("/linux/sysctl", sysctl), &words)
        }),
        case(
            "bad-input.sysctl.ipc-without-ipc-namespace",
            SYSCTL,
            ipc_sysctl_host_ipc,
        ),
        case("bad-input.seccomp.a-string", SECCOMP, |cx| {
            refused(
                cx,
                |b| b.set("/linux/seccomp", json!("x")),
                &["seccomp", "string"],
            )
        }),
        case("bad-input.seccomp.default-action-unknown", SECCOMP, |cx| {
            let profile = seccomp(json!({ "defaultAction": "SCMP_ACT_FROB" }));
            let words = ["SCMP_ACT_FROB is not a valid action for seccomp"];
            refused(cx, |b| b.set("/linux/seccomp", profile), &words)
        }),
        case("bad-input.seccomp.architecture-unknown", SECCOMP, |cx| {
            let profile = seccomp(json!({ "architectures": ["SCMP_ARCH_FROB"] }));
            let words = ["SCMP_ARCH_FROB is not a valid arch for seccomp"];
            refused(cx, |b| b.set("/linux/seccomp", profile), &words)
        }),
        case("bad-input.seccomp.operator-unknown", SECCOMP, |cx| {
            let arg = json!({ "index": 0, "value": 1, "op": "SCMP_CMP_FROB" });
            let words = ["SCMP_CMP_FROB is not a valid operator for seccomp"];
            refused(
                cx,
                |b| b.set("/linux/seccomp", getpid_rule("SCMP_ACT_ERRNO", arg)),
                &words,
            )
        }),
        case("bad-input.seccomp.argument-index-9", SECCOMP, |cx| {
            let arg = json!({ "index": 9, "value": 1, "op": "SCMP_CMP_EQ" });
            let words = ["syscall getpid", "argument"];
            refused(
                cx,
                |b| b.set("/linux/seccomp", getpid_rule("SCMP_ACT_ERRNO", arg)),
                &words,
            )
        }),
        case(
            "bad-input.seccomp.notify-as-default-action",
            SECCOMP,
            |cx| {
                let profile = json!({ "defaultAction": "SCMP_ACT_NOTIFY" });
                let words = ["SCMP_ACT_NOTIFY cannot be used as default action"];
                refused(cx, |b| b.set("/linux/seccomp", profile), &words)
            },
        ),
        case("bad-input.seccomp.notify-without-listener", SECCOMP, |cx| {
            let profile = getpid_rule("SCMP_ACT_NOTIFY", Value::Null);
            refused(
                cx,
                |b| b.set("/linux/seccomp", profile),
                &["listenerPath is not set"],
            )
        }),
        case("bad-input.seccomp.listener-missing", SECCOMP, |cx| {
            let mut profile = getpid_rule("SCMP_ACT_NOTIFY", Value::Null);
            profile["listenerPath"] = json!("/nonexistent/agent.sock");
            let words = [
                "failed to connect with seccomp agent specified in the seccomp profile",
                "/nonexistent/agent.sock",
                "no such file or directory",
            ];
            refused(cx, |b| b.set("/linux/seccomp", profile), &words)
        }),
        case("bad-input.cgroups.path-with-dotdot", CGROUPS, |cx| {
            refused(cx, dotdot_cgroups_path, &["invalid cgroupsPath"])
        })
        .runc(RUNC_DOTDOT),
        case("bad-input.cgroups.memory-limit-a-string", CGROUPS, |cx| {
            let memory = json!({ "limit": "64m" });
            let words = ["memory.limit", "int64", "string"];
            refused(cx, |b| b.set("/linux/resources/memory", memory), &words)
        }),
        case(
            "bad-input.cgroups.cpuset-cpus-garbage",
            CGROUPS,
            cpuset_garbage,
        ),
        case("bad-input.cgroups.swappiness-200", CGROUPS, swappiness_200),
        case(
            "bad-input.devices.path-outside-dev",
            "config-linux.md#devices",
            |cx| {
                let device = json!({
                    "path": "/etc/conformance-null", "type": "c", "major": 1, "minor": 3
                });
                refused(
                    cx,
                    |b| b.push("/linux/devices", device),
                    &["is not under /dev"],
                )
            },
        )
        .runc(RUNC_DEVICE_PATH),
    ]
}

const NS: &str = "config-linux.md#namespaces";
const IDMAPS: &str = "config-linux.md#user-namespace-mappings";
const SYSCTL: &str = "config-linux.md#sysctl";
const SECCOMP: &str = "config-linux.md#seccomp";
const CGROUPS: &str = "config-linux.md#control-groups";
const RUNC_DOTDOT: &str = "runc 1.1 cleans a cgroupsPath with `..` lexically \
    (`/a/x/../b` is `/a/b`) and creates the container in the cleaned path";
const RUNC_DEVICE_PATH: &str = "runc 1.1 creates a device node outside /dev \
    (here /etc/conformance-null in the rootfs) and creates the container";

/// A valid mapping of 65536 ids.
fn map() -> Value {
    json!([{ "containerID": 0, "hostID": 100_000, "size": 65_536 }])
}

/// A new user namespace with these mappings.
fn user_ns(b: &mut Bundle, gids: Value, uids: Value) -> &mut Edited {
    b.namespace("user", None)
        .set("/linux/uidMappings", uids)
        .set("/linux/gidMappings", gids)
}

/// A profile with one rule for `getpid`: `action`, and `arg` as its
/// argument condition unless null.
fn getpid_rule(action: &str, arg: Value) -> Value {
    let mut rule = json!({ "names": ["getpid"], "action": action });
    if !arg.is_null() {
        rule["args"] = json!([arg]);
    }
    seccomp(json!({ "syscalls": [rule] }))
}

/// The bundle's cgroups path, spelled with a `..` that climbs back to it.
fn dotdot_cgroups_path(b: &mut Bundle) -> &mut Edited {
    let (parent, leaf) = b.cgroup_path().rsplit_once('/').unwrap_or(("", ""));
    let path = format!("{parent}/escape/../{leaf}");
    b.set("/linux/cgroupsPath", json!(path))
}

/// `kernel.shmmax` (at the host's value, so that even a runtime wrongly
/// applying it changes nothing) without an IPC namespace.
fn ipc_sysctl_host_ipc(cx: &mut Ctx) -> Result<()> {
    let value = fs::read_to_string("/proc/sys/kernel/shmmax")?;
    let sysctl = json!({ "kernel.shmmax": value.trim() });
    let words = [r#"sysctl "kernel.shmmax" is not allowed in the hosts ipc namespace"#];
    refused(
        cx,
        |b| b.remove_namespace("ipc").set("/linux/sysctl", sysctl),
        &words,
    )
}

fn cpuset_garbage(cx: &mut Ctx) -> Result<()> {
    if !cx.host.has_controller("cpuset") {
        crate::skip!("no cpuset cgroup controller");
    }
    let cpu = json!({ "cpus": "abc" });
    let words = [r#""abc""#, "cpuset.cpus", "invalid argument"];
    refused(cx, |b| b.set("/linux/resources/cpu", cpu), &words)
}

fn swappiness_200(cx: &mut Ctx) -> Result<()> {
    if cx.host.cgroup_v2 || !cx.host.has_controller("memory") {
        crate::skip!("memory.swappiness needs the cgroup v1 memory controller");
    }
    let memory = json!({ "swappiness": 200 });
    let words = ["swappiness", "200"];
    refused(cx, |b| b.set("/linux/resources/memory", memory), &words)
}
