//! `corten kill`.

use super::Globals;
use crate::container;
use crate::signal::parse_signal;

/// `kill [--all] ID [SIGNAL]`
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Send the signal to every process of the container.
    #[arg(short, long)]
    all: bool,
    /// Container id.
    id: String,
    /// Signal name or number (SIGKILL, KILL, 9).
    #[arg(default_value = "SIGTERM", allow_hyphen_values = true)]
    signal: String,
}

/// Runs `kill`.
pub fn run(g: &Globals, a: Args) -> anyhow::Result<()> {
    // runc looks the container up before it parses the signal.
    container::Container::load(&g.root, &a.id)?;
    let sig = parse_signal(&a.signal)?;
    container::kill(&g.root, &a.id, sig, a.all)?;
    Ok(())
}
