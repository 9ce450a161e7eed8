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
    let mut namespaces: Vec<&str> = NsKind::ALL.iter().map(|k| k.spec_name()).collect();
    namespaces.sort_unstable();
    let f = json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": crate::spec::OCI_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": options::KNOWN,
        "linux": {
            "namespaces": namespaces,
            "capabilities": caps,
            "cgroup": { "v1": true, "v2": true, "systemd": true, "systemdUser": true, "rdma": false },
            "seccomp": {
                "enabled": true,
                "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
                    "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"],
                "operators": ["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
                    "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"],
                "archs": ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM", "SCMP_ARCH_X32", "SCMP_ARCH_X86", "SCMP_ARCH_X86_64"],
                "knownFlags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
                    "SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
                "supportedFlags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
                    "SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]
            },
            "apparmor": { "enabled": crate::process::attrs::apparmor_enabled() },
            "selinux": { "enabled": crate::process::attrs::selinux_enabled() },
            "intelRdt": { "enabled": false },
            "mountExtensions": { "idmap": { "enabled": true } }
        },
        "annotations": {
            "io.github.corten.commit": env!("CORTEN_COMMIT"),
            "io.github.corten.version": env!("CARGO_PKG_VERSION")
        }
    });
    // runc indents with four spaces.
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    serde::Serialize::serialize(
        &f,
        &mut serde_json::Serializer::with_formatter(&mut out, fmt),
    )?;
    println!("{}", String::from_utf8_lossy(&out));
    Ok(())
}
