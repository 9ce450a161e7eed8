//! `linux.seccomp`: the profile compiled into a classic BPF program and
//! installed with `seccomp(SECCOMP_SET_MODE_FILTER)`, as runc does with
//! libseccomp, without libseccomp.
//!
//! On every system call the kernel runs the filter over a `seccomp_data`
//! (`nr`, `arch`, `instruction_pointer`, `args[6]`) and acts on the 32-bit
//! value it returns (`SECCOMP_RET_ALLOW`, `SECCOMP_RET_ERRNO | errno`, ...).
//! [`compile`] validates the profile and builds that program; [`Filter::install`]
//! loads it; [`send_to_listener`] hands the `SCMP_ACT_NOTIFY` listener to the
//! seccomp agent at `listenerPath`.
//!
//! # Semantics (those of runc + libseccomp)
//!
//! - **Architectures.** The filter checks `seccomp_data.arch` first. The
//!   native ABI is always filtered; of the `architectures` listed, those this
//!   host can run are filtered with their own system call numbers (x86 and
//!   x32 on x86_64, arm on aarch64); the others are accepted and ignored,
//!   since the kernel never reports them here. A call from an ABI that is not
//!   filtered gets libseccomp's "bad arch" action, `SECCOMP_RET_KILL_THREAD`;
//!   on x86_64 that includes x32 calls (number with bit 30 set) unless
//!   `SCMP_ARCH_X32` is listed.
//! - **Rules.** Each name of each `syscalls[]` entry is one rule. Names this
//!   corten does not know for an ABI are skipped, never an error. A rule
//!   whose action (with its errno) equals the default action is dropped.
//!   Arguments of one rule are ANDed; when two of them name the same
//!   argument index, runc turns each into a rule of its own, so they are
//!   ORed (and so here). For one system call, a rule without arguments wins
//!   over rules with arguments (libseccomp); otherwise the rules are tried in
//!   profile order and the first that matches decides; none matching means
//!   the default action.
//! - **Comparisons** are unsigned and 64-bit on 64-bit ABIs (both 32-bit
//!   halves are compared); 32-bit ABIs (x86, x32, arm) compare the low 32
//!   bits, as libseccomp does. `SCMP_CMP_MASKED_EQ` is
//!   `(arg & value) == valueTwo`.
//! - **-ENOSYS for newer calls** (runc's patch): unless the default action is
//!   `SCMP_ACT_ALLOW`, `_LOG` or `_TRACE`, a call on a *listed* architecture
//!   whose number is above every number the profile names for it fails with
//!   `ENOSYS` rather than the default action, so that programs fall back
//!   from system calls the profile predates.
//! - **Flags**: absent `flags` means `SECCOMP_FILTER_FLAG_SPEC_ALLOW` (runc's
//!   default; dropped again if the kernel refuses it); `TSYNC`, `LOG`,
//!   `SPEC_ALLOW` and `WAIT_KILLABLE_RECV` (the latter only when there is a
//!   listener) are passed to the kernel; `NEW_LISTENER` is added when a rule
//!   uses `SCMP_ACT_NOTIFY`, with `TSYNC_ESRCH` if `TSYNC` is also set.
//! - A `linux.seccomp` with neither `defaultAction` nor `syscalls` installs
//!   nothing (runc treats it as seccomp disabled).
//!
//! Differences from libseccomp: i386's multiplexed `socketcall`/`ipc` are
//! filtered only under those names (a rule for `socket` does not also match
//! `socketcall(SYS_SOCKET)`), and conflicting argument rules are resolved by
//! profile order rather than libseccomp's tree order.
//!
//! # The program
//!
//! `ld arch`, one `jeq` per filtered audit architecture (else the bad-arch
//! kill), then per architecture `ld nr` and a binary search over the number
//! space cut into intervals of equal outcome (runs of allowed calls collapse
//! into one interval), whose leaves are a `ret` or the argument checks of one
//! system call. Docker's default profile on x86_64 with x86 and x32 takes
//! about 660 instructions, and no call runs more than about 30 of them.
//! Jumps too long for a conditional jump's 8-bit offset go through a `ja`.
//! The kernel's 4096-instruction limit is checked at compile time.
//!
//! How `create` uses it (crate-internal, so not compiled as a doctest):
//!
//! ```ignore
//! let profile = serde_json::json!({
//!     "defaultAction": "SCMP_ACT_ERRNO",
//!     "syscalls": [{ "names": ["read", "write", "exit_group"], "action": "SCMP_ACT_ALLOW" }]
//! });
//! let filter = crate::seccomp::compile(&profile)?;
//! // In the container's init, after no_new_privs (or with CAP_SYS_ADMIN):
//! let listener = filter.install()?;
//! assert!(listener.is_none());
//! # Ok::<(), crate::seccomp::SeccompError>(())
//! ```

mod arch;
mod bpf;
mod codegen;
mod listener;
mod profile;
mod sys;
mod syscalls;

#[cfg(test)]
pub(crate) mod tests;

use std::fmt;
use std::io;
use std::os::fd::OwnedFd;

pub use listener::send_to_listener;

use arch::Arch;

/// Errors from compiling, installing or handing over a seccomp filter.
/// Names from the profile are quoted as runc quotes them, their control
/// characters escaped so that a message is one line.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// A profile the tests give as JSON that does not decode (`create`
    /// decodes config.json whole, naming the field).
    #[cfg(test)]
    #[error("invalid seccomp profile: {0}")]
    Decode(String),
    /// An action name libseccomp does not define.
    #[error("string {0} is not a valid action for seccomp")]
    UnknownAction(String),
    /// A comparison operator name libseccomp does not define.
    #[error("string {0} is not a valid operator for seccomp")]
    UnknownOperator(String),
    /// An architecture name libseccomp does not define.
    #[error("string {0} is not a valid arch for seccomp")]
    UnknownArch(String),
    /// A filter flag the runtime spec does not define.
    #[error("seccomp flag {0} is not known to corten")]
    UnknownFlag(String),
    /// `errnoRet`/`defaultErrnoRet` given with an action that takes none.
    #[error("seccomp: errnoRet is only valid with SCMP_ACT_ERRNO and SCMP_ACT_TRACE, not {0}")]
    ErrnoRetNotSupported(String),
    /// `errnoRet` does not fit the 16 bits of `SECCOMP_RET_DATA`.
    #[error("seccomp: errnoRet {0} is out of range (0-65535)")]
    ErrnoRetRange(u64),
    /// An empty system call name.
    #[error("empty string is not a valid syscall")]
    EmptySyscallName,
    /// An argument index beyond the six of a system call.
    #[error("seccomp: syscall {name}: argument index {index} is out of range (0-5)")]
    ArgIndex {
        /// The system call.
        name: String,
        /// The index given.
        index: u64,
    },
    /// `SCMP_ACT_NOTIFY` as `defaultAction`.
    #[error("SCMP_ACT_NOTIFY cannot be used as default action")]
    NotifyDefault,
    /// `SCMP_ACT_NOTIFY` for `write`, which the runtime needs afterwards.
    #[error("SCMP_ACT_NOTIFY cannot be used for the write syscall")]
    NotifyWrite,
    /// `SCMP_ACT_NOTIFY` is used but nobody would receive the listener.
    #[error("seccomp listenerPath is not set")]
    ListenerPathNotSet,
    /// The host is not one corten can build filters for.
    #[error("seccomp is not supported on this architecture")]
    UnsupportedArch,
    /// The program exceeds the kernel's limit on instructions.
    #[error("seccomp: the filter has {0} instructions, more than the kernel's limit of 4096")]
    TooLarge(usize),
    /// `seccomp(SECCOMP_SET_MODE_FILTER)` failed.
    #[error("error loading seccomp filter into kernel: {0}")]
    Install(#[source] io::Error),
    /// With `SECCOMP_FILTER_FLAG_TSYNC`, another thread could not take the
    /// filter.
    #[error("error loading seccomp filter into kernel: thread {0} cannot take it (TSYNC)")]
    Tsync(libc::c_long),
    /// The agent's socket could not be reached.
    #[error(
        "failed to connect with seccomp agent specified in the seccomp profile {path}: {source}"
    )]
    Connect {
        /// `listenerPath`.
        path: String,
        /// Cause.
        source: io::Error,
    },
    /// Sending the container process state or the descriptor failed.
    #[error("send the seccomp fd to the seccomp agent {path}: {source}")]
    Send {
        /// `listenerPath`.
        path: String,
        /// Cause.
        source: io::Error,
    },
}

/// A compiled filter, ready to install.
pub struct Filter {
    /// The program; empty when the profile disables seccomp.
    program: Vec<libc::sock_filter>,
    /// The `SECCOMP_FILTER_FLAG_*` bits to install with.
    flags: libc::c_ulong,
    /// `SPEC_ALLOW` was not asked for but implied by absent `flags`; it is
    /// dropped if the kernel does not know it.
    implied_spec_allow: bool,
    /// Some rule uses `SCMP_ACT_NOTIFY`.
    notify: bool,
    listener_path: Option<String>,
    listener_metadata: String,
}

impl fmt::Debug for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Filter")
            .field("instructions", &self.program.len())
            .field("flags", &format_args!("{:#x}", self.flags))
            .field("notify", &self.notify)
            .field("listener_path", &self.listener_path)
            .finish_non_exhaustive()
    }
}

/// Validates and compiles `linux.seccomp` (the JSON object from
/// `config.json`) for the native architecture.
pub fn compile(seccomp: &crate::spec::Seccomp) -> Result<Filter, SeccompError> {
    compile_for(
        seccomp,
        Arch::native().ok_or(SeccompError::UnsupportedArch)?,
    )
}

/// [`compile`] for a given native architecture (so that tests cover both).
fn compile_for(seccomp: &crate::spec::Seccomp, native: Arch) -> Result<Filter, SeccompError> {
    let Some(profile) = profile::parse(seccomp)? else {
        return Ok(Filter {
            program: Vec::new(),
            flags: 0,
            implied_spec_allow: false,
            notify: false,
            listener_path: None,
            listener_metadata: String::new(),
        });
    };
    let program = codegen::program(&profile, native)?;
    let mut flags = profile.flags;
    if profile.notify {
        flags |= libc::SECCOMP_FILTER_FLAG_NEW_LISTENER;
        if flags & libc::SECCOMP_FILTER_FLAG_TSYNC != 0 {
            // The kernel refuses TSYNC with NEW_LISTENER unless a thread
            // that cannot be synchronised is reported as ESRCH.
            flags |= libc::SECCOMP_FILTER_FLAG_TSYNC_ESRCH;
        }
    } else {
        // Only meaningful (and only accepted) with a listener.
        flags &= !libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV;
    }
    Ok(Filter {
        program,
        flags,
        implied_spec_allow: profile.implied_spec_allow,
        notify: profile.notify,
        listener_path: profile.listener_path,
        listener_metadata: profile.listener_metadata,
    })
}

impl Filter {
    /// Whether the filter has `SCMP_ACT_NOTIFY` rules (then [`install`]
    /// returns the listener fd).
    ///
    /// [`install`]: Filter::install
    #[cfg(test)]
    pub fn uses_notify(&self) -> bool {
        self.notify
    }

    /// `listenerPath`, where [`send_to_listener`] sends the listener.
    pub fn listener_path(&self) -> Option<&str> {
        self.listener_path.as_deref()
    }

    /// `listenerMetadata` (empty when unset).
    pub fn listener_metadata(&self) -> &str {
        &self.listener_metadata
    }

    /// Installs the filter on the calling thread (on all threads with
    /// `SECCOMP_FILTER_FLAG_TSYNC`); returns the notify listener when the
    /// filter uses `SCMP_ACT_NOTIFY`.
    ///
    /// The caller needs `no_new_privs` or `CAP_SYS_ADMIN` in its user
    /// namespace, as the kernel requires; this does not set `no_new_privs`.
    /// Nothing is allocated once the filter is in place, so a profile that
    /// forbids `mmap`/`brk` cannot break the return path.
    pub fn install(&self) -> Result<Option<OwnedFd>, SeccompError> {
        if self.program.is_empty() {
            return Ok(None);
        }
        let mut result = sys::set_filter(&self.program, self.flags);
        if self.implied_spec_allow
            && matches!(&result, Err(e) if e.raw_os_error() == Some(libc::EINVAL))
        {
            result = sys::set_filter(
                &self.program,
                self.flags & !libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW,
            );
        }
        match result.map_err(SeccompError::Install)? {
            sys::Installed::Listener(fd) => Ok(Some(fd)),
            sys::Installed::Done => Ok(None),
            sys::Installed::TsyncFailed(tid) => Err(SeccompError::Tsync(tid)),
        }
    }
}
