//! Checks run on a parsed config before anything on the system is touched.
//! The seccomp profile is compiled here, once: the program is what the
//! check produces.

use std::collections::HashSet;

use crate::process::namespaces::NsKind;
use crate::process::rlimits;
use crate::seccomp::Filter;
use crate::spec::{Spec, SpecError};

/// A validation error. Some messages quote names from the config as runc
/// does, unescaped: a control character in one (a line break) is escaped
/// here, so that every message is one line.
fn invalid(msg: impl Into<String>) -> SpecError {
    SpecError::Invalid(crate::logging::one_line(&msg.into()))
}

/// Validates everything that can be checked without touching the system;
/// the compiled `linux.seccomp`, if any.
pub fn validate(spec: &Spec) -> Result<Option<Filter>, SpecError> {
    let root = spec
        .root
        .as_ref()
        .ok_or_else(|| invalid("root must be specified"))?;
    if root.path.as_os_str().is_empty() {
        return Err(invalid("root.path is empty"));
    }
    let process = spec
        .process
        .as_ref()
        .ok_or_else(|| invalid("process property must not be empty"))?;
    validate_process(process)?;
    crate::process::attrs::Attrs::of(
        process,
        spec.linux().personality.as_ref(),
        spec.linux().memory_policy.as_ref(),
    )
    .validate()
    .map_err(|e| invalid(e.to_string()))?;
    if spec.linux().intel_rdt.is_some() {
        return Err(invalid(
            "linux.intelRdt is set but Intel RDT (resctrl) is not supported by corten on this host",
        ));
    }
    let seccomp = validate_linux(spec)?;
    for m in &spec.mounts {
        if m.destination.is_empty() {
            return Err(invalid("mount destination is empty"));
        }
        if !m.destination.starts_with('/') {
            // runc's two warnings; the mount is made relative to the root.
            crate::logging::warn(&format!(
                "mount destination {} is not absolute. Support for non-absolute mount destinations will be removed in a future release.",
                m.destination
            ));
            crate::logging::warn_with_error(
                "invalid configuration",
                &format!(
                    "invalid mount {}: mount destination not absolute",
                    m.destination
                ),
            );
        }
    }
    if let Some(h) = &spec.hooks {
        for hook in [
            &h.prestart,
            &h.create_runtime,
            &h.create_container,
            &h.start_container,
            &h.poststart,
            &h.poststop,
        ]
        .into_iter()
        .flatten()
        {
            if !hook.path.starts_with('/') {
                return Err(invalid(format!(
                    "hook path {:?} is not absolute",
                    hook.path
                )));
            }
            if hook.timeout.is_some_and(|t| t <= 0) {
                return Err(invalid(format!(
                    "hook {:?}: timeout must be positive",
                    hook.path
                )));
            }
        }
    }
    Ok(seccomp)
}

/// Validates a process (the container's, or one given to `exec`).
pub fn validate_process(process: &crate::spec::Process) -> Result<(), SpecError> {
    // runc's checks, in its order and words.
    if process.cwd.is_empty() {
        return Err(invalid("Cwd property must not be empty"));
    }
    if !process.cwd.starts_with('/') {
        return Err(invalid("Cwd must be an absolute path"));
    }
    if process.args.is_empty() {
        return Err(invalid("args must not be empty"));
    }
    // runc's checks and words (its init refuses these; no container
    // process can be given such an environment).
    for e in &process.env {
        let q = crate::gotext::quote(e);
        match e.split_once('=') {
            None => return Err(invalid(format!("invalid environment variable: {q}"))),
            Some(("", _)) => {
                return Err(invalid(format!(
                    "environment variable name can't be empty: {q}"
                )))
            }
            Some((k, _)) if k.contains('\0') => {
                return Err(invalid(format!(
                    "environment variable name can't contain null(\\x00): {q}"
                )))
            }
            _ => {}
        }
    }
    for r in &process.rlimits {
        rlimits::resource(&r.typ).map_err(|e| invalid(e.to_string()))?;
        if r.soft > r.hard {
            return Err(invalid(format!(
                "rlimit {}: soft limit {} is above hard limit {}",
                r.typ, r.soft, r.hard
            )));
        }
    }
    if process
        .selinux_label
        .as_deref()
        .is_some_and(|l| !l.is_empty())
        && !crate::process::attrs::selinux_enabled()
    {
        return Err(invalid(
            "selinux label is set but SELinux is not enabled on this host",
        ));
    }
    if process
        .apparmor_profile
        .as_deref()
        .is_some_and(|p| !p.is_empty())
        && !crate::process::attrs::apparmor_enabled()
    {
        return Err(invalid(
            "apparmor profile is set but AppArmor is not enabled on this host",
        ));
    }
    Ok(())
}

fn validate_linux(spec: &Spec) -> Result<Option<Filter>, SpecError> {
    let linux = spec.linux();
    let mut seen = HashSet::new();
    for ns in &linux.namespaces {
        // runc prints the namespace as Go prints its struct: {"type" "path"}.
        let shown = format!(
            "{{{:?} {:?}}}",
            ns.typ,
            ns.path.as_deref().unwrap_or_default()
        );
        let kind = NsKind::from_spec(&ns.typ)
            .ok_or_else(|| invalid(format!("namespace {shown} does not exist")))?;
        if !seen.insert(kind) {
            return Err(invalid(format!(
                "malformed spec file: duplicated ns {shown}"
            )));
        }
        if let Some(p) = &ns.path {
            if !p.starts_with('/') {
                return Err(invalid(format!("namespace path {p:?} is not absolute")));
            }
        }
    }
    let new_ns = |k: NsKind| {
        linux
            .namespaces
            .iter()
            .any(|n| NsKind::from_spec(&n.typ) == Some(k))
    };
    let userns_new = linux
        .namespaces
        .iter()
        .any(|n| n.typ == "user" && n.path.is_none());
    if userns_new && linux.uid_mappings.is_empty() {
        return Err(invalid(
            "User namespaces enabled, but no uid mappings found.",
        ));
    }
    if userns_new && linux.gid_mappings.is_empty() {
        return Err(invalid(
            "User namespaces enabled, but no gid mappings found.",
        ));
    }
    if userns_new {
        crate::process::idmap::check("uid", &linux.uid_mappings).map_err(invalid)?;
        crate::process::idmap::check("gid", &linux.gid_mappings).map_err(invalid)?;
    }
    for m in &spec.mounts {
        validate_idmapped_mount(m, userns_new)?;
    }
    // Mappings without a user namespace are ignored, as runc ignores them.
    if !new_ns(NsKind::Mount)
        && (!linux.masked_paths.is_empty() || !linux.readonly_paths.is_empty())
    {
        return Err(invalid(
            "unable to restrict sys entries without a private MNT namespace",
        ));
    }
    if (spec.hostname.as_deref().is_some_and(|h| !h.is_empty())
        || spec.domainname.as_deref().is_some_and(|h| !h.is_empty()))
        && !new_ns(NsKind::Uts)
    {
        return Err(invalid(
            "unable to set hostname without a private UTS namespace",
        ));
    }
    if !linux.time_offsets.is_empty() && !new_ns(NsKind::Time) {
        return Err(invalid(
            "time offsets are set but no time namespace is requested",
        ));
    }
    for key in linux.time_offsets.keys() {
        if key != "monotonic" && key != "boottime" {
            return Err(invalid(format!(
                "time offset clock {key:?} is not supported"
            )));
        }
    }
    for key in linux.sysctl.keys() {
        validate_sysctl(key, &new_ns)?;
    }
    if let Some(p) = &linux.rootfs_propagation {
        crate::rootfs::propagation_flag(p).map_err(|e| invalid(e.to_string()))?;
    }
    for d in &linux.devices {
        if !matches!(d.typ.as_str(), "c" | "b" | "u" | "p") {
            return Err(invalid(format!("invalid device type {:?}", d.typ)));
        }
        if d.typ != "p" && (d.major < 0 || d.minor < 0) {
            // -1 is the wildcard of device rules, no device number.
            return Err(invalid(format!(
                "device {}: cannot mkdev() device with wildcards",
                d.path
            )));
        }
        if !d.path.starts_with("/dev/") || d.path.split('/').any(|c| c == "..") {
            return Err(invalid(format!(
                "device path {:?} is not under /dev",
                d.path
            )));
        }
    }
    linux
        .seccomp
        .as_ref()
        .map(|s| crate::seccomp::compile(s).map_err(|e| invalid(format!("linux.seccomp: {e}"))))
        .transpose()
}

/// runc's rules for `linux.sysctl`, with its messages: IPC keys need an
/// IPC namespace, `net.*` a network namespace of the container's own,
/// `kernel.domainname` a UTS namespace (`kernel.hostname` conflicts with
/// `hostname`); nothing else is namespaced.
fn validate_sysctl(key: &str, new_ns: &dyn Fn(NsKind) -> bool) -> Result<(), SpecError> {
    const IPC: [&str; 8] = [
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    if IPC.contains(&key) || key.starts_with("fs.mqueue.") {
        if new_ns(NsKind::Ipc) {
            return Ok(());
        }
        return Err(invalid(format!(
            "sysctl {key:?} is not allowed in the hosts ipc namespace"
        )));
    }
    if key.starts_with("net.") {
        if new_ns(NsKind::Net) {
            return Ok(());
        }
        return Err(invalid(format!(
            "sysctl {key:?} not allowed in host network namespace"
        )));
    }
    if new_ns(NsKind::Uts) {
        match key {
            "kernel.domainname" => return Ok(()),
            "kernel.hostname" => {
                return Err(invalid(format!(
                    "sysctl {key:?} is not allowed as it conflicts with the OCI \"hostname\" field"
                )))
            }
            _ => {}
        }
    }
    Err(invalid(format!(
        "sysctl {key:?} is not in a separate kernel namespace"
    )))
}

/// An idmapped mount (runtime-spec 1.1: `uidMappings`/`gidMappings` on the
/// mount, `idmap`/`ridmap` among its options): a bind mount, with both
/// maps or neither (then the container's, which needs its own user
/// namespace), each map one the kernel takes.
fn validate_idmapped_mount(m: &crate::spec::Mount, userns_new: bool) -> Result<(), SpecError> {
    if !crate::rootfs::mounts::is_idmapped(m) {
        return Ok(());
    }
    let what = format!("idmapped mount {}", m.destination);
    let bind = m.typ.as_deref() == Some("bind")
        || crate::rootfs::options::parse(&m.options).is_ok_and(|o| o.is_bind());
    if !bind {
        return Err(invalid(format!(
            "{what}: only bind mounts can be idmapped (type {:?})",
            m.typ.as_deref().unwrap_or("")
        )));
    }
    if m.uid_mappings.is_empty() != m.gid_mappings.is_empty() {
        return Err(invalid(format!(
            "{what}: uidMappings and gidMappings must be given together"
        )));
    }
    if m.uid_mappings.is_empty() && !userns_new {
        return Err(invalid(format!(
            "{what}: no uidMappings/gidMappings of its own, and no new user namespace whose mappings it could use"
        )));
    }
    for (kind, maps) in [("uid", &m.uid_mappings), ("gid", &m.gid_mappings)] {
        crate::process::idmap::check(kind, maps).map_err(|e| invalid(format!("{what}: {e}")))?;
    }
    Ok(())
}

/// runc's checks of a config run by a user that is not root (`euid != 0`):
/// a user namespace (created; a joined one has its maps already) with at
/// least one uid and one gid mapping, and `uid=`/`gid=` mount options only
/// of mapped ids. runc's messages.
pub fn rootless_euid(spec: &Spec) -> Result<(), SpecError> {
    let linux = spec.linux();
    if !linux.namespaces.iter().any(|n| n.typ == "user") {
        return Err(invalid("rootless container requires user namespaces"));
    }
    let joins = linux
        .namespaces
        .iter()
        .any(|n| n.typ == "user" && n.path.is_some());
    if !joins && linux.uid_mappings.is_empty() {
        return Err(invalid(
            "rootless containers requires at least one UID mapping",
        ));
    }
    if !joins && linux.gid_mappings.is_empty() {
        return Err(invalid(
            "rootless containers requires at least one GID mapping",
        ));
    }
    let mapped = |maps: &[crate::spec::IdMapping], id: u32| {
        maps.iter().any(|m| {
            id >= m.container_id && u64::from(id) < u64::from(m.container_id) + u64::from(m.size)
        })
    };
    for m in &spec.mounts {
        for opt in &m.options {
            for (key, maps) in [("uid=", &linux.uid_mappings), ("gid=", &linux.gid_mappings)] {
                let Some(v) = opt.strip_prefix(key) else {
                    continue;
                };
                // A value that is no number is the filesystem's to refuse.
                if let Ok(id) = v.parse::<u32>() {
                    if !joins && !mapped(maps, id) {
                        return Err(invalid(format!(
                            "cannot specify {key} mount options for unmapped {} in rootless containers",
                            &key[..3]
                        )));
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> serde_json::Value {
        let mut v = crate::spec::default_spec(false);
        v["process"]["terminal"] = false.into();
        v
    }

    fn check(v: serde_json::Value) -> Result<(), SpecError> {
        let spec: Spec = serde_json::from_value(v).map_err(|e| invalid(e.to_string()))?;
        validate(&spec).map(drop)
    }

    #[test]
    fn accepts_default() {
        check(base()).unwrap();
    }

    #[test]
    fn rejects_unknown_namespace() {
        let mut v = base();
        v["linux"]["namespaces"][0]["type"] = "bogus".into();
        assert!(check(v).unwrap_err().to_string().contains("bogus"));
    }

    #[test]
    fn rejects_user_ns_without_mappings() {
        let mut v = base();
        v["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"type": "user"}));
        assert!(check(v).is_err());
    }

    #[test]
    fn sysctl_needs_namespace() {
        let mut v = base();
        v["linux"]["sysctl"] = serde_json::json!({"kernel.panic": "1"});
        assert!(check(v).is_err());
        let mut v = base();
        v["linux"]["sysctl"] = serde_json::json!({"net.ipv4.ip_forward": "1"});
        check(v).unwrap();
    }

    #[test]
    fn rejects_relative_cwd_and_empty_args() {
        let mut v = base();
        v["process"]["cwd"] = "tmp".into();
        assert!(check(v).is_err());
        let mut v = base();
        v["process"]["args"] = serde_json::json!([]);
        assert!(check(v).is_err());
    }

    #[test]
    fn messages_are_one_line() {
        // Found by the fuzz target (spec::fuzz): runc's message quotes the
        // name as it is.
        let mut v = base();
        v["process"]["rlimits"][0]["type"] = "RLIMIT_\nX".into();
        let e = check(v).unwrap_err().to_string();
        assert_eq!(e, "wrong rlimit value: RLIMIT_\\nX");
    }

    #[test]
    fn rejects_bad_rlimit_ignores_unknown_capability() {
        let mut v = base();
        v["process"]["rlimits"][0]["type"] = "RLIMIT_BOGUS".into();
        assert!(check(v).is_err());
        // runc warns and runs without the capability.
        let mut v = base();
        v["process"]["capabilities"]["bounding"][0] = "CAP_BOGUS".into();
        check(v).unwrap();
    }
}
