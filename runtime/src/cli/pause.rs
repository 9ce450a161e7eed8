//! `corten pause` and `corten resume`: freeze and thaw the container's cgroup.

use super::Globals;
use crate::container;

/// `pause ID` / `resume ID`
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Container id.
    id: String,
}

/// Runs `pause` (`pause = true`) or `resume`.
pub fn run(g: &Globals, a: Args, pause: bool) -> anyhow::Result<()> {
    container::set_paused(&g.root, &a.id, pause)?;
    Ok(())
}
