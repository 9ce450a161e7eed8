//! Statistics and OOM counters of a container's cgroup, in the JSON shape
//! of runc's `events` (`types.Stats`): `cpu`, `memory`, `pids`, `blkio`,
//! `hugetlb`.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use super::Cgroup;

fn read(dir: &Path, file: &str) -> Option<String> {
    fs::read_to_string(dir.join(file)).ok()
}

/// A single-number file; `max` reads as `u64::MAX`, as runc reports it.
fn num(dir: &Path, file: &str) -> Option<u64> {
    let s = read(dir, file)?;
    let s = s.trim();
    if s == "max" {
        Some(u64::MAX)
    } else {
        s.parse().ok()
    }
}

/// `key value` lines (memory.stat, cpu.stat, memory.events, cpuacct.stat).
fn flat_keyed(dir: &Path, file: &str) -> BTreeMap<String, u64> {
    read(dir, file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

/// Adds `key: value` unless the value is zero/absent (runc's `omitempty`).
fn put(m: &mut Map<String, Value>, key: &str, v: Option<u64>) {
    if let Some(v) = v.filter(|v| *v != 0) {
        m.insert(key.into(), json!(v));
    }
}

/// The page sizes the kernel offers, as cgroup file names spell them
/// (`2MB`, `1GB`).
pub fn hugepage_sizes() -> Vec<String> {
    let mut out: Vec<String> = fs::read_dir("/sys/kernel/mm/hugepages")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let kb: u64 = name
                .strip_prefix("hugepages-")?
                .strip_suffix("kB")?
                .parse()
                .ok()?;
            Some(if kb >= 1 << 20 {
                format!("{}GB", kb >> 20)
            } else if kb >= 1 << 10 {
                format!("{}MB", kb >> 10)
            } else {
                format!("{kb}KB")
            })
        })
        .collect();
    out.sort();
    out
}

const USER_HZ: u64 = 100;
const NS_PER_TICK: u64 = 1_000_000_000 / USER_HZ;

/// Whitespace-separated numbers of a file (`cpuacct.usage_percpu`).
fn numbers(dir: &Path, file: &str) -> Vec<u64> {
    read(dir, file)
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect()
}

/// runc's `CpuUsage`: `total`, `percpu`, `percpu_kernel`, `percpu_user`
/// (each left out when zero or empty), `kernel`, `user`.
fn cpu_usage(total: Option<u64>, percpu: [Vec<u64>; 3], kernel: u64, user: u64) -> Value {
    let mut usage = Map::new();
    put(&mut usage, "total", total);
    for (key, list) in ["percpu", "percpu_kernel", "percpu_user"]
        .into_iter()
        .zip(percpu)
    {
        if !list.is_empty() {
            usage.insert(key.into(), json!(list));
        }
    }
    usage.insert("kernel".into(), json!(kernel));
    usage.insert("user".into(), json!(user));
    Value::Object(usage)
}

/// runc's `Throttling` (camelCase keys, zeros left out).
fn throttling(periods: Option<u64>, throttled: Option<u64>, time_ns: Option<u64>) -> Value {
    let mut t = Map::new();
    put(&mut t, "periods", periods);
    put(&mut t, "throttledPeriods", throttled);
    put(&mut t, "throttledTime", time_ns);
    Value::Object(t)
}

fn cpu_v1(paths: &Cgroup) -> Value {
    let usage = match paths.dir_for("cpuacct") {
        Some(d) => {
            // `cpuacct.usage_all`: a header, then `cpu user system` per CPU.
            let (mut user, mut system) = (Vec::new(), Vec::new());
            for l in read(d, "cpuacct.usage_all")
                .unwrap_or_default()
                .lines()
                .skip(1)
            {
                let f: Vec<u64> = l
                    .split_whitespace()
                    .filter_map(|x| x.parse().ok())
                    .collect();
                if let [_, u, s] = f[..] {
                    user.push(u);
                    system.push(s);
                }
            }
            let stat = flat_keyed(d, "cpuacct.stat");
            cpu_usage(
                num(d, "cpuacct.usage"),
                [numbers(d, "cpuacct.usage_percpu"), system, user],
                stat.get("system").copied().unwrap_or(0) * NS_PER_TICK,
                stat.get("user").copied().unwrap_or(0) * NS_PER_TICK,
            )
        }
        None => cpu_usage(None, Default::default(), 0, 0),
    };
    let stat = paths
        .dir_for("cpu")
        .map(|d| flat_keyed(d, "cpu.stat"))
        .unwrap_or_default();
    json!({
        "usage": usage,
        "throttling": throttling(
            stat.get("nr_periods").copied(),
            stat.get("nr_throttled").copied(),
            stat.get("throttled_time").copied(),
        ),
    })
}

fn cpu_v2(d: &Path) -> Value {
    let stat = flat_keyed(d, "cpu.stat");
    let ns = |k: &str| stat.get(k).map(|v| v * 1000);
    json!({
        "usage": cpu_usage(
            ns("usage_usec"),
            Default::default(),
            ns("system_usec").unwrap_or(0),
            ns("user_usec").unwrap_or(0),
        ),
        "throttling": throttling(
            stat.get("nr_periods").copied(),
            stat.get("nr_throttled").copied(),
            ns("throttled_usec"),
        ),
    })
}

/// A cpuset list (`0-3,8`) expanded, as runc's `[]uint16`.
fn cpu_list(s: &str) -> Vec<u16> {
    let mut out = Vec::new();
    for part in s.trim().split(',').filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        if let (Ok(a), Ok(b)) = (a.trim().parse::<u16>(), b.trim().parse::<u16>()) {
            out.extend(a..=b);
        }
    }
    out
}

/// runc's `CPUSet`: read on v1; all zero on v2 (runc 1.1 reads no cpuset
/// statistics there).
fn cpuset(d: Option<&PathBuf>) -> Value {
    let mut m = Map::new();
    let list = |f: &str| {
        d.map(|d| cpu_list(&read(d, f).unwrap_or_default()))
            .unwrap_or_default()
    };
    let flag = |f: &str| json!(d.and_then(|d| num(d, f)).unwrap_or(0));
    let (cpus, mems) = (list("cpuset.cpus"), list("cpuset.mems"));
    if !cpus.is_empty() {
        m.insert("cpus".into(), json!(cpus));
    }
    m.insert("cpu_exclusive".into(), flag("cpuset.cpu_exclusive"));
    if !mems.is_empty() {
        m.insert("mems".into(), json!(mems));
    }
    for (key, file) in [
        ("mem_hardwall", "cpuset.mem_hardwall"),
        ("mem_exclusive", "cpuset.mem_exclusive"),
        ("memory_migrate", "cpuset.memory_migrate"),
        ("memory_spread_page", "cpuset.memory_spread_page"),
        ("memory_spread_slab", "cpuset.memory_spread_slab"),
        ("memory_pressure", "cpuset.memory_pressure"),
        ("sched_load_balance", "cpuset.sched_load_balance"),
    ] {
        m.insert(key.into(), flag(file));
    }
    let relax = d
        .and_then(|d| read(d, "cpuset.sched_relax_domain_level"))
        .and_then(|s| s.trim().parse::<i64>().ok())
        .unwrap_or(0);
    m.insert("sched_relax_domain_level".into(), json!(relax));
    Value::Object(m)
}

/// runc's `MemoryEntry`: `limit`, `usage` and `max` (left out when zero),
/// `failcnt`.
fn mem_entry(limit: u64, usage: u64, max: u64, failcnt: u64) -> Value {
    let mut m = Map::new();
    m.insert("limit".into(), json!(limit));
    put(&mut m, "usage", Some(usage));
    put(&mut m, "max", Some(max));
    m.insert("failcnt".into(), json!(failcnt));
    Value::Object(m)
}

/// runc's `Memory`: `cache` (left out when zero), the four entries (always
/// there: Go structs are never "empty"), `raw` (`memory.stat`, sorted).
fn memory(cache: Option<u64>, entries: [Value; 4], raw: BTreeMap<String, u64>) -> Value {
    let mut m = Map::new();
    put(&mut m, "cache", cache);
    for (key, e) in ["usage", "swap", "kernel", "kernelTCP"]
        .into_iter()
        .zip(entries)
    {
        m.insert(key.into(), e);
    }
    if !raw.is_empty() {
        m.insert("raw".into(), json!(raw));
    }
    Value::Object(m)
}

fn memory_v1(d: Option<&PathBuf>) -> Value {
    let Some(d) = d else {
        let zero = || mem_entry(0, 0, 0, 0);
        return memory(None, [zero(), zero(), zero(), zero()], BTreeMap::new());
    };
    let entry = |prefix: &str| {
        let n = |f: &str| num(d, &format!("{prefix}.{f}")).unwrap_or(0);
        mem_entry(
            n("limit_in_bytes"),
            n("usage_in_bytes"),
            n("max_usage_in_bytes"),
            n("failcnt"),
        )
    };
    let raw = flat_keyed(d, "memory.stat");
    memory(
        raw.get("cache").copied(),
        [
            entry("memory"),
            entry("memory.memsw"),
            entry("memory.kmem"),
            entry("memory.kmem.tcp"),
        ],
        raw,
    )
}

/// v2 as runc 1.1 reports it: `usage` is `memory.current` against
/// `memory.max`; `swap` is memory+swap (v1's meaning: `memory.swap.current`
/// plus `memory.current`, limits added unless unlimited); no kernel entries.
fn memory_v2(d: &Path) -> Value {
    let raw = flat_keyed(d, "memory.stat");
    let (usage, limit) = (
        num(d, "memory.current").unwrap_or(0),
        num(d, "memory.max").unwrap_or(0),
    );
    let swap = match num(d, "memory.swap.current") {
        Some(cur) => {
            let max = num(d, "memory.swap.max").unwrap_or(0);
            let max = if max == u64::MAX {
                max
            } else {
                max.saturating_add(limit)
            };
            mem_entry(max, cur + usage, 0, 0)
        }
        None => mem_entry(0, 0, 0, 0),
    };
    memory(
        raw.get("file").copied(),
        [
            mem_entry(limit, usage, 0, 0),
            swap,
            mem_entry(0, 0, 0, 0),
            mem_entry(0, 0, 0, 0),
        ],
        raw,
    )
}

fn pids(d: Option<&PathBuf>) -> Value {
    let mut m = Map::new();
    if let Some(d) = d {
        put(&mut m, "current", num(d, "pids.current"));
        put(
            &mut m,
            "limit",
            num(d, "pids.max").filter(|l| *l != u64::MAX),
        );
    }
    Value::Object(m)
}

/// runc's `BlkioEntry`: every field left out when zero.
fn blkio_entry(major: u64, minor: u64, op: &str, value: u64) -> Value {
    let mut m = Map::new();
    put(&mut m, "major", Some(major));
    put(&mut m, "minor", Some(minor));
    if !op.is_empty() {
        m.insert("op".into(), json!(op));
    }
    put(&mut m, "value", Some(value));
    Value::Object(m)
}

fn blkio_entries(lines: &str) -> Vec<Value> {
    lines
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let (dev, op, v) = (it.next()?, it.next()?, it.next()?);
            let (major, minor) = dev.split_once(':')?;
            Some(blkio_entry(
                major.parse().ok()?,
                minor.parse().ok()?,
                op,
                v.parse().ok()?,
            ))
        })
        .collect()
}

/// v1 blkio as runc 1.1 reads it: the first group of files that exists,
/// among BFQ's, CFQ's and the throttle policy's (recursive, then not).
fn blkio_v1(d: Option<&PathBuf>) -> Value {
    let mut m = Map::new();
    let Some(d) = d else { return Value::Object(m) };
    const GROUPS: [[&str; 2]; 4] = [
        [
            "blkio.bfq.io_serviced_recursive",
            "blkio.bfq.io_service_bytes_recursive",
        ],
        [
            "blkio.io_serviced_recursive",
            "blkio.io_service_bytes_recursive",
        ],
        [
            "blkio.throttle.io_serviced_recursive",
            "blkio.throttle.io_service_bytes_recursive",
        ],
        [
            "blkio.throttle.io_serviced",
            "blkio.throttle.io_service_bytes",
        ],
    ];
    let Some([serviced, bytes]) = GROUPS
        .iter()
        .find_map(|[a, b]| Some([read(d, a)?, read(d, b)?]))
    else {
        return Value::Object(m);
    };
    for (key, text) in [
        ("ioServiceBytesRecursive", bytes),
        ("ioServicedRecursive", serviced),
    ] {
        let e = blkio_entries(&text);
        if !e.is_empty() {
            m.insert(key.into(), json!(e));
        }
    }
    Value::Object(m)
}

/// v2 `io.stat` (`maj:min rbytes=… wbytes=… rios=… wios=…`) in v1's entry
/// form, as runc converts it.
fn blkio_v2(d: &Path) -> Value {
    let mut bytes = Vec::new();
    let mut ios = Vec::new();
    for l in read(d, "io.stat").unwrap_or_default().lines() {
        let mut it = l.split_whitespace();
        let Some((major, minor)) = it.next().and_then(|dev| dev.split_once(':')) else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (major.parse::<u64>(), minor.parse::<u64>()) else {
            continue;
        };
        for kv in it {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let Ok(v) = v.parse::<u64>() else { continue };
            match k {
                "rbytes" => bytes.push(blkio_entry(major, minor, "Read", v)),
                "wbytes" => bytes.push(blkio_entry(major, minor, "Write", v)),
                "rios" => ios.push(blkio_entry(major, minor, "Read", v)),
                "wios" => ios.push(blkio_entry(major, minor, "Write", v)),
                _ => {}
            }
        }
    }
    let mut m = Map::new();
    if !bytes.is_empty() {
        m.insert("ioServiceBytesRecursive".into(), json!(bytes));
    }
    if !ios.is_empty() {
        m.insert("ioServicedRecursive".into(), json!(ios));
    }
    Value::Object(m)
}

/// runc's `Hugetlb` per page size: `usage`, `max` (left out when zero),
/// `failcnt`.
fn hugetlb(d: Option<&PathBuf>, v2: bool) -> Value {
    let mut m = Map::new();
    let Some(d) = d else { return Value::Object(m) };
    for size in hugepage_sizes() {
        let (usage, max, failcnt) = if v2 {
            let events = flat_keyed(d, &format!("hugetlb.{size}.events"));
            (
                num(d, &format!("hugetlb.{size}.current")),
                None,
                events.get("max").copied(),
            )
        } else {
            (
                num(d, &format!("hugetlb.{size}.usage_in_bytes")),
                num(d, &format!("hugetlb.{size}.max_usage_in_bytes")),
                num(d, &format!("hugetlb.{size}.failcnt")),
            )
        };
        if usage.is_none() {
            continue;
        }
        let mut e = Map::new();
        put(&mut e, "usage", usage);
        put(&mut e, "max", max);
        e.insert("failcnt".into(), json!(failcnt.unwrap_or(0)));
        m.insert(size, Value::Object(e));
    }
    Value::Object(m)
}

/// The `data` of a runc `stats` event for the container's cgroup: runc's
/// `types.Stats`, its fields in runc's order.
pub fn collect(paths: &Cgroup) -> Value {
    if let Cgroup::V2(d) = paths {
        json!({
            "cpu": cpu_v2(d),
            "cpuset": cpuset(None),
            "memory": memory_v2(d),
            "pids": pids(Some(d)),
            "blkio": blkio_v2(d),
            "hugetlb": hugetlb(Some(d), true),
            "intel_rdt": {},
            "network_interfaces": null,
        })
    } else {
        json!({
            "cpu": cpu_v1(paths),
            "cpuset": cpuset(paths.dir_for("cpuset")),
            "memory": memory_v1(paths.dir_for("memory")),
            "pids": pids(paths.dir_for("pids")),
            "blkio": blkio_v1(paths.dir_for("blkio")),
            "hugetlb": hugetlb(paths.dir_for("hugetlb"), false),
            "intel_rdt": {},
            "network_interfaces": null,
        })
    }
}

/// How many times the kernel's OOM killer acted in the cgroup (v1
/// `memory.oom_control`, v2 `memory.events`), or `None` if unknown.
pub fn oom_kills(paths: &Cgroup) -> Option<u64> {
    match paths {
        Cgroup::V2(d) => flat_keyed(d, "memory.events").get("oom_kill").copied(),
        Cgroup::V1(_) => {
            let d = paths.dir_for("memory")?;
            flat_keyed(d, "memory.oom_control").get("oom_kill").copied()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_blkio_lines() {
        let e = blkio_entries("8:0 Read 4096\n8:0 Write 0\nTotal 4096\n");
        assert_eq!(e.len(), 2);
        // Go's omitempty: minor 0 and value 0 are left out.
        assert_eq!(e[0].to_string(), r#"{"major":8,"op":"Read","value":4096}"#);
        assert_eq!(e[1].to_string(), r#"{"major":8,"op":"Write"}"#);
        assert_eq!(cpu_list("0-2,5"), vec![0, 1, 2, 5]);
    }

    #[test]
    fn reads_this_processs_cgroup_files() {
        // Every host has /proc/self/cgroup; stats of a missing dir are empty.
        let paths = Cgroup::V1(BTreeMap::from([(
            "memory".to_string(),
            PathBuf::from("/nonexistent"),
        )]));
        let s = collect(&paths);
        assert_eq!(
            s["memory"]["usage"].to_string(),
            r#"{"limit":0,"failcnt":0}"#
        );
        let keys: Vec<&String> = s.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "cpu",
                "cpuset",
                "memory",
                "pids",
                "blkio",
                "hugetlb",
                "intel_rdt",
                "network_interfaces"
            ]
        );
        assert!(s["pids"].as_object().is_some_and(Map::is_empty));
    }
}
