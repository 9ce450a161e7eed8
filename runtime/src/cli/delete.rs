//! `corten delete`.

use super::Globals;
use crate::container;

/// `delete [--force] ID`
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Kill the container first if it is running.
    #[arg(short, long)]
    force: bool,
    /// Container id.
    id: String,
}

/// Runs `delete`.
pub fn run(g: &Globals, a: Args) -> anyhow::Result<()> {
    container::delete(&g.root, &a.id, a.force)?;
    Ok(())
}
