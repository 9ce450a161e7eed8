//! The processes of a container: the parent side of `create` ([`create`]),
//! the container's init ([`init`]) and the channel between them ([`sync`]).

pub mod attrs;
pub mod create;
pub mod exec;
pub mod idmap;
pub mod init;
pub mod namespaces;
pub mod rlimits;
pub mod sync;
pub mod user;

use std::io;
use std::path::PathBuf;

use crate::sys::{self, Forked};

/// `clone3(flags)` of a child that is born in the container's v2 cgroup
/// (`CLONE_INTO_CGROUP`, Linux 5.7+), so it never runs in the caller's;
/// kernels that refuse the flag get a plain clone. In the parent, also
/// returns the cgroup directories the parent must still move the child
/// into ([`crate::cgroups::left_to_parent`]); on v1 the child moves itself
/// ([`crate::cgroups::SelfMove`]).
pub(crate) fn clone_in_cgroup(
    flags: u64,
    cg: &crate::cgroups::Cgroup,
) -> io::Result<(Forked, Vec<PathBuf>)> {
    // The v2 directory, or the unified one of a hybrid host.
    let dir = cg.cgroup2_dir().and_then(|d| std::fs::File::open(d).ok());
    let Some(dir) = dir else {
        return Ok((sys::clone3(flags, None)?, cg.left_to_parent(false)));
    };
    match sys::clone3(flags, Some(std::os::fd::AsFd::as_fd(&dir))) {
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::EINVAL | libc::E2BIG | libc::ENOSYS)
            ) =>
        {
            crate::logging::debug(&format!(
                "CLONE_INTO_CGROUP refused ({e}); moving the child afterwards"
            ));
            Ok((sys::clone3(flags, None)?, cg.left_to_parent(false)))
        }
        r => {
            if let Ok(Forked::Parent(pid)) = r {
                crate::logging::debug(&format!("cloned pid {pid} with CLONE_INTO_CGROUP"));
            }
            Ok((r?, cg.left_to_parent(true)))
        }
    }
}
