//! `corten start`.

use super::Globals;
use crate::container;

/// `start ID`
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Container id.
    id: String,
}

/// Runs `start`.
pub fn run(g: &Globals, a: Args) -> anyhow::Result<()> {
    container::start(&g.root, &a.id)?;
    Ok(())
}
