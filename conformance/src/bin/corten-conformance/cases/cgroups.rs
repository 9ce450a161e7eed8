//! config-linux.md#control-groups: the cgroups path and each resource, read
//! back by the checker from inside the container (the container's own
//! cgroup files), on the host's cgroup version.

use std::fs;
use std::os::unix::fs::MetadataExt;

use anyhow::{anyhow, ensure, Result};
use corten_conformance::expect::Check;
use serde_json::{json, Value};

use super::lifecycle::waiter;
use super::{case, Case};
use crate::ctx::{ensure_err, Ctx};

pub fn cases() -> Vec<Case> {
    vec![
        case(
            "config-linux.cgroups.path",
            "config-linux.md#cgroups-path",
            path,
        ),
        case(
            "config-linux.cgroups.memory.limit",
            "config-linux.md#memory",
            memory_limit,
        ),
        case(
            "config-linux.cgroups.memory.reservation",
            "config-linux.md#memory",
            memory_reservation,
        ),
        case(
            "config-linux.cgroups.memory.swap",
            "config-linux.md#memory",
            memory_swap,
        ),
        case(
            "config-linux.cgroups.memory.swappiness",
            "config-linux.md#memory",
            memory_swappiness,
        ),
        case(
            "config-linux.cgroups.memory.disable-oom-killer",
            "config-linux.md#memory",
            memory_oom,
        ),
        case(
            "config-linux.cgroups.cpu.shares",
            "config-linux.md#cpu",
            cpu_shares,
        ),
        case(
            "config-linux.cgroups.cpu.quota-period",
            "config-linux.md#cpu",
            cpu_quota,
        ),
        case(
            "config-linux.cgroups.cpu.cpus-mems",
            "config-linux.md#cpu",
            cpu_cpuset,
        ),
        case(
            "config-linux.cgroups.pids.limit",
            "config-linux.md#pids",
            pids_limit,
        ),
        case(
            "config-linux.cgroups.blockio.weight",
            "config-linux.md#block-io",
            blkio_weight,
        ),
        case(
            "config-linux.cgroups.blockio.throttle",
            "config-linux.md#block-io",
            blkio_throttle,
        ),
        case(
            "config-linux.cgroups.unavailable-controller",
            "runtime.md#lifecycle (step 2), config-linux.md#network",
            unavailable,
        ),
    ]
}

/// A cgroup file: `controller/file` on v1, `file` on v2.
fn file(v1: Option<&str>, v2: Option<&str>, value: &str) -> Check {
    Check::CgroupFile {
        v1: v1.map(str::to_owned),
        v2: v2.map(str::to_owned),
        value: value.to_owned(),
    }
}

/// Run a bundle with `resources` and the given cgroup file checks.
fn resources(cx: &mut Ctx, resources: Value, checks: Vec<(&str, Check)>) -> Result<()> {
    let mut b = cx.bundle()?;
    b.set("/linux/resources", resources);
    for (name, check) in checks {
        b.expect(name, check);
    }
    cx.run_checks(&b)
}

pub(super) fn require_controller(cx: &Ctx, controller: &str) -> Result<()> {
    if cx.host.has_controller(controller) {
        Ok(())
    } else {
        crate::skip!("the host has no {controller} cgroup controller")
    }
}

fn path(cx: &mut Ctx) -> Result<()> {
    let b = waiter(cx)?;
    let id = cx.new_id();
    cx.create_ok(&b, &id)?;
    let pid = cx.pid(&id)?.to_string();
    let controllers: &[&str] = if cx.host.cgroup_v2 {
        &[""]
    } else {
        &["pids", "memory", "cpu", "devices"]
    };
    for c in controllers {
        let dir = cx.cgroup_dir(&b, c);
        let procs = fs::read_to_string(dir.join("cgroup.procs"))
            .map_err(|e| anyhow!("{}: {e}", dir.display()))?;
        ensure!(
            procs.lines().any(|l| l.trim() == pid),
            "pid {pid} is not in {}",
            dir.display()
        );
    }
    Ok(())
}

fn memory_limit(cx: &mut Ctx) -> Result<()> {
    require_controller(cx, "memory")?;
    resources(
        cx,
        json!({ "memory": { "limit": 67_108_864 } }),
        vec![(
            "memory limit",
            file(
                Some("memory/memory.limit_in_bytes"),
                Some("memory.max"),
                "67108864",
            ),
        )],
    )
}

fn memory_reservation(cx: &mut Ctx) -> Result<()> {
    require_controller(cx, "memory")?;
    resources(
        cx,
        json!({ "memory": { "limit": 67_108_864, "reservation": 33_554_432 } }),
        vec![(
            "memory reservation",
            file(
                Some("memory/memory.soft_limit_in_bytes"),
                Some("memory.low"),
                "33554432",
            ),
        )],
    )
}

fn memory_swap(cx: &mut Ctx) -> Result<()> {
    require_controller(cx, "memory")?;
    if !cx.host.cgroup_v2 && !cx.host.has_v1_file("memory/memory.memsw.limit_in_bytes") {
        crate::skip!("the kernel does not account swap (no memory.memsw.limit_in_bytes)");
    }
    // v1 limits memory+swap; v2's memory.swap.max is the swap part alone.
    resources(
        cx,
        json!({ "memory": { "limit": 67_108_864, "swap": 100_663_296 } }),
        vec![(
            "memory+swap limit",
            file(
                Some("memory/memory.memsw.limit_in_bytes"),
                Some("memory.swap.max"),
                if cx.host.cgroup_v2 {
                    "33554432"
                } else {
                    "100663296"
                },
            ),
        )],
    )
}

fn memory_swappiness(cx: &mut Ctx) -> Result<()> {
    require_controller(cx, "memory")?;
    if cx.host.cgroup_v2 {
        crate::skip!("cgroup v2 has no per-cgroup swappiness");
    }
    resources(
        cx,
        json!({ "memory": { "swappiness": 37 } }),
        vec![(
            "swappiness",
            file(Some("memory/memory.swappiness"), None, "37"),
        )],
    )
}

fn memory_oom(cx: &mut Ctx) -> Result<()> {
    require_controller(cx, "memory")?;
    if cx.host.cgroup_v2 {
        crate::skip!("cgroup v2 cannot disable the OOM killer");
    }
    resources(
        cx,
        json!({ "memory": { "limit": 67_108_864, "disableOOMKiller": true } }),
        vec![(
            "oom_kill_disable",
            file(
                Some("memory/memory.oom_control"),
                None,
                "oom_kill_disable 1",
            ),
        )],
    )
}

fn cpu_shares(cx: &mut Ctx) -> Result<()> {
    require_controller(cx, "cpu")?;
    // v2: the weight runc derives from the shares (1 + (shares-2)*9999/262142).
    resources(
        cx,
        json!({ "cpu": { "shares": 512 } }),
        vec![(
            "cpu shares",
            file(
                Some("cpu/cpu.shares"),
                Some("cpu.weight"),
                if cx.host.cgroup_v2 { "20" } else { "512" },
            ),
        )],
    )
}

fn cpu_quota(cx: &mut Ctx) -> Result<()> {
    require_controller(cx, "cpu")?;
    resources(
        cx,
        json!({ "cpu": { "quota": 50_000, "period": 100_000 } }),
        vec![
            (
                "cfs quota",
                file(
                    Some("cpu/cpu.cfs_quota_us"),
                    Some("cpu.max"),
                    if cx.host.cgroup_v2 {
                        "50000 100000"
                    } else {
                        "50000"
                    },
                ),
            ),
            (
                "cfs period",
                file(Some("cpu/cpu.cfs_period_us"), None, "100000"),
            ),
        ],
    )
}

fn cpu_cpuset(cx: &mut Ctx) -> Result<()> {
    require_controller(cx, "cpuset")?;
    resources(
        cx,
        json!({ "cpu": { "cpus": "0", "mems": "0" } }),
        vec![
            (
                "cpuset.cpus",
                file(Some("cpuset/cpuset.cpus"), Some("cpuset.cpus"), "0"),
            ),
            (
                "cpuset.mems",
                file(Some("cpuset/cpuset.mems"), Some("cpuset.mems"), "0"),
            ),
        ],
    )
}

fn pids_limit(cx: &mut Ctx) -> Result<()> {
    require_controller(cx, "pids")?;
    resources(
        cx,
        json!({ "pids": { "limit": 42 } }),
        vec![(
            "pids.max",
            file(Some("pids/pids.max"), Some("pids.max"), "42"),
        )],
    )
}

fn blkio_weight(cx: &mut Ctx) -> Result<()> {
    if cx.host.cgroup_v2 {
        crate::skip!(
            "on cgroup v2 the weight file depends on the IO scheduler (io.weight or io.bfq.weight)"
        );
    }
    if !cx.host.has_v1_file("blkio/blkio.weight") {
        crate::skip!(
            "the host's block IO controller has no weight (no blkio.weight / io controller)"
        );
    }
    resources(
        cx,
        json!({ "blockIO": { "weight": 500 } }),
        vec![(
            "blkio weight",
            file(Some("blkio/blkio.weight"), None, "500"),
        )],
    )
}

fn blkio_throttle(cx: &mut Ctx) -> Result<()> {
    if !cx
        .host
        .has_controller(if cx.host.cgroup_v2 { "io" } else { "blkio" })
    {
        crate::skip!("the host has no block IO controller");
    }
    let dev = fs::metadata("/")?.dev();
    let (major, minor) = (u64::from(libc::major(dev)), u64::from(libc::minor(dev)));
    if major == 0 {
        crate::skip!("the host's root filesystem is not on a block device");
    }
    let rate = |r: u64| json!([{ "major": major, "minor": minor, "rate": r }]);
    let d = format!("{major}:{minor}");
    let v1 = |f: &str, r: u64| (format!("blkio/blkio.throttle.{f}"), format!("{d} {r}"));
    let checks = if cx.host.cgroup_v2 {
        vec![(
            "io.max",
            file(
                None,
                Some("io.max"),
                &format!("{d} rbps=1048576 wbps=2097152 riops=300 wiops=400"),
            ),
        )]
    } else {
        [
            ("read bps", v1("read_bps_device", 1_048_576)),
            ("write bps", v1("write_bps_device", 2_097_152)),
            ("read iops", v1("read_iops_device", 300)),
            ("write iops", v1("write_iops_device", 400)),
        ]
        .into_iter()
        .map(|(n, (f, v))| (n, file(Some(&f), None, &v)))
        .collect()
    };
    resources(
        cx,
        json!({ "blockIO": {
            "throttleReadBpsDevice": rate(1_048_576), "throttleWriteBpsDevice": rate(2_097_152),
            "throttleReadIOPSDevice": rate(300), "throttleWriteIOPSDevice": rate(400) } }),
        checks,
    )
}

fn unavailable(cx: &mut Ctx) -> Result<()> {
    if cx.host.has_controller("net_cls") || cx.host.has_controller("net_prio") {
        crate::skip!("the host has a net_cls/net_prio hierarchy");
    }
    let mut b = waiter(cx)?;
    b.set("/linux/resources/network", json!({ "classID": 1_048_577 }));
    let id = cx.new_id();
    ensure_err(
        &cx.create(&b, &id)?,
        "create with network resources on a host without net_cls",
    )
}
