//! `run`: create, start and, unless detached, wait for the container in the
//! foreground (its terminal relayed, signals forwarded), then delete it.

use std::path::Path;

use anyhow::Context;

use super::{delete, start, CreateOpts, Foreground};
use crate::plan::Bundle;
use crate::process::create::create_planned;

/// `run`'s options beyond `create`'s.
#[derive(Debug, Default)]
pub struct RunOpts {
    /// The container's options; `console_socket` is the caller's
    /// `--console-socket`.
    pub create: CreateOpts,
    /// Return once the container runs instead of waiting for it.
    pub detach: bool,
    /// Keep the container (stopped) after it exits.
    pub keep: bool,
}

/// Runs the container of `bundle` (read with [`Bundle::read`]) under the
/// state root `root`; its exit code (0 when detached). With
/// `process.terminal`, in the foreground and without a console socket,
/// corten takes the pty master itself and relays it, as runc does.
pub fn run(root: &Path, bundle: Bundle, mut o: RunOpts) -> anyhow::Result<u8> {
    let terminal = bundle.spec().process().terminal;
    let fg = Foreground::new(root, terminal, o.detach, &mut o.create.console_socket)?;
    let plan = bundle.plan(o.create).context("corten run failed")?;
    let id = plan.id().to_string();
    let id = id.as_str();
    let created = create_planned(root, plan).context("corten run failed")?;
    if !o.detach {
        // Blocked before start so no SIGCHLD or forwarded signal is lost.
        Foreground::block_signals()?;
    }
    if let Err(e) = start(root, id) {
        let _ = delete(root, id, true);
        return Err(e).context("corten run failed");
    }
    if o.detach {
        return Ok(0);
    }
    let code = fg.wait(created.pid)?;
    if !o.keep {
        delete(root, id, true)?;
    }
    Ok(code)
}
