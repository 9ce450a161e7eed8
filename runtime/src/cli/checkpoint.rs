//! `corten checkpoint` and `corten restore`: runc's command lines. corten
//! cannot checkpoint yet; both answer as runc does on a host without CRIU
//! (the checks before CRIU runs, then `CRIU version check failed: …`), and
//! say plainly that corten lacks the feature where CRIU is installed.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use anyhow::bail;

use super::Globals;
use crate::container::Container;
use crate::state::Status;

/// The CRIU flags `checkpoint` and `restore` share.
#[allow(dead_code)]
#[derive(Debug, clap::Args)]
pub struct CriuFlags {
    /// Path for the CRIU image files.
    #[arg(long = "image-path")]
    image_path: Option<PathBuf>,
    /// Path for saving work files and logs.
    #[arg(long = "work-path")]
    work_path: Option<PathBuf>,
    /// Allow open TCP connections.
    #[arg(long = "tcp-established")]
    tcp_established: bool,
    /// Allow external unix sockets.
    #[arg(long = "ext-unix-sk")]
    ext_unix_sk: bool,
    /// Allow shell jobs.
    #[arg(long = "shell-job")]
    shell_job: bool,
    /// Use userfaultfd to lazily restore memory pages.
    #[arg(long = "lazy-pages")]
    lazy_pages: bool,
    /// Handle file locks.
    #[arg(long = "file-locks")]
    file_locks: bool,
    /// cgroups mode: soft (default), full and strict.
    #[arg(long = "manage-cgroups-mode")]
    manage_cgroups_mode: Option<String>,
    /// Create a namespace, but do not restore its properties.
    #[arg(long = "empty-ns")]
    empty_ns: Vec<String>,
    /// Enable auto deduplication of memory images.
    #[arg(long = "auto-dedup")]
    auto_dedup: bool,
}

/// `checkpoint [flags] ID`
// The flags are runc's, accepted so callers get runc's answers; they take
// effect once corten drives CRIU.
#[allow(dead_code)]
#[derive(Debug, clap::Args)]
pub struct CheckpointArgs {
    #[command(flatten)]
    criu: CriuFlags,
    /// Path for previous CRIU image files in pre-dump.
    #[arg(long = "parent-path")]
    parent_path: Option<PathBuf>,
    /// Leave the process running after checkpointing.
    #[arg(long = "leave-running")]
    leave_running: bool,
    /// CRIU writes \0 to this fd once lazy-pages is ready.
    #[arg(long = "status-fd", default_value_t = -1)]
    status_fd: i32,
    /// ADDRESS:PORT of the page server.
    #[arg(long = "page-server")]
    page_server: Option<String>,
    /// Dump the memory only, leave the container running.
    #[arg(long = "pre-dump")]
    pre_dump: bool,
    /// Container id.
    id: String,
}

/// `restore [flags] ID`
#[allow(dead_code)]
#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    #[command(flatten)]
    criu: CriuFlags,
    /// Unix socket that receives the pty master.
    #[arg(long = "console-socket")]
    console_socket: Option<PathBuf>,
    /// Path to the bundle directory.
    #[arg(short, long, default_value = ".")]
    bundle: PathBuf,
    /// Detach from the container's process.
    #[arg(short, long)]
    detach: bool,
    /// File to write the process id to.
    #[arg(long = "pid-file")]
    pid_file: Option<PathBuf>,
    /// Disable the use of the subreaper.
    #[arg(long = "no-subreaper")]
    no_subreaper: bool,
    /// Do not use pivot_root.
    #[arg(long = "no-pivot")]
    no_pivot: bool,
    /// Path to the LSM profile of the restored process.
    #[arg(long = "lsm-profile")]
    lsm_profile: Option<String>,
    /// Path to the LSM mount context of the restored mounts.
    #[arg(long = "lsm-mount-context")]
    lsm_mount_context: Option<String>,
    /// Container id.
    id: String,
}

/// The image directory: `--image-path` or `./checkpoint`, created (0600)
/// as runc creates it before it looks for CRIU.
fn image_dir(given: Option<&Path>) -> anyhow::Result<()> {
    let dir = match given {
        Some(p) => p.to_path_buf(),
        None => std::env::current_dir()?.join("checkpoint"),
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o600)
        .create(&dir)
        .map_err(|e| anyhow::anyhow!("mkdir {}: {e}", dir.display()))
}

/// Fails as runc does when CRIU is not installed; where it is, says that
/// corten cannot drive it yet.
fn criu_missing(criu: &str) -> anyhow::Error {
    let found = if criu.contains('/') {
        Path::new(criu).exists().then(|| PathBuf::from(criu))
    } else {
        std::env::var_os("PATH").and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(criu))
                .find(|c| c.is_file())
        })
    };
    match found {
        None => anyhow::anyhow!(
            "CRIU version check failed: exec: {criu:?}: executable file not found in $PATH"
        ),
        Some(p) => anyhow::anyhow!(
            "checkpoint/restore is not supported by corten yet (CRIU found at {})",
            p.display()
        ),
    }
}

/// Runs `checkpoint`.
pub fn checkpoint(g: &Globals, criu: &str, a: CheckpointArgs) -> anyhow::Result<()> {
    let c = Container::load(&g.root, &a.id)?;
    if matches!(c.status, Status::Created | Status::Stopped) {
        bail!("Container cannot be checkpointed in {} state", c.status);
    }
    image_dir(a.criu.image_path.as_deref())?;
    Err(criu_missing(criu))
}

/// Runs `restore`.
pub fn restore(g: &Globals, criu: &str, a: RestoreArgs) -> anyhow::Result<()> {
    if Container::load(&g.root, &a.id).is_ok() {
        bail!("container with given ID already exists");
    }
    image_dir(a.criu.image_path.as_deref())?;
    Err(criu_missing(criu))
}
