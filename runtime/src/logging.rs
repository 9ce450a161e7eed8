//! runc-compatible logging: `--log FILE`, `--log-format text|json`, `--debug`.
//!
//! Without `--log`, messages go to stderr in the chosen format. With `--log`,
//! the file is opened (created, appended to) when corten starts, as runc
//! opens it, and gets every record; a fatal error is also printed to stderr
//! as a bare line, exactly as runc does (containerd reads the last `error`
//! line of the JSON log file).
//!
//! `--debug` adds one `debug` record per step of the container's set-up
//! ([`step`]), with the microseconds the step took, from corten and from the
//! container's init before it executes the user's program. The init writes
//! to the same destination: the log file, or a close-on-exec copy of the
//! caller's stderr taken at start-up (the init's own stderr may by then be
//! the container's terminal). With `--debug` off, [`step`] costs one load.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// Log format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// logrus text: `time="…" level=error msg="…"`.
    #[default]
    Text,
    /// One JSON object a line.
    Json,
}

#[derive(Debug)]
struct Config {
    /// Where records go when not to stderr: the `--log` file, opened at
    /// start-up, or with `--debug` and no `--log` a close-on-exec copy of
    /// stderr.
    out: Option<File>,
    /// `out` is the `--log` file.
    to_file: bool,
    format: Format,
    debug: bool,
}

static CONFIG: OnceLock<Config> = OnceLock::new();

/// Monotonic nanoseconds of the last [`step`] (0: none yet).
static LAST_STEP: AtomicU64 = AtomicU64::new(0);

/// Sets up logging once, from the global flags: opens the `--log` file
/// (created if missing, appended to, mode 0644), as runc does before any
/// command runs. Fails when the file cannot be opened.
pub fn init(file: Option<PathBuf>, format: Format, debug: bool) -> std::io::Result<()> {
    let file = match file {
        Some(path) => Some(
            OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o644)
                .open(&path)
                .map_err(|e| {
                    std::io::Error::new(e.kind(), format!("open {}: {e}", path.display()))
                })?,
        ),
        None => None,
    };
    let to_file = file.is_some();
    let out = if debug && !to_file {
        // F_DUPFD_CLOEXEC: the copy never reaches the container's program.
        // (std's try_clone_to_owned is F_DUPFD_CLOEXEC from 3.)
        std::os::fd::AsFd::as_fd(&std::io::stderr())
            .try_clone_to_owned()
            .ok()
            .map(File::from)
    } else {
        file
    };
    let _ = CONFIG.set(Config {
        out,
        to_file,
        format,
        debug,
    });
    if debug {
        LAST_STEP.store(now_ns(), Ordering::Relaxed);
    }
    Ok(())
}

fn now_ns() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).map_or(1, |t| {
        u64::try_from(t.tv_sec()).unwrap_or(0) * 1_000_000_000
            + u64::try_from(t.tv_nsec()).unwrap_or(0)
    })
}

/// Whether `--debug` is on.
pub fn debug_enabled() -> bool {
    CONFIG.get().is_some_and(|c| c.debug)
}

/// Logs one step of the set-up with the time since the previous step (or
/// since start-up) when `--debug` is on: `msg="<what> (<n>µs)"`.
pub fn step(what: impl FnOnce() -> String) {
    if !debug_enabled() {
        return;
    }
    let now = now_ns();
    let before = LAST_STEP.swap(now, Ordering::Relaxed);
    let us = now.saturating_sub(before) / 1000;
    write("debug", &format!("{} ({us}µs)", what()));
}

/// RFC 3339 UTC time with nanoseconds, e.g. `2024-01-02T03:04:05.123456789Z`.
pub fn rfc3339_now(nanos: bool) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = i64::try_from(now.as_secs()).unwrap_or(0);
    let (y, mo, d, h, mi, s) = civil(secs);
    if nanos {
        format!(
            "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{:09}Z",
            now.subsec_nanos()
        )
    } else {
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
    }
}

/// Splits Unix seconds into UTC calendar fields (Howard Hinnant's algorithm).
fn civil(secs: i64) -> (i64, i64, i64, i64, i64, i64) {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d, rem / 3600, rem % 3600 / 60, rem % 60)
}

fn line(format: Format, level: &str, msg: &str) -> String {
    let time = rfc3339_now(false);
    match format {
        Format::Json => {
            let v = serde_json::json!({ "level": level, "msg": msg, "time": time });
            format!("{v}\n")
        }
        Format::Text => format!(
            "time={:?} level={level} msg={}\n",
            time,
            serde_json::Value::String(msg.to_string())
        ),
    }
}

fn write(level: &str, msg: &str) {
    let format = CONFIG.get().map_or(Format::Text, |c| c.format);
    emit(&line(format, level, msg));
}

/// `text` with its control characters (line breaks above all) escaped as
/// in Rust string literals (`\n`), the rest as it is: for names taken from
/// the user that an error message quotes as runc quotes them, unescaped,
/// so that the message stays one line.
pub(crate) fn one_line(text: &str) -> String {
    if !text.contains(char::is_control) {
        return text.to_string();
    }
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_debug().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[cfg(test)]
thread_local! {
    static QUIET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Drops the log records of the calling thread: for tests whose inputs
/// make warnings by the thousand (the fuzz targets).
#[cfg(test)]
pub(crate) fn quiet() {
    QUIET.with(|q| q.set(true));
}

/// Writes one formatted record to the log's destination.
fn emit(text: &str) {
    #[cfg(test)]
    if QUIET.with(std::cell::Cell::get) {
        return;
    }
    let Some(cfg) = CONFIG.get() else {
        let _ = std::io::stderr().write_all(text.as_bytes());
        return;
    };
    match &cfg.out {
        Some(f) => {
            let _ = (&*f).write_all(text.as_bytes());
        }
        None => {
            let _ = std::io::stderr().write_all(text.as_bytes());
        }
    }
}

/// Logs a fatal error: to the log, and to stderr as a bare line when the log is a file.
pub fn error(msg: &str) {
    let msg = msg.replace('\n', " ");
    write("error", &msg);
    if CONFIG.get().is_some_and(|c| c.to_file) {
        let _ = writeln!(std::io::stderr(), "{msg}");
    }
}

/// Logs a warning.
pub fn warn(msg: &str) {
    write("warning", msg);
}

/// Logs a warning with logrus's `error` field, as runc's
/// `logrus.WithError(err).Warn(msg)`: text `msg="…" error="…"`, JSON keys
/// in logrus's (alphabetical) order.
pub fn warn_with_error(msg: &str, error: &str) {
    let time = rfc3339_now(false);
    let format = CONFIG.get().map_or(Format::Text, |c| c.format);
    let text = match format {
        Format::Json => format!(
            "{}\n",
            serde_json::json!({ "error": error, "level": "warning", "msg": msg, "time": time })
        ),
        Format::Text => format!(
            "time={time:?} level=warning msg={} error={}\n",
            serde_json::Value::from(msg),
            serde_json::Value::from(error)
        ),
    };
    emit(&text);
}

/// Logs a debug message when `--debug` is on.
pub fn debug(msg: &str) {
    if CONFIG.get().is_some_and(|c| c.debug) {
        write("debug", msg);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil(0), (1970, 1, 1, 0, 0, 0));
        assert_eq!(civil(951_782_400), (2000, 2, 29, 0, 0, 0));
        assert_eq!(civil(1_700_000_000), (2023, 11, 14, 22, 13, 20));
    }

    #[test]
    fn json_line_shape() {
        let l = line(Format::Json, "error", "boom \"x\"");
        let v: serde_json::Value = serde_json::from_str(&l).unwrap();
        assert_eq!(v["level"], "error");
        assert_eq!(v["msg"], "boom \"x\"");
        assert!(v["time"].as_str().unwrap().ends_with('Z'));
        assert!(line(Format::Text, "error", "m").starts_with("time=\""));
    }
}
