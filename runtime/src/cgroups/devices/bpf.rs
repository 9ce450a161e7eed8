//! Loading the device program and attaching it to a cgroup v2 directory:
//! the bpf(2) calls.

use std::fs::OpenOptions;

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::{program, BpfError, DeviceRule, Insn, PROG_NAME};

/// Loads the program for `rules` and attaches it to the cgroup v2 directory
/// `cgroup_dir`, then detaches the programs corten attached there before.
pub fn attach(cgroup_dir: &Path, rules: &[DeviceRule]) -> Result<(), BpfError> {
    let code = program(rules);
    let dir = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY)
        .open(cgroup_dir)
        .map(OwnedFd::from)
        .map_err(|source| BpfError::OpenCgroup {
            path: cgroup_dir.to_path_buf(),
            source,
        })?;
    let old = attached_by_corten(cgroup_dir, dir.as_fd())?;
    let prog = load(&code, PROG_NAME)?;
    sys::prog_attach(dir.as_fd(), prog.as_fd()).map_err(|source| BpfError::Attach {
        path: cgroup_dir.to_path_buf(),
        source,
    })?;
    for (id, fd) in old {
        match sys::prog_detach(dir.as_fd(), fd.as_fd()) {
            // Already detached by someone else: nothing left to do.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(source) => {
                let path = cgroup_dir.to_path_buf();
                return Err(BpfError::Detach { path, id, source });
            }
            Ok(()) => {}
        }
    }
    Ok(())
}

/// The programs attached directly to `dir` whose name is [`PROG_NAME`]. Those
/// that vanish meanwhile, or that an LSM does not let us open, are skipped.
fn attached_by_corten(path: &Path, dir: BorrowedFd<'_>) -> Result<Vec<(u32, OwnedFd)>, BpfError> {
    let ids = sys::prog_query(dir).map_err(|source| BpfError::Query {
        path: path.to_path_buf(),
        source,
    })?;
    let mut ours = Vec::new();
    for id in ids {
        let fd = match sys::prog_get_fd_by_id(id) {
            Ok(fd) => fd,
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ENOENT | libc::EPERM | libc::EACCES)
                ) =>
            {
                continue
            }
            Err(source) => return Err(BpfError::OpenProg { id, source }),
        };
        let name =
            sys::prog_name(fd.as_fd()).map_err(|source| BpfError::OpenProg { id, source })?;
        if name == PROG_NAME.as_bytes() {
            ours.push((id, fd));
        }
    }
    Ok(ours)
}

/// Loads `code` as a device program named `name`. On kernels that charge BPF
/// memory to `RLIMIT_MEMLOCK` (before 5.11) a first `EPERM` is retried with
/// the limit raised, then restored so the container does not inherit it. A
/// refused program is loaded once more with a log to explain why.
pub(super) fn load(code: &[Insn], name: &str) -> Result<OwnedFd, BpfError> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource, RLIM_INFINITY};
    let mut first = sys::prog_load(code, name, None);
    if first
        .as_ref()
        .is_err_and(|e| e.raw_os_error() == Some(libc::EPERM))
    {
        if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_MEMLOCK) {
            if setrlimit(Resource::RLIMIT_MEMLOCK, RLIM_INFINITY, RLIM_INFINITY).is_ok() {
                first = sys::prog_load(code, name, None);
                // Lowering a limit back is always permitted.
                let _ = setrlimit(Resource::RLIMIT_MEMLOCK, soft, hard);
            }
        }
    }
    let source = match first {
        Ok(fd) => return Ok(fd),
        Err(e) => e,
    };
    if !matches!(source.raw_os_error(), Some(libc::EINVAL | libc::EACCES)) {
        return Err(BpfError::Load {
            source,
            log: String::new(),
        });
    }
    let mut log = vec![0u8; 1 << 16];
    match sys::prog_load(code, name, Some(&mut log)) {
        Ok(fd) => Ok(fd),
        Err(source) => {
            let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
            let text = String::from_utf8_lossy(&log[..end])
                .trim()
                .replace('\n', "; ");
            let log = if text.is_empty() {
                String::new()
            } else {
                format!(": verifier log: {text}")
            };
            Err(BpfError::Load { source, log })
        }
    }
}

/// The `bpf(2)` commands this module uses, each a safe wrapper around the
/// system call with its own `bpf_attr` layout (linux/bpf.h). The kernel
/// accepts an attr shorter than its own union and treats the rest as zero.
pub(super) mod sys {
    use super::super::Insn;
    use std::io;
    use std::mem::size_of;
    use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

    const BPF_PROG_LOAD: u32 = 5;
    const BPF_PROG_ATTACH: u32 = 8;
    const BPF_PROG_DETACH: u32 = 9;
    const BPF_PROG_GET_FD_BY_ID: u32 = 13;
    const BPF_OBJ_GET_INFO_BY_FD: u32 = 15;
    const BPF_PROG_QUERY: u32 = 16;
    const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
    const BPF_CGROUP_DEVICE: u32 = 6;
    const BPF_F_ALLOW_MULTI: u32 = 1 << 1;
    /// The most programs one cgroup can hold per attach type.
    const MAX_PROGS: usize = 64;
    /// The program needs no GPL-only helper; any license string is accepted.
    const LICENSE: &[u8] = b"Apache-2.0\0";

    #[repr(C)]
    #[derive(Default)]
    struct ProgLoadAttr {
        prog_type: u32,
        insn_cnt: u32,
        insns: u64,
        license: u64,
        log_level: u32,
        log_size: u32,
        log_buf: u64,
        kern_version: u32,
        prog_flags: u32,
        prog_name: [u8; 16],
    }

    #[repr(C)]
    #[derive(Default)]
    struct AttachAttr {
        target_fd: u32,
        attach_bpf_fd: u32,
        attach_type: u32,
        attach_flags: u32,
        replace_bpf_fd: u32,
    }

    #[repr(C)]
    #[derive(Default)]
    struct QueryAttr {
        target_fd: u32,
        attach_type: u32,
        query_flags: u32,
        attach_flags: u32,
        prog_ids: u64,
        prog_cnt: u32,
        _pad: u32,
    }

    #[repr(C)]
    #[derive(Default)]
    struct GetFdByIdAttr {
        prog_id: u32,
        next_id: u32,
        open_flags: u32,
    }

    #[repr(C)]
    #[derive(Default)]
    struct InfoAttr {
        bpf_fd: u32,
        info_len: u32,
        info: u64,
    }

    /// The head of `struct bpf_prog_info`, up to the name.
    #[repr(C)]
    #[derive(Default)]
    struct ProgInfo {
        prog_type: u32,
        id: u32,
        tag: [u8; 8],
        jited_prog_len: u32,
        xlated_prog_len: u32,
        jited_prog_insns: u64,
        xlated_prog_insns: u64,
        load_time: u64,
        created_by_uid: u32,
        nr_map_ids: u32,
        map_ids: u64,
        name: [u8; 16],
    }

    /// `bpf(cmd, attr, sizeof *attr)`.
    ///
    /// # Safety
    ///
    /// `T` must be the `bpf_attr` layout of `cmd`, and every address in
    /// `attr` must point to memory that is valid, for the length `attr` gives
    /// it, to read (or, for output buffers, to write) during the call.
    unsafe fn bpf<T>(cmd: u32, attr: &mut T) -> io::Result<libc::c_long> {
        // SAFETY: `attr` is a live, exclusively borrowed `T` of the size we
        // pass; the caller guarantees the addresses inside it are valid.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                libc::c_long::from(cmd),
                std::ptr::from_mut(attr).cast::<libc::c_void>(),
                size_of::<T>(),
            )
        };
        if ret < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(ret)
        }
    }

    fn fd_u32(fd: BorrowedFd<'_>) -> u32 {
        u32::try_from(fd.as_raw_fd()).unwrap_or(u32::MAX)
    }

    fn owned_fd(ret: libc::c_long) -> io::Result<OwnedFd> {
        let raw = i32::try_from(ret).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
        // SAFETY: the command returned a new descriptor that nothing else
        // owns; the OwnedFd takes over closing it.
        Ok(unsafe { OwnedFd::from_raw_fd(raw) })
    }

    /// `BPF_PROG_LOAD` of a cgroup device program, with a verifier log into
    /// `log` when given.
    pub(in crate::cgroups::devices) fn prog_load(
        code: &[Insn],
        name: &str,
        log: Option<&mut [u8]>,
    ) -> io::Result<OwnedFd> {
        let too_big = |_| io::Error::from_raw_os_error(libc::E2BIG);
        let mut attr = ProgLoadAttr {
            prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
            insn_cnt: u32::try_from(code.len()).map_err(too_big)?,
            insns: code.as_ptr() as u64,
            license: LICENSE.as_ptr() as u64,
            ..ProgLoadAttr::default()
        };
        let n = name.len().min(attr.prog_name.len() - 1);
        attr.prog_name[..n].copy_from_slice(&name.as_bytes()[..n]);
        if let Some(log) = log {
            attr.log_level = 1;
            attr.log_size = u32::try_from(log.len()).map_err(too_big)?;
            attr.log_buf = log.as_mut_ptr() as u64;
        }
        // SAFETY: ProgLoadAttr is the BPF_PROG_LOAD layout. `insns` points to
        // `insn_cnt` instructions and `license` to a NUL-terminated string,
        // both borrowed for the whole call (the kernel copies them); the log
        // buffer, when set, is an exclusively borrowed slice of `log_size`
        // bytes that the kernel writes at most that much of.
        let ret = unsafe { bpf(BPF_PROG_LOAD, &mut attr)? };
        owned_fd(ret)
    }

    fn attach_attr(cgroup: BorrowedFd<'_>, prog: BorrowedFd<'_>, flags: u32) -> AttachAttr {
        AttachAttr {
            target_fd: fd_u32(cgroup),
            attach_bpf_fd: fd_u32(prog),
            attach_type: BPF_CGROUP_DEVICE,
            attach_flags: flags,
            ..AttachAttr::default()
        }
    }

    /// `BPF_PROG_ATTACH` of `prog` to `cgroup`, beside the programs already
    /// there (`BPF_F_ALLOW_MULTI`).
    pub(in crate::cgroups::devices) fn prog_attach(
        cgroup: BorrowedFd<'_>,
        prog: BorrowedFd<'_>,
    ) -> io::Result<()> {
        let mut attr = attach_attr(cgroup, prog, BPF_F_ALLOW_MULTI);
        // SAFETY: AttachAttr is the BPF_PROG_ATTACH layout; it holds only
        // descriptors, which the borrows keep open during the call.
        unsafe { bpf(BPF_PROG_ATTACH, &mut attr) }.map(drop)
    }

    /// `BPF_PROG_DETACH` of `prog` from `cgroup`.
    pub(in crate::cgroups::devices) fn prog_detach(
        cgroup: BorrowedFd<'_>,
        prog: BorrowedFd<'_>,
    ) -> io::Result<()> {
        let mut attr = attach_attr(cgroup, prog, 0);
        // SAFETY: AttachAttr is also the BPF_PROG_DETACH layout; it holds only
        // descriptors, which the borrows keep open during the call.
        unsafe { bpf(BPF_PROG_DETACH, &mut attr) }.map(drop)
    }

    /// `BPF_PROG_QUERY`: the ids of the device programs attached directly to
    /// `cgroup` (not those inherited from its ancestors).
    pub(in crate::cgroups::devices) fn prog_query(cgroup: BorrowedFd<'_>) -> io::Result<Vec<u32>> {
        let mut ids = vec![0u32; MAX_PROGS];
        loop {
            let mut attr = QueryAttr {
                target_fd: fd_u32(cgroup),
                attach_type: BPF_CGROUP_DEVICE,
                prog_ids: ids.as_mut_ptr() as u64,
                prog_cnt: u32::try_from(ids.len()).unwrap_or(u32::MAX),
                ..QueryAttr::default()
            };
            // SAFETY: QueryAttr is the BPF_PROG_QUERY layout; `prog_ids`
            // points to `prog_cnt` u32s of the exclusively borrowed `ids`,
            // which the kernel writes at most that many of.
            let res = unsafe { bpf(BPF_PROG_QUERY, &mut attr) };
            let count = usize::try_from(attr.prog_cnt).unwrap_or(usize::MAX);
            match res {
                Ok(_) => {
                    ids.truncate(count);
                    return Ok(ids);
                }
                // More programs than room: the kernel said how many.
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) && count > ids.len() => {
                    ids = vec![0; count];
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// `BPF_PROG_GET_FD_BY_ID`.
    pub(in crate::cgroups::devices) fn prog_get_fd_by_id(id: u32) -> io::Result<OwnedFd> {
        let mut attr = GetFdByIdAttr {
            prog_id: id,
            ..GetFdByIdAttr::default()
        };
        // SAFETY: GetFdByIdAttr is the BPF_PROG_GET_FD_BY_ID layout; it holds
        // no addresses.
        let ret = unsafe { bpf(BPF_PROG_GET_FD_BY_ID, &mut attr)? };
        owned_fd(ret)
    }

    /// The program's name (`BPF_OBJ_GET_INFO_BY_FD`), without the NUL.
    pub(in crate::cgroups::devices) fn prog_name(prog: BorrowedFd<'_>) -> io::Result<Vec<u8>> {
        let mut info = ProgInfo::default();
        let mut attr = InfoAttr {
            bpf_fd: fd_u32(prog),
            info_len: u32::try_from(size_of::<ProgInfo>()).unwrap_or(0),
            info: std::ptr::from_mut(&mut info) as u64,
        };
        // SAFETY: InfoAttr is the BPF_OBJ_GET_INFO_BY_FD layout; `info` points
        // to the exclusively borrowed `info` of `info_len` bytes, which the
        // kernel fills at most that much of. Its buffer addresses are zero,
        // so the kernel copies out nothing else.
        unsafe { bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr)? };
        let end = info
            .name
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(info.name.len());
        Ok(info.name[..end].to_vec())
    }
}
