//! `linux.resources`: every field, on cgroup v1 and v2.
//!
//! [`plan`] turns the resources into an ordered list of file writes for the
//! host's cgroup version (converting values as runc does where the versions
//! differ: shares → weight, blkio weight → io weight, swap → `memory.swap.max`);
//! [`apply`] performs them. A field the host's cgroup version cannot express
//! is an error, never silently dropped; zero values mean "not set", as in
//! runc. Device rules are separate ([`device_rules`]): v1 writes them to
//! `devices.allow`/`devices.deny`, v2 compiles them into an eBPF program.

use std::collections::BTreeMap;

use crate::spec::{BlockIo, Cpu, HugepageLimit, Memory, Network, Rdma, Resources, ThrottleDevice};

use super::{write, Cgroup, CgroupError, Version};

/// One write: `value` into `file` of the hierarchy carrying `controller`
/// (v1) or of the single directory (v2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    /// v1 controller (`memory`, `cpu`, …); informational on v2.
    pub controller: &'static str,
    /// File name.
    pub file: String,
    /// Content.
    pub value: String,
}

fn w(controller: &'static str, file: impl Into<String>, value: impl ToString) -> Write {
    Write {
        controller,
        file: file.into(),
        value: value.to_string(),
    }
}

fn unsupported(what: &str, v2: bool) -> CgroupError {
    CgroupError::Unsupported(format!(
        "{what} is not supported on cgroup {}",
        if v2 { "v2" } else { "v1" }
    ))
}

/// A value that is set: present and not zero (runc's "not set").
fn nonzero<T: Copy + Default + PartialEq>(v: Option<T>) -> Option<T> {
    v.filter(|n| *n != T::default())
}

fn nonempty(v: Option<&String>) -> Option<&str> {
    v.map(String::as_str).filter(|s| !s.is_empty())
}

/// `s`, which becomes (part of) the one value of a write: refused when it
/// holds a line break or a NUL, where the kernel would stop reading or see
/// two values.
fn one_line<'a>(what: &str, s: &'a str) -> Result<&'a str, CgroupError> {
    if s.contains(['\n', '\0']) {
        return Err(CgroupError::Unsupported(format!(
            "invalid {what} {s:?}: must be one line"
        )));
    }
    Ok(s)
}

/// `s`, which is the first word of a value (`<device> <setting>`): one
/// word, as device and interface names are.
fn one_word<'a>(what: &str, s: &'a str) -> Result<&'a str, CgroupError> {
    if s.contains(|c: char| c.is_whitespace() || c == '\0') {
        return Err(CgroupError::Unsupported(format!(
            "invalid {what} {s:?}: must be one word"
        )));
    }
    Ok(s)
}

/// Converts cpu shares (v1, 2..262144) to a v2 `cpu.weight` (1..10000), as
/// runc does.
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    1 + (shares.clamp(2, 262_144) - 2) * 9999 / 262_142
}

/// Converts a blkio weight (10..1000) to a v2 `io.weight` (1..10000), as
/// runc does.
pub fn blkio_weight_to_io(weight: u64) -> u64 {
    if weight == 0 {
        return 0;
    }
    1 + (weight.clamp(10, 1000) - 10) * 9999 / 990
}

/// The v2 `memory.swap.max` for OCI's `swap` (memory+swap) and `limit`.
fn swap_v2(swap: i64, limit: Option<i64>) -> Result<Option<String>, CgroupError> {
    match (swap, limit) {
        (0, _) => Ok(None),
        (-1, _) => Ok(Some("max".into())),
        (_, None | Some(0)) => Err(CgroupError::Unsupported(
            "memory.swap without memory.limit cannot be expressed on cgroup v2".into(),
        )),
        (_, Some(-1)) => Err(CgroupError::Unsupported(
            "memory.swap with an unlimited memory.limit cannot be expressed on cgroup v2".into(),
        )),
        // runc's check; it also keeps `s - l` from overflowing.
        (_, Some(l)) if l < 0 => Err(CgroupError::Unsupported(format!(
            "invalid memory value: {l}"
        ))),
        (s, Some(l)) if s < l => Err(CgroupError::Unsupported(format!(
            "memory.swap ({s}) must be at least memory.limit ({l})"
        ))),
        (s, Some(l)) => Ok(Some((s - l).to_string())),
    }
}

/// Marks the memsw write `apply` makes only where the kernel accounts swap
/// (the file exists), as runc's "unlimited memory lifts swap" does.
const SWAP_IF_SUPPORTED: &str = "memory.memsw.limit_in_bytes?";

fn limit_str(n: i64) -> String {
    if n < 0 {
        "max".into()
    } else {
        n.to_string()
    }
}

fn memory(v: &Memory, v2: bool, out: &mut Vec<Write>) -> Result<(), CgroupError> {
    let limit = nonzero(v.limit);
    let swap = nonzero(v.swap);
    if v2 {
        if let Some(l) = limit {
            out.push(w("memory", "memory.max", limit_str(l)));
        }
        if let Some(s) = swap.map(|s| swap_v2(s, limit)).transpose()?.flatten() {
            out.push(w("memory", "memory.swap.max", s));
        }
        if let Some(r) = nonzero(v.reservation) {
            out.push(w("memory", "memory.low", limit_str(r)));
        }
        if v.swappiness.is_some() {
            return Err(unsupported("memory.swappiness", true));
        }
        if v.disable_oom_killer == Some(true) {
            return Err(unsupported("memory.disableOOMKiller", true));
        }
    } else {
        // memory+swap must never be below memory: `apply` orders the two
        // writes as runc does. An unlimited memory without a swap value
        // lifts swap too (runc), or the kernel refuses the memory write.
        if let Some(l) = limit {
            out.push(w("memory", "memory.limit_in_bytes", l));
        }
        match (limit, swap) {
            (_, Some(s)) => out.push(w("memory", "memory.memsw.limit_in_bytes", s)),
            (Some(-1), None) => out.push(w("memory", SWAP_IF_SUPPORTED, -1)),
            _ => {}
        }
        if let Some(r) = nonzero(v.reservation) {
            out.push(w("memory", "memory.soft_limit_in_bytes", r));
        }
        if let Some(s) = v.swappiness {
            if s > 100 {
                return Err(CgroupError::Unsupported(format!(
                    "invalid memory.swappiness {s}: must be 0..100"
                )));
            }
            out.push(w("memory", "memory.swappiness", s));
        }
        if v.disable_oom_killer == Some(true) {
            out.push(w("memory", "memory.oom_control", 1));
        }
        if let Some(h) = v.use_hierarchy {
            out.push(w("memory", "memory.use_hierarchy", u8::from(h)));
        }
    }
    // `kernel` and `kernelTCP` are deprecated by the runtime spec and the
    // kernel (kmem limits are gone since 5.x on v1 and never existed on v2);
    // runc ignores them too. `checkBeforeUpdate` is handled by `update`.
    Ok(())
}

fn cpu(v: &Cpu, v2: bool, out: &mut Vec<Write>) -> Result<(), CgroupError> {
    let shares = nonzero(v.shares);
    let quota = nonzero(v.quota);
    let period = nonzero(v.period);
    if v2 {
        if let Some(s) = shares {
            out.push(w("cpu", "cpu.weight", shares_to_weight(s)));
        }
        if quota.is_some() || period.is_some() {
            let q = quota
                .filter(|q| *q > 0)
                .map_or("max".to_string(), |q| q.to_string());
            out.push(w(
                "cpu",
                "cpu.max",
                format!("{q} {}", period.unwrap_or(100_000)),
            ));
        }
        if let Some(b) = v.burst {
            out.push(w("cpu", "cpu.max.burst", b));
        }
        if nonzero(v.realtime_runtime).is_some() || nonzero(v.realtime_period).is_some() {
            return Err(unsupported("cpu.realtimeRuntime/realtimePeriod", true));
        }
    } else {
        if let Some(s) = shares {
            out.push(w("cpu", "cpu.shares", s));
        }
        if let Some(p) = period {
            out.push(w("cpu", "cpu.cfs_period_us", p));
        }
        if let Some(q) = quota {
            out.push(w("cpu", "cpu.cfs_quota_us", q));
        }
        if let Some(b) = v.burst {
            out.push(w("cpu", "cpu.cfs_burst_us", b));
        }
        // The period before the runtime: a runtime larger than the current
        // period is refused.
        if let Some(p) = nonzero(v.realtime_period) {
            out.push(w("cpu", "cpu.rt_period_us", p));
        }
        if let Some(r) = nonzero(v.realtime_runtime) {
            out.push(w("cpu", "cpu.rt_runtime_us", r));
        }
    }
    if let Some(i) = v.idle {
        out.push(w("cpu", "cpu.idle", i));
    }
    if let Some(c) = nonempty(v.cpus.as_ref()) {
        out.push(w("cpuset", "cpuset.cpus", one_line("cpu.cpus", c)?));
    }
    if let Some(m) = nonempty(v.mems.as_ref()) {
        out.push(w("cpuset", "cpuset.mems", one_line("cpu.mems", m)?));
    }
    Ok(())
}

/// The four throttle lists with their v2 `io.max` key and v1 file.
fn throttles(v: &BlockIo) -> [(&[ThrottleDevice], &'static str, &'static str); 4] {
    [
        (
            &v.throttle_read_bps_device,
            "rbps",
            "blkio.throttle.read_bps_device",
        ),
        (
            &v.throttle_write_bps_device,
            "wbps",
            "blkio.throttle.write_bps_device",
        ),
        (
            &v.throttle_read_iops_device,
            "riops",
            "blkio.throttle.read_iops_device",
        ),
        (
            &v.throttle_write_iops_device,
            "wiops",
            "blkio.throttle.write_iops_device",
        ),
    ]
}

fn block_io(v: &BlockIo, v2: bool, out: &mut Vec<Write>) -> Result<(), CgroupError> {
    let weight = nonzero(v.weight);
    if v2 {
        if let Some(wt) = weight {
            out.push(w("blkio", "io.weight", blkio_weight_to_io(u64::from(wt))));
        }
        if nonzero(v.leaf_weight).is_some() {
            return Err(unsupported("blockIO.leafWeight", true));
        }
        for d in &v.weight_device {
            if let (Some(k), Some(wt)) = (d.key(), nonzero(d.weight)) {
                out.push(w(
                    "blkio",
                    "io.weight",
                    format!("{k} {}", blkio_weight_to_io(u64::from(wt))),
                ));
            }
        }
        for (list, field, _) in throttles(v) {
            for d in list {
                if let (Some(k), Some(rate)) = (d.key(), d.rate) {
                    let rate = if rate == 0 {
                        "max".to_string()
                    } else {
                        rate.to_string()
                    };
                    out.push(w("blkio", "io.max", format!("{k} {field}={rate}")));
                }
            }
        }
    } else {
        if let Some(wt) = weight {
            out.push(w("blkio", "blkio.weight", wt));
        }
        if let Some(lw) = nonzero(v.leaf_weight) {
            out.push(w("blkio", "blkio.leaf_weight", lw));
        }
        for d in &v.weight_device {
            let Some(k) = d.key() else { continue };
            if let Some(wt) = nonzero(d.weight) {
                out.push(w("blkio", "blkio.weight_device", format!("{k} {wt}")));
            }
            if let Some(lw) = nonzero(d.leaf_weight) {
                out.push(w("blkio", "blkio.leaf_weight_device", format!("{k} {lw}")));
            }
        }
        for (list, _, file) in throttles(v) {
            for d in list {
                if let (Some(k), Some(rate)) = (d.key(), d.rate) {
                    out.push(w("blkio", file, format!("{k} {rate}")));
                }
            }
        }
    }
    Ok(())
}

fn hugepages(limits: &[HugepageLimit], v2: bool, out: &mut Vec<Write>) -> Result<(), CgroupError> {
    for h in limits {
        let Some(size) = nonempty(h.page_size.as_ref()) else {
            continue;
        };
        // Part of a file name: the kernel's are `2MB`, `1GB`, ...
        if !size.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(CgroupError::Unsupported(format!(
                "invalid hugepage size {size:?}"
            )));
        }
        let file = if v2 {
            format!("hugetlb.{size}.max")
        } else {
            format!("hugetlb.{size}.limit_in_bytes")
        };
        out.push(w("hugetlb", file, h.limit.unwrap_or(0)));
    }
    Ok(())
}

fn network(v: &Network, v2: bool, out: &mut Vec<Write>) -> Result<(), CgroupError> {
    if v2 && *v != Network::default() {
        return Err(unsupported("linux.resources.network", true));
    }
    if let Some(c) = nonzero(v.class_id) {
        out.push(w("net_cls", "net_cls.classid", c));
    }
    for p in &v.priorities {
        if let (Some(name), Some(prio)) = (nonempty(p.name.as_ref()), p.priority) {
            let name = one_word("network interface name", name)?;
            out.push(w(
                "net_prio",
                "net_prio.ifpriomap",
                format!("{name} {prio}"),
            ));
        }
    }
    Ok(())
}

fn rdma(devices: &BTreeMap<String, Rdma>, out: &mut Vec<Write>) -> Result<(), CgroupError> {
    for (dev, l) in devices {
        let mut parts = Vec::new();
        if let Some(h) = l.hca_handles {
            parts.push(format!("hca_handle={h}"));
        }
        if let Some(o) = l.hca_objects {
            parts.push(format!("hca_object={o}"));
        }
        if !parts.is_empty() {
            let dev = one_word("rdma device name", dev)?;
            out.push(w("rdma", "rdma.max", format!("{dev} {}", parts.join(" "))));
        }
    }
    Ok(())
}

fn unified(
    files: &BTreeMap<String, String>,
    v2: bool,
    out: &mut Vec<Write>,
) -> Result<(), CgroupError> {
    if files.is_empty() {
        return Ok(());
    }
    if !v2 {
        // runc's words (its validator's ErrV1NoUnified).
        return Err(CgroupError::Unsupported(
            "invalid configuration: cannot use unified on cgroup v1".into(),
        ));
    }
    for (file, val) in files {
        // A file of the cgroup's own directory.
        if file.is_empty()
            || file.starts_with('.')
            || file.contains(|c: char| c == '/' || c.is_control())
        {
            return Err(CgroupError::Unsupported(format!(
                "invalid unified key {file:?}"
            )));
        }
        // A final newline is what `echo` writes; the kernel ignores it.
        let val = val.strip_suffix('\n').unwrap_or(val);
        let val = one_line(&format!("unified value for {file}"), val)?;
        out.push(w("unified", file.clone(), val));
    }
    Ok(())
}

/// Turns `linux.resources` (without `devices`) into the writes for this
/// cgroup version, in order.
pub fn plan(res: &Resources, version: Version) -> Result<Vec<Write>, CgroupError> {
    let v2 = version == Version::V2;
    let mut out = Vec::new();
    // Written by `apply` after the rest: checked now, so that a refusal
    // comes before the first write.
    super::devices::check(res.devices.as_deref().unwrap_or_default(), v2)?;
    if let Some(m) = &res.memory {
        memory(m, v2, &mut out)?;
    }
    if let Some(c) = &res.cpu {
        cpu(c, v2, &mut out)?;
    }
    if let Some(l) = res.pids.as_ref().and_then(|p| nonzero(p.limit)) {
        out.push(w("pids", "pids.max", limit_str(l)));
    }
    if let Some(b) = &res.block_io {
        block_io(b, v2, &mut out)?;
    }
    hugepages(&res.hugepage_limits, v2, &mut out)?;
    if let Some(n) = &res.network {
        network(n, v2, &mut out)?;
    }
    rdma(&res.rdma, &mut out)?;
    unified(&res.unified, v2, &mut out)?;
    Ok(out)
}

fn do_write(paths: &Cgroup, x: &Write) -> Result<(), CgroupError> {
    let dir = paths.dir_for(x.controller).ok_or_else(|| {
        CgroupError::Unsupported(format!(
            "cgroup controller {} is not available on this host (needed for {})",
            x.controller, x.file
        ))
    })?;
    let mut path = dir.join(&x.file);
    if !path.exists() {
        // Kernels without CFQ have only BFQ's weight files (runc falls back
        // the same way).
        if let Some(bfq) = x
            .file
            .strip_prefix("blkio.")
            .filter(|f| f.starts_with("weight"))
        {
            path = dir.join(format!("blkio.bfq.{bfq}"));
        }
    }
    if !path.exists() {
        return Err(CgroupError::Unsupported(format!(
            "{} is not available on this host (kernel or controller missing)",
            x.file
        )));
    }
    write(&path, &x.value)
}

/// Applies `linux.resources` to the container's cgroup directories.
pub fn apply(paths: &Cgroup, res: &Resources) -> Result<(), CgroupError> {
    apply_writes(paths, &plan(res, paths.version())?, res)
}

/// Applies `writes` (what [`plan`] made of `res` for this cgroup's version)
/// and `res`'s device rules.
pub fn apply_writes(paths: &Cgroup, writes: &[Write], res: &Resources) -> Result<(), CgroupError> {
    let mut writes = writes.to_vec();
    writes.retain(|x| {
        x.file != SWAP_IF_SUPPORTED
            || paths
                .dir_for("memory")
                .is_some_and(|d| d.join("memory.memsw.limit_in_bytes").exists())
    });
    for x in &mut writes {
        if x.file == SWAP_IF_SUPPORTED {
            x.file = "memory.memsw.limit_in_bytes".into();
        }
    }
    let mut i = 0;
    while i < writes.len() {
        let (x, next) = (&writes[i], writes.get(i + 1));
        let pair = |a: &str, b: &str| x.file == a && next.is_some_and(|n| n.file == b);
        if let (true, Some(n)) = (
            pair("memory.limit_in_bytes", "memory.memsw.limit_in_bytes"),
            next,
        ) {
            memory_and_swap_v1(paths, x, n)?;
            i += 2;
        } else if let (true, Some(n)) = (pair("cpu.cfs_period_us", "cpu.cfs_quota_us"), next) {
            period_and_quota_v1(paths, x, n)?;
            i += 2;
        } else {
            do_write(paths, x)?;
            i += 1;
        }
    }
    if let Some(devices) = &res.devices {
        super::devices::apply(paths, devices)?;
    }
    Ok(())
}

/// v1 memory and memory+swap, in runc's order: swap first when it is
/// unlimited or above the current memory limit (so memory never exceeds
/// it in between), else memory first.
fn memory_and_swap_v1(paths: &Cgroup, mem: &Write, swap: &Write) -> Result<(), CgroupError> {
    let current = paths
        .dir_for("memory")
        .and_then(|d| std::fs::read_to_string(d.join("memory.limit_in_bytes")).ok())
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(u64::MAX);
    let swap_first = swap.value == "-1" || swap.value.parse::<u64>().is_ok_and(|s| current < s);
    if swap_first {
        do_write(paths, swap)?;
        do_write(paths, mem)
    } else {
        do_write(paths, mem)?;
        do_write(paths, swap)
    }
}

/// v1 CFS period and quota, as runc: a period the kernel refuses (EINVAL:
/// the old quota over the new period would exceed the parent's bandwidth)
/// is written again once the quota has changed.
fn period_and_quota_v1(paths: &Cgroup, period: &Write, quota: &Write) -> Result<(), CgroupError> {
    match do_write(paths, period) {
        Err(CgroupError::Write { source, .. }) if source.raw_os_error() == Some(libc::EINVAL) => {
            do_write(paths, quota)?;
            do_write(paths, period)
        }
        r => {
            r?;
            do_write(paths, quota)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// [`super::plan`] of resources as config.json gives them.
    fn plan(r: &serde_json::Value, v2: bool) -> Result<Vec<Write>, CgroupError> {
        let typed: Resources = crate::spec::gojson::from_value(r.clone()).expect("resources");
        super::plan(&typed, if v2 { Version::V2 } else { Version::V1 })
    }

    fn has(p: &[Write], file: &str, value: &str) -> bool {
        p.iter().any(|x| x.file == file && x.value == value)
    }

    #[test]
    fn conversions_follow_runc() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(blkio_weight_to_io(10), 1);
        assert_eq!(blkio_weight_to_io(500), 4950);
        assert_eq!(blkio_weight_to_io(1000), 10_000);
        assert_eq!(swap_v2(200, Some(100)).unwrap().as_deref(), Some("100"));
        assert_eq!(swap_v2(-1, Some(100)).unwrap().as_deref(), Some("max"));
        assert!(swap_v2(50, Some(100)).is_err());
        assert!(swap_v2(50, None).is_err());
        // Found by the fuzz target: `s - l` overflowed.
        assert!(swap_v2(i64::MAX, Some(-2)).is_err());
    }

    #[test]
    fn v1_plan() {
        let r = json!({
            "pids": {"limit": 32},
            "memory": {"limit": 1000, "swap": 2000, "reservation": 500, "swappiness": 10, "disableOOMKiller": true},
            "cpu": {"shares": 512, "quota": 50000, "period": 100000, "realtimeRuntime": 1000, "realtimePeriod": 10000, "cpus": "0", "mems": "0"},
            "blockIO": {"weight": 300, "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}]},
            "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}],
            "network": {"classID": 1048577, "priorities": [{"name": "eth0", "priority": 5}]},
        });
        let p = plan(&r, false).unwrap();
        for (f, v) in [
            ("pids.max", "32"),
            ("memory.limit_in_bytes", "1000"),
            ("memory.memsw.limit_in_bytes", "2000"),
            ("memory.soft_limit_in_bytes", "500"),
            ("memory.swappiness", "10"),
            ("memory.oom_control", "1"),
            ("cpu.shares", "512"),
            ("cpu.cfs_quota_us", "50000"),
            ("cpu.cfs_period_us", "100000"),
            ("cpu.rt_runtime_us", "1000"),
            ("cpu.rt_period_us", "10000"),
            ("cpuset.cpus", "0"),
            ("blkio.weight", "300"),
            ("blkio.throttle.read_bps_device", "8:0 1048576"),
            ("hugetlb.2MB.limit_in_bytes", "4194304"),
            ("net_cls.classid", "1048577"),
            ("net_prio.ifpriomap", "eth0 5"),
        ] {
            assert!(has(&p, f, v), "{f}={v} missing from {p:?}");
        }
        let period = p.iter().position(|x| x.file == "cpu.rt_period_us").unwrap();
        let runtime = p
            .iter()
            .position(|x| x.file == "cpu.rt_runtime_us")
            .unwrap();
        assert!(period < runtime);
        assert!(plan(&json!({"unified": {"memory.max": "1"}}), false).is_err());
        // Go ignores what its struct does not have.
        assert!(plan(&json!({"frobs": {}}), false).is_ok());
    }

    #[test]
    fn v2_plan() {
        let r = json!({
            "memory": {"limit": 1000, "swap": 3000, "reservation": 10},
            "cpu": {"shares": 1024, "quota": 20000, "burst": 1000, "idle": 1},
            "pids": {"limit": -1},
            "blockIO": {"weight": 500, "throttleWriteIOPSDevice": [{"major": 254, "minor": 0, "rate": 100}]},
            "hugepageLimits": [{"pageSize": "2MB", "limit": 0}],
            "rdma": {"mlx5_1": {"hcaHandles": 3, "hcaObjects": 10000}},
            "unified": {"memory.high": "900"}
        });
        let p = plan(&r, true).unwrap();
        for (f, v) in [
            ("memory.max", "1000"),
            ("memory.swap.max", "2000"),
            ("memory.low", "10"),
            ("cpu.weight", "39"),
            ("cpu.max", "20000 100000"),
            ("cpu.max.burst", "1000"),
            ("cpu.idle", "1"),
            ("pids.max", "max"),
            ("io.weight", "4950"),
            ("io.max", "254:0 wiops=100"),
            ("hugetlb.2MB.max", "0"),
            ("rdma.max", "mlx5_1 hca_handle=3 hca_object=10000"),
            ("memory.high", "900"),
        ] {
            assert!(has(&p, f, v), "{f}={v} missing from {p:?}");
        }
        assert!(plan(&json!({"memory": {"swappiness": 5}}), true).is_err());
        assert!(plan(&json!({"cpu": {"realtimeRuntime": 5}}), true).is_err());
        assert!(plan(&json!({"network": {"classID": 1}}), true).is_err());
        assert!(plan(&json!({"unified": {"../x": "1"}}), true).is_err());
    }

    #[test]
    fn zero_means_unset() {
        let r = json!({"memory": {"limit": 0}, "cpu": {"shares": 0, "quota": 0}, "pids": {"limit": 0}, "blockIO": {"weight": 0}});
        assert_eq!(plan(&r, false).unwrap(), vec![]);
        assert_eq!(plan(&r, true).unwrap(), vec![]);
    }

    /// Regressions from the fuzz target (`cgroups::fuzz`): what goes into a
    /// file name or a one-line value, and device rules `apply` would have
    /// refused only after the other writes.
    #[test]
    fn refusals_found_by_fuzzing() {
        let devices = json!([{"type": "u", "access": "rwm"}]);
        for (r, v2) in [
            (json!({"unified": {"": "max"}}), true),
            (json!({"unified": {"a\nb": "1"}}), true),
            (json!({"unified": {"\r": "1"}}), true),
            (json!({"unified": {"memory.high": "1\n2"}}), true),
            (
                json!({"hugepageLimits": [{"pageSize": "../x", "limit": 1}]}),
                false,
            ),
            (
                json!({"hugepageLimits": [{"pageSize": "a/b", "limit": 1}]}),
                true,
            ),
            (json!({"rdma": {"x\ny": {"hcaObjects": 1}}}), true),
            (
                json!({"network": {"priorities": [{"name": "a\nb", "priority": 1}]}}),
                false,
            ),
            (json!({"cpu": {"cpus": "0\n1"}}), false),
            (json!({"memory": {"limit": i64::MIN, "swap": 2}}), true),
            (json!({"pids": {"limit": 5}, "devices": devices}), true),
            (json!({"pids": {"limit": 5}, "devices": devices}), false),
            (
                json!({"devices": [{"type": "c", "major": 1_i64 << 40}]}),
                false,
            ),
        ] {
            assert!(plan(&r, v2).is_err(), "{r} v2={v2}");
        }
        // apply's own message, now before any write.
        let e = plan(
            &json!({"devices": [{"allow": true, "type": "c", "access": "rwxq"}]}),
            false,
        );
        assert_eq!(
            e.unwrap_err().to_string(),
            r#"invalid device rule "c *:* rwxq""#
        );
        // A final newline is dropped.
        let p = plan(&json!({"unified": {"memory.high": "max\n"}}), true).unwrap();
        assert_eq!(p[0].value, "max");
    }
}
