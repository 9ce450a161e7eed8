//! OCI bundles for the tests: [`corten_testkit::Bundle`]s in
//! `/tmp/corten-it/`, their config from the runtime's own `spec`, removed
//! with their cgroup when dropped.

use std::path::{Path, PathBuf};

use corten_testkit::rootfs::make_dir;
use corten_testkit::{Busybox, ConfigFrom};

use crate::cleanup;

/// A bundle directory `/tmp/corten-it/<test>-<pid>-<n>` with `rootfs/` and a
/// `config.json` being edited as JSON (through [`corten_testkit::Bundle`],
/// which it dereferences to). The config is written by [`Bundle::save`],
/// which every [`crate::Runtime`] method taking a bundle calls first.
/// Dropping the bundle removes the directory and the bundle's cgroup.
#[derive(Debug)]
pub struct Bundle {
    kit: corten_testkit::Bundle,
    name: String,
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
        let base = Path::new(crate::BASE_DIR);
        make_dir(base, 0o755).unwrap_or_else(|e| panic!("{e}"));
        let bin = crate::runtime_bin();
        assert!(
            bin.exists(),
            "runtime binary {} not found (set CORTEN_BIN)",
            bin.display()
        );
        let from = ConfigFrom::Spec {
            runtime: &bin,
            args: spec_args,
        };
        let cgroup_path = format!("{}/{name}", cleanup::cgroup_parent());
        let mut kit =
            corten_testkit::Bundle::create(base.join(&name), from, cgroup_path, &Busybox::host())
                .unwrap_or_else(|e| panic!("{e}"));
        kit.args(&["true"]);
        Bundle { kit, name }
    }

    /// The unique name of this bundle, `<test>-<pid>-<n>`; a good container id.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Write `config.json` (unless a raw config was written).
    pub fn save(&self) {
        self.kit.write_config().unwrap_or_else(|e| panic!("{e}"));
    }

    /// Replace `config.json` with `text` verbatim (for malformed configs).
    pub fn write_raw_config(&mut self, text: &str) {
        self.kit
            .write_raw_config(text)
            .unwrap_or_else(|e| panic!("{e}"));
    }

    /// Write a file below the bundle directory (creating parent dirs).
    pub fn write_file(&self, relative: &str, contents: &str) -> PathBuf {
        self.kit
            .write_file(relative, contents)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Mount a small tmpfs on the host at `<bundle>/<relative>` (for sources
    /// with submounts); the bundle detaches it when dropped.
    pub fn mount_host_tmpfs(&self, relative: &str) -> PathBuf {
        let path = self.path().join(relative);
        std::fs::create_dir_all(&path).expect("create tmpfs mount point");
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
}

corten_testkit::deref_to_bundle!(Bundle, kit);

impl Drop for Bundle {
    fn drop(&mut self) {
        corten_testkit::cleanup::remove_tree(self.kit.path(), Path::new(crate::BASE_DIR));
        // A runtime that still holds a container of this bundle removes the
        // cgroup when it is dropped; do not wait for it here.
        cleanup::release_owner(&[self.kit.cgroup_path().to_owned()], false);
    }
}

/// The bundles' busybox root filesystem, built in `dir/rootfs` and packed
/// as `dir/busybox.tar` (for `docker import` / `podman import`); returns
/// the tarball.
pub fn busybox_tarball(dir: &Path) -> PathBuf {
    corten_testkit::busybox_tarball(dir).unwrap_or_else(|e| panic!("{e}"))
}
