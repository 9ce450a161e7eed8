//! Texts as Go, and so runc, prints them: errno descriptions
//! (`no such file or directory`, lower case), a process's end
//! (`exit status 1`, `signal: killed`). Clients and scripts match on
//! runc's messages word for word, so corten's messages use these forms.

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

/// Go's description of signal `sig` (its `syscall.Signal.String()`).
pub fn signal_name(sig: i32) -> String {
    let name = match sig {
        libc::SIGHUP => "hangup",
        libc::SIGINT => "interrupt",
        libc::SIGQUIT => "quit",
        libc::SIGILL => "illegal instruction",
        libc::SIGTRAP => "trace/breakpoint trap",
        libc::SIGABRT => "aborted",
        libc::SIGBUS => "bus error",
        libc::SIGFPE => "floating point exception",
        libc::SIGKILL => "killed",
        libc::SIGUSR1 => "user defined signal 1",
        libc::SIGSEGV => "segmentation fault",
        libc::SIGUSR2 => "user defined signal 2",
        libc::SIGPIPE => "broken pipe",
        libc::SIGALRM => "alarm clock",
        libc::SIGTERM => "terminated",
        libc::SIGSTKFLT => "stack fault",
        libc::SIGCHLD => "child exited",
        libc::SIGCONT => "continued",
        libc::SIGSTOP => "stopped (signal)",
        libc::SIGTSTP => "stopped",
        libc::SIGTTIN => "stopped (tty input)",
        libc::SIGTTOU => "stopped (tty output)",
        libc::SIGURG => "urgent I/O condition",
        libc::SIGXCPU => "CPU time limit exceeded",
        libc::SIGXFSZ => "file size limit exceeded",
        libc::SIGVTALRM => "virtual timer expired",
        libc::SIGPROF => "profiling timer expired",
        libc::SIGWINCH => "window changed",
        libc::SIGIO => "I/O possible",
        libc::SIGPWR => "power failure",
        libc::SIGSYS => "bad system call",
        n => return format!("signal {n}"),
    };
    name.to_string()
}

/// How a child ended, as Go's `ProcessState.String()`: `exit status 3`,
/// `signal: killed`, with ` (core dumped)` when it dumped core.
pub fn exit_status(status: ExitStatus) -> String {
    let mut s = match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(sig)) => format!("signal: {}", signal_name(sig)),
        _ => status.to_string(),
    };
    if status.core_dumped() {
        s.push_str(" (core dumped)");
    }
    s
}

/// A string as Go's `%q` prints it: double quotes, `\\`, `\"`, `\n`,
/// `\t`, `\r` escaped, other control bytes as `\xNN` (Rust's `{:?}` writes
/// `\0` and `\u{1}`).
pub fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Go's description of `errno`: the C library's, its first letter lower
/// case (`No such file or directory` → `no such file or directory`).
pub fn errno_text(errno: i32) -> String {
    lower_first(&strerror(errno))
}

fn strerror(errno: i32) -> String {
    let s = std::io::Error::from_raw_os_error(errno).to_string();
    match s.rfind(" (os error ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Rewrites the system error texts Rust and nix print into Go's:
/// `No such file or directory (os error 2)` and `ENOENT: No such file or
/// directory` both become `no such file or directory`.
pub fn go_errors(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut rest = msg;
    // std's `<strerror> (os error N)`.
    while let Some(i) = rest.find(" (os error ") {
        let after = &rest[i + " (os error ".len()..];
        let Some(j) = after.find(')') else { break };
        let head = &rest[..i];
        match after[..j].parse::<i32>() {
            Ok(n) if head.ends_with(&strerror(n)) => {
                let text = strerror(n);
                out.push_str(&head[..head.len() - text.len()]);
                out.push_str(&lower_first(&text));
            }
            _ => out.push_str(head),
        }
        rest = &after[j + 1..];
    }
    out.push_str(rest);
    // nix's `EXXX: <strerror>`.
    if out.contains(": ") && out.contains('E') {
        for n in 1..134 {
            let e = nix::errno::Errno::from_raw(n);
            let pat = format!("{e:?}: {}", e.desc());
            if out.contains(&pat) {
                out = out.replace(&pat, &lower_first(e.desc()));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_as_go() {
        assert_eq!(quote("A\0B=1"), r#""A\x00B=1""#);
        assert_eq!(quote("a\"b\\c\n"), r#""a\"b\\c\n""#);
    }

    #[test]
    fn errors_read_as_go_prints_them() {
        assert_eq!(
            go_errors("open /x: No such file or directory (os error 2)"),
            "open /x: no such file or directory"
        );
        assert_eq!(
            go_errors("unable to signal init: EINVAL: Invalid argument"),
            "unable to signal init: invalid argument"
        );
        assert_eq!(go_errors("plain (os error x"), "plain (os error x");
        assert_eq!(errno_text(libc::EACCES), "permission denied");
    }

    #[test]
    fn process_ends_read_as_go_prints_them() {
        assert_eq!(exit_status(ExitStatus::from_raw(3 << 8)), "exit status 3");
        assert_eq!(
            exit_status(ExitStatus::from_raw(libc::SIGSYS)),
            "signal: bad system call"
        );
        assert_eq!(
            exit_status(ExitStatus::from_raw(libc::SIGSEGV | 0x80)),
            "signal: segmentation fault (core dumped)"
        );
        assert_eq!(signal_name(40), "signal 40");
    }
}
