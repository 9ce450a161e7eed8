//! `containerd-shim-corten-v2`: the containerd runtime v2 shim for corten
//! (runtime type `io.containerd.corten.v2`).
//!
//! containerd starts the binary with `start` (the shim daemonises and prints
//! its ttrpc address), talks to the daemon over ttrpc (the Task API), and
//! runs it with `delete` to clean up after a shim that died. The shim drives
//! the corten binary (found next to the shim, or named by the runtime
//! options' `BinaryName`, so it can drive runc too) through runc's command
//! line, exactly as containerd's runc shim drives runc.
//!
//! ```toml
//! # containerd config.toml
//! [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.corten]
//!   runtime_type = "io.containerd.corten.v2"
//! ```
//!
//! Layout: `service` (start/delete of the shim), `task` (the ttrpc Task
//! service) over `tasks`/`exec` (lifecycle logic) and `container` (per-container
//! state and event order), `reaper` (the subreaper: every exit status),
//! `runtime` (the runtime's command line), `io` (stdio fifos), `mount`
//! (rootfs), `events`, `options`, `stats`, `sys` (the unsafe bits).

mod container;
mod error;
mod events;
mod exec;
#[cfg(test)]
mod fuzz;
mod io;
mod logger;
mod mount;
mod oom;
mod options;
mod reaper;
mod runtime;
mod service;
mod stats;
mod sys;
mod task;
mod tasks;

#[allow(unused_imports)]
pub(crate) use containerd_shim::{debug, info, warn};

/// The runtime type containerd knows this shim by.
const RUNTIME_ID: &str = "io.containerd.corten.v2";

/// Stack size of the shim's own threads: they copy through heap buffers and
/// never recurse, and each one's stack counts towards the shim's memory.
pub(crate) const SMALL_STACK: usize = 64 * 1024;

fn main() {
    sys::single_malloc_arena();
    let args: Vec<_> = std::env::args_os().collect();
    if let Ok(flags) = containerd_shim::parse(&args[1..]) {
        if flags.info {
            if let Err(e) = service::print_info(RUNTIME_ID) {
                eprintln!("{RUNTIME_ID}: {e:#}");
                std::process::exit(1);
            }
            return;
        }
        if flags.version {
            println!("{}:", env!("CARGO_BIN_NAME"));
            println!("  Version:  {}", env!("CARGO_PKG_VERSION"));
            println!("  Runtime:  {RUNTIME_ID}");
            return;
        }
    }
    let config = containerd_shim::Config {
        // The shim reaps its children itself (reaper.rs), including the
        // runtime commands it runs: the crate's reaper would steal them.
        no_reaper: true,
        ..Default::default()
    };
    containerd_shim::run::<service::Service>(RUNTIME_ID, Some(config));
}
