//! One function per [`Check`]: `Ok(())` or a one-line detail of what differs.

mod files;
mod kernel;
mod process;

use std::fs;

use corten_conformance::expect::Check;

use crate::procfs;
use files::*;
use kernel::*;
use process::*;

type Outcome = Result<(), String>;

/// Verify one check.
pub fn run(check: &Check) -> Outcome {
    match check {
        Check::Namespace { ns, inode, same } => namespace(ns, *inode, *same),
        Check::Pid { pid } => equal("pid", i64::from(std::process::id()), i64::from(*pid)),
        Check::ProcPids { pids } => proc_pids(pids),
        Check::Mount {
            path,
            fstype,
            options,
            absent,
            propagation,
        } => mount(
            path,
            fstype.as_deref(),
            options,
            absent,
            propagation.as_deref(),
        ),
        Check::NotMounted { path } => not_mounted(path),
        Check::ReadOnly { path } => read_only(path),
        Check::Writable { path } => writable(path),
        Check::Masked { path } => masked(path),
        Check::Exists { path, kind } => exists(path, *kind),
        Check::Absent { path } => absent(path),
        Check::FileContains { path, text } => file_contains(path, text),
        Check::FileEquals { path, text } => equal(path, read(path)?.trim(), text.as_str()),
        Check::LinkOrSame { path, target } => link_or_same(path, target),
        Check::Device {
            path,
            kind,
            major,
            minor,
            mode,
            uid,
            gid,
        } => device(path, *kind, (*major, *minor), *mode, *uid, *gid),
        Check::Open { path, write, errno } => open(path, *write, *errno),
        Check::ReadsZeros { path, len } => reads_zeros(path, *len),
        Check::WriteResult { path, errno } => write_result(path, *errno),
        Check::Caps { set, mask } => caps(set, *mask),
        Check::Rlimit {
            resource,
            soft,
            hard,
        } => rlimit(resource, *soft, *hard),
        Check::Ids { uid, gid } => ids(*uid, *gid),
        Check::Groups { gids } => groups(gids),
        Check::Umask { mask } => umask(*mask),
        Check::NoNewPrivs { set } => status_equals("NoNewPrivs", &u8::from(*set).to_string()),
        Check::OomScoreAdj { value } => equal(
            "oom_score_adj",
            read("/proc/self/oom_score_adj")?.trim(),
            &value.to_string(),
        ),
        Check::Hostname { name } => equal("hostname", &uname_field(|u| &u.nodename)?, name),
        Check::Domainname { name } => equal("domainname", &uname_field(|u| &u.domainname)?, name),
        Check::Sysctl { key, value } => sysctl(key, value),
        Check::Cwd { path } => cwd(path),
        Check::Env { name, value } => env(name, value.as_deref()),
        Check::Argv { args } => equal("argv", &std::env::args().collect::<Vec<_>>(), args),
        Check::SeccompMode { mode } => status_equals("Seccomp", &mode.to_string()),
        Check::Syscall { nr, args, outcome } => syscall(*nr, args, outcome),
        Check::CgroupFile { v1, v2, value } => cgroup_file(v1.as_deref(), v2.as_deref(), value),
        Check::CgroupNsRoot => cgroup_ns_root(),
        Check::ProcLines { file, lines } => proc_lines(file, lines),
        Check::Personality { persona } => personality(*persona),
        Check::IoPriority { class, level } => io_priority(*class, *level),
        Check::Scheduler { policy, nice } => scheduler(*policy, *nice),
        Check::IsTty { fd, tty } => is_tty(*fd, *tty),
        Check::WinSize { rows, cols } => win_size(*rows, *cols),
        Check::OnlyStdioOpen => only_stdio_open(),
    }
}

/// A `/proc/self/status` field equals `want`.
fn status_equals(key: &str, want: &str) -> Outcome {
    equal(key, procfs::status_field(key)?.as_str(), want)
}

fn equal<T: PartialEq + std::fmt::Debug>(what: &str, got: T, want: T) -> Outcome {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: got {got:?}, want {want:?}"))
    }
}

fn read(path: &str) -> Result<String, String> {
    fs::read_to_string(path).map_err(|e| format!("read {path}: {e}"))
}

fn normalise(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn errno_of(e: &std::io::Error) -> i32 {
    e.raw_os_error().unwrap_or(0)
}

fn errno_name(errno: Option<i32>) -> String {
    match errno {
        None => "success".to_owned(),
        Some(n) => format!("errno {n} ({})", std::io::Error::from_raw_os_error(n)),
    }
}
