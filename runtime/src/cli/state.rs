//! `corten state`.

use super::Globals;
use crate::container;

/// `state ID`
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Container id.
    id: String,
}

/// Runs `state`: the OCI state as indented JSON.
pub fn run(g: &Globals, a: Args) -> anyhow::Result<()> {
    let c = container::Container::load(&g.root, &a.id)?;
    println!("{}", serde_json::to_string_pretty(&c.oci_state())?);
    Ok(())
}
