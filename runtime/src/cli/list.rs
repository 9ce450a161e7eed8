//! `corten list`.

use std::os::unix::fs::MetadataExt;

use super::Globals;
use crate::container::Container;

/// `list [--format table|json] [-q]`
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Output format: table or json.
    #[arg(short, long, default_value = "table")]
    format: String,
    /// Print only the container ids.
    #[arg(short, long)]
    quiet: bool,
}

/// A container and the name of its state directory's owner.
struct Entry {
    c: Container,
    owner: String,
}

/// Runs `list`.
pub fn run(g: &Globals, a: Args) -> anyhow::Result<()> {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let mut all = Vec::new();
    let entries = match std::fs::read_dir(&g.root) {
        Ok(rd) => rd.flatten().collect(),
        // No root yet: no containers.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        // runc creates the root first and fails there (its words).
        Err(e) => anyhow::bail!(
            "mkdir {}: {}",
            g.root.display(),
            crate::gotext::errno_text(e.raw_os_error().unwrap_or(libc::EIO))
        ),
    };
    for e in entries {
        let id = e.file_name().to_string_lossy().into_owned();
        let Ok(meta) = e.metadata() else { continue };
        match Container::load(&g.root, &id) {
            Ok(c) => {
                // runc names the owner of the state directory, `#uid`
                // when the host's passwd does not know it.
                let owner = crate::process::user::name_of(&passwd, meta.uid())
                    .unwrap_or_else(|| format!("#{}", meta.uid()));
                all.push(Entry { c, owner });
            }
            // A directory that is not a container, or one being removed.
            Err(crate::container::ContainerError::State(
                crate::state::StateError::NotExist(_) | crate::state::StateError::InvalidId(_),
            )) => {}
            // runc warns about a record it cannot load, and goes on.
            Err(err) => crate::logging::warn(&format!("load container {id}: {err}")),
        }
    }
    all.sort_by(|a, b| a.c.record.id.cmp(&b.c.record.id));
    if a.quiet {
        for e in &all {
            println!("{}", e.c.record.id);
        }
        return Ok(());
    }
    match a.format.as_str() {
        "json" => {
            let v: Vec<_> = all
                .iter()
                .map(|e| e.c.record.container_state(e.c.status, &e.owner))
                .collect();
            if v.is_empty() {
                println!("null");
            } else {
                println!("{}", serde_json::to_string(&v)?);
            }
        }
        "table" => print!("{}", table(&all)),
        _ => anyhow::bail!("invalid format option"),
    }
    Ok(())
}

/// The table runc prints (tabwriter: minimum width 12, padding 3).
fn table(all: &[Entry]) -> String {
    let mut rows = vec![["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
        .map(String::from)
        .to_vec()];
    for Entry { c, owner } in all {
        let st = c.container_state();
        rows.push(vec![
            c.record.id.clone(),
            st.pid.to_string(),
            st.status.to_string(),
            c.record.bundle.display().to_string(),
            c.record.created.clone(),
            owner.clone(),
        ]);
    }
    let widths: Vec<usize> = (0..6)
        .map(|i| {
            rows.iter()
                .map(|r| r[i].len() + 3)
                .max()
                .unwrap_or(0)
                .max(12)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (i, cell) in r.iter().enumerate() {
            if i == 5 {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}", w = widths[i]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
