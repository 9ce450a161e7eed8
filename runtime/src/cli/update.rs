//! `corten update`: change the resource limits of a live container.

use std::io::Read;
use std::path::PathBuf;

use anyhow::{bail, Context};
use serde_json::Value;

use super::Globals;
use crate::spec::{BlockIo, Memory, Resources};

/// `update [flags] ID`: runc's flags; `--resources -|FILE` reads a
/// `linux.resources` JSON object, which the flags then override.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Path to a JSON `linux.resources` object, or `-` for stdin.
    #[arg(short, long)]
    resources: Option<PathBuf>,
    /// Block IO weight (10..1000).
    #[arg(long = "blkio-weight")]
    blkio_weight: Option<u64>,
    /// CPU CFS period in microseconds.
    #[arg(long = "cpu-period", allow_hyphen_values = true)]
    cpu_period: Option<String>,
    /// CPU CFS quota in microseconds (-1: none).
    #[arg(long = "cpu-quota", allow_hyphen_values = true)]
    cpu_quota: Option<String>,
    /// CPU shares (relative weight).
    #[arg(long = "cpu-share", allow_hyphen_values = true)]
    cpu_share: Option<String>,
    /// CPU realtime period in microseconds.
    #[arg(long = "cpu-rt-period", allow_hyphen_values = true)]
    cpu_rt_period: Option<String>,
    /// CPU realtime runtime in microseconds.
    #[arg(long = "cpu-rt-runtime", allow_hyphen_values = true)]
    cpu_rt_runtime: Option<String>,
    /// CPUs allowed (e.g. 0-3, 0,1).
    #[arg(long = "cpuset-cpus")]
    cpuset_cpus: Option<String>,
    /// Memory nodes allowed.
    #[arg(long = "cpuset-mems")]
    cpuset_mems: Option<String>,
    /// Kernel memory limit (deprecated; refused as runc 1.1 ignores it).
    #[arg(long = "kernel-memory")]
    kernel_memory: Option<String>,
    /// Kernel TCP memory limit (deprecated).
    #[arg(long = "kernel-memory-tcp")]
    kernel_memory_tcp: Option<String>,
    /// Memory limit (bytes, or with k/m/g suffix; -1: unlimited).
    #[arg(long, allow_hyphen_values = true)]
    memory: Option<String>,
    /// Memory soft limit.
    #[arg(long = "memory-reservation", allow_hyphen_values = true)]
    memory_reservation: Option<String>,
    /// Memory plus swap limit (-1: unlimited swap).
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    memory_swap: Option<String>,
    /// Maximum number of pids (-1: unlimited).
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pids_limit: Option<i64>,
    /// Intel RDT L3 cache schema (not supported).
    #[arg(long = "l3-cache-schema")]
    l3_cache_schema: Option<String>,
    /// Intel RDT memory bandwidth schema (not supported).
    #[arg(long = "mem-bw-schema")]
    mem_bw_schema: Option<String>,
    /// Container id.
    id: String,
}

/// Parses a size as runc does (`units.RAMInBytes`): a number with an
/// optional binary suffix `k`, `m`, `g`, `t`, `p` (with or without `b`/`ib`);
/// `-1` means unlimited.
pub fn parse_size(s: &str) -> anyhow::Result<i64> {
    // In the message, a line break or other control character is escaped.
    let shown = crate::logging::one_line(s);
    let t = s.trim().to_ascii_lowercase();
    if t == "-1" {
        return Ok(-1);
    }
    let digits = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (n, unit) = t.split_at(digits);
    let n: f64 = n
        .parse()
        .map_err(|_| anyhow::anyhow!("invalid size: '{shown}'"))?;
    let unit = unit.trim().trim_end_matches('b').trim_end_matches('i');
    let mult: f64 = match unit {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        "p" => 1024.0 * 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => bail!("invalid size: '{shown}'"),
    };
    let v = n * mult;
    if !(0.0..9.0e18).contains(&v) {
        bail!("invalid size: '{shown}'");
    }
    #[allow(clippy::cast_possible_truncation)]
    Ok(v as i64)
}

/// The fields of `--resources` that runc's `update` applies; it ignores the
/// rest (devices, hugepage limits, network, rdma, per-device weights,
/// swappiness, the OOM killer switch).
fn runc_update_subset(r: Resources) -> Resources {
    Resources {
        memory: r.memory.map(|m| Memory {
            limit: m.limit,
            reservation: m.reservation,
            swap: m.swap,
            kernel: m.kernel,
            kernel_tcp: m.kernel_tcp,
            check_before_update: m.check_before_update,
            ..Memory::default()
        }),
        cpu: r.cpu,
        pids: r.pids,
        block_io: r.block_io.map(|b| BlockIo {
            weight: b.weight,
            throttle_read_bps_device: b.throttle_read_bps_device,
            throttle_write_bps_device: b.throttle_write_bps_device,
            throttle_read_iops_device: b.throttle_read_iops_device,
            throttle_write_iops_device: b.throttle_write_iops_device,
            ..BlockIo::default()
        }),
        unified: r.unified,
        ..Resources::default()
    }
}

/// A number flag runc parses itself (`strconv.ParseUint`/`ParseInt`,
/// named by `func`), with runc's error.
fn go_num<T>(flag: &str, func: &str, v: &Option<String>) -> anyhow::Result<Option<T>>
where
    T: std::str::FromStr<Err = std::num::ParseIntError>,
{
    v.as_deref()
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<T>()
                .map_err(|e| go_parse_error(flag, func, s, e.kind()))
        })
        .transpose()
}

fn go_parse_error(flag: &str, func: &str, s: &str, kind: &std::num::IntErrorKind) -> anyhow::Error {
    let why = match kind {
        std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => {
            "value out of range"
        }
        _ => "invalid syntax",
    };
    anyhow::anyhow!("invalid value for {flag}: strconv.{func}: parsing {s:?}: {why}")
}

/// A `--resources` document: Go's decoding (keys folded, `null`s dropped,
/// numbers of the field's width, a bad field named), then the fields
/// runc's `update` applies.
pub(crate) fn decode_resources(text: &str) -> anyhow::Result<Resources> {
    let v: Value = serde_json::from_str(text).context("decode resources")?;
    if !v.is_object() {
        bail!("decode resources: not a JSON object");
    }
    let res = crate::spec::gojson::from_value_at(v, "linux.resources")
        .map_err(|e| anyhow::anyhow!("decode resources: {e}"))?;
    Ok(runc_update_subset(res))
}

/// The resources to apply: `--resources` with the flags set over it.
fn requested(a: &Args) -> anyhow::Result<Resources> {
    let mut res = match &a.resources {
        None => Resources::default(),
        Some(p) => {
            let mut text = String::new();
            if p.as_os_str() == "-" {
                std::io::stdin()
                    .read_to_string(&mut text)
                    .context("read resources from stdin")?;
            } else {
                text =
                    std::fs::read_to_string(p).with_context(|| format!("open {}", p.display()))?;
            }
            decode_resources(&text)?
        }
    };
    if a.kernel_memory.is_some() || a.kernel_memory_tcp.is_some() {
        bail!("kernel memory limits are deprecated and not supported");
    }
    if a.l3_cache_schema.is_some() || a.mem_bw_schema.is_some() {
        bail!("intel RDT is not supported");
    }
    let size = |v: &Option<String>, flag: &str| {
        v.as_deref()
            .map(|v| parse_size(v).map_err(|e| anyhow::anyhow!("invalid value for {flag}: {e}")))
            .transpose()
    };
    let sizes = [
        size(&a.memory, "memory")?,
        size(&a.memory_reservation, "memory-reservation")?,
        size(&a.memory_swap, "memory-swap")?,
    ];
    if sizes.iter().any(Option::is_some) {
        let m = res.memory.get_or_insert_with(Default::default);
        let [limit, reservation, swap] = sizes;
        m.limit = limit.or(m.limit);
        m.reservation = reservation.or(m.reservation);
        m.swap = swap.or(m.swap);
    }
    let shares = go_num::<u64>("cpu-share", "ParseUint", &a.cpu_share)?;
    let quota = go_num::<i64>("cpu-quota", "ParseInt", &a.cpu_quota)?;
    let period = go_num::<u64>("cpu-period", "ParseUint", &a.cpu_period)?;
    let rt_period = go_num::<u64>("cpu-rt-period", "ParseUint", &a.cpu_rt_period)?;
    let rt_runtime = go_num::<i64>("cpu-rt-runtime", "ParseInt", &a.cpu_rt_runtime)?;
    let any_cpu = shares.is_some()
        || quota.is_some()
        || period.is_some()
        || rt_period.is_some()
        || rt_runtime.is_some()
        || a.cpuset_cpus.is_some()
        || a.cpuset_mems.is_some();
    if any_cpu {
        let c = res.cpu.get_or_insert_with(Default::default);
        c.shares = shares.or(c.shares);
        c.quota = quota.or(c.quota);
        c.period = period.or(c.period);
        c.realtime_period = rt_period.or(c.realtime_period);
        c.realtime_runtime = rt_runtime.or(c.realtime_runtime);
        c.cpus = a.cpuset_cpus.clone().or(c.cpus.take());
        c.mems = a.cpuset_mems.clone().or(c.mems.take());
    }
    if let Some(p) = a.pids_limit {
        res.pids.get_or_insert_with(Default::default).limit = Some(p);
    }
    if let Some(w) = a.blkio_weight {
        // runc's flag is a uint16 field: a larger value is refused as the
        // field's decoding would refuse it.
        let w = u16::try_from(w).map_err(|_| {
            anyhow::anyhow!(
                "decode resources: linux.resources.blockIO.weight: invalid value: integer `{w}`, expected uint16"
            )
        })?;
        res.block_io.get_or_insert_with(Default::default).weight = Some(w);
    }
    Ok(res)
}

/// Runs `update`.
pub fn run(g: &Globals, a: Args) -> anyhow::Result<()> {
    crate::container::update(&g.root, &a.id, || requested(&a))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1024").unwrap(), 1024);
        assert_eq!(parse_size("64m").unwrap(), 64 << 20);
        assert_eq!(parse_size("1G").unwrap(), 1 << 30);
        assert_eq!(parse_size("512KiB").unwrap(), 512 << 10);
        assert_eq!(parse_size("1.5k").unwrap(), 1536);
        assert_eq!(parse_size("-1").unwrap(), -1);
        assert!(parse_size("ten").is_err());
        assert!(parse_size("1x").is_err());
        // Found by the fuzz target (cgroups::fuzz): one line, runc's words.
        let e = parse_size("1\nx").unwrap_err().to_string();
        assert_eq!(e, r"invalid size: '1\nx'");
    }
}
