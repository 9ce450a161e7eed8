//! `corten state`.

use std::io::Write;

use super::Globals;
use crate::container;

/// `state ID`
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Container id.
    id: String,
}

/// Runs `state`: the OCI state as JSON indented by two spaces, without a
/// final newline (runc writes exactly `json.MarshalIndent`'s bytes).
pub fn run(g: &Globals, a: Args) -> anyhow::Result<()> {
    let c = container::Container::load(&g.root, &a.id)?;
    let mut out = std::io::stdout().lock();
    out.write_all(serde_json::to_string_pretty(&c.container_state())?.as_bytes())?;
    out.flush()?;
    Ok(())
}
