//! `corten create`.

use std::path::PathBuf;

use anyhow::Context;

use super::Globals;
use crate::process::create::{create, CreateOpts};

/// Flags shared by `create` and `run`.
#[derive(Debug, clap::Args)]
pub struct CreateFlags {
    /// Path to the bundle directory.
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    /// Unix socket that receives the pty master of a terminal container.
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Unix socket that receives a pidfd of the init (not supported yet).
    #[arg(long = "pidfd-socket")]
    pub pidfd_socket: Option<PathBuf>,
    /// File to write the init's pid to.
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Use MS_MOVE and chroot instead of pivot_root.
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Do not create a new session keyring.
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    /// Pass this many extra descriptors (from fd 3) to the container.
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
}

impl CreateFlags {
    /// Converts to the engine's options.
    pub fn opts(&self, g: &Globals) -> anyhow::Result<CreateOpts> {
        if self.pidfd_socket.is_some() {
            anyhow::bail!("--pidfd-socket is not supported yet");
        }
        Ok(CreateOpts {
            console_socket: self.console_socket.clone(),
            pid_file: self.pid_file.clone(),
            no_pivot: self.no_pivot,
            no_new_keyring: self.no_new_keyring,
            preserve_fds: self.preserve_fds,
            systemd_cgroup: g.systemd_cgroup,
            cgroups_disabled: g.cgroups_disabled,
            rootless: g.rootless.clone(),
        })
    }
}

/// `create [flags] ID`
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    flags: CreateFlags,
    /// Container id.
    id: String,
}

/// Runs `create`.
pub fn run(g: &Globals, a: Args) -> anyhow::Result<()> {
    let opts = a.flags.opts(g)?;
    create(&g.root, &a.id, &a.flags.bundle, &opts).context("corten create failed")?;
    Ok(())
}
