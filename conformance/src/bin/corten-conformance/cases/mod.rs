//! The cases, one module per area of the spec (and `runc`, `runc_more`:
//! runc 1.1.5's command line contract and behaviour beyond the spec;
//! `bad_input`: bad input refused as runc refuses it). Each case cites the section
//! it checks (`runtime.md#create`, `config-linux.md#namespaces`, …) and,
//! when runc 1.1 is known to diverge from the spec there, why.

use anyhow::Result;

use crate::ctx::Ctx;

mod bad_input;
mod cgroups;
mod devices;
mod hooks;
mod lifecycle;
mod mounts;
mod namespaces;
mod operations;
mod process;
mod runc;
mod runc_more;
mod seccomp;
mod terminal;

/// One conformance case.
#[derive(Debug, Clone)]
pub struct Case {
    /// Unique name, `<area>.<what>`.
    pub name: &'static str,
    /// The spec section it checks.
    pub spec: &'static str,
    /// Why runc 1.1 fails this case although the case follows the spec.
    pub runc_divergence: Option<&'static str>,
    /// The case itself.
    pub run: fn(&mut Ctx) -> Result<()>,
}

/// A case that cannot run on this host (a missing kernel feature, …).
#[derive(Debug)]
pub struct Skip(pub String);

impl std::fmt::Display for Skip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Skip {}

/// Return from a case as skipped, with a reason.
#[macro_export]
macro_rules! skip {
    ($($t:tt)*) => {
        return Err(anyhow::Error::new($crate::cases::Skip(format!($($t)*))))
    };
}

/// A case without a known runc divergence.
pub const fn case(name: &'static str, spec: &'static str, run: fn(&mut Ctx) -> Result<()>) -> Case {
    Case {
        name,
        spec,
        runc_divergence: None,
        run,
    }
}

impl Case {
    /// Record why runc 1.1 diverges from the spec in this case.
    pub const fn runc(mut self, reason: &'static str) -> Case {
        self.runc_divergence = Some(reason);
        self
    }
}

/// Every case, in the order they run.
pub fn all() -> Vec<Case> {
    let mut all = Vec::new();
    all.extend(lifecycle::cases());
    all.extend(operations::cases());
    all.extend(hooks::cases());
    all.extend(process::cases());
    all.extend(terminal::cases());
    all.extend(namespaces::cases());
    all.extend(mounts::cases());
    all.extend(devices::cases());
    all.extend(cgroups::cases());
    all.extend(seccomp::cases());
    all.extend(runc::cases());
    all.extend(runc_more::cases());
    all.extend(bad_input::cases());
    all
}
