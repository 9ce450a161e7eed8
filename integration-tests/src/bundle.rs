//! OCI bundles for the tests: a busybox root filesystem plus a `config.json`
//! that starts from the runtime's own `spec` output.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::{json, Value};

use crate::cleanup;

/// The static busybox that provides the container's userland.
const BUSYBOX: &str = "/bin/busybox";

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
user:x:1000:1000:user:/home/user:/bin/sh\n\
nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
const GROUP: &str = "root:x:0:\ntty:x:5:\nuser:x:1000:\nnogroup:x:65534:\n";

/// A bundle directory `/tmp/corten-it/<test>-<pid>-<n>` with `rootfs/` and a
/// `config.json` being edited as JSON. The config is written by [`Bundle::save`],
/// which every [`crate::Runtime`] method taking a bundle calls first. Dropping
/// the bundle removes the directory and the bundle's cgroup.
#[derive(Debug)]
pub struct Bundle {
    dir: PathBuf,
    name: String,
    config: Value,
    /// Set by [`Bundle::write_raw_config`]: `save` then leaves the file alone.
    raw_config: bool,
    cgroup_path: String,
}

impl Bundle {
    /// A new bundle for the test `test_name`, its config made by the
    /// runtime's `spec` command and adjusted: no terminal, args `["true"]`,
    /// and a cgroups path unique to this bundle under [`cleanup::cgroup_parent`].
    pub fn new(test_name: &str) -> Bundle {
        Bundle::with_spec(test_name, &[])
    }

    /// Like [`Bundle::new`], passing `spec_args` (e.g. `--rootless`) to `spec`.
    pub fn with_spec(test_name: &str, spec_args: &[&str]) -> Bundle {
        cleanup::register_owner();
        let name = crate::unique_name(test_name);
        let dir = Path::new(crate::BASE_DIR).join(&name);
        let mut bundle = Bundle {
            cgroup_path: format!("{}/{name}", cleanup::cgroup_parent()),
            dir,
            name,
            config: Value::Null,
            raw_config: false,
        };
        make_dir(Path::new(crate::BASE_DIR), 0o755);
        make_dir(&bundle.dir, 0o755);
        populate_rootfs(&bundle.rootfs());
        bundle.config = generate_spec(&bundle.dir, spec_args);
        let cgroup_path = bundle.cgroup_path.clone();
        bundle
            .set("/process/terminal", json!(false))
            .args(&["true"])
            .set("/linux/cgroupsPath", json!(cgroup_path));
        bundle
    }

    /// The bundle directory (absolute).
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// `<bundle>/rootfs`.
    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    /// The unique name of this bundle, `<test>-<pid>-<n>`; a good container id.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The `linux.cgroupsPath` this bundle was given.
    pub fn cgroup_path(&self) -> &str {
        &self.cgroup_path
    }

    /// The config as it will be written.
    pub fn config(&self) -> &Value {
        &self.config
    }

    /// The config, to edit freely.
    pub fn config_mut(&mut self) -> &mut Value {
        &mut self.config
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
            let env = self.array_at("/process/env");
            env.retain(|e| e.as_str().and_then(|e| e.split('=').next()) != Some(key));
            env.push(json!(var));
        }
        self
    }

    /// Set the value at a JSON pointer (`/linux/sysctl/kernel.shmmax`),
    /// creating missing objects on the way. `~1` stands for `/` in a key.
    pub fn set(&mut self, pointer: &str, value: Value) -> &mut Self {
        let (parent, key) = pointer
            .rsplit_once('/')
            .unwrap_or_else(|| panic!("bad pointer {pointer:?}"));
        let key = key.replace("~1", "/").replace("~0", "~");
        match self.value_at(parent) {
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
        self
    }

    /// Remove the value at a JSON pointer, if present.
    pub fn remove(&mut self, pointer: &str) -> &mut Self {
        let Some((parent, key)) = pointer.rsplit_once('/') else {
            return self;
        };
        let key = key.replace("~1", "/").replace("~0", "~");
        match self.config.pointer_mut(parent) {
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
        self
    }

    /// Append `value` to the array at `pointer`, creating the array if missing.
    pub fn push(&mut self, pointer: &str, value: Value) -> &mut Self {
        self.array_at(pointer).push(value);
        self
    }

    /// Request a new namespace of `kind` (`pid`, `network`, `mount`, `ipc`,
    /// `uts`, `user`, `cgroup`, `time`), replacing any entry of that kind.
    pub fn push_namespace(&mut self, kind: &str) -> &mut Self {
        self.remove_namespace(kind);
        self.push("/linux/namespaces", json!({ "type": kind }))
    }

    /// Join the namespace at `path` (e.g. `/proc/<pid>/ns/uts`) for `kind`.
    pub fn join_namespace(&mut self, kind: &str, path: &str) -> &mut Self {
        self.remove_namespace(kind);
        self.push("/linux/namespaces", json!({ "type": kind, "path": path }))
    }

    /// Drop the namespace entry of `kind`, if any.
    pub fn remove_namespace(&mut self, kind: &str) -> &mut Self {
        self.array_at("/linux/namespaces")
            .retain(|ns| ns["type"] != kind);
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
        self.array_at("/mounts")
            .retain(|m| m["destination"] != destination);
        self
    }

    /// Set `process.user.uid` and `gid`.
    pub fn user(&mut self, uid: u32, gid: u32) -> &mut Self {
        self.set("/process/user/uid", json!(uid))
            .set("/process/user/gid", json!(gid))
    }

    /// Write `config.json` (unless a raw config was written).
    pub fn save(&self) {
        if self.raw_config {
            return;
        }
        let text = serde_json::to_string_pretty(&self.config).expect("serialise config");
        fs::write(self.dir.join("config.json"), text).expect("write config.json");
    }

    /// Replace `config.json` with `text` verbatim (for malformed configs).
    pub fn write_raw_config(&mut self, text: &str) {
        self.raw_config = true;
        fs::write(self.dir.join("config.json"), text).expect("write config.json");
    }

    /// Write a file below the bundle directory (creating parent dirs).
    pub fn write_file(&self, relative: &str, contents: &str) -> PathBuf {
        let path = self.dir.join(relative);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("create parent dir");
        }
        fs::write(&path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path
    }

    /// Mount a small tmpfs on the host at `<bundle>/<relative>` (for sources
    /// with submounts); the bundle detaches it when dropped.
    pub fn mount_host_tmpfs(&self, relative: &str) -> PathBuf {
        let path = self.dir.join(relative);
        fs::create_dir_all(&path).expect("create tmpfs mount point");
        let target =
            std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).expect("no NUL in path");
        // SAFETY: all pointers are valid NUL-terminated strings that outlive
        // the call; the target lies inside this bundle's own directory.
        let rc = unsafe {
            libc::mount(
                c"tmpfs".as_ptr(),
                target.as_ptr(),
                c"tmpfs".as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV,
                c"size=1m,mode=755".as_ptr().cast(),
            )
        };
        assert_eq!(
            rc,
            0,
            "mount tmpfs on {}: {}",
            path.display(),
            std::io::Error::last_os_error()
        );
        path
    }

    /// The value at `pointer`, creating objects (and a `null` leaf) as needed.
    fn value_at(&mut self, pointer: &str) -> &mut Value {
        let mut slot = &mut self.config;
        for token in pointer.split('/').skip(1) {
            let key = token.replace("~1", "/").replace("~0", "~");
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

    fn array_at(&mut self, pointer: &str) -> &mut Vec<Value> {
        let slot = self.value_at(pointer);
        if !slot.is_array() {
            *slot = json!([]);
        }
        slot.as_array_mut().expect("just made an array")
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        cleanup::remove_temp_tree(&self.dir);
        // A runtime that still holds a container of this bundle removes the
        // cgroup when it is dropped; do not wait for it here.
        cleanup::release_owner(std::slice::from_ref(&self.cgroup_path), false);
    }
}

fn make_dir(path: &Path, mode: u32) {
    if let Err(e) = fs::create_dir(path) {
        assert!(
            e.kind() == std::io::ErrorKind::AlreadyExists,
            "mkdir {}: {e}",
            path.display()
        );
    }
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

/// busybox's applet names, read once.
fn applets() -> &'static [String] {
    static APPLETS: OnceLock<Vec<String>> = OnceLock::new();
    APPLETS.get_or_init(|| {
        let out = Command::new(BUSYBOX)
            .arg("--list")
            .output()
            .unwrap_or_else(|e| panic!("{BUSYBOX} --list (install busybox-static): {e}"));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|a| !a.is_empty() && *a != "busybox" && !a.contains('/'))
            .map(str::to_owned)
            .collect()
    })
}

fn populate_rootfs(rootfs: &Path) {
    make_dir(rootfs, 0o755);
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
    ] {
        make_dir(&rootfs.join(dir), 0o755);
    }
    make_dir(&rootfs.join("tmp"), 0o1777);
    fs::copy(BUSYBOX, rootfs.join("bin/busybox"))
        .unwrap_or_else(|e| panic!("copy {BUSYBOX} (install busybox-static): {e}"));
    for applet in applets() {
        symlink("busybox", rootfs.join("bin").join(applet)).expect("symlink applet");
    }
    fs::write(rootfs.join("etc/passwd"), PASSWD).expect("write passwd");
    fs::write(rootfs.join("etc/group"), GROUP).expect("write group");
}

/// The bundles' busybox root filesystem, built in `dir/rootfs` and packed
/// as `dir/busybox.tar` (for `docker import` / `podman import`); returns
/// the tarball.
pub fn busybox_tarball(dir: &Path) -> PathBuf {
    let rootfs = dir.join("rootfs");
    populate_rootfs(&rootfs);
    let tar = dir.join("busybox.tar");
    let ok = Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .expect("run tar");
    assert!(ok.success(), "tar {}", rootfs.display());
    tar
}

fn generate_spec(dir: &Path, spec_args: &[&str]) -> Value {
    let bin = crate::runtime_bin();
    assert!(
        bin.exists(),
        "runtime binary {} not found (set CORTEN_BIN)",
        bin.display()
    );
    let out = Command::new(&bin)
        .arg("spec")
        .args(spec_args)
        .arg("--bundle")
        .arg(dir)
        .output()
        .unwrap_or_else(|e| panic!("run {} spec: {e}", bin.display()));
    assert!(
        out.status.success(),
        "{} spec failed: {}",
        bin.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = fs::read_to_string(dir.join("config.json")).expect("spec wrote no config.json");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("spec wrote invalid JSON: {e}\n{text}"))
}
