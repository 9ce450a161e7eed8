//! The assertions the harness asks the checker to verify inside a
//! container, serialised as `/conformance/expect.json`.
//!
//! Each [`Assertion`] has a name (printed in the checker's `ok`/`not ok`
//! line) and one [`Check`]. Values that only the host knows (namespace
//! inodes of the runtime, the expected uid map) are filled in by the harness.

use serde::{Deserialize, Serialize};

/// Everything the checker must verify, in order.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Expectations {
    /// The assertions.
    pub assertions: Vec<Assertion>,
}

/// One named assertion.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Assertion {
    /// Printed as `ok <name>` / `not ok <name>: …`.
    #[serde(rename = "assertion")]
    pub name: String,
    /// What to verify.
    #[serde(flatten)]
    pub check: Check,
}

impl Assertion {
    /// An assertion named `name`.
    pub fn new(name: impl Into<String>, check: Check) -> Assertion {
        Assertion {
            name: name.into(),
            check,
        }
    }
}

/// Kind of file expected at a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    /// Regular file.
    File,
    /// Directory.
    Dir,
    /// Symbolic link (not followed).
    Symlink,
    /// Character device.
    Char,
    /// Block device.
    Block,
    /// Named pipe.
    Fifo,
}

/// An argument of a raw system call made by [`Check::Syscall`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyscallArg {
    /// Passed as is.
    Int(u64),
    /// A NUL-terminated copy is passed by pointer.
    Str(String),
}

/// Expected outcome of a raw system call.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyscallOutcome {
    /// It fails with exactly this errno.
    Errno(i32),
    /// It does not fail with this errno (it may succeed or fail otherwise).
    NotErrno(i32),
    /// The calling process is killed by this signal (the call runs in a
    /// forked child).
    Signal(i32),
}

/// One thing to verify from inside the container.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "check", rename_all = "snake_case")]
pub enum Check {
    /// `/proc/self/ns/<ns>` has inode `inode` (`same`) or any other (`!same`).
    Namespace {
        /// `/proc/self/ns` entry name (`pid`, `net`, `mnt`, …).
        ns: String,
        /// Reference inode, read by the harness.
        inode: u64,
        /// Whether the inode must equal the reference or differ from it.
        same: bool,
    },
    /// `getpid()` equals `pid`.
    Pid {
        /// Expected pid.
        pid: i32,
    },
    /// The numeric entries of `/proc` are exactly `pids`.
    ProcPids {
        /// Expected pids, sorted.
        pids: Vec<i32>,
    },
    /// The topmost mount at `path` (last `/proc/self/mountinfo` entry).
    Mount {
        /// Mount point.
        path: String,
        /// Filesystem type, if it matters.
        fstype: Option<String>,
        /// Per-mount or superblock options that must be present.
        options: Vec<String>,
        /// Per-mount options that must be absent.
        absent: Vec<String>,
        /// Propagation: `shared`, `slave`, `private` or `unbindable`.
        propagation: Option<String>,
    },
    /// Nothing is mounted at `path`.
    NotMounted {
        /// Path.
        path: String,
    },
    /// Writing at `path` (a file created inside a directory, or the file
    /// opened for writing) fails with `EROFS`.
    ReadOnly {
        /// Path.
        path: String,
    },
    /// Writing at `path` succeeds (the probe is removed again).
    Writable {
        /// Path.
        path: String,
    },
    /// `path` cannot be read: a file reads empty, a directory lists empty.
    Masked {
        /// Path.
        path: String,
    },
    /// `path` exists (without following a final symlink), optionally of `kind`.
    Exists {
        /// Path.
        path: String,
        /// Required kind.
        kind: Option<FileKind>,
    },
    /// Nothing exists at `path`.
    Absent {
        /// Path.
        path: String,
    },
    /// The file at `path` contains `text`.
    FileContains {
        /// Path.
        path: String,
        /// Substring.
        text: String,
    },
    /// The file at `path`, trimmed, equals `text`.
    FileEquals {
        /// Path.
        path: String,
        /// Whole content, trimmed.
        text: String,
    },
    /// `path` is a symlink to `target`, or a device equal to what `target`
    /// resolves to.
    LinkOrSame {
        /// Path.
        path: String,
        /// Link target or equivalent file.
        target: String,
    },
    /// A device node with this type and numbers, optionally mode and owner.
    Device {
        /// Path.
        path: String,
        /// `Char`, `Block` or `Fifo`.
        kind: FileKind,
        /// Major number (ignored for fifos).
        major: u64,
        /// Minor number (ignored for fifos).
        minor: u64,
        /// Permission bits (`& 0o7777`).
        mode: Option<u32>,
        /// Owner.
        uid: Option<u32>,
        /// Group.
        gid: Option<u32>,
    },
    /// Opening `path` (read, or read-write with `write`) succeeds
    /// (`errno: None`) or fails with `errno`.
    Open {
        /// Path.
        path: String,
        /// Open read-write instead of read-only.
        write: bool,
        /// Expected errno, or success.
        errno: Option<i32>,
    },
    /// Reading `len` bytes from `path` gives only zero bytes.
    ReadsZeros {
        /// Path.
        path: String,
        /// How many bytes.
        len: usize,
    },
    /// Writing one byte to `path` fails with `errno` or succeeds.
    WriteResult {
        /// Path.
        path: String,
        /// Expected errno, or success.
        errno: Option<i32>,
    },
    /// A capability set line of `/proc/self/status` (`CapEff`, …) equals `mask`.
    Caps {
        /// `CapInh`, `CapPrm`, `CapEff`, `CapBnd` or `CapAmb`.
        set: String,
        /// Expected bit mask.
        mask: u64,
    },
    /// `getrlimit(resource)` returns `soft`/`hard`.
    Rlimit {
        /// `RLIMIT_NOFILE`, …
        resource: String,
        /// `rlim_cur`.
        soft: u64,
        /// `rlim_max`.
        hard: u64,
    },
    /// Real, effective and saved uid and gid.
    Ids {
        /// Uid.
        uid: u32,
        /// Gid.
        gid: u32,
    },
    /// Supplementary groups (`getgroups`), compared as sets.
    Groups {
        /// Expected groups.
        gids: Vec<u32>,
    },
    /// The umask.
    Umask {
        /// Expected mask.
        mask: u32,
    },
    /// `NoNewPrivs` of `/proc/self/status`.
    NoNewPrivs {
        /// Expected flag.
        set: bool,
    },
    /// `/proc/self/oom_score_adj`.
    OomScoreAdj {
        /// Expected value.
        value: i32,
    },
    /// `gethostname`.
    Hostname {
        /// Expected name.
        name: String,
    },
    /// `getdomainname`.
    Domainname {
        /// Expected name.
        name: String,
    },
    /// `/proc/sys/<key with dots as slashes>` equals `value` (whitespace-normalised).
    Sysctl {
        /// Dotted key.
        key: String,
        /// Expected value.
        value: String,
    },
    /// `getcwd`.
    Cwd {
        /// Expected directory.
        path: String,
    },
    /// An environment variable has `value`, or is absent (`None`).
    Env {
        /// Name.
        name: String,
        /// Expected value.
        value: Option<String>,
    },
    /// The process's argv (from `/proc/self/cmdline`) equals `args`.
    Argv {
        /// Expected argv.
        args: Vec<String>,
    },
    /// `Seccomp` of `/proc/self/status` (0 disabled, 2 filter).
    SeccompMode {
        /// Expected mode.
        mode: u32,
    },
    /// A raw system call and its expected outcome.
    Syscall {
        /// x86_64 syscall number.
        nr: i64,
        /// Arguments (up to six).
        args: Vec<SyscallArg>,
        /// Expected outcome.
        outcome: SyscallOutcome,
    },
    /// A cgroup file as seen inside the container: `<v1>` below
    /// `/sys/fs/cgroup/` on cgroup v1, `<v2>` on cgroup v2 (`None`: skip).
    CgroupFile {
        /// `controller/file` on v1.
        v1: Option<String>,
        /// `file` on v2.
        v2: Option<String>,
        /// Expected content (first line, trimmed), or a `key value` line.
        value: String,
    },
    /// Every line of `/proc/self/cgroup` has the path `/` (cgroup namespace root).
    CgroupNsRoot,
    /// The lines of `/proc/self/<file>` (`uid_map`, `timens_offsets`, …),
    /// whitespace-normalised, in order.
    ProcLines {
        /// File name below `/proc/self`.
        file: String,
        /// Expected lines such as `0 100000 65536`.
        lines: Vec<String>,
    },
    /// `personality(0xffffffff) & 0xff`.
    Personality {
        /// Expected persona (`PER_LINUX` 0, `PER_LINUX32` 8).
        persona: u32,
    },
    /// `ioprio_get(IOPRIO_WHO_PROCESS, 0)` class and level.
    IoPriority {
        /// Class (1 RT, 2 BE, 3 IDLE).
        class: u32,
        /// Level.
        level: u32,
    },
    /// `sched_getscheduler(0)` and, for normal policies, `nice`.
    Scheduler {
        /// Policy number (`SCHED_BATCH` 3, …).
        policy: i32,
        /// Expected nice value.
        nice: Option<i32>,
    },
    /// Standard descriptor `fd` is (or is not) a terminal.
    IsTty {
        /// Descriptor.
        fd: i32,
        /// Expected.
        tty: bool,
    },
    /// The terminal on stdin has this size.
    WinSize {
        /// Rows.
        rows: u16,
        /// Columns.
        cols: u16,
    },
    /// Descriptors other than 0, 1, 2 (and the one reading `/proc/self/fd`) are closed.
    OnlyStdioOpen,
}
