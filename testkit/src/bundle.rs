//! OCI bundles: a directory with a busybox `rootfs/` and a `config.json`
//! edited as JSON until [`Bundle::write_config`] writes it.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::config::{self, ConfigError, ConfigFrom};
use crate::rootfs::{make_dir, Busybox, RootfsError};

/// A step of preparing or writing a bundle that failed.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// The root filesystem could not be assembled.
    #[error("rootfs of {dir}: {source}")]
    Rootfs {
        /// The bundle directory.
        dir: PathBuf,
        /// The cause.
        source: RootfsError,
    },
    /// The configuration could not be produced.
    #[error("config of {dir}: {source}")]
    Config {
        /// The bundle directory.
        dir: PathBuf,
        /// The cause.
        source: ConfigError,
    },
    /// A file of the bundle could not be written.
    #[error("write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
}

/// A bundle directory with `rootfs/` and a `config.json` being edited.
///
/// Every edit returns `&mut Self`, so edits chain:
/// `bundle.sh("hostname").set("/hostname", json!("box"))`.
#[derive(Debug)]
pub struct Bundle {
    dir: PathBuf,
    config: Value,
    cgroup_path: String,
    /// Set by [`Bundle::write_raw_config`]: `save` then leaves the file alone.
    raw_config: bool,
}

impl Bundle {
    /// Create the bundle directory `dir` with a busybox root filesystem
    /// from `busybox` and the configuration `from`, with no terminal and
    /// `linux.cgroupsPath` set to `cgroup_path`.
    pub fn create(
        dir: PathBuf,
        from: ConfigFrom<'_>,
        cgroup_path: String,
        busybox: &Busybox,
    ) -> Result<Bundle, BundleError> {
        let rootfs_error = |source| BundleError::Rootfs {
            dir: dir.clone(),
            source,
        };
        make_dir(&dir, 0o755).map_err(rootfs_error)?;
        busybox
            .populate(&dir.join("rootfs"))
            .map_err(rootfs_error)?;
        let config = from.config(&dir).map_err(|source| BundleError::Config {
            dir: dir.clone(),
            source,
        })?;
        let mut bundle = Bundle {
            dir,
            config,
            cgroup_path,
            raw_config: false,
        };
        let cgroup_path = bundle.cgroup_path.clone();
        bundle
            .set("/process/terminal", json!(false))
            .set_cgroup_path(cgroup_path);
        Ok(bundle)
    }

    /// The bundle directory (absolute).
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// `<bundle>/rootfs`.
    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    /// The `linux.cgroupsPath` this bundle was given.
    pub fn cgroup_path(&self) -> &str {
        &self.cgroup_path
    }

    /// Move the bundle to the cgroup `path`: `linux.cgroupsPath` and
    /// [`Bundle::cgroup_path`] (which the clean-up removes).
    pub fn set_cgroup_path(&mut self, path: String) -> &mut Self {
        self.set("/linux/cgroupsPath", json!(path));
        self.cgroup_path = path;
        self
    }

    /// The config as it will be written.
    pub fn config(&self) -> &Value {
        &self.config
    }

    /// The config, to edit freely.
    pub fn config_mut(&mut self) -> &mut Value {
        &mut self.config
    }

    /// Set the value at a JSON pointer (`/linux/sysctl/kernel.shmmax`),
    /// creating missing objects on the way; `~1` stands for `/` in a key,
    /// `-` appends to an array.
    pub fn set(&mut self, pointer: &str, value: Value) -> &mut Self {
        config::set(&mut self.config, pointer, value);
        self
    }

    /// Remove the value at a JSON pointer, if present.
    pub fn remove(&mut self, pointer: &str) -> &mut Self {
        config::remove(&mut self.config, pointer);
        self
    }

    /// Append `value` to the array at `pointer`, creating the array if missing.
    pub fn push(&mut self, pointer: &str, value: Value) -> &mut Self {
        config::array_at(&mut self.config, pointer).push(value);
        self
    }

    /// Set `process.args`.
    pub fn args(&mut self, args: &[&str]) -> &mut Self {
        self.set("/process/args", json!(args))
    }

    /// Set `process.args` to `["sh", "-c", script]`.
    pub fn sh(&mut self, script: &str) -> &mut Self {
        self.args(&["sh", "-c", script])
    }

    /// Add `KEY=VALUE` entries to `process.env`, replacing any entry with the same key.
    pub fn env(&mut self, vars: &[&str]) -> &mut Self {
        for var in vars {
            let key = var.split('=').next().unwrap_or_default();
            let env = config::array_at(&mut self.config, "/process/env");
            env.retain(|e| e.as_str().and_then(|e| e.split('=').next()) != Some(key));
            env.push(json!(var));
        }
        self
    }

    /// Set `process.user.uid` and `gid`.
    pub fn user(&mut self, uid: u32, gid: u32) -> &mut Self {
        self.set("/process/user/uid", json!(uid))
            .set("/process/user/gid", json!(gid))
    }

    /// Replace the namespace entry of `kind` (`pid`, `network`, `mount`,
    /// `ipc`, `uts`, `user`, `cgroup`, `time`) with a new one (`path: None`)
    /// or one that joins `path` (e.g. `/proc/<pid>/ns/uts`).
    pub fn namespace(&mut self, kind: &str, path: Option<&str>) -> &mut Self {
        self.remove_namespace(kind);
        let entry = match path {
            Some(path) => json!({ "type": kind, "path": path }),
            None => json!({ "type": kind }),
        };
        self.push("/linux/namespaces", entry)
    }

    /// Request a new namespace of `kind`, replacing any entry of that kind.
    pub fn push_namespace(&mut self, kind: &str) -> &mut Self {
        self.namespace(kind, None)
    }

    /// Request a new user namespace with these `linux.uidMappings` and
    /// `linux.gidMappings`.
    pub fn user_namespace(&mut self, uids: Value, gids: Value) -> &mut Self {
        self.push_namespace("user")
            .set("/linux/uidMappings", uids)
            .set("/linux/gidMappings", gids)
    }

    /// Join the namespace at `path` for `kind`.
    pub fn join_namespace(&mut self, kind: &str, path: &str) -> &mut Self {
        self.namespace(kind, Some(path))
    }

    /// Drop the namespace entry of `kind`, if any.
    pub fn remove_namespace(&mut self, kind: &str) -> &mut Self {
        config::retain(&mut self.config, "/linux/namespaces", |ns| {
            ns["type"] != kind
        });
        self
    }

    /// Append a mount.
    pub fn mount(
        &mut self,
        destination: &str,
        kind: &str,
        source: &str,
        options: &[&str],
    ) -> &mut Self {
        self.push(
            "/mounts",
            json!({ "destination": destination, "type": kind, "source": source, "options": options }),
        )
    }

    /// Drop every mount whose destination is `destination`.
    pub fn remove_mount(&mut self, destination: &str) -> &mut Self {
        config::retain(&mut self.config, "/mounts", |m| {
            m["destination"] != destination
        });
        self
    }

    /// Write `config.json` (unless a raw config was written).
    pub fn write_config(&self) -> Result<(), BundleError> {
        if self.raw_config {
            return Ok(());
        }
        let text = serde_json::to_string_pretty(&self.config).expect("a JSON value serialises");
        self.write_file("config.json", &text).map(drop)
    }

    /// Replace `config.json` with `text` verbatim (for malformed configs);
    /// [`Bundle::write_config`] then leaves it alone.
    pub fn write_raw_config(&mut self, text: &str) -> Result<(), BundleError> {
        self.raw_config = true;
        self.write_file("config.json", text).map(drop)
    }

    /// Write a file below the bundle directory (creating parent directories).
    pub fn write_file(&self, relative: &str, contents: &str) -> Result<PathBuf, BundleError> {
        let path = self.dir.join(relative);
        let written = match path.parent() {
            Some(parent) => fs::create_dir_all(parent),
            None => Ok(()),
        }
        .and_then(|()| fs::write(&path, contents));
        match written {
            Ok(()) => Ok(path),
            Err(source) => Err(BundleError::Write { path, source }),
        }
    }
}

/// `Deref` and `DerefMut` to [`Bundle`] for a test crate's own bundle type
/// that holds the kit's bundle in the field `$field` (and adds what the
/// crate needs: assertions, a name, a `Drop`): the kit's edits then apply
/// to it directly.
#[macro_export]
macro_rules! deref_to_bundle {
    ($ty:ty, $field:ident) => {
        impl ::std::ops::Deref for $ty {
            type Target = $crate::Bundle;

            fn deref(&self) -> &$crate::Bundle {
                &self.$field
            }
        }

        impl ::std::ops::DerefMut for $ty {
            fn deref_mut(&mut self) -> &mut $crate::Bundle {
                &mut self.$field
            }
        }
    };
}
