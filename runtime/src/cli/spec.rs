//! `corten spec`.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;

/// `spec [--rootless] [--bundle DIR]`
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory to write config.json into.
    #[arg(short, long, default_value = ".")]
    bundle: PathBuf,
    /// Generate a configuration for a rootless container.
    #[arg(long)]
    rootless: bool,
}

/// Runs `spec`: writes runc's default config.json (tab-indented, as runc).
pub fn run(a: Args) -> anyhow::Result<()> {
    // runc changes into the bundle first, and its messages say so.
    if !a.bundle.is_dir() {
        let e = std::fs::metadata(&a.bundle)
            .map_or_else(|e| e, |_| std::io::Error::from_raw_os_error(libc::ENOTDIR));
        anyhow::bail!("chdir {}: {e}", a.bundle.display());
    }
    let path = a.bundle.join("config.json");
    if path.exists() {
        anyhow::bail!("File config.json exists. Remove it first");
    }
    let spec = crate::spec::default_spec(a.rootless);
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"\t");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    serde::Serialize::serialize(&spec, &mut ser)?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .with_context(|| format!("create {}", path.display()))?;
    f.write_all(&out)
        .with_context(|| format!("write {}", path.display()))?;
    Ok(())
}
