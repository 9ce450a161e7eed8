//! `corten-conformance-checker`: the static program the conformance harness
//! copies into every bundle (`/conformance/checker`).
//!
//! Modes:
//!
//! - `checker [EXPECT.json]` (default `/conformance/expect.json`): verify each
//!   assertion from inside the container, print `ok <name>` or
//!   `not ok <name>: <detail>`, then `checker: N ok, M not ok`; exit 1 if
//!   any assertion failed, 2 if the assertions could not be read.
//! - `checker hook <name> <dir> [--exit N] [--sleep SECS]`: an OCI hook that
//!   records what it received (see [`hook`]).
//! - `checker wait-signal <file>`: write `<file>.ready`, wait for a signal,
//!   write its number to `<file>` and exit 0.
//!
//! It must be linked statically: it runs on busybox root filesystems.

mod checks;
mod hook;
mod procfs;

use std::io::Write;
use std::process::ExitCode;

use corten_conformance::expect::Expectations;
use corten_conformance::{EXPECT_IN_ROOTFS, SUMMARY_PREFIX};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("hook") => hook::main(&args[2..]),
        Some("wait-signal") => hook::wait_signal(&args[2..]),
        Some(path) if !path.starts_with('-') => verify(path),
        _ => verify(EXPECT_IN_ROOTFS),
    }
}

/// Verify every assertion of the file at `path`.
fn verify(path: &str) -> ExitCode {
    let expectations: Expectations = match std::fs::read_to_string(path)
        .map_err(|e| e.to_string())
        .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
    {
        Ok(e) => e,
        Err(e) => {
            println!("not ok expectations: read {path}: {e}");
            println!("{SUMMARY_PREFIX}0 ok, 1 not ok");
            return ExitCode::from(2);
        }
    };
    let (mut passed, mut failed) = (0usize, 0usize);
    let mut out = std::io::stdout().lock();
    for a in &expectations.assertions {
        match checks::run(&a.check) {
            Ok(()) => {
                passed += 1;
                let _ = writeln!(out, "ok {}", a.name);
            }
            Err(detail) => {
                failed += 1;
                let _ = writeln!(out, "not ok {}: {}", a.name, one_line(&detail));
            }
        }
    }
    let _ = writeln!(out, "{SUMMARY_PREFIX}{passed} ok, {failed} not ok");
    let _ = out.flush();
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn one_line(s: &str) -> String {
    s.trim().replace('\n', "\\n")
}
