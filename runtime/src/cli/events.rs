//! `corten events`: cgroup statistics and OOM notifications as runc's JSON
//! event lines (`{"type":"stats","id":…,"data":{…}}`, `{"type":"oom","id":…}`).

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::bail;
use serde_json::json;

use super::Globals;
use crate::cgroups::stats;
use crate::container::Container;
use crate::state::Status;

/// `events [--stats] [--interval DURATION] ID`
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print the statistics once and exit.
    #[arg(long)]
    stats: bool,
    /// Interval between statistics events (Go duration syntax: 5s, 500ms, 1m).
    #[arg(long, default_value = "5s")]
    interval: String,
    /// Container id.
    id: String,
}

/// Parses a Go-style duration (`1h2m3s`, `500ms`, `1.5s`, `0`); an error
/// reads as the usage error runc's flag parsing gives.
pub fn parse_duration(s: &str) -> anyhow::Result<Duration> {
    parse_go_duration(s)
        .ok_or_else(|| anyhow::anyhow!("invalid value {s:?} for flag -interval: parse error"))
}

fn parse_go_duration(s: &str) -> Option<Duration> {
    let mut total = 0.0f64;
    let mut rest = s;
    if rest == "0" {
        return Some(Duration::ZERO);
    }
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let n_end = rest.find(|c: char| !c.is_ascii_digit() && c != '.')?;
        let (n, after) = rest.split_at(n_end);
        let n: f64 = n.parse().ok()?;
        let u_end = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(u_end);
        let secs = match unit {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += n * secs;
        rest = next;
    }
    Some(Duration::from_secs_f64(total))
}

fn emit(kind: &str, id: &str, data: Option<serde_json::Value>) -> anyhow::Result<()> {
    let mut ev = json!({ "type": kind, "id": id });
    if let Some(d) = data {
        ev["data"] = d;
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "{ev}")?;
    out.flush()?;
    Ok(())
}

/// Runs `events`: with `--stats` one event; otherwise a stats event every
/// interval and an `oom` event whenever the kernel's OOM killer acts in the
/// container, until the container stops.
pub fn run(g: &Globals, a: Args) -> anyhow::Result<()> {
    let interval = parse_duration(&a.interval)?;
    if interval.is_zero() {
        bail!("duration interval must be greater than 0");
    }
    let c = Container::load(&g.root, &a.id)?;
    if c.status == Status::Stopped {
        bail!("container with id {} is not running", a.id);
    }
    let paths = c.record.cgroup_paths.clone();
    if a.stats {
        return emit("stats", &a.id, Some(stats::collect(&paths)));
    }
    let tick = interval.min(Duration::from_millis(100));
    let mut ooms = stats::oom_kills(&paths).unwrap_or(0);
    let mut next_stats = Instant::now();
    loop {
        let now_ooms = stats::oom_kills(&paths).unwrap_or(ooms);
        for _ in ooms..now_ooms {
            emit("oom", &a.id, None)?;
        }
        ooms = now_ooms;
        if Instant::now() >= next_stats {
            emit("stats", &a.id, Some(stats::collect(&paths)))?;
            next_stats = Instant::now() + interval;
        }
        let status = Container::load(&g.root, &a.id).map(|c| c.status);
        if !matches!(
            status,
            Ok(Status::Running | Status::Paused | Status::Created)
        ) {
            // One last look: the OOM kill may be what stopped it.
            let last = stats::oom_kills(&paths).unwrap_or(ooms);
            for _ in ooms..last {
                emit("oom", &a.id, None)?;
            }
            return Ok(());
        }
        std::thread::sleep(tick);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert!(parse_duration("5").is_err());
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert_eq!(parse_duration("0s").unwrap(), Duration::ZERO);
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration(" 5s").is_err());
    }
}
