//! Where a bundle's `config.json` starts from (the runtime's own `spec`
//! command, or [`default_config`]) and the JSON-pointer edits made to it.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

/// Where a bundle's configuration comes from.
#[derive(Debug, Clone, Copy)]
pub enum ConfigFrom<'a> {
    /// `<runtime> spec <args…> --bundle <dir>` (e.g. `--rootless`).
    Spec {
        /// The runtime binary.
        runtime: &'a Path,
        /// Extra arguments to `spec`.
        args: &'a [&'a str],
    },
    /// [`default_config`].
    Default,
}

/// A step of producing a configuration that failed.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The runtime's `spec` could not be run.
    #[error("run {runtime} spec: {source}")]
    SpecSpawn {
        /// The runtime binary.
        runtime: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The runtime's `spec` failed.
    #[error("{runtime} spec failed: {stderr}")]
    Spec {
        /// The runtime binary.
        runtime: PathBuf,
        /// What it printed on stderr.
        stderr: String,
    },
    /// The configuration `spec` wrote could not be read.
    #[error("read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The configuration `spec` wrote is not JSON.
    #[error("spec wrote invalid JSON to {path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: serde_json::Error,
    },
}

impl ConfigFrom<'_> {
    /// The configuration for a bundle in `dir` (where `spec` writes it).
    pub fn config(&self, dir: &Path) -> Result<Value, ConfigError> {
        match *self {
            ConfigFrom::Default => Ok(default_config()),
            ConfigFrom::Spec { runtime, args } => spec_config(runtime, args, dir),
        }
    }
}

fn spec_config(runtime: &Path, args: &[&str], dir: &Path) -> Result<Value, ConfigError> {
    let out = Command::new(runtime)
        .arg("spec")
        .args(args)
        .arg("--bundle")
        .arg(dir)
        .output()
        .map_err(|source| ConfigError::SpecSpawn {
            runtime: runtime.to_owned(),
            source,
        })?;
    if !out.status.success() {
        return Err(ConfigError::Spec {
            runtime: runtime.to_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    let path = dir.join("config.json");
    let text = fs::read_to_string(&path).map_err(|source| ConfigError::Read {
        path: path.clone(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| ConfigError::Parse { path, source })
}

/// The configuration written from config.md and config-linux.md, for
/// bundles that must not depend on any runtime's `spec`: `sh` as the
/// process, a read-only root, three capabilities, the default filesystems,
/// new pid/network/ipc/uts/mount namespaces.
pub fn default_config() -> Value {
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": { "uid": 0, "gid": 0 },
            "args": ["sh"],
            "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {
                "bounding": caps, "effective": caps, "permitted": caps
            },
            "rlimits": [{ "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 }],
            "noNewPrivileges": true
        },
        "root": { "path": "rootfs", "readonly": true },
        "hostname": "conformance",
        "mounts": [
            { "destination": "/proc", "type": "proc", "source": "proc" },
            { "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
              "options": ["nosuid", "strictatime", "mode=755", "size=65536k"] },
            { "destination": "/dev/pts", "type": "devpts", "source": "devpts",
              "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"] },
            { "destination": "/dev/shm", "type": "tmpfs", "source": "shm",
              "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
            { "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
              "options": ["nosuid", "noexec", "nodev"] },
            { "destination": "/sys", "type": "sysfs", "source": "sysfs",
              "options": ["nosuid", "noexec", "nodev", "ro"] },
            { "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
              "options": ["nosuid", "noexec", "nodev", "relatime", "ro"] }
        ],
        "linux": {
            "namespaces": [
                { "type": "pid" }, { "type": "network" }, { "type": "ipc" },
                { "type": "uts" }, { "type": "mount" }
            ]
        }
    })
}

/// A seccomp profile allowing everything on x86_64, with `extra`'s keys
/// merged in.
pub fn allow_all_seccomp(extra: Value) -> Value {
    let mut profile = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": []
    });
    if let (Some(map), Value::Object(extra)) = (profile.as_object_mut(), extra) {
        map.extend(extra);
    }
    profile
}

/// A JSON-pointer token unescaped: `~1` is `/`, `~0` is `~`.
fn token(raw: &str) -> String {
    raw.replace("~1", "/").replace("~0", "~")
}

/// The value at `pointer`, creating objects (and a `null` leaf) on the way;
/// a number indexes an array. Panics on an index out of range.
pub fn value_at<'a>(root: &'a mut Value, pointer: &str) -> &'a mut Value {
    let mut slot = root;
    for raw in pointer.split('/').skip(1) {
        let key = token(raw);
        slot = match slot {
            Value::Array(items) => {
                let index: usize = key
                    .parse()
                    .unwrap_or_else(|_| panic!("bad index in {pointer:?}"));
                &mut items[index]
            }
            other => {
                if !other.is_object() {
                    *other = json!({});
                }
                other
                    .as_object_mut()
                    .expect("just made an object")
                    .entry(key)
                    .or_insert(Value::Null)
            }
        };
    }
    slot
}

/// Set the value at `pointer`, creating missing objects on the way; `-`
/// appends to an array.
pub fn set(root: &mut Value, pointer: &str, value: Value) {
    let (parent, key) = pointer
        .rsplit_once('/')
        .unwrap_or_else(|| panic!("bad pointer {pointer:?}"));
    let key = token(key);
    match value_at(root, parent) {
        Value::Array(items) if key == "-" => items.push(value),
        Value::Array(items) => {
            let index: usize = key
                .parse()
                .unwrap_or_else(|_| panic!("bad index in {pointer:?}"));
            items[index] = value;
        }
        slot => {
            if !slot.is_object() {
                *slot = json!({});
            }
            slot.as_object_mut()
                .expect("just made an object")
                .insert(key, value);
        }
    }
}

/// Remove the value at `pointer` (an object key or an array index), if present.
pub fn remove(root: &mut Value, pointer: &str) {
    let Some((parent, key)) = pointer.rsplit_once('/') else {
        return;
    };
    let key = token(key);
    match root.pointer_mut(parent) {
        Some(Value::Object(map)) => {
            map.remove(&key);
        }
        Some(Value::Array(items)) => {
            if let Ok(i) = key.parse::<usize>() {
                if i < items.len() {
                    items.remove(i);
                }
            }
        }
        _ => {}
    }
}

/// The array at `pointer`, created (replacing whatever is there) if missing.
pub fn array_at<'a>(root: &'a mut Value, pointer: &str) -> &'a mut Vec<Value> {
    let slot = value_at(root, pointer);
    if !slot.is_array() {
        *slot = json!([]);
    }
    slot.as_array_mut().expect("just made an array")
}

/// Keep only the items of the array at `pointer` (if there is one) for
/// which `keep` holds.
pub fn retain(root: &mut Value, pointer: &str, keep: impl FnMut(&Value) -> bool) {
    if let Some(Value::Array(items)) = root.pointer_mut(pointer) {
        items.retain(keep);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_creates_objects_and_indexes_arrays() {
        let mut v = json!({ "a": [1, 2] });
        set(&mut v, "/a/1", json!(5));
        set(&mut v, "/a/-", json!(6));
        set(&mut v, "/b/c~1d", json!("x"));
        assert_eq!(v, json!({ "a": [1, 5, 6], "b": { "c/d": "x" } }));
        remove(&mut v, "/a/0");
        remove(&mut v, "/b/c~1d");
        remove(&mut v, "/nothing/here");
        assert_eq!(v, json!({ "a": [5, 6], "b": {} }));
    }

    #[test]
    fn retain_leaves_a_missing_array_missing() {
        let mut v = json!({ "x": [1, 2, 3] });
        retain(&mut v, "/x", |n| n != 2);
        retain(&mut v, "/y", |_| false);
        assert_eq!(v, json!({ "x": [1, 3] }));
    }

    #[test]
    fn default_config_is_complete() {
        let c = default_config();
        assert_eq!(c["process"]["args"][0], "sh");
        assert_eq!(c["linux"]["namespaces"].as_array().map(Vec::len), Some(5));
        assert_eq!(
            allow_all_seccomp(json!({ "defaultAction": "SCMP_ACT_KILL" }))["defaultAction"],
            "SCMP_ACT_KILL"
        );
    }
}
