//! Statistics and OOM counters of a container's cgroup, in the JSON shape
//! of runc's `events` (`types.Stats`): `cpu`, `memory`, `pids`, `blkio`,
//! `hugetlb`.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use super::resources::dir_for;

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

fn cpu_v1(paths: &BTreeMap<String, PathBuf>) -> Value {
    let mut usage = Map::new();
    if let Some(d) = dir_for(paths, "cpuacct") {
        put(&mut usage, "total", num(d, "cpuacct.usage"));
        let percpu: Vec<u64> = read(d, "cpuacct.usage_percpu")
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        if !percpu.is_empty() {
            usage.insert("percpu".into(), json!(percpu));
        }
        let stat = flat_keyed(d, "cpuacct.stat");
        usage.insert(
            "kernel".into(),
            json!(stat.get("system").copied().unwrap_or(0) * NS_PER_TICK),
        );
        usage.insert(
            "user".into(),
            json!(stat.get("user").copied().unwrap_or(0) * NS_PER_TICK),
        );
    }
    let mut throttling = Map::new();
    if let Some(d) = dir_for(paths, "cpu") {
        let stat = flat_keyed(d, "cpu.stat");
        put(&mut throttling, "periods", stat.get("nr_periods").copied());
        put(
            &mut throttling,
            "throttled_periods",
            stat.get("nr_throttled").copied(),
        );
        put(
            &mut throttling,
            "throttled_time",
            stat.get("throttled_time").copied(),
        );
    }
    json!({ "usage": usage, "throttling": throttling })
}

fn cpu_v2(d: &Path) -> Value {
    let stat = flat_keyed(d, "cpu.stat");
    let ns = |k: &str| stat.get(k).map(|v| v * 1000);
    let mut usage = Map::new();
    put(&mut usage, "total", ns("usage_usec"));
    usage.insert("kernel".into(), json!(ns("system_usec").unwrap_or(0)));
    usage.insert("user".into(), json!(ns("user_usec").unwrap_or(0)));
    let mut throttling = Map::new();
    put(&mut throttling, "periods", stat.get("nr_periods").copied());
    put(
        &mut throttling,
        "throttled_periods",
        stat.get("nr_throttled").copied(),
    );
    put(&mut throttling, "throttled_time", ns("throttled_usec"));
    json!({ "usage": usage, "throttling": throttling })
}

fn mem_entry(d: &Path, prefix: &str) -> Option<Value> {
    let usage = num(d, &format!("{prefix}.usage_in_bytes"))?;
    let mut m = Map::new();
    m.insert(
        "limit".into(),
        json!(num(d, &format!("{prefix}.limit_in_bytes")).unwrap_or(0)),
    );
    put(&mut m, "usage", Some(usage));
    put(
        &mut m,
        "max",
        num(d, &format!("{prefix}.max_usage_in_bytes")),
    );
    m.insert(
        "failcnt".into(),
        json!(num(d, &format!("{prefix}.failcnt")).unwrap_or(0)),
    );
    Some(Value::Object(m))
}

fn memory_v1(d: &Path) -> Value {
    let raw = flat_keyed(d, "memory.stat");
    let mut m = Map::new();
    put(&mut m, "cache", raw.get("cache").copied());
    for (key, prefix) in [
        ("usage", "memory"),
        ("swap", "memory.memsw"),
        ("kernel", "memory.kmem"),
        ("kernelTCP", "memory.kmem.tcp"),
    ] {
        if let Some(e) = mem_entry(d, prefix) {
            m.insert(key.into(), e);
        }
    }
    m.insert("raw".into(), json!(raw));
    Value::Object(m)
}

fn memory_v2(d: &Path) -> Value {
    let raw = flat_keyed(d, "memory.stat");
    let events = flat_keyed(d, "memory.events");
    let mut m = Map::new();
    put(&mut m, "cache", raw.get("file").copied());
    let mut usage = Map::new();
    usage.insert(
        "limit".into(),
        json!(num(d, "memory.max").unwrap_or(u64::MAX)),
    );
    put(&mut usage, "usage", num(d, "memory.current"));
    put(&mut usage, "max", num(d, "memory.peak"));
    usage.insert(
        "failcnt".into(),
        json!(events.get("max").copied().unwrap_or(0)),
    );
    m.insert("usage".into(), Value::Object(usage));
    if let Some(cur) = num(d, "memory.swap.current") {
        let mut swap = Map::new();
        swap.insert(
            "limit".into(),
            json!(num(d, "memory.swap.max").unwrap_or(u64::MAX)),
        );
        put(&mut swap, "usage", Some(cur));
        swap.insert("failcnt".into(), json!(0));
        m.insert("swap".into(), Value::Object(swap));
    }
    m.insert("raw".into(), json!(raw));
    Value::Object(m)
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

fn blkio_entries(lines: &str) -> Vec<Value> {
    lines
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let (dev, op, v) = (it.next()?, it.next()?, it.next()?);
            let (major, minor) = dev.split_once(':')?;
            Some(json!({
                "major": major.parse::<u64>().ok()?,
                "minor": minor.parse::<u64>().ok()?,
                "op": op,
                "value": v.parse::<u64>().ok()?,
            }))
        })
        .collect()
}

fn blkio_v1(d: &Path) -> Value {
    let mut m = Map::new();
    for (key, file) in [
        (
            "ioServiceBytesRecursive",
            "blkio.throttle.io_service_bytes_recursive",
        ),
        (
            "ioServicedRecursive",
            "blkio.throttle.io_serviced_recursive",
        ),
    ] {
        let e = blkio_entries(&read(d, file).unwrap_or_default());
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
            let entry = |op: &str| json!({ "major": major, "minor": minor, "op": op, "value": v });
            match k {
                "rbytes" => bytes.push(entry("Read")),
                "wbytes" => bytes.push(entry("Write")),
                "rios" => ios.push(entry("Read")),
                "wios" => ios.push(entry("Write")),
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

fn hugetlb(d: Option<&PathBuf>, v2: bool) -> Value {
    let mut m = Map::new();
    let Some(d) = d else { return Value::Object(m) };
    for size in hugepage_sizes() {
        let entry = if v2 {
            let events = flat_keyed(d, &format!("hugetlb.{size}.events"));
            num(d, &format!("hugetlb.{size}.current")).map(|usage| {
                json!({ "usage": usage, "failcnt": events.get("max").copied().unwrap_or(0) })
            })
        } else {
            num(d, &format!("hugetlb.{size}.usage_in_bytes")).map(|usage| {
                json!({
                    "usage": usage,
                    "max": num(d, &format!("hugetlb.{size}.max_usage_in_bytes")).unwrap_or(0),
                    "failcnt": num(d, &format!("hugetlb.{size}.failcnt")).unwrap_or(0),
                })
            })
        };
        if let Some(e) = entry {
            m.insert(size, e);
        }
    }
    Value::Object(m)
}

/// The `data` of a runc `stats` event for the container's cgroup.
pub fn collect(paths: &BTreeMap<String, PathBuf>) -> Value {
    if let Some(d) = paths.get("") {
        json!({
            "cpu": cpu_v2(d),
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
            "memory": dir_for(paths, "memory").map_or(json!({}), |d| memory_v1(d)),
            "pids": pids(dir_for(paths, "pids")),
            "blkio": dir_for(paths, "blkio").map_or(json!({}), |d| blkio_v1(d)),
            "hugetlb": hugetlb(dir_for(paths, "hugetlb"), false),
            "intel_rdt": {},
            "network_interfaces": null,
        })
    }
}

/// How many times the kernel's OOM killer acted in the cgroup (v1
/// `memory.oom_control`, v2 `memory.events`), or `None` if unknown.
pub fn oom_kills(paths: &BTreeMap<String, PathBuf>) -> Option<u64> {
    match paths.get("") {
        Some(d) => flat_keyed(d, "memory.events").get("oom_kill").copied(),
        None => {
            let d = dir_for(paths, "memory")?;
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
        assert_eq!(e[0]["op"], "Read");
        assert_eq!(e[0]["value"], 4096);
    }

    #[test]
    fn reads_this_processs_cgroup_files() {
        // Every host has /proc/self/cgroup; stats of a missing dir are empty.
        let paths = BTreeMap::from([("memory".to_string(), PathBuf::from("/nonexistent"))]);
        let s = collect(&paths);
        assert!(s["memory"].get("usage").is_none());
        assert!(s["pids"].as_object().is_some_and(Map::is_empty));
    }
}
