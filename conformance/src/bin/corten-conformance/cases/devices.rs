//! config-linux.md#devices, #default-devices and #device-allowlist.

use std::fs;

use anyhow::Result;
use corten_conformance::expect::{Check, FileKind};
use serde_json::{json, Value};

use super::{case, Case};
use crate::bundle::Bundle;
use crate::ctx::{ensure_err, Ctx};

pub fn cases() -> Vec<Case> {
    vec![
        case(
            "config-linux.default-devices.nodes",
            "config-linux.md#default-devices",
            default_nodes,
        ),
        case(
            "config-linux.default-devices.ptmx",
            "config-linux.md#default-devices (/dev/ptmx)",
            ptmx,
        ),
        case(
            "config-linux.default-devices.usable",
            "config-linux.md#default-devices",
            default_usable,
        ),
        case(
            "config-linux.devices.char",
            "config-linux.md#devices",
            char_device,
        ),
        case(
            "config-linux.devices.block-mode-owner",
            "config-linux.md#devices (fileMode, uid, gid)",
            block_device,
        ),
        case(
            "config-linux.devices.fifo",
            "config-linux.md#devices (type p)",
            fifo,
        ),
        case(
            "config-linux.devices.nested-path",
            "config-linux.md#devices (path)",
            nested_path,
        ),
        case(
            "config-linux.devices.existing-file-mismatch",
            "config-linux.md#devices (path)",
            existing_mismatch,
        )
        .runc("runc 1.1 accepts a device path that already holds a regular file and creates the container without an error"),
        case(
            "config-linux.device-cgroup.deny",
            "config-linux.md#device-allowlist",
            cgroup_deny,
        ),
        case(
            "config-linux.device-cgroup.allow",
            "config-linux.md#device-allowlist",
            cgroup_allow,
        ),
        case(
            "config-linux.device-cgroup.access-read-only",
            "config-linux.md#device-allowlist (access)",
            cgroup_read_only,
        ),
        case(
            "config-linux.device-cgroup.listed-order",
            "config-linux.md#device-allowlist (listed order)",
            cgroup_order,
        ),
    ]
}

/// `(path, major, minor)` of the default character devices.
const DEFAULTS: [(&str, u64, u64); 6] = [
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

fn node(path: &str, kind: FileKind, major: u64, minor: u64) -> Check {
    Check::Device {
        path: path.into(),
        kind,
        major,
        minor,
        mode: None,
        uid: None,
        gid: None,
    }
}

fn device(kind: &str, path: &str, major: u64, minor: u64) -> Value {
    json!({ "type": kind, "path": path, "major": major, "minor": minor })
}

fn default_nodes(cx: &mut Ctx) -> Result<()> {
    let mut b = cx.bundle()?;
    for (path, major, minor) in DEFAULTS {
        b.expect(path, node(path, FileKind::Char, major, minor));
    }
    cx.run_checks(&b)
}

fn ptmx(cx: &mut Ctx) -> Result<()> {
    let mut b = cx.bundle()?;
    b.expect(
        "/dev/ptmx is the container's /dev/pts/ptmx",
        Check::LinkOrSame {
            path: "/dev/ptmx".into(),
            target: "/dev/pts/ptmx".into(),
        },
    );
    b.expect(
        "/dev/ptmx opens",
        Check::Open {
            path: "/dev/ptmx".into(),
            write: true,
            errno: None,
        },
    );
    cx.run_checks(&b)
}

fn default_usable(cx: &mut Ctx) -> Result<()> {
    let mut b = cx.bundle()?;
    b.expect(
        "/dev/null takes writes",
        Check::WriteResult {
            path: "/dev/null".into(),
            errno: None,
        },
    );
    b.expect(
        "/dev/null reads empty",
        Check::Masked {
            path: "/dev/null".into(),
        },
    );
    b.expect(
        "/dev/zero reads zeros",
        Check::ReadsZeros {
            path: "/dev/zero".into(),
            len: 4096,
        },
    );
    b.expect(
        "/dev/full is full",
        Check::WriteResult {
            path: "/dev/full".into(),
            errno: Some(libc::ENOSPC),
        },
    );
    b.expect(
        "/dev/urandom reads",
        Check::Open {
            path: "/dev/urandom".into(),
            write: false,
            errno: None,
        },
    );
    cx.run_checks(&b)
}

fn char_device(cx: &mut Ctx) -> Result<()> {
    let mut b = cx.bundle()?;
    let mut d = device("c", "/dev/fuse", 10, 229);
    d["fileMode"] = json!(0o666);
    d["uid"] = json!(0);
    d["gid"] = json!(0);
    b.push("/linux/devices", d);
    b.expect(
        "/dev/fuse",
        Check::Device {
            path: "/dev/fuse".into(),
            kind: FileKind::Char,
            major: 10,
            minor: 229,
            mode: Some(0o666),
            uid: Some(0),
            gid: Some(0),
        },
    );
    cx.run_checks(&b)
}

fn block_device(cx: &mut Ctx) -> Result<()> {
    let mut b = cx.bundle()?;
    let mut d = device("b", "/dev/conf-loop", 7, 200);
    d["fileMode"] = json!(0o640);
    d["uid"] = json!(1000);
    d["gid"] = json!(1001);
    b.push("/linux/devices", d);
    b.expect(
        "/dev/conf-loop",
        Check::Device {
            path: "/dev/conf-loop".into(),
            kind: FileKind::Block,
            major: 7,
            minor: 200,
            mode: Some(0o640),
            uid: Some(1000),
            gid: Some(1001),
        },
    );
    cx.run_checks(&b)
}

fn fifo(cx: &mut Ctx) -> Result<()> {
    let mut b = cx.bundle()?;
    b.push(
        "/linux/devices",
        json!({ "type": "p", "path": "/dev/conf-fifo", "fileMode": 0o600 }),
    );
    b.expect(
        "/dev/conf-fifo",
        Check::Device {
            path: "/dev/conf-fifo".into(),
            kind: FileKind::Fifo,
            major: 0,
            minor: 0,
            mode: Some(0o600),
            uid: None,
            gid: None,
        },
    );
    cx.run_checks(&b)
}

fn nested_path(cx: &mut Ctx) -> Result<()> {
    let mut b = cx.bundle()?;
    b.push("/linux/devices", device("c", "/dev/conf/sub/fuse", 10, 229));
    b.expect(
        "/dev/conf/sub/fuse",
        node("/dev/conf/sub/fuse", FileKind::Char, 10, 229),
    );
    cx.run_checks(&b)
}

fn existing_mismatch(cx: &mut Ctx) -> Result<()> {
    let mut b = cx.bundle()?;
    fs::write(b.rootfs().join("etc/not-a-device"), "a regular file")?;
    b.push("/linux/devices", device("c", "/etc/not-a-device", 10, 229));
    let id = cx.new_id();
    ensure_err(
        &cx.create(&b, &id)?,
        "create with a device path holding a regular file",
    )
}

/// A bundle with `/dev/fuse` and the given device cgroup rules.
fn with_rules(cx: &mut Ctx, rules: Value) -> Result<Bundle> {
    let mut b = cx.bundle()?;
    b.push("/linux/devices", device("c", "/dev/fuse", 10, 229));
    b.set("/linux/resources/devices", rules);
    Ok(b)
}

fn open_fuse(write: bool, errno: Option<i32>) -> Check {
    Check::Open {
        path: "/dev/fuse".into(),
        write,
        errno,
    }
}

fn cgroup_deny(cx: &mut Ctx) -> Result<()> {
    let mut b = with_rules(cx, json!([{ "allow": false, "access": "rwm" }]))?;
    b.expect("open /dev/fuse denied", open_fuse(true, Some(libc::EPERM)));
    cx.run_checks(&b)
}

fn cgroup_allow(cx: &mut Ctx) -> Result<()> {
    let mut b = with_rules(
        cx,
        json!([{ "allow": false, "access": "rwm" },
               { "allow": true, "type": "c", "major": 10, "minor": 229, "access": "rw" }]),
    )?;
    b.expect("open /dev/fuse allowed", open_fuse(true, None));
    cx.run_checks(&b)
}

fn cgroup_read_only(cx: &mut Ctx) -> Result<()> {
    let mut b = with_rules(
        cx,
        json!([{ "allow": false, "access": "rwm" },
               { "allow": true, "type": "c", "major": 10, "minor": 229, "access": "r" }]),
    )?;
    b.expect("read allowed", open_fuse(false, None));
    b.expect("write denied", open_fuse(true, Some(libc::EPERM)));
    cx.run_checks(&b)
}

fn cgroup_order(cx: &mut Ctx) -> Result<()> {
    let mut b = with_rules(
        cx,
        json!([{ "allow": true, "type": "c", "major": 10, "minor": 229, "access": "rwm" },
               { "allow": false, "access": "rwm" }]),
    )?;
    b.expect("the later deny wins", open_fuse(true, Some(libc::EPERM)));
    cx.run_checks(&b)
}
