//! `corten-conformance`: the OCI runtime-spec conformance harness.
//!
//! ```text
//! corten-conformance --runtime PATH [--runtime PATH…] [--reference PATH]
//!                    [--filter SUBSTRING] [--checker PATH] [--list]
//! ```
//!
//! Runs every case (or those whose name contains SUBSTRING) against each
//! runtime, printing `PASS|FAIL|SKIP <case>: reason` per case and
//! `conformance <runtime>: N passed, M failed, K skipped`. With
//! `--reference` (e.g. runc), the suite also runs against it and prints the
//! table `case | <reference> | <runtime>…` before the summaries; the
//! reference's failures do not change the exit status.
//!
//! Runs as root, in `/tmp/corten-conformance-<pid>/`, each container with
//! its own `--root` and a cgroup below `/corten-conformance-<pid>/`; all of
//! it is removed afterwards.

mod bundle;
mod cases;
mod command;
mod ctx;
mod host;
mod report;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Parser;

use crate::cases::{Case, Skip};
use crate::ctx::{Ctx, Runtime};
use crate::host::Host;
use crate::report::{Outcome, RuntimeResults};

/// OCI runtime-spec conformance suite for runc-compatible runtimes.
#[derive(Debug, Parser)]
#[command(name = "corten-conformance")]
struct Cli {
    /// Runtime binary to test (repeatable).
    #[arg(
        long = "runtime",
        value_name = "PATH",
        required_unless_present = "list"
    )]
    runtimes: Vec<PathBuf>,
    /// Reference runtime, run too and shown first in the table.
    #[arg(long, value_name = "PATH")]
    reference: Option<PathBuf>,
    /// Only the cases whose name contains this substring.
    #[arg(long, value_name = "SUBSTRING")]
    filter: Option<String>,
    /// The static checker binary (default: next to this program, or the
    /// x86_64-unknown-linux-gnu build of the same profile).
    #[arg(long, value_name = "PATH")]
    checker: Option<PathBuf>,
    /// List the cases with their spec sections and exit.
    #[arg(long)]
    list: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("corten-conformance: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: &Cli) -> Result<ExitCode> {
    let cases: Vec<Case> = cases::all()
        .into_iter()
        .filter(|c| cli.filter.as_deref().is_none_or(|f| c.name.contains(f)))
        .collect();
    if cli.list {
        for c in &cases {
            println!("{} ({})", c.name, c.spec);
        }
        return Ok(ExitCode::SUCCESS);
    }
    if !nix::unistd::geteuid().is_root() {
        bail!("must run as root");
    }
    let checker = find_checker(cli.checker.as_deref())?;
    let host = Host::new(&checker)?;
    let mut results = Vec::new();
    let mut order: Vec<(PathBuf, bool)> = cli.runtimes.iter().map(|r| (r.clone(), false)).collect();
    if let Some(r) = &cli.reference {
        order.push((r.clone(), true));
    }
    for (bin, reference) in &order {
        let runtime = runtime_of(bin)?;
        if order.len() > 1 {
            println!("== {} ({}) ==", runtime.name, bin.display());
        }
        results.push((run_suite(&host, &runtime, &cases), *reference));
    }
    finish(&host);
    let failed = results
        .iter()
        .filter(|(_, r)| !r)
        .any(|(res, _)| res.failed() > 0);
    if order.len() > 1 {
        println!();
        let mut columns: Vec<&RuntimeResults> =
            results.iter().filter(|(_, r)| *r).map(|(x, _)| x).collect();
        columns.extend(results.iter().filter(|(_, r)| !r).map(|(x, _)| x));
        print!("{}", report::table(&cases, &columns));
        println!();
    }
    for (res, _) in results
        .iter()
        .filter(|(_, r)| !r)
        .chain(results.iter().filter(|(_, r)| *r))
    {
        println!("{}", res.summary());
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn runtime_of(bin: &Path) -> Result<Runtime> {
    let bin = std::fs::canonicalize(bin).with_context(|| format!("runtime {}", bin.display()))?;
    let name = bin
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "runtime".to_owned());
    Ok(Runtime { bin, name })
}

fn run_suite(host: &Host, runtime: &Runtime, cases: &[Case]) -> RuntimeResults {
    let mut outcomes = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let outcome = match Ctx::new(host, runtime, i + 1) {
            Err(e) => Outcome::Fail(format!("harness: {e:#}")),
            Ok(mut cx) => {
                let result = (case.run)(&mut cx);
                cx.finish();
                match result {
                    Ok(()) => Outcome::Pass,
                    Err(e) => match e.downcast_ref::<Skip>() {
                        Some(s) => Outcome::Skip(s.0.clone()),
                        None => Outcome::Fail(format!("{e:#}").replace('\n', " ")),
                    },
                }
            }
        };
        println!("{}", report::line(case, &runtime.name, &outcome));
        outcomes.push((case.name, outcome));
    }
    RuntimeResults {
        name: runtime.name.clone(),
        outcomes,
    }
}

/// Remove the cgroup parent (killing, by pid, what is left in it) and the
/// run directory.
fn finish(host: &Host) {
    host.cgroups.remove(corten_testkit::Removal::Kill(
        std::time::Duration::from_secs(3),
    ));
    corten_testkit::cleanup::remove_tree(&host.run_dir, &host.run_dir);
}

fn find_checker(given: Option<&Path>) -> Result<PathBuf> {
    const NAME: &str = "corten-conformance-checker";
    let mut candidates = Vec::new();
    if let Some(p) = given {
        candidates.push(p.to_path_buf());
    } else if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe.parent() {
            candidates.push(dir.join(NAME));
            if let (Some(profile), Some(target)) = (dir.file_name(), dir.parent()) {
                candidates.push(
                    target
                        .join("x86_64-unknown-linux-gnu")
                        .join(profile)
                        .join(NAME),
                );
            }
        }
    }
    for c in &candidates {
        if c.exists() && host::is_static_elf(c)? {
            return Ok(c.clone());
        }
    }
    bail!(
        "no static checker among {candidates:?}; build it with \
         RUSTFLAGS='-C target-feature=+crt-static' cargo build --release \
         -p corten-conformance --bin {NAME} --target x86_64-unknown-linux-gnu"
    )
}
