//! corten: a low-level OCI container runtime, command-line compatible with
//! runc.
//!
//! The library is the engine behind the `corten` binary: it turns an OCI
//! bundle (a `config.json` plus a root filesystem) into an isolated process
//! and manages its lifecycle. One module per concern of the runtime spec:
//!
//! | module | spec section |
//! |---|---|
//! | [`spec`] | config.json: types, validation, `corten spec` defaults |
//! | [`state`] | runtime.md state, the on-disk record |
//! | `process` | the init: namespaces, user, rlimits, exec |
//! | `rootfs` | mounts, devices, masked/readonly paths, pivot_root |
//! | `cgroups` | `linux.cgroupsPath` |
//! | `capabilities` | `process.capabilities` |
//! | `console` | `process.terminal` |
//!
//! The lifecycle verbs are in [`container`]; the CLI ([`cli`]) only maps
//! flags to their options. Everything else is internal (`pub(crate)`).
//!
//! ```no_run
//! use std::path::Path;
//! use corten::container::{create, start, CreateOpts};
//!
//! // What `corten create --bundle /bundle web` does:
//! let created = create(Path::new("/run/corten"), "web", Path::new("/bundle"), &CreateOpts::default())?;
//! println!("init pid {}", created.pid);
//! start(Path::new("/run/corten"), "web")?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub(crate) mod bounds;
pub(crate) mod capabilities;
pub(crate) mod cgroups;
pub mod cli;
pub mod compat;
pub(crate) mod console;
pub mod container;
#[cfg(test)]
mod fuzz_support;
pub(crate) mod gotext;
pub(crate) mod hooks;
pub(crate) mod logging;
pub mod plan;
pub(crate) mod process;
pub(crate) mod procfs;
pub(crate) mod rootfs;
pub(crate) mod rootless;
pub(crate) mod seccomp;
pub(crate) mod signal;
pub mod spec;
pub mod state;
pub(crate) mod sys;
#[cfg(test)]
mod test_support;
