//! OCI bundles: a busybox rootfs with the checker, a `config.json` edited as
//! JSON, and the checker's assertions.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};
use corten_conformance::expect::{Assertion, Check, Expectations};
use corten_conformance::{CHECKER_IN_ROOTFS, EXPECT_IN_ROOTFS};
use serde_json::{json, Value};

use crate::host::Host;

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
user:x:1000:1000:user:/home/user:/bin/sh\n\
nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
const GROUP: &str = "root:x:0:\ntty:x:5:\nuser:x:1000:\nnogroup:x:65534:\n";

/// `PATH` of the container process (the checker's directory is on it).
pub const CONTAINER_PATH: &str = "PATH=/usr/sbin:/usr/bin:/sbin:/bin:/conformance";

/// A bundle directory being prepared.
#[derive(Debug)]
pub struct Bundle {
    /// The bundle directory (absolute).
    pub dir: PathBuf,
    /// The configuration, written by [`Bundle::save`].
    pub config: Value,
    /// The checker's assertions, written to `rootfs/conformance/expect.json`.
    pub expect: Vec<Assertion>,
    /// The `linux.cgroupsPath` given to this bundle.
    pub cgroups_path: String,
}

impl Bundle {
    /// A bundle in `dir` (created) with the base configuration.
    pub fn new(host: &Host, dir: PathBuf, cgroups_path: String) -> Result<Bundle> {
        make_dir(&dir, 0o755)?;
        populate_rootfs(host, &dir.join("rootfs"))?;
        make_dir(&dir.join("out"), 0o777)?;
        Ok(Bundle {
            config: base_config(&cgroups_path),
            dir,
            expect: Vec::new(),
            cgroups_path,
        })
    }

    /// `<bundle>/rootfs`.
    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    /// `<bundle>/out`, bind-mounted read-write at `/out` by [`Bundle::with_out`].
    pub fn out(&self) -> PathBuf {
        self.dir.join("out")
    }

    /// Bind-mount `<bundle>/out` at `/out` (read-write) so the container
    /// can leave files for the harness.
    pub fn with_out(&mut self) -> &mut Self {
        let source = self.out().to_string_lossy().into_owned();
        self.mount("/out", "bind", &source, &["rbind", "rw"])
    }

    /// Set the value at a JSON pointer, creating objects on the way.
    pub fn set(&mut self, pointer: &str, value: Value) -> &mut Self {
        *slot(&mut self.config, pointer) = value;
        self
    }

    /// Remove the value at a JSON pointer (object key or array index).
    pub fn remove(&mut self, pointer: &str) -> &mut Self {
        if let Some((parent, key)) = pointer.rsplit_once('/') {
            match self.config.pointer_mut(parent) {
                Some(Value::Object(map)) => {
                    map.remove(&key.replace("~1", "/"));
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
        self
    }

    /// Append to the array at `pointer` (created if missing).
    pub fn push(&mut self, pointer: &str, value: Value) -> &mut Self {
        let s = slot(&mut self.config, pointer);
        if !s.is_array() {
            *s = json!([]);
        }
        if let Value::Array(items) = s {
            items.push(value);
        }
        self
    }

    /// `process.args`.
    pub fn args(&mut self, args: &[&str]) -> &mut Self {
        self.set("/process/args", json!(args))
    }

    /// `process.args = ["sh", "-c", script]`.
    pub fn sh(&mut self, script: &str) -> &mut Self {
        self.args(&["sh", "-c", script])
    }

    /// Replace the namespace entry of `kind` with a new (`path: None`) or
    /// joined one.
    pub fn namespace(&mut self, kind: &str, path: Option<&str>) -> &mut Self {
        self.remove_namespace(kind);
        let entry = match path {
            Some(p) => json!({ "type": kind, "path": p }),
            None => json!({ "type": kind }),
        };
        self.push("/linux/namespaces", entry)
    }

    /// Drop the namespace entry of `kind`.
    pub fn remove_namespace(&mut self, kind: &str) -> &mut Self {
        if let Some(Value::Array(items)) = self.config.pointer_mut("/linux/namespaces") {
            items.retain(|n| n["type"] != kind);
        }
        self
    }

    /// Append a mount.
    pub fn mount(&mut self, dest: &str, kind: &str, source: &str, options: &[&str]) -> &mut Self {
        self.push(
            "/mounts",
            json!({ "destination": dest, "type": kind, "source": source, "options": options }),
        )
    }

    /// Drop the mounts at `dest`.
    pub fn remove_mount(&mut self, dest: &str) -> &mut Self {
        if let Some(Value::Array(items)) = self.config.pointer_mut("/mounts") {
            items.retain(|m| m["destination"] != dest);
        }
        self
    }

    /// Add an assertion for the checker.
    pub fn expect(&mut self, name: &str, check: Check) -> &mut Self {
        self.expect.push(Assertion::new(name, check));
        self
    }

    /// Write `config.json` and the assertions.
    pub fn save(&self) -> Result<()> {
        let config = serde_json::to_string_pretty(&self.config)?;
        fs::write(self.dir.join("config.json"), config).context("write config.json")?;
        self.save_expectations()
    }

    /// Write only the assertions (`rootfs/conformance/expect.json`).
    pub fn save_expectations(&self) -> Result<()> {
        let e = Expectations {
            assertions: self.expect.clone(),
        };
        let path = self.rootfs().join(EXPECT_IN_ROOTFS.trim_start_matches('/'));
        fs::write(&path, serde_json::to_string_pretty(&e)?)
            .with_context(|| format!("write {}", path.display()))?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644))?;
        Ok(())
    }

    /// Write a file in the bundle directory (`relative` to it).
    pub fn write(&self, relative: &str, content: &str) -> Result<PathBuf> {
        let path = self.dir.join(relative);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::write(&path, content).with_context(|| format!("write {}", path.display()))?;
        Ok(path)
    }
}

/// The slot at a JSON pointer, creating objects (and a `null` leaf) on the way.
fn slot<'a>(root: &'a mut Value, pointer: &str) -> &'a mut Value {
    let mut cur = root;
    for token in pointer.split('/').skip(1) {
        let key = token.replace("~1", "/").replace("~0", "~");
        let index = match (&*cur, key.parse::<usize>()) {
            (Value::Array(items), Ok(i)) if i < items.len() => Some(i),
            _ => None,
        };
        cur = match (cur, index) {
            (Value::Array(items), Some(i)) => &mut items[i],
            (other, _) => {
                if !other.is_object() {
                    *other = json!({});
                }
                match other {
                    Value::Object(map) => map.entry(key).or_insert(Value::Null),
                    _ => unreachable!("just made an object"),
                }
            }
        };
    }
    cur
}

/// The configuration every case starts from, written from config.md and
/// config-linux.md: the checker as the process, a read-only root, the
/// default filesystems, new pid/network/ipc/uts/mount namespaces.
fn base_config(cgroups_path: &str) -> Value {
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": { "uid": 0, "gid": 0 },
            "args": [CHECKER_IN_ROOTFS, EXPECT_IN_ROOTFS],
            "env": [CONTAINER_PATH, "TERM=xterm"],
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
            ],
            "cgroupsPath": cgroups_path
        }
    })
}

/// Create the directory `path` (if missing) and set its mode.
pub fn make_dir(path: &Path, mode: u32) -> Result<()> {
    match fs::create_dir(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(anyhow!("mkdir {}: {e}", path.display())),
    }
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .with_context(|| format!("chmod {}", path.display()))
}

/// Link `master` to `dest`, copying when a hard link is impossible.
fn link_or_copy(master: &Path, dest: &Path) -> Result<()> {
    if fs::hard_link(master, dest).is_err() {
        fs::copy(master, dest).with_context(|| format!("copy to {}", dest.display()))?;
    }
    Ok(())
}

fn populate_rootfs(host: &Host, rootfs: &Path) -> Result<()> {
    make_dir(rootfs, 0o755)?;
    for dir in [
        "bin",
        "proc",
        "sys",
        "dev",
        "etc",
        "root",
        "home",
        "home/user",
        "mnt",
        "conformance",
        "out",
    ] {
        make_dir(&rootfs.join(dir), 0o755)?;
    }
    make_dir(&rootfs.join("tmp"), 0o1777)?;
    link_or_copy(&host.busybox, &rootfs.join("bin/busybox"))?;
    for applet in &host.applets {
        symlink("busybox", rootfs.join("bin").join(applet))
            .with_context(|| format!("symlink applet {applet}"))?;
    }
    link_or_copy(
        &host.checker,
        &rootfs.join(CHECKER_IN_ROOTFS.trim_start_matches('/')),
    )?;
    fs::write(rootfs.join("etc/passwd"), PASSWD).context("write passwd")?;
    fs::write(rootfs.join("etc/group"), GROUP).context("write group")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_creates_objects_and_indexes_arrays() {
        let mut v = json!({ "a": [1, 2] });
        *slot(&mut v, "/a/1") = json!(5);
        *slot(&mut v, "/b/c~1d") = json!("x");
        assert_eq!(v, json!({ "a": [1, 5], "b": { "c/d": "x" } }));
    }

    #[test]
    fn base_config_is_complete() {
        let c = base_config("/p/c");
        assert_eq!(c["linux"]["cgroupsPath"], "/p/c");
        assert_eq!(c["process"]["args"][0], CHECKER_IN_ROOTFS);
        assert_eq!(c["linux"]["namespaces"].as_array().map(Vec::len), Some(5));
    }
}
