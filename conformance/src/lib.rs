//! An OCI runtime-spec conformance suite, written from the specification
//! (runtime-spec v1.2: `runtime.md`, `config.md`, `config-linux.md`).
//!
//! Two binaries share this library:
//!
//! - `corten-conformance --runtime PATH [--filter SUBSTRING]`, the harness:
//!   it builds busybox bundles, drives the runtime's runc-compatible command
//!   line through the lifecycle (create/start/state/kill/delete, hooks, pid
//!   files, errors) and, for configuration cases, runs the checker inside the
//!   container. It prints one `PASS|FAIL|SKIP <case>: reason` line per case
//!   and `conformance <runtime>: N passed, M failed, K skipped`.
//! - `corten-conformance-checker`, a statically linked program copied into
//!   every bundle's rootfs as `/conformance/checker`. Given the assertions
//!   the harness wrote to `/conformance/expect.json`, it verifies from inside
//!   the container what the spec requires (namespaces, mounts, devices,
//!   capabilities, rlimits, ids, sysctls, seccomp, cgroup limits, …) and
//!   prints `ok <name>` or `not ok <name>: <detail>` per assertion. The same
//!   binary doubles as the hook program (`checker hook …`) and as a few
//!   small helpers (`checker wait-signal …`).
//!
//! This library holds only what both sides must agree on: the assertion
//! format ([`expect`]).
//!
//! ```
//! use corten_conformance::expect::{Assertion, Check, Expectations};
//! let e = Expectations {
//!     assertions: vec![Assertion::new("cwd", Check::Cwd { path: "/tmp".into() })],
//! };
//! let text = serde_json::to_string(&e).unwrap();
//! let back: Expectations = serde_json::from_str(&text).unwrap();
//! assert_eq!(back.assertions.len(), 1);
//! ```

pub mod expect;

/// Where the harness puts the checker inside every rootfs.
pub const CHECKER_IN_ROOTFS: &str = "/conformance/checker";
/// Where the harness puts the assertions inside every rootfs.
pub const EXPECT_IN_ROOTFS: &str = "/conformance/expect.json";
/// The last line the checker prints: `checker: <ok> ok, <failed> not ok`.
pub const SUMMARY_PREFIX: &str = "checker: ";
