//! Tests: compiled filters run through a BPF interpreter (`interp`) for the
//! semantics (`rules`), a Docker-like profile (`docker`) and random
//! profiles (`fuzz`), the last two against an independent model of the
//! semantics (`reference`); the real kernel in `kernel`.

mod docker;
pub(crate) mod fuzz;
mod interp;
mod kernel;
mod reference;
mod rules;

use serde_json::{json, Value};

use super::arch::Arch;
use super::{syscalls, Filter, SeccompError};

/// [`super::compile_for`] of a profile given as config.json gives it,
/// decoded as `create` decodes it (`null`: no profile).
pub(super) fn compile_for(profile: &Value, native: Arch) -> Result<Filter, SeccompError> {
    let decoded: Option<crate::spec::Seccomp> = crate::spec::gojson::from_value(profile.clone())
        .map_err(|e| SeccompError::Decode(e.to_string()))?;
    super::compile_for(&decoded.unwrap_or_default(), native)
}

/// [`compile_for`] for this machine's architecture.
pub(super) fn compile(profile: &Value) -> Result<Filter, SeccompError> {
    compile_for(
        profile,
        Arch::native().ok_or(SeccompError::UnsupportedArch)?,
    )
}

const ALLOW: u32 = libc::SECCOMP_RET_ALLOW;
const KILL_THREAD: u32 = libc::SECCOMP_RET_KILL_THREAD;
const KILL_PROCESS: u32 = libc::SECCOMP_RET_KILL_PROCESS;

fn errno(e: u32) -> u32 {
    libc::SECCOMP_RET_ERRNO | e
}

/// Compiles `profile` for a host of ABI `native` and checks the program as
/// the kernel would when loading it.
fn build(profile: &Value, native: Arch) -> Filter {
    let filter = compile_for(profile, native).unwrap_or_else(|e| panic!("{e}"));
    interp::check(&filter.program);
    filter
}

/// The filter's verdict on system call `name` of `arch` with `args`.
fn call(filter: &Filter, arch: Arch, name: &str, args: [u64; 6]) -> u32 {
    let nr = syscalls::number(arch, name).unwrap_or_else(|| panic!("no {name} on {arch:?}"));
    call_nr(filter, arch.audit(), nr, args)
}

/// The filter's verdict on call number `nr` with `seccomp_data.arch` `audit`.
fn call_nr(filter: &Filter, audit: u32, nr: u32, args: [u64; 6]) -> u32 {
    let data = interp::Data {
        nr,
        arch: audit,
        instruction_pointer: 0x7f00_1234_5678,
        args,
    };
    interp::run(&filter.program, &data)
}

/// [`call`] with the first argument only.
fn call1(filter: &Filter, arch: Arch, name: &str, arg0: u64) -> u32 {
    call(filter, arch, name, [arg0, 0, 0, 0, 0, 0])
}

/// An `args[]` entry.
fn cmp(index: u64, op: &str, value: u64) -> Value {
    json!({ "index": index, "op": op, "value": value })
}

/// A `syscalls[]` entry.
fn rule(names: &[&str], action: &str, errno_ret: Option<u64>, args: &[Value]) -> Value {
    let mut r = json!({ "names": names, "action": action, "args": args });
    if let Some(e) = errno_ret {
        r["errnoRet"] = json!(e);
    }
    r
}
