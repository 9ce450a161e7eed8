//! Which runtime a container runs with, from the runtime options containerd
//! passes (runc's `containerd.runc.v1.Options`: `BinaryName`, `Root`,
//! `SystemdCgroup`, `NoPivotRoot`, `NoNewKeyring`), with defaults:
//! - binary: `corten` next to the shim binary, else `corten` on `PATH`;
//! - root: `<containerd's state dir>/corten/<namespace>`, where the state dir
//!   is the directory of containerd's socket (`/run/containerd` for the
//!   default `/run/containerd/containerd.sock`, like runc's shim's
//!   `/run/containerd/runc/<namespace>`).
//!
//! The choice is saved in the bundle (`corten-shim.json`), so that the
//! `delete` action, run after a shim died, cleans up with the same runtime.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use containerd_shim::api::Options;
use containerd_shim::protos::protobuf::well_known_types::any::Any;
use containerd_shim::protos::protobuf::Message;

use crate::runtime::Runtime;

/// The file in the bundle that records the runtime of a container.
pub(crate) const SAVED: &str = "corten-shim.json";

/// The runtime binary used when the options name none.
pub(crate) fn default_binary() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.join("corten")))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("corten"))
}

/// The directory containerd keeps its state in, judged from its socket.
pub(crate) fn containerd_dir(address: &str) -> PathBuf {
    let path = Path::new(address.strip_prefix("unix://").unwrap_or(address));
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("/run/containerd"), Path::to_owned)
}

/// runc's options, if `options` carries them (`containerd.runc.v1.Options`,
/// with or without a type URL host).
pub(crate) fn runc_options(options: Option<&Any>) -> Result<Option<Options>> {
    let Some(any) = options else { return Ok(None) };
    let name = any.type_url.rsplit('/').next().unwrap_or_default();
    if name != "containerd.runc.v1.Options" {
        if !any.type_url.is_empty() {
            crate::info!("ignoring runtime options of type {}", any.type_url);
        }
        return Ok(None);
    }
    Options::parse_from_bytes(&any.value)
        .map(Some)
        .context("decode containerd.runc.v1.Options")
}

/// The runtime for a container in `namespace` of the containerd at `address`.
pub(crate) fn runtime(options: Option<&Options>, namespace: &str, address: &str) -> Runtime {
    let default = Options::default();
    let o = options.unwrap_or(&default);
    let binary = if o.binary_name.is_empty() {
        default_binary()
    } else {
        PathBuf::from(&o.binary_name)
    };
    let base = if o.root.is_empty() {
        containerd_dir(address).join("corten")
    } else {
        PathBuf::from(&o.root)
    };
    Runtime {
        binary,
        root: base.join(namespace),
        systemd_cgroup: o.systemd_cgroup,
        no_pivot: o.no_pivot_root,
        no_new_keyring: o.no_new_keyring,
    }
}

/// Records `runtime` in `bundle`.
pub(crate) fn save(bundle: &Path, runtime: &Runtime) -> Result<()> {
    let path = bundle.join(SAVED);
    let json = serde_json::to_vec(runtime).context("encode the runtime options")?;
    std::fs::write(&path, json).with_context(|| format!("write {}", path.display()))
}

/// The runtime recorded in `bundle`, if any.
pub(crate) fn load(bundle: &Path) -> Option<Runtime> {
    let data = std::fs::read(bundle.join(SAVED)).ok()?;
    serde_json::from_slice(&data).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_containerd_socket() {
        assert_eq!(
            containerd_dir("/run/containerd/containerd.sock"),
            Path::new("/run/containerd")
        );
        assert_eq!(containerd_dir("unix:///tmp/x/c.sock"), Path::new("/tmp/x"));
        assert_eq!(containerd_dir(""), Path::new("/run/containerd"));
        let rt = runtime(None, "default", "/tmp/x/c.sock");
        assert_eq!(rt.root, Path::new("/tmp/x/corten/default"));
        assert!(!rt.systemd_cgroup);
    }

    #[test]
    fn runc_options_are_honoured() {
        let o = Options {
            binary_name: "/usr/sbin/runc".into(),
            root: "/run/r".into(),
            systemd_cgroup: true,
            no_pivot_root: true,
            ..Default::default()
        };
        let any = Any {
            type_url: "containerd.runc.v1.Options".into(),
            value: o.write_to_bytes().unwrap(),
            ..Default::default()
        };
        let parsed = runc_options(Some(&any)).unwrap().unwrap();
        let rt = runtime(Some(&parsed), "k8s.io", "/run/containerd/containerd.sock");
        assert_eq!(rt.binary, Path::new("/usr/sbin/runc"));
        assert_eq!(rt.root, Path::new("/run/r/k8s.io"));
        assert!(rt.systemd_cgroup && rt.no_pivot && !rt.no_new_keyring);
        let other = Any {
            type_url: "runtimeoptions.v1.Options".into(),
            ..Default::default()
        };
        assert!(runc_options(Some(&other)).unwrap().is_none());
    }

    #[test]
    fn saved_runtime_round_trips() {
        let dir = std::env::temp_dir().join(format!("corten-shim-opts-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let rt = runtime(None, "ns", "/tmp/c.sock");
        save(&dir, &rt).unwrap();
        assert_eq!(load(&dir), Some(rt));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
