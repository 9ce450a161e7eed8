//! The processes of a container: the parent side of `create` ([`create`]),
//! the container's init ([`init`]) and the channel between them ([`sync`]).

pub mod attrs;
pub mod create;
pub mod exec;
pub mod init;
pub mod namespaces;
pub mod rlimits;
pub mod sync;
pub mod user;
