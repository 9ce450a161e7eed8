//! `corten ps`: the processes of a container, as runc prints them.

use std::process::Command;

use anyhow::{bail, Context};

use super::Globals;
use crate::container::Container;

/// `ps [--format table|json] ID [PS_OPTIONS…]`
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Output format: table (the host's `ps`, filtered) or json (pids).
    #[arg(short, long, default_value = "table")]
    format: String,
    /// Container id.
    id: String,
    /// Options for ps(1) (default `-ef`).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    ps_args: Vec<String>,
}

/// Runs `ps`, as runc does: the pids of the container's cgroup (none once
/// it has stopped: an empty table, or `null`), then the host's `ps`
/// filtered to them.
pub fn run(g: &Globals, a: Args) -> anyhow::Result<()> {
    let c = Container::load(&g.root, &a.id)?;
    if c.record.cgroup_paths.dirs().next().is_none() {
        // A rootless container without a cgroup (runc fails here too), or
        // one made with --cgroup-manager disabled.
        bail!(
            "unable to get all container pids: container {} has no cgroup (rootless without a cgroup this user may write, or --cgroup-manager disabled)",
            a.id
        );
    }
    // Only the container's own, should another container share the cgroup.
    let pids = crate::container::Processes::of(&c.record).own;
    match a.format.as_str() {
        "table" => {}
        "json" => {
            // Go encodes an empty (nil) slice as null.
            if pids.is_empty() {
                println!("null");
            } else {
                println!("{}", serde_json::to_string(&pids)?);
            }
            return Ok(());
        }
        _ => bail!("invalid format option"),
    }
    let args = if a.ps_args.is_empty() {
        vec!["-ef".to_string()]
    } else {
        a.ps_args
    };
    let out = Command::new("ps")
        .args(&args)
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("exec: \"ps\"")?;
    if !out.status.success() {
        bail!(
            "{}: {}",
            crate::gotext::exit_status(out.status),
            String::from_utf8_lossy(&out.stdout)
        );
    }
    print!(
        "{}",
        filter_table(&String::from_utf8_lossy(&out.stdout), &pids)?
    );
    Ok(())
}

/// Keeps the header and the lines whose PID column is one of `pids`.
fn filter_table(table: &str, pids: &[i32]) -> anyhow::Result<String> {
    let mut lines = table.lines();
    let header = lines.next().unwrap_or_default();
    let col = header
        .split_whitespace()
        .position(|h| h == "PID")
        .context("couldn't find PID field in ps output")?;
    let mut out = format!("{header}\n");
    for l in lines {
        let pid = l
            .split_whitespace()
            .nth(col)
            .and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            out.push_str(l);
            out.push('\n');
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_by_the_pid_column() {
        let t = "UID PID PPID CMD\nroot 1 0 init\nroot 42 1 sleep\nroot 43 1 other\n";
        assert_eq!(
            filter_table(t, &[42]).unwrap(),
            "UID PID PPID CMD\nroot 42 1 sleep\n"
        );
        assert!(filter_table("UID CMD\n", &[1]).is_err());
    }
}
