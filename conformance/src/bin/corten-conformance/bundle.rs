//! OCI bundles: [`corten_testkit::Bundle`]s from the kit's default
//! configuration with the checker as the process, plus the checker's
//! assertions.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use anyhow::{Context, Result};
use corten_conformance::expect::{Assertion, Check, Expectations};
use corten_conformance::{CHECKER_IN_ROOTFS, EXPECT_IN_ROOTFS};
use corten_testkit::rootfs::link_or_copy;
pub use corten_testkit::rootfs::make_dir;
use corten_testkit::ConfigFrom;
use serde_json::json;

use crate::host::Host;

/// `PATH` of the container process (the checker's directory is on it).
pub const CONTAINER_PATH: &str = "PATH=/usr/sbin:/usr/bin:/sbin:/bin:/conformance";

/// What the kit's editing methods (`set`, `args`, `mount`, …) return.
pub type Edited = corten_testkit::Bundle;

/// A bundle directory being prepared (dereferences to the kit's bundle,
/// which edits the configuration).
#[derive(Debug)]
pub struct Bundle {
    kit: corten_testkit::Bundle,
    /// The checker's assertions, written to `rootfs/conformance/expect.json`.
    pub expect: Vec<Assertion>,
}

impl Bundle {
    /// A bundle in `dir` (created) with the base configuration: the kit's
    /// default, running the checker on the assertions.
    pub fn new(host: &Host, dir: PathBuf, cgroups_path: String) -> Result<Bundle> {
        let mut kit =
            corten_testkit::Bundle::create(dir, ConfigFrom::Default, cgroups_path, &host.busybox)?;
        let rootfs = kit.rootfs();
        for extra in ["conformance", "out"] {
            make_dir(&rootfs.join(extra), 0o755)?;
        }
        link_or_copy(
            &host.checker,
            &rootfs.join(CHECKER_IN_ROOTFS.trim_start_matches('/')),
        )?;
        make_dir(&kit.path().join("out"), 0o777)?;
        kit.args(&[CHECKER_IN_ROOTFS, EXPECT_IN_ROOTFS])
            .set("/process/env/0", json!(CONTAINER_PATH));
        Ok(Bundle {
            kit,
            expect: Vec::new(),
        })
    }

    /// `<bundle>/out`, bind-mounted read-write at `/out` by [`Bundle::with_out`].
    pub fn out(&self) -> PathBuf {
        self.path().join("out")
    }

    /// Bind-mount `<bundle>/out` at `/out` (read-write) so the container
    /// can leave files for the harness.
    pub fn with_out(&mut self) -> &mut Self {
        let source = self.out().to_string_lossy().into_owned();
        self.mount("/out", "bind", &source, &["rbind", "rw"]);
        self
    }

    /// Add an assertion for the checker.
    pub fn expect(&mut self, name: &str, check: Check) -> &mut Self {
        self.expect.push(Assertion::new(name, check));
        self
    }

    /// Write `config.json` and the assertions.
    pub fn save(&self) -> Result<()> {
        self.kit.write_config()?;
        self.save_expectations()
    }

    /// Write only the assertions (`rootfs/conformance/expect.json`).
    pub fn save_expectations(&self) -> Result<()> {
        let e = Expectations {
            assertions: self.expect.clone(),
        };
        let path = self.rootfs().join(EXPECT_IN_ROOTFS.trim_start_matches('/'));
        fs::write(&path, serde_json::to_string_pretty(&e)?)
            .with_context(|| format!("write {}", path.display()))?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644))
            .with_context(|| format!("chmod {}", path.display()))
    }
}

corten_testkit::deref_to_bundle!(Bundle, kit);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_config_runs_the_checker() {
        let mut c = corten_testkit::default_config();
        corten_testkit::config::set(&mut c, "/process/args", json!([CHECKER_IN_ROOTFS]));
        corten_testkit::config::set(&mut c, "/process/env/0", json!(CONTAINER_PATH));
        assert_eq!(c["process"]["args"][0], CHECKER_IN_ROOTFS);
        assert_eq!(c["process"]["env"], json!([CONTAINER_PATH, "TERM=xterm"]));
    }
}
