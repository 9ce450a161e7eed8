//! `Stats`: runc's stats event (`events --stats`) translated into
//! containerd's cgroup metrics message, field by field as runc's shim fills
//! it: `io.containerd.cgroups.v1.Metrics` on cgroup v1 and hybrid hosts,
//! `io.containerd.cgroups.v2.Metrics` on a unified (v2) host. The v2 message
//! (containerd/cgroups `cgroup2/stats/metrics.proto`) is not among the
//! crate's generated types; it is encoded here with a small writer.

use containerd_shim::protos::cgroups::metrics::{
    BlkIOEntry, BlkIOStat, CPUStat, CPUUsage, HugetlbStat, MemoryEntry, MemoryStat, Metrics,
    PidsStat, Throttle,
};
use containerd_shim::protos::protobuf::well_known_types::any::Any;
use containerd_shim::protos::protobuf::{Message, MessageField};
use serde_json::Value;

fn num(v: &Value, pointer: &str) -> u64 {
    v.pointer(pointer).and_then(Value::as_u64).unwrap_or(0)
}

fn memory_entry(v: &Value, key: &str) -> MessageField<MemoryEntry> {
    match v.get(key) {
        Some(e) if e.is_object() => MessageField::some(MemoryEntry {
            limit: num(e, "/limit"),
            usage: num(e, "/usage"),
            max: num(e, "/max"),
            failcnt: num(e, "/failcnt"),
            ..Default::default()
        }),
        _ => MessageField::none(),
    }
}

fn blkio_entries(v: &Value, key: &str) -> Vec<BlkIOEntry> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .map(|e| BlkIOEntry {
                    op: e.get("op").and_then(Value::as_str).unwrap_or("").to_owned(),
                    major: num(e, "/major"),
                    minor: num(e, "/minor"),
                    value: num(e, "/value"),
                    ..Default::default()
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Builds the metrics from the `data` of runc's stats event (or the whole
/// event).
pub(crate) fn metrics(event: &Value) -> Metrics {
    let d = event.get("data").unwrap_or(event);
    let mut m = Metrics::new();
    if let Some(pids) = d.get("pids") {
        m.pids = MessageField::some(PidsStat {
            current: num(pids, "/current"),
            limit: num(pids, "/limit"),
            ..Default::default()
        });
    }
    if let Some(cpu) = d.get("cpu") {
        let per_cpu = cpu
            .pointer("/usage/percpu")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_u64).collect())
            .unwrap_or_default();
        m.cpu = MessageField::some(CPUStat {
            usage: MessageField::some(CPUUsage {
                total: num(cpu, "/usage/total"),
                kernel: num(cpu, "/usage/kernel"),
                user: num(cpu, "/usage/user"),
                per_cpu,
                ..Default::default()
            }),
            throttling: MessageField::some(Throttle {
                periods: num(cpu, "/throttling/periods"),
                throttled_periods: num(cpu, "/throttling/throttledPeriods"),
                throttled_time: num(cpu, "/throttling/throttledTime"),
                ..Default::default()
            }),
            ..Default::default()
        });
    }
    if let Some(mem) = d.get("memory") {
        let raw = |k: &str| num(mem, &format!("/raw/{k}"));
        m.memory = MessageField::some(MemoryStat {
            cache: num(mem, "/cache"),
            rss: raw("rss"),
            rss_huge: raw("rss_huge"),
            mapped_file: raw("mapped_file"),
            dirty: raw("dirty"),
            writeback: raw("writeback"),
            pg_pg_in: raw("pgpgin"),
            pg_pg_out: raw("pgpgout"),
            pg_fault: raw("pgfault"),
            pg_maj_fault: raw("pgmajfault"),
            inactive_anon: raw("inactive_anon"),
            active_anon: raw("active_anon"),
            inactive_file: raw("inactive_file"),
            active_file: raw("active_file"),
            unevictable: raw("unevictable"),
            hierarchical_memory_limit: raw("hierarchical_memory_limit"),
            hierarchical_swap_limit: raw("hierarchical_memsw_limit"),
            total_cache: raw("total_cache"),
            total_rss: raw("total_rss"),
            total_rss_huge: raw("total_rss_huge"),
            total_mapped_file: raw("total_mapped_file"),
            total_dirty: raw("total_dirty"),
            total_writeback: raw("total_writeback"),
            total_pg_pg_in: raw("total_pgpgin"),
            total_pg_pg_out: raw("total_pgpgout"),
            total_pg_fault: raw("total_pgfault"),
            total_pg_maj_fault: raw("total_pgmajfault"),
            total_inactive_anon: raw("total_inactive_anon"),
            total_active_anon: raw("total_active_anon"),
            total_inactive_file: raw("total_inactive_file"),
            total_active_file: raw("total_active_file"),
            total_unevictable: raw("total_unevictable"),
            usage: memory_entry(mem, "usage"),
            swap: memory_entry(mem, "swap"),
            kernel: memory_entry(mem, "kernel"),
            kernel_tcp: memory_entry(mem, "kernelTCP"),
            ..Default::default()
        });
    }
    if let Some(blkio) = d.get("blkio") {
        m.blkio = MessageField::some(BlkIOStat {
            io_service_bytes_recursive: blkio_entries(blkio, "ioServiceBytesRecursive"),
            io_serviced_recursive: blkio_entries(blkio, "ioServicedRecursive"),
            io_queued_recursive: blkio_entries(blkio, "ioQueueRecursive"),
            io_service_time_recursive: blkio_entries(blkio, "ioServiceTimeRecursive"),
            io_wait_time_recursive: blkio_entries(blkio, "ioWaitTimeRecursive"),
            io_merged_recursive: blkio_entries(blkio, "ioMergedRecursive"),
            io_time_recursive: blkio_entries(blkio, "ioTimeRecursive"),
            sectors_recursive: blkio_entries(blkio, "sectorsRecursive"),
            ..Default::default()
        });
    }
    if let Some(pages) = d.get("hugetlb").and_then(Value::as_object) {
        for (size, e) in pages {
            m.hugetlb.push(HugetlbStat {
                usage: num(e, "/usage"),
                max: num(e, "/max"),
                failcnt: num(e, "/failcnt"),
                pagesize: size.clone(),
                ..Default::default()
            });
        }
    }
    m
}

/// Whether the host runs the unified cgroup v2 hierarchy only.
pub(crate) fn unified_host() -> bool {
    std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// The metrics as the `Any` containerd expects in a `StatsResponse`.
pub(crate) fn to_any(
    event: &Value,
    unified: bool,
) -> Result<Any, containerd_shim::protos::protobuf::Error> {
    if unified {
        return Ok(Any {
            type_url: "io.containerd.cgroups.v2.Metrics".into(),
            value: metrics_v2(event),
            ..Default::default()
        });
    }
    let m = metrics(event);
    Ok(Any {
        type_url: "io.containerd.cgroups.v1.Metrics".into(),
        value: m.write_to_bytes()?,
        ..Default::default()
    })
}

/// A protobuf message being written: varint and nested-message fields.
#[derive(Debug, Default)]
struct Proto(Vec<u8>);

impl Proto {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    /// A `uint64` field (omitted when zero, as proto3 does).
    fn uint(&mut self, field: u64, v: u64) -> &mut Self {
        if v != 0 {
            self.varint(field << 3);
            self.varint(v);
        }
        self
    }

    /// A length-delimited field: a string or a nested message.
    fn bytes(&mut self, field: u64, data: &[u8]) -> &mut Self {
        self.varint((field << 3) | 2);
        self.varint(data.len() as u64);
        self.0.extend_from_slice(data);
        self
    }
}

/// The fields of `MemoryStat` (v2) that come from `memory.stat` by name.
const MEMORY_STAT_V2: [&str; 31] = [
    "anon",
    "file",
    "kernel_stack",
    "slab",
    "sock",
    "shmem",
    "file_mapped",
    "file_dirty",
    "file_writeback",
    "anon_thp",
    "inactive_anon",
    "active_anon",
    "inactive_file",
    "active_file",
    "unevictable",
    "slab_reclaimable",
    "slab_unreclaimable",
    "pgfault",
    "pgmajfault",
    "workingset_refault",
    "workingset_activate",
    "workingset_nodereclaim",
    "pgrefill",
    "pgscan",
    "pgsteal",
    "pgactivate",
    "pgdeactivate",
    "pglazyfree",
    "pglazyfreed",
    "thp_fault_alloc",
    "thp_collapse_alloc",
];

/// `io.containerd.cgroups.v2.Metrics`, encoded, from runc's stats event.
pub(crate) fn metrics_v2(event: &Value) -> Vec<u8> {
    let d = event.get("data").unwrap_or(event);
    let mut m = Proto::default();
    if let Some(pids) = d.get("pids") {
        let mut p = Proto::default();
        p.uint(1, num(pids, "/current"))
            .uint(2, num(pids, "/limit"));
        m.bytes(1, &p.0);
    }
    if let Some(cpu) = d.get("cpu") {
        let mut c = Proto::default();
        c.uint(1, num(cpu, "/usage/total") / 1000)
            .uint(2, num(cpu, "/usage/user") / 1000)
            .uint(3, num(cpu, "/usage/kernel") / 1000)
            .uint(4, num(cpu, "/throttling/periods"))
            .uint(5, num(cpu, "/throttling/throttledPeriods"))
            .uint(6, num(cpu, "/throttling/throttledTime") / 1000);
        m.bytes(2, &c.0);
    }
    if let Some(mem) = d.get("memory") {
        let mut s = Proto::default();
        for (field, name) in (1..).zip(MEMORY_STAT_V2) {
            s.uint(field, num(mem, &format!("/raw/{name}")));
        }
        // runc reports v2 swap as memory+swap (v1's meaning); containerd's
        // v2 metrics want swap alone.
        let (usage, limit) = (num(mem, "/usage/usage"), num(mem, "/usage/limit"));
        let swap_limit = match num(mem, "/swap/limit") {
            u64::MAX => u64::MAX,
            l => l.saturating_sub(limit),
        };
        s.uint(32, usage)
            .uint(33, limit)
            .uint(34, num(mem, "/swap/usage").saturating_sub(usage))
            .uint(35, swap_limit)
            .uint(36, num(mem, "/usage/max"))
            .uint(37, num(mem, "/swap/max"));
        m.bytes(4, &s.0);
    }
    if let Some(blkio) = d.get("blkio") {
        let mut io = Proto::default();
        for entry in io_entries_v2(blkio) {
            io.bytes(1, &entry.0);
        }
        m.bytes(6, &io.0);
    }
    if let Some(pages) = d.get("hugetlb").and_then(Value::as_object) {
        for (size, e) in pages {
            let mut h = Proto::default();
            h.uint(1, num(e, "/usage"))
                .uint(2, num(e, "/max"))
                .bytes(3, size.as_bytes());
            m.bytes(7, &h.0);
        }
    }
    m.0
}

/// One `IOEntry` per device, from runc's per-operation blkio lists.
fn io_entries_v2(blkio: &Value) -> Vec<Proto> {
    // (major, minor) -> [rbytes, wbytes, rios, wios]
    let mut devices: std::collections::BTreeMap<(u64, u64), [u64; 4]> = Default::default();
    for (key, offset) in [("ioServiceBytesRecursive", 0), ("ioServicedRecursive", 2)] {
        for e in blkio
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let slot = match e.get("op").and_then(Value::as_str) {
                Some(op) if op.eq_ignore_ascii_case("read") => offset,
                Some(op) if op.eq_ignore_ascii_case("write") => offset + 1,
                _ => continue,
            };
            let dev = (num(e, "/major"), num(e, "/minor"));
            // Saturating: the counters come from the runtime's JSON (found
            // by the fuzz target: two entries near u64::MAX overflowed).
            let sum = &mut devices.entry(dev).or_default()[slot];
            *sum = sum.saturating_add(num(e, "/value"));
        }
    }
    devices
        .into_iter()
        .map(|((major, minor), v)| {
            let mut p = Proto::default();
            p.uint(1, major)
                .uint(2, minor)
                .uint(3, v[0])
                .uint(4, v[1])
                .uint(5, v[2])
                .uint(6, v[3]);
            p
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runc_stats_become_metrics() {
        let event = serde_json::json!({
            "type": "stats",
            "id": "c",
            "data": {
                "cpu": {"usage": {"total": 10, "percpu": [4, 6], "kernel": 3, "user": 7},
                        "throttling": {"periods": 2}},
                "memory": {"cache": 5, "usage": {"limit": 100, "usage": 50, "max": 60, "failcnt": 1},
                           "raw": {"rss": 40, "total_rss": 41}},
                "pids": {"current": 3, "limit": 10},
                "blkio": {"ioServiceBytesRecursive": [{"major": 8, "minor": 0, "op": "Read", "value": 9}]},
                "hugetlb": {"2MB": {"usage": 1, "max": 2, "failcnt": 0}}
            }
        });
        let m = metrics(&event);
        assert_eq!(m.pids.current, 3);
        assert_eq!(m.pids.limit, 10);
        assert_eq!(m.cpu.usage.total, 10);
        assert_eq!(m.cpu.usage.per_cpu, vec![4, 6]);
        assert_eq!(m.cpu.throttling.periods, 2);
        assert_eq!(m.memory.usage.usage, 50);
        assert_eq!(m.memory.usage.limit, 100);
        assert_eq!(m.memory.rss, 40);
        assert_eq!(m.memory.total_rss, 41);
        assert_eq!(m.memory.cache, 5);
        assert!(m.memory.swap.is_none());
        assert_eq!(m.blkio.io_service_bytes_recursive[0].value, 9);
        assert_eq!(m.hugetlb[0].pagesize, "2MB");
        let any = to_any(&event, false).unwrap();
        assert_eq!(any.type_url, "io.containerd.cgroups.v1.Metrics");
        assert_eq!(Metrics::parse_from_bytes(&any.value).unwrap(), m);
    }

    #[test]
    fn v2_metrics_wire_format() {
        let event = serde_json::json!({"data": {
            "pids": {"current": 3, "limit": 10},
            "cpu": {"usage": {"total": 5000, "user": 2000, "kernel": 3000}},
            "memory": {"usage": {"usage": 300, "limit": 1000}, "raw": {"anon": 7}},
            "blkio": {"ioServiceBytesRecursive": [
                {"major": 8, "minor": 0, "op": "Read", "value": 9},
                {"major": 8, "minor": 0, "op": "Write", "value": 4}]},
        }});
        let bytes = metrics_v2(&event);
        let expected: Vec<u8> = [
            // pids (1): current 3, limit 10
            &[0x0a, 4, 0x08, 3, 0x10, 10][..],
            // cpu (2): usage_usec 5, user_usec 2, system_usec 3
            &[0x12, 6, 0x08, 5, 0x10, 2, 0x18, 3],
            // memory (4): anon 7, usage (32) 300, usage_limit (33) 1000
            &[
                0x22, 10, 0x08, 7, 0x80, 0x02, 0xac, 0x02, 0x88, 0x02, 0xe8, 0x07,
            ],
            // io (6): usage (1) { major 8, rbytes 9, wbytes 4 }
            &[0x32, 8, 0x0a, 6, 0x08, 8, 0x18, 9, 0x20, 4],
        ]
        .concat();
        assert_eq!(bytes, expected);
        let any = to_any(&event, true).unwrap();
        assert_eq!(any.type_url, "io.containerd.cgroups.v2.Metrics");
    }

    #[test]
    fn v2_io_sums_saturate() {
        let entry = serde_json::json!({"major": 8, "minor": 0, "op": "Read", "value": u64::MAX});
        let event = serde_json::json!({"blkio": {"ioServiceBytesRecursive": [entry, entry]}});
        let bytes = metrics_v2(&event);
        // io (6) { usage (1) { major 8, rbytes u64::MAX } }
        let mut expected = vec![0x32, 15, 0x0a, 13, 0x08, 8, 0x18];
        expected.extend([0xff; 9]);
        expected.push(0x01);
        assert_eq!(bytes, expected);
    }
}
