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
//! | [`process`] | the init: namespaces, user, rlimits, exec |
//! | [`rootfs`] | mounts, devices, masked/readonly paths, pivot_root |
//! | [`cgroups`] | `linux.cgroupsPath` |
//! | [`capabilities`] | `process.capabilities` |
//! | [`console`] | `process.terminal` |
//!
//! ```no_run
//! use std::path::Path;
//! use corten::process::create::{create, CreateOpts};
//!
//! // What `corten create --bundle /bundle web` does:
//! let created = create(Path::new("/run/corten"), "web", Path::new("/bundle"), &CreateOpts::default())?;
//! println!("init pid {}", created.pid);
//! corten::container::start(Path::new("/run/corten"), "web")?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod bounds;
pub mod capabilities;
pub mod cgroups;
pub mod cli;
pub mod console;
pub mod container;
#[cfg(test)]
mod fuzz_support;
pub mod gotext;
pub mod hooks;
pub mod logging;
pub mod process;
pub mod procfs;
pub mod rootfs;
pub mod seccomp;
pub mod signal;
pub mod spec;
pub mod state;
pub mod sys;
#[cfg(test)]
mod test_support;
