//! The five capability sets of `process.capabilities`, applied with the
//! `caps` crate in the order that keeps the needed privileges until the end.

use std::collections::HashSet;
use std::str::FromStr;

use caps::{CapSet, Capability, CapsHashSet};

use crate::spec::Capabilities;

/// Errors from capability handling.
#[derive(Debug, thiserror::Error)]
pub enum CapError {
    /// A name that is not a capability.
    #[error("unknown capability {0:?}")]
    Unknown(String),
    /// The kernel refused a change.
    #[error("set {set} capabilities: {source}")]
    Apply {
        /// The set.
        set: &'static str,
        /// The cause.
        source: caps::errors::CapsError,
    },
}

/// Parses `CAP_KILL`: exactly, as runc (`cap_kill` and `KILL`, in the
/// config or `exec --cap`, are unknown names, warned about and ignored).
pub fn parse(name: &str) -> Result<Capability, CapError> {
    Capability::from_str(name)
        .ok()
        .filter(|c| c.to_string() == name)
        .ok_or_else(|| CapError::Unknown(name.to_string()))
}

/// The capabilities this kernel knows (`/proc/sys/kernel/cap_last_cap`),
/// read once per process rather than once per name.
fn supported() -> &'static CapsHashSet {
    static SUPPORTED: std::sync::OnceLock<CapsHashSet> = std::sync::OnceLock::new();
    SUPPORTED.get_or_init(|| caps::runtime::procfs_all_supported(None).unwrap_or_default())
}

fn set_of(names: &Option<Vec<String>>) -> Result<CapsHashSet, CapError> {
    let mut out = HashSet::new();
    for n in names.iter().flatten() {
        // Names that are no capability, or that this kernel does not know,
        // cannot be granted; runc skips them (with the warning of
        // [`unknown`]), and so do we.
        if let Ok(cap) = parse(n) {
            if supported().contains(&cap) {
                out.insert(cap);
            }
        }
    }
    Ok(out)
}

/// The names of `c` that are no capability this kernel has, sorted and
/// unique: runc warns `ignoring unknown or unavailable capabilities: [..]`
/// and runs the container without them.
pub fn unknown(c: &Capabilities) -> Vec<String> {
    let mut out: Vec<String> = [
        &c.bounding,
        &c.effective,
        &c.inheritable,
        &c.permitted,
        &c.ambient,
    ]
    .into_iter()
    .flatten()
    .flatten()
    .filter(|n| parse(n).map_or(true, |cap| !supported().contains(&cap)))
    .cloned()
    .collect();
    out.sort();
    out.dedup();
    out
}

/// Logs runc's warning for the unknown capabilities of `c`, if any.
pub fn warn_unknown(c: Option<&Capabilities>) {
    let names = c.map(unknown).unwrap_or_default();
    if !names.is_empty() {
        crate::logging::warn(&format!(
            "ignoring unknown or unavailable capabilities: [{}]",
            names.join(" ")
        ));
    }
}

fn apply(set: CapSet, name: &'static str, value: &CapsHashSet) -> Result<(), CapError> {
    caps::set(None, set, value).map_err(|source| CapError::Apply { set: name, source })
}

/// Drops everything outside the bounding set. Needs `CAP_SETPCAP`, so it runs
/// before the user switch.
pub fn apply_bounding(c: &Capabilities) -> Result<(), CapError> {
    let keep = set_of(&c.bounding)?;
    let current = caps::read(None, CapSet::Bounding).map_err(|source| CapError::Apply {
        set: "bounding",
        source,
    })?;
    for cap in current.difference(&keep) {
        caps::drop(None, CapSet::Bounding, *cap).map_err(|source| CapError::Apply {
            set: "bounding",
            source,
        })?;
    }
    Ok(())
}

/// Sets the permitted, inheritable, effective and ambient sets; runs after
/// the user switch (with `PR_SET_KEEPCAPS` held across it).
pub fn apply_final(c: &Capabilities) -> Result<(), CapError> {
    let permitted = set_of(&c.permitted)?;
    let effective = set_of(&c.effective)?;
    let inheritable = set_of(&c.inheritable)?;
    let ambient = set_of(&c.ambient)?;
    // Effective must stay a subset of permitted while permitted shrinks.
    apply(
        CapSet::Effective,
        "effective",
        &effective.intersection(&permitted).copied().collect(),
    )?;
    apply(CapSet::Permitted, "permitted", &permitted)?;
    apply(CapSet::Inheritable, "inheritable", &inheritable)?;
    apply(CapSet::Effective, "effective", &effective)?;
    caps::clear(None, CapSet::Ambient).map_err(|source| CapError::Apply {
        set: "ambient",
        source,
    })?;
    for cap in ambient {
        // The kernel only allows ambient capabilities that are permitted and
        // inheritable; runc ignores the others, and so do we.
        if permitted.contains(&cap) && inheritable.contains(&cap) {
            caps::raise(None, CapSet::Ambient, cap).map_err(|source| CapError::Apply {
                set: "ambient",
                source,
            })?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_runcs_exact_names_only() {
        assert_eq!(parse("CAP_KILL").unwrap(), Capability::CAP_KILL);
        assert!(parse("net_admin").is_err());
        assert!(parse("cap_net_admin").is_err());
        assert!(parse("CAP_NOPE").is_err());
    }
}
