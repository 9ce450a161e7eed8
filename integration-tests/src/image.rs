//! OCI images made here from a directory, for containerd to import (`ctr
//! images import`): the containerd and CRI tests never pull.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Writes an OCI image layout tarball of `rootfs` (one uncompressed layer)
/// named `name` (`docker.io/library/x:tag`), with `config` as the image
/// config's `config` object (`Env`, `Cmd`, `Entrypoint`, …), in `work`;
/// returns the tarball's path.
pub fn oci_image_tar(rootfs: &Path, work: &Path, name: &str, config: serde_json::Value) -> PathBuf {
    let blobs = work.join("oci/blobs/sha256");
    fs::create_dir_all(&blobs).expect("mkdir blobs");
    let layer = work.join("layer.tar");
    let out = Command::new("tar")
        .arg("-C")
        .arg(rootfs)
        .arg("-cf")
        .arg(&layer)
        .arg(".")
        .output()
        .expect("run tar");
    assert!(out.status.success(), "tar the rootfs: {out:?}");
    let (layer_digest, layer_size) = add_blob(&blobs, &fs::read(&layer).expect("read layer"));
    let _ = fs::remove_file(&layer);
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let image_config = serde_json::json!({
        "architecture": arch,
        "os": "linux",
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
    });
    let (config_digest, config_size) = add_blob(&blobs, image_config.to_string().as_bytes());
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest, "size": config_size},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": layer_digest, "size": layer_size}],
    });
    let (manifest_digest, manifest_size) = add_blob(&blobs, manifest.to_string().as_bytes());
    let tag = name.rsplit_once(':').map_or("latest", |(_, t)| t);
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest, "size": manifest_size,
            "annotations": {"io.containerd.image.name": name,
                            "org.opencontainers.image.ref.name": tag},
            "platform": {"architecture": arch, "os": "linux"},
        }],
    });
    fs::write(work.join("oci/index.json"), index.to_string()).expect("index.json");
    fs::write(
        work.join("oci/oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .expect("oci-layout");
    let tarball = work.join("image.tar");
    let out = Command::new("tar")
        .arg("-C")
        .arg(work.join("oci"))
        .arg("-cf")
        .arg(&tarball)
        .args(["oci-layout", "index.json", "blobs"])
        .output()
        .expect("run tar");
    assert!(out.status.success(), "tar the image: {out:?}");
    let _ = fs::remove_dir_all(work.join("oci"));
    tarball
}

/// Stores `data` as a blob; returns its digest and size.
fn add_blob(blobs: &Path, data: &[u8]) -> (String, usize) {
    let tmp = blobs.join("incoming");
    fs::write(&tmp, data).expect("write blob");
    let out = Command::new("sha256sum")
        .arg(&tmp)
        .output()
        .expect("run sha256sum");
    let hex = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .expect("sha256sum output")
        .to_owned();
    fs::rename(&tmp, blobs.join(&hex)).expect("rename blob");
    (format!("sha256:{hex}"), data.len())
}
