//! `linux.resources`: the limits applied when the cgroup is created.
//!
//! This covers the limits every container manager sets (pids, memory limit
//! and reservation, cpu shares/weight, quota, period, cpuset) and, on cgroup
//! v1, the device allow-list. The rest of `linux.resources` (swap, blkio,
//! hugetlb, network, rdma, unified, the v2 device program) belongs to the
//! cgroups issue; a config that sets them gets a warning naming them, never
//! silence.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{write, CgroupError};

/// A device rule as the kernel's v1 `devices.allow`/`devices.deny` take it.
fn device_rule(d: &Value) -> String {
    let num = |k: &str| {
        d.get(k)
            .and_then(Value::as_i64)
            .map_or("*".to_string(), |n| n.to_string())
    };
    let typ = d.get("type").and_then(Value::as_str).unwrap_or("a");
    let access = d.get("access").and_then(Value::as_str).unwrap_or("rwm");
    format!("{typ} {}:{} {access}", num("major"), num("minor"))
}

/// The devices every container may use, after the config's own rules (the
/// same list runc grants): mknod of anything, then the standard nodes.
pub const DEFAULT_ALLOWED: &[&str] = &[
    "c *:* m",
    "b *:* m",
    "c 1:3 rwm",
    "c 1:8 rwm",
    "c 1:7 rwm",
    "c 5:0 rwm",
    "c 1:5 rwm",
    "c 1:9 rwm",
    "c 136:* rwm",
    "c 5:2 rwm",
    "c 10:200 rwm",
];

/// Converts cpu shares (v1, 2..262144) to a v2 weight (1..10000) with the
/// formula runc and the kernel documentation use.
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    1 + (shares.clamp(2, 262_144) - 2) * 9999 / 262_142
}

/// What `apply` writes: (controller, file, value), in order.
pub fn plan(res: &Value, v2: bool) -> (Vec<(&'static str, &'static str, String)>, Vec<String>) {
    let mut w = Vec::new();
    let mut ignored = Vec::new();
    let int = |v: &Value, k: &str| v.get(k).and_then(Value::as_i64);
    let Some(obj) = res.as_object() else {
        return (w, ignored);
    };
    for (key, v) in obj {
        match key.as_str() {
            "pids" => {
                if let Some(l) = int(v, "limit") {
                    let val = if l <= 0 {
                        "max".to_string()
                    } else {
                        l.to_string()
                    };
                    w.push(("pids", "pids.max", val));
                }
            }
            "memory" => {
                let lim = |n: i64| {
                    if n < 0 {
                        "max".to_string()
                    } else {
                        n.to_string()
                    }
                };
                for (k, v1f, v2f) in [
                    ("limit", "memory.limit_in_bytes", "memory.max"),
                    ("reservation", "memory.soft_limit_in_bytes", "memory.low"),
                ] {
                    if let Some(n) = int(v, k) {
                        let val = if v2 { lim(n) } else { n.to_string() };
                        w.push(("memory", if v2 { v2f } else { v1f }, val));
                    }
                }
                for k in v.as_object().into_iter().flat_map(|o| o.keys()) {
                    if k != "limit" && k != "reservation" {
                        ignored.push(format!("memory.{k}"));
                    }
                }
            }
            "cpu" => {
                let shares = v.get("shares").and_then(Value::as_u64);
                let quota = int(v, "quota");
                let period = v.get("period").and_then(Value::as_u64);
                if let Some(s) = shares.filter(|s| *s > 0) {
                    if v2 {
                        w.push(("cpu", "cpu.weight", shares_to_weight(s).to_string()));
                    } else {
                        w.push(("cpu", "cpu.shares", s.to_string()));
                    }
                }
                if v2 {
                    if quota.is_some() || period.is_some() {
                        let q = quota
                            .filter(|q| *q > 0)
                            .map_or("max".to_string(), |q| q.to_string());
                        w.push((
                            "cpu",
                            "cpu.max",
                            format!("{q} {}", period.unwrap_or(100_000)),
                        ));
                    }
                } else {
                    if let Some(p) = period.filter(|p| *p > 0) {
                        w.push(("cpu", "cpu.cfs_period_us", p.to_string()));
                    }
                    if let Some(q) = quota.filter(|q| *q != 0) {
                        w.push(("cpu", "cpu.cfs_quota_us", q.to_string()));
                    }
                }
                for (k, file) in [("cpus", "cpuset.cpus"), ("mems", "cpuset.mems")] {
                    if let Some(s) = v.get(k).and_then(Value::as_str).filter(|s| !s.is_empty()) {
                        w.push(("cpuset", file, s.to_string()));
                    }
                }
                for k in v.as_object().into_iter().flat_map(|o| o.keys()) {
                    if !["shares", "quota", "period", "cpus", "mems"].contains(&k.as_str()) {
                        ignored.push(format!("cpu.{k}"));
                    }
                }
            }
            "devices" if !v2 => {
                for d in v.as_array().into_iter().flatten() {
                    let allow = d.get("allow").and_then(Value::as_bool).unwrap_or(false);
                    let file = if allow {
                        "devices.allow"
                    } else {
                        "devices.deny"
                    };
                    w.push(("devices", file, device_rule(d)));
                }
                for r in DEFAULT_ALLOWED {
                    w.push(("devices", "devices.allow", (*r).to_string()));
                }
            }
            other => ignored.push(other.to_string()),
        }
    }
    (w, ignored)
}

/// Applies `linux.resources` to the cgroup directories (keyed by v1
/// hierarchy name, `""` for v2); returns the names of fields not applied.
pub fn apply(paths: &BTreeMap<String, PathBuf>, res: &Value) -> Result<Vec<String>, CgroupError> {
    let v2 = paths.contains_key("");
    let (writes, ignored) = plan(res, v2);
    for (controller, file, value) in writes {
        let dir = if v2 {
            paths.get("")
        } else {
            paths.get(controller)
        };
        match dir {
            Some(d) => write(&d.join(file), &value)?,
            None => {
                return Err(CgroupError::Write {
                    path: Path::new(controller).join(file),
                    value,
                    source: std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        "controller not mounted",
                    ),
                })
            }
        }
    }
    Ok(ignored)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn weights_follow_runc() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
    }

    #[test]
    fn v1_plan() {
        let r = json!({
            "pids": {"limit": 32}, "memory": {"limit": 1000, "swap": 2000},
            "cpu": {"shares": 512, "quota": 50000, "period": 100000},
            "devices": [{"allow": false, "access": "rwm"}], "hugepageLimits": []
        });
        let (w, ignored) = plan(&r, false);
        assert!(w.contains(&("pids", "pids.max", "32".into())));
        assert!(w.contains(&("memory", "memory.limit_in_bytes", "1000".into())));
        assert!(w.contains(&("cpu", "cpu.cfs_quota_us", "50000".into())));
        assert!(w.contains(&("devices", "devices.deny", "a *:* rwm".into())));
        assert_eq!(
            w.iter().filter(|x| x.1 == "devices.allow").count(),
            DEFAULT_ALLOWED.len()
        );
        assert_eq!(
            ignored,
            vec!["hugepageLimits".to_string(), "memory.swap".to_string()]
        );
    }

    #[test]
    fn v2_plan() {
        let r = json!({"memory": {"limit": -1}, "cpu": {"shares": 1024, "quota": 20000}});
        let (w, _) = plan(&r, true);
        assert!(w.contains(&("memory", "memory.max", "max".into())));
        assert!(w.contains(&("cpu", "cpu.weight", "39".into())));
        assert!(w.contains(&("cpu", "cpu.max", "20000 100000".into())));
    }
}
