//! `Stats`: runc's stats event (`events --stats`) translated into
//! containerd's cgroup metrics message (`io.containerd.cgroups.v1.Metrics`),
//! field by field as runc's shim fills it.

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
                throttled_periods: num(cpu, "/throttling/throttled_periods"),
                throttled_time: num(cpu, "/throttling/throttled_time"),
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

/// The metrics as the `Any` containerd expects in a `StatsResponse`.
pub(crate) fn to_any(event: &Value) -> Result<Any, containerd_shim::protos::protobuf::Error> {
    let m = metrics(event);
    Ok(Any {
        type_url: "io.containerd.cgroups.v1.Metrics".into(),
        value: m.write_to_bytes()?,
        ..Default::default()
    })
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
        let any = to_any(&event).unwrap();
        assert_eq!(any.type_url, "io.containerd.cgroups.v1.Metrics");
        assert_eq!(Metrics::parse_from_bytes(&any.value).unwrap(), m);
    }
}
