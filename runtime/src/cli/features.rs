//! `corten features`: what this build supports, in runc's JSON format
//! (runtime-spec `features.md`). Only what works is listed.

use serde_json::json;

use crate::process::namespaces::NsKind;
use crate::rootfs::options;

/// `features`
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `features`.
pub fn run(_a: Args) -> anyhow::Result<()> {
    let mut caps: Vec<String> = caps::all().iter().map(ToString::to_string).collect();
    caps.sort();
    let namespaces: Vec<&str> = NsKind::ALL.iter().map(|k| k.spec_name()).collect();
    let f = json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": crate::spec::OCI_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": options::KNOWN,
        "linux": {
            "namespaces": namespaces,
            "capabilities": caps,
            "cgroup": { "v1": true, "v2": true, "systemd": false, "systemdUser": false, "rdma": false },
            "seccomp": { "enabled": false },
            "apparmor": { "enabled": crate::process::attrs::apparmor_enabled() },
            "selinux": { "enabled": crate::process::attrs::selinux_enabled() },
            "intelRdt": { "enabled": false },
            "mountExtensions": { "idmap": { "enabled": false } }
        },
        "annotations": {
            "io.github.corten.version": env!("CARGO_PKG_VERSION"),
            "io.github.corten.commit": env!("CORTEN_COMMIT")
        }
    });
    println!("{}", serde_json::to_string_pretty(&f)?);
    Ok(())
}
