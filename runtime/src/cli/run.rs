//! `corten run`: create, start and (unless `--detach`) wait, forwarding
//! signals to the container and returning its exit code.

use anyhow::Context;

use super::create::CreateFlags;
use super::Globals;
use crate::container::{self, RunOpts};
use crate::plan::Bundle;

/// `run [flags] ID`
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    flags: CreateFlags,
    /// Detach from the container's process.
    #[arg(short, long)]
    detach: bool,
    /// Keep the container's state after it exits.
    #[arg(long)]
    keep: bool,
    /// Do not make corten a subreaper (accepted for compatibility).
    #[arg(long = "no-subreaper")]
    no_subreaper: bool,
    /// Container id.
    id: String,
}

/// Runs `run`; the exit code is the container's.
pub fn run(g: &Globals, a: Args) -> anyhow::Result<u8> {
    let opts = RunOpts {
        create: a.flags.opts(g)?,
        detach: a.detach,
        keep: a.keep,
    };
    let bundle = Bundle::read(
        &g.root,
        &a.id,
        &a.flags.bundle,
        opts.create.rootless.as_deref(),
    )
    .context("corten run failed")?;
    container::run(&g.root, bundle, opts)
}
