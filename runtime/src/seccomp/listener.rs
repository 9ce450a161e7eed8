//! `listenerPath`: the notify listener handed to the seccomp agent.

use std::io::{self, IoSlice, Write};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::path::Path;

use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use serde::Serialize;

use super::SeccompError;
use crate::state::HookState;

/// The runtime spec's `ContainerProcessState`, in runc's field order.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ProcessState<'a> {
    oci_version: &'a str,
    fds: [&'a str; 1],
    pid: i32,
    #[serde(skip_serializing_if = "str::is_empty")]
    metadata: &'a str,
    state: &'a HookState<'a>,
}

/// Sends the notify listener `fd` to the agent listening on the unix stream
/// socket `listener_path`, as runc does: one connection carrying the OCI
/// container process state (`ociVersion`, `fds: ["seccompFd"]`, `pid`,
/// `metadata` (omitted when empty), `state` = the container state JSON),
/// with `fd` in `SCM_RIGHTS` on the first `sendmsg`; then the connection is
/// closed.
pub fn send_to_listener(
    listener_path: &str,
    metadata: &str,
    fd: BorrowedFd<'_>,
    pid: i32,
    state: &HookState<'_>,
) -> Result<(), SeccompError> {
    let message = ProcessState {
        oci_version: crate::spec::OCI_VERSION,
        fds: ["seccompFd"],
        pid,
        metadata,
        state,
    };
    // Strings, numbers and the state cannot fail to serialise.
    let bytes = serde_json::to_vec(&message).unwrap_or_default();
    let mut stream = crate::bounds::connect(Path::new(listener_path)).map_err(|source| {
        SeccompError::Connect {
            path: listener_path.to_string(),
            source,
        }
    })?;
    let send = |source: io::Error| SeccompError::Send {
        path: listener_path.to_string(),
        source: crate::bounds::socket_error(source),
    };
    let fds = [fd.as_raw_fd()];
    let sent = loop {
        match sendmsg::<()>(
            stream.as_raw_fd(),
            &[IoSlice::new(&bytes)],
            &[ControlMessage::ScmRights(&fds)],
            MsgFlags::MSG_NOSIGNAL,
            None,
        ) {
            Ok(n) => break n,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(send(e.into())),
        }
    };
    // The descriptor went with the first byte; the rest, if the socket
    // buffer was short, follows as plain data.
    stream.write_all(&bytes[sent..]).map_err(send)?;
    Ok(())
}
