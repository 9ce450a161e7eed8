//! Helpers shared by the unit tests (compiled only for `cargo test`).
//!
//! The arm64 unit tests run on an amd64 host under `qemu-aarch64-static`
//! (`make test-arm64-unit`), a user-mode emulator: it cannot execute a
//! spawned aarch64 binary (no binfmt_misc handler), refuses seccomp filters,
//! and lacks some newer system calls (`openat2`, `bpf`). A test that needs
//! one of those calls [`skip_under_emulation`] instead of failing; the same
//! tests run for real in the arm64 VM (`make test-arm64`).

use std::io::Write;

/// The emulator the tests run under, from `CORTEN_TEST_EMULATOR` (the
/// Makefile's arm64 test runner sets it to `qemu-user`); `None` on real
/// hardware.
pub(crate) fn emulator() -> Option<String> {
    std::env::var("CORTEN_TEST_EMULATOR")
        .ok()
        .filter(|v| !v.is_empty())
}

/// When running under an emulator: prints `SKIP <test> under <emulator>:
/// <reason>`, appends that line to the file named by `CORTEN_TEST_SKIP_LOG`
/// (counted and listed by `make test-arm64-unit`) and returns `true`; the
/// caller then returns at once. On real hardware returns `false`, so the
/// test runs and must pass.
pub(crate) fn skip_under_emulation(test: &str, reason: &str) -> bool {
    let Some(emulator) = emulator() else {
        return false;
    };
    skip(test, &format!("under {emulator}: {reason}"));
    true
}

/// Prints `SKIP <test> <reason>` and appends it to the file named by
/// `CORTEN_TEST_SKIP_LOG` (counted by the runners that set it); the
/// caller then returns at once.
pub(crate) fn skip(test: &str, reason: &str) {
    let line = format!("SKIP {test} {reason}");
    eprintln!("{line}");
    if let Some(path) = std::env::var_os("CORTEN_TEST_SKIP_LOG") {
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            // One write: tests running in parallel append whole lines.
            .and_then(|mut f| f.write_all(format!("{line}\n").as_bytes()));
        if let Err(e) = written {
            panic!("record the skip in {}: {e}", path.to_string_lossy());
        }
    }
}
