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

/// runc's options, if `options` carries them: `containerd.runc.v1.Options`
/// (with or without a type URL host), or CRI's `runtimeoptions.v1.Options`
/// naming a TOML file with runc's option names (`BinaryName = "…"`, `Root`,
/// `SystemdCgroup`, `NoPivotRoot`, `NoNewKeyring`), which is how CRI passes
/// the options of a runtime type other than runc's.
pub(crate) fn runc_options(options: Option<&Any>) -> Result<Option<Options>> {
    let Some(any) = options else { return Ok(None) };
    match any.type_url.rsplit('/').next().unwrap_or_default() {
        "containerd.runc.v1.Options" => Options::parse_from_bytes(&any.value)
            .map(Some)
            .context("decode containerd.runc.v1.Options"),
        "runtimeoptions.v1.Options" => {
            let path = config_path(&any.value).context("decode runtimeoptions.v1.Options")?;
            if path.is_empty() {
                return Ok(None);
            }
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("read the runtime options file {path}"))?;
            Ok(Some(parse_toml_options(&text)))
        }
        "" => Ok(None),
        other => {
            crate::info!("ignoring runtime options of type {other}");
            Ok(None)
        }
    }
}

/// Field 2 (`config_path`) of a `runtimeoptions.v1.Options` message, whose
/// fields are all strings.
pub(crate) fn config_path(mut bytes: &[u8]) -> Result<String> {
    fn varint(bytes: &mut &[u8]) -> Result<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let (&b, rest) = bytes.split_first().context("truncated varint")?;
            *bytes = rest;
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        anyhow::bail!("varint too long")
    }
    let mut path = String::new();
    while !bytes.is_empty() {
        let key = varint(&mut bytes)?;
        anyhow::ensure!(key & 7 == 2, "unexpected wire type {}", key & 7);
        let len = usize::try_from(varint(&mut bytes)?).context("length")?;
        anyhow::ensure!(len <= bytes.len(), "truncated field");
        let (field, rest) = bytes.split_at(len);
        bytes = rest;
        if key >> 3 == 2 {
            path = String::from_utf8(field.to_vec()).context("config_path is not UTF-8")?;
        }
    }
    Ok(path)
}

/// runc's options from the `key = value` lines of a TOML file (sections
/// and unknown keys are ignored).
pub(crate) fn parse_toml_options(text: &str) -> Options {
    let mut o = Options::default();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim();
        let string = value.trim_matches('"').to_owned();
        let flag = value == "true";
        match key.trim().to_ascii_lowercase().replace('_', "").as_str() {
            "binaryname" => o.binary_name = string,
            "root" => o.root = string,
            "systemdcgroup" => o.systemd_cgroup = flag,
            "nopivotroot" => o.no_pivot_root = flag,
            "nonewkeyring" => o.no_new_keyring = flag,
            _ => {}
        }
    }
    o
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
    decode_saved(&std::fs::read(bundle.join(SAVED)).ok()?)
}

/// The runtime of a [`SAVED`] file's contents.
pub(crate) fn decode_saved(data: &[u8]) -> Option<Runtime> {
    serde_json::from_slice(data).ok()
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
    fn cri_config_path_options_are_read() {
        let dir = std::env::temp_dir().join(format!("corten-shim-toml-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("corten.toml");
        std::fs::write(
            &file,
            "# corten\n[options]\nBinaryName = \"/usr/sbin/runc\"\nSystemdCgroup = true\nRoot = \"/run/x\"\n",
        )
        .unwrap();
        // runtimeoptions.v1.Options { type_url: "t", config_path: file }
        let path = file.display().to_string();
        let mut value = vec![0x0a, 1, b't', 0x12, u8::try_from(path.len()).unwrap()];
        value.extend_from_slice(path.as_bytes());
        let any = Any {
            type_url: "runtimeoptions.v1.Options".into(),
            value,
            ..Default::default()
        };
        let o = runc_options(Some(&any)).unwrap().unwrap();
        assert_eq!(o.binary_name, "/usr/sbin/runc");
        assert_eq!(o.root, "/run/x");
        assert!(o.systemd_cgroup && !o.no_pivot_root);
        std::fs::remove_dir_all(&dir).unwrap();
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
