//! The checker as an OCI hook, and as a signal receiver.
//!
//! `checker hook <name> <dir> [--exit N] [--sleep SECS]` appends `<name>` to
//! `<dir>/order` and records, for the harness to compare with the spec:
//!
//! | file | content |
//! |---|---|
//! | `<dir>/<name>.stdin` | what the runtime wrote on stdin (the state) |
//! | `<dir>/<name>.argv` | argv, one per line |
//! | `<dir>/<name>.env` | the environment, one `K=V` per line |
//! | `<dir>/<name>.ns` | `<ns> <inode>` for `mnt pid net uts ipc` |
//! | `<dir>/<name>.cmdline` | argv of the state's `pid` (space-separated), when readable |
//!
//! then sleeps `SECS` and exits with `N` (default 0).

use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

/// Run as a hook; see the module docs.
pub fn main(args: &[String]) -> ExitCode {
    let (Some(name), Some(dir)) = (args.first(), args.get(1)) else {
        eprintln!("usage: checker hook <name> <dir> [--exit N] [--sleep SECS]");
        return ExitCode::from(2);
    };
    let dir = Path::new(dir);
    let mut exit = 0u8;
    let mut sleep = 0u64;
    let mut rest = args[2..].iter();
    while let Some(flag) = rest.next() {
        let value = rest.next().and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        match flag.as_str() {
            "--exit" => exit = u8::try_from(value).unwrap_or(1),
            "--sleep" => sleep = value,
            _ => {}
        }
    }
    let mut stdin = String::new();
    let _ = std::io::stdin().read_to_string(&mut stdin);
    let argv: Vec<String> = std::env::args().collect();
    let env: Vec<String> = std::env::vars_os()
        .map(|(k, v)| format!("{}={}", k.to_string_lossy(), v.to_string_lossy()))
        .collect();
    let ns: Vec<String> = ["mnt", "pid", "net", "uts", "ipc"]
        .iter()
        .filter_map(|n| {
            fs::metadata(format!("/proc/self/ns/{n}"))
                .ok()
                .map(|m| format!("{n} {}", m.ino()))
        })
        .collect();
    let write = |suffix: &str, text: String| {
        let _ = fs::write(dir.join(format!("{name}.{suffix}")), text);
    };
    write("stdin", stdin.clone());
    write("argv", argv.join("\n"));
    write("env", env.join("\n"));
    write("ns", ns.join("\n"));
    if let Some(cmdline) = state_pid(&stdin).and_then(cmdline_of) {
        write("cmdline", cmdline);
    }
    if let Ok(mut order) = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("order"))
    {
        let _ = writeln!(order, "{name}");
    }
    std::thread::sleep(Duration::from_secs(sleep));
    ExitCode::from(exit)
}

fn state_pid(state: &str) -> Option<i64> {
    let v: serde_json::Value = serde_json::from_str(state).ok()?;
    v.get("pid")?.as_i64()
}

fn cmdline_of(pid: i64) -> Option<String> {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let args: Vec<String> = raw
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    Some(args.join(" "))
}

static RECEIVED: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(sig: libc::c_int) {
    RECEIVED.store(sig, Ordering::SeqCst);
}

/// Signals `wait-signal` catches.
const CAUGHT: [libc::c_int; 6] = [
    libc::SIGHUP,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGTERM,
];

/// `wait-signal <file>`: announce readiness, then record the first signal.
pub fn wait_signal(args: &[String]) -> ExitCode {
    let Some(file) = args.first() else {
        eprintln!("usage: checker wait-signal <file>");
        return ExitCode::from(2);
    };
    for sig in CAUGHT {
        // SAFETY: `on_signal` only stores into an atomic, which is
        // async-signal-safe; the handler stays valid for the whole program.
        let rc = unsafe { libc::signal(sig, on_signal as *const () as libc::sighandler_t) };
        if rc == libc::SIG_ERR {
            eprintln!("signal({sig}) failed");
            return ExitCode::from(2);
        }
    }
    if let Err(e) = fs::write(format!("{file}.ready"), "ready\n") {
        eprintln!("write {file}.ready: {e}");
        return ExitCode::from(2);
    }
    loop {
        let sig = RECEIVED.load(Ordering::SeqCst);
        if sig != 0 {
            // Written aside and renamed, so a reader never sees it half-written.
            let tmp = format!("{file}.tmp");
            let _ = fs::write(&tmp, format!("{sig}\n"));
            let _ = fs::rename(&tmp, file);
            return ExitCode::SUCCESS;
        }
        // A signal interrupts the sleep; polling also covers one that
        // arrives between the load and the sleep.
        std::thread::sleep(Duration::from_millis(20));
    }
}
