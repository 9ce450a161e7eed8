//! The unit properties of a container's scope: the limits of
//! `linux.resources` that systemd itself knows, so that systemd keeps them
//! when it re-applies the unit's settings (`daemon-reload`, another unit's
//! change in the slice). The same limits are also written into the cgroup's
//! files, as with cgroupfs; these properties are what systemd would write
//! back. The choice of properties follows runc's: v2 names on a v2 host,
//! v1 names on a v1 one.

use super::dbus::Arg;
use crate::cgroups::resources::{blkio_weight_to_io, shares_to_weight};
use crate::cgroups::Version;
use crate::spec::Resources;

/// The default `cpu.cfs_period_us` (and v2 `cpu.max` period), µs.
const DEFAULT_PERIOD: u64 = 100_000;

/// Properties that older systemd versions do not know (242: the quota
/// period; 244: the cpuset ones). A scope refused for an unknown property
/// is started again without these ([`super::start`]); the files are
/// written anyway.
pub const RECENT: &[&str] = &["CPUQuotaPeriodUSec", "AllowedCPUs", "AllowedMemoryNodes"];

/// `props` without the [`RECENT`] ones, for an older systemd.
pub fn without_recent(props: &[(String, Arg)]) -> Vec<(String, Arg)> {
    props
        .iter()
        .filter(|(n, _)| !RECENT.contains(&n.as_str()))
        .cloned()
        .collect()
}

/// `-1` (unlimited) as systemd's infinity, other values as they are.
fn limit(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

fn nonzero<T: Copy + Default + PartialEq>(v: Option<T>) -> Option<T> {
    v.filter(|v| *v != T::default())
}

/// `CPUQuotaPerSecUSec` for a quota and period (µs): the CPU time per
/// second, which systemd keeps as a whole percentage, so a fraction is
/// rounded up to the next 10 ms (as runc does, so that the container's own
/// `cpu.max` stays within it). A quota of -1 is no limit.
pub fn quota_per_sec(quota: i64, period: u64) -> u64 {
    let Ok(quota) = u64::try_from(quota) else {
        return u64::MAX;
    };
    let period = if period == 0 { DEFAULT_PERIOD } else { period };
    let per_sec = quota.saturating_mul(1_000_000) / period;
    per_sec.div_ceil(10_000).saturating_mul(10_000)
}

/// A cpuset list (`0-3,8`) as systemd's bitmask (`AllowedCPUs`): byte `i`
/// bit `j` is CPU `8i + j`. `None` for a list that does not parse (the
/// cpuset file write reports it).
pub fn cpuset_mask(list: &str) -> Option<Vec<u8>> {
    let mut mask = Vec::new();
    for part in list.trim().split(',').filter(|p| !p.is_empty()) {
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (
                a.trim().parse::<usize>().ok()?,
                b.trim().parse::<usize>().ok()?,
            ),
            None => {
                let n = part.trim().parse::<usize>().ok()?;
                (n, n)
            }
        };
        if lo > hi || hi >= 1 << 16 {
            return None;
        }
        for cpu in lo..=hi {
            if mask.len() <= cpu / 8 {
                mask.resize(cpu / 8 + 1, 0);
            }
            mask[cpu / 8] |= 1 << (cpu % 8);
        }
    }
    Some(mask)
}

/// The limit properties of `res` for a host of `version`.
pub fn limits(res: &Resources, version: Version) -> Vec<(String, Arg)> {
    limits_with(res, version, || {
        std::fs::read_to_string("/proc/devices").unwrap_or_default()
    })
}

/// [`limits`], with the text of `/proc/devices` (for device groups) from
/// `proc_devices`, read only when the config has device rules.
fn limits_with(
    res: &Resources,
    version: Version,
    proc_devices: impl FnOnce() -> String,
) -> Vec<(String, Arg)> {
    let v2 = version == Version::V2;
    let mut out: Vec<(String, Arg)> = Vec::new();
    let mut set = |name: &str, value: Arg| {
        out.retain(|(n, _)| n != name);
        out.push((name.to_string(), value));
    };
    if let Some(m) = &res.memory {
        if let Some(l) = nonzero(m.limit) {
            set(
                if v2 { "MemoryMax" } else { "MemoryLimit" },
                Arg::U64(limit(l)),
            );
        }
        if v2 {
            if let Some(r) = nonzero(m.reservation) {
                set("MemoryLow", Arg::U64(limit(r)));
            }
            // memory+swap becomes swap alone, as for memory.swap.max.
            match (nonzero(m.swap), nonzero(m.limit)) {
                (Some(-1), _) => set("MemorySwapMax", Arg::U64(u64::MAX)),
                (Some(s), Some(l)) if l > 0 && s >= l => {
                    set("MemorySwapMax", Arg::U64(limit(s - l)));
                }
                _ => {}
            }
        }
    }
    if let Some(c) = &res.cpu {
        if let Some(s) = nonzero(c.shares) {
            if v2 {
                set("CPUWeight", Arg::U64(shares_to_weight(s)));
            } else {
                set("CPUShares", Arg::U64(s));
            }
        }
        let (quota, period) = (c.quota.unwrap_or(0), c.period.unwrap_or(0));
        if period != 0 {
            set("CPUQuotaPeriodUSec", Arg::U64(period));
        }
        if quota != 0 || period != 0 {
            let q = if quota == 0 { -1 } else { quota };
            set("CPUQuotaPerSecUSec", Arg::U64(quota_per_sec(q, period)));
        }
        if v2 {
            for (list, name) in [(&c.cpus, "AllowedCPUs"), (&c.mems, "AllowedMemoryNodes")] {
                if let Some(mask) = list
                    .as_deref()
                    .filter(|s| !s.is_empty())
                    .and_then(cpuset_mask)
                {
                    set(name, Arg::Bytes(mask));
                }
            }
        }
    }
    if let Some(l) = res.pids.as_ref().and_then(|p| nonzero(p.limit)) {
        set("TasksMax", Arg::U64(limit(l)));
    }
    if let Some(w) = res.block_io.as_ref().and_then(|b| nonzero(b.weight)) {
        if v2 {
            set("IOWeight", Arg::U64(blkio_weight_to_io(u64::from(w))));
        } else {
            set("BlockIOWeight", Arg::U64(u64::from(w)));
        }
    }
    if v2 {
        for (key, value) in &res.unified {
            unified(key, value.trim(), &mut set);
        }
    }
    if let Some(devices) = &res.devices {
        if let Some(allow) = crate::cgroups::devices::systemd_allow(devices, &proc_devices()) {
            set("DevicePolicy", Arg::Str("strict".into()));
            set("DeviceAllow", Arg::Pairs(allow));
        }
    }
    out
}

/// A `linux.resources.unified` entry systemd has a property for (written
/// as a file anyway, like every other entry).
fn unified(key: &str, value: &str, set: &mut impl FnMut(&str, Arg)) {
    let bytes = |v: &str| {
        if v == "max" {
            Some(u64::MAX)
        } else {
            v.parse::<u64>().ok()
        }
    };
    let name = match key {
        "memory.max" => "MemoryMax",
        "memory.high" => "MemoryHigh",
        "memory.low" => "MemoryLow",
        "memory.min" => "MemoryMin",
        "memory.swap.max" => "MemorySwapMax",
        "pids.max" => "TasksMax",
        "cpu.weight" => "CPUWeight",
        "cpuset.cpus" | "cpuset.mems" => {
            if let Some(mask) = cpuset_mask(value) {
                let name = if key == "cpuset.cpus" {
                    "AllowedCPUs"
                } else {
                    "AllowedMemoryNodes"
                };
                set(name, Arg::Bytes(mask));
            }
            return;
        }
        "cpu.max" => {
            let mut words = value.split_whitespace();
            let quota = words.next().unwrap_or("max");
            let period = words
                .next()
                .and_then(|p| p.parse::<u64>().ok())
                .unwrap_or(DEFAULT_PERIOD);
            let quota = if quota == "max" {
                Some(-1)
            } else {
                quota.parse::<i64>().ok()
            };
            if let Some(q) = quota {
                set("CPUQuotaPeriodUSec", Arg::U64(period));
                set("CPUQuotaPerSecUSec", Arg::U64(quota_per_sec(q, period)));
            }
            return;
        }
        _ => return,
    };
    if let Some(v) = bytes(value) {
        set(name, Arg::U64(v));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn res(v: serde_json::Value) -> Resources {
        serde_json::from_value(v).unwrap()
    }

    fn get<'a>(p: &'a [(String, Arg)], name: &str) -> Option<&'a Arg> {
        p.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    #[test]
    fn quota_is_rounded_up_to_whole_percent() {
        assert_eq!(quota_per_sec(50_000, 100_000), 500_000);
        assert_eq!(quota_per_sec(12_345, 100_000), 130_000);
        assert_eq!(quota_per_sec(50_000, 0), 500_000);
        assert_eq!(quota_per_sec(-1, 100_000), u64::MAX);
    }

    #[test]
    fn cpusets_become_bitmasks() {
        assert_eq!(cpuset_mask("0").unwrap(), vec![1]);
        assert_eq!(cpuset_mask("0-2,9").unwrap(), vec![0b111, 0b10]);
        assert_eq!(cpuset_mask("").unwrap(), Vec::<u8>::new());
        assert!(cpuset_mask("3-1").is_none());
        assert!(cpuset_mask("x").is_none());
    }

    #[test]
    fn v2_names_on_v2_and_v1_names_on_v1() {
        let r = res(json!({
            "memory": {"limit": 67108864, "reservation": 1048576, "swap": 134217728},
            "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": "0-1"},
            "pids": {"limit": 10},
            "blockIO": {"weight": 500}
        }));
        let p = limits(&r, Version::V2);
        assert_eq!(get(&p, "MemoryMax"), Some(&Arg::U64(67_108_864)));
        assert_eq!(get(&p, "MemoryLow"), Some(&Arg::U64(1_048_576)));
        assert_eq!(get(&p, "MemorySwapMax"), Some(&Arg::U64(67_108_864)));
        assert_eq!(get(&p, "CPUWeight"), Some(&Arg::U64(39)));
        assert_eq!(get(&p, "CPUQuotaPerSecUSec"), Some(&Arg::U64(500_000)));
        assert_eq!(get(&p, "CPUQuotaPeriodUSec"), Some(&Arg::U64(100_000)));
        assert_eq!(get(&p, "AllowedCPUs"), Some(&Arg::Bytes(vec![3])));
        assert_eq!(get(&p, "TasksMax"), Some(&Arg::U64(10)));
        assert_eq!(get(&p, "IOWeight"), Some(&Arg::U64(4950)));
        let p = limits(&r, Version::V1);
        assert_eq!(get(&p, "MemoryLimit"), Some(&Arg::U64(67_108_864)));
        assert_eq!(get(&p, "CPUShares"), Some(&Arg::U64(1024)));
        assert_eq!(get(&p, "BlockIOWeight"), Some(&Arg::U64(500)));
        assert!(get(&p, "MemoryMax").is_none() && get(&p, "AllowedCPUs").is_none());
    }

    #[test]
    fn unlimited_is_infinity_and_unified_overrides() {
        let r = res(json!({
            "memory": {"limit": -1},
            "pids": {"limit": -1},
            "unified": {"memory.high": "1000", "cpu.max": "max 50000", "pids.max": "max"}
        }));
        let p = limits(&r, Version::V2);
        assert_eq!(get(&p, "MemoryMax"), Some(&Arg::U64(u64::MAX)));
        assert_eq!(get(&p, "MemoryHigh"), Some(&Arg::U64(1000)));
        assert_eq!(get(&p, "TasksMax"), Some(&Arg::U64(u64::MAX)));
        assert_eq!(get(&p, "CPUQuotaPerSecUSec"), Some(&Arg::U64(u64::MAX)));
        assert_eq!(get(&p, "CPUQuotaPeriodUSec"), Some(&Arg::U64(50_000)));
    }

    #[test]
    fn devices_become_a_strict_allow_list() {
        let proc_devices = "Character devices:\n  1 mem\n136 pts\n\nBlock devices:\n  8 sd\n";
        let r = res(json!({"devices": [{"allow": false, "access": "rwm"}]}));
        let p = limits_with(&r, Version::V2, || proc_devices.into());
        assert_eq!(get(&p, "DevicePolicy"), Some(&Arg::Str("strict".into())));
        let Some(Arg::Pairs(allow)) = get(&p, "DeviceAllow") else {
            panic!("no DeviceAllow in {p:?}")
        };
        let has = |node: &str, access: &str| allow.iter().any(|(n, a)| n == node && a == access);
        assert!(has("char-*", "m") && has("block-*", "m"), "{allow:?}");
        assert!(
            has("/dev/char/1:3", "rwm") && has("char-pts", "rwm"),
            "{allow:?}"
        );
        // Privileged: every device, no policy.
        let r = res(json!({"devices": [{"allow": true, "access": "rwm"}]}));
        assert!(get(
            &limits_with(&r, Version::V2, || proc_devices.into()),
            "DevicePolicy"
        )
        .is_none());
        // No device rules at all: nothing said about devices.
        assert!(get(
            &limits_with(&res(json!({})), Version::V2, || proc_devices.into()),
            "DeviceAllow"
        )
        .is_none());
    }
}
