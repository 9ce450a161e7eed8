//! The filters in the real kernel. Each scenario runs in a fresh copy of
//! this test binary (started with `--exact seccomp::tests::kernel::child_entry`
//! and the scenario in the environment), which sets `no_new_privs`, installs
//! a filter and makes system calls; its exit status is the verdict. Needs no
//! privilege.

use std::io::{ErrorKind, IoSliceMut, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use nix::unistd::{Pid, Whence};
use serde_json::{json, Value};

use super::compile;
use crate::seccomp::arch::Arch;
use crate::seccomp::send_to_listener;

const SCENARIO: &str = "CORTEN_SECCOMP_TEST_SCENARIO";
const SOCKET: &str = "CORTEN_SECCOMP_TEST_SOCKET";

/// The children's entry point; returns at once in a normal test run.
#[test]
fn child_entry() {
    let Ok(scenario) = std::env::var(SCENARIO) else {
        return;
    };
    let code = match scenario.as_str() {
        "errno" => errno_child(),
        "kill" => kill_child(),
        "default" => default_child(),
        "notify" => notify_child(),
        _ => 100,
    };
    std::process::exit(code);
}

// ---- parent side ----

/// A user-mode emulator (the arm64 unit tests under `qemu-aarch64-static`)
/// can neither execute the spawned test binary nor install a filter.
fn skip_spawn_under_emulation(test: &str) -> bool {
    crate::test_support::skip_under_emulation(
        &format!("seccomp::tests::kernel::{test}"),
        "the emulator cannot exec the spawned aarch64 test binary (no binfmt_misc) \
         nor install seccomp filters; covered by the arm64 VM",
    )
}

fn spawn(scenario: &str, socket: Option<&Path>) -> Child {
    let mut cmd = Command::new(std::env::current_exe().expect("the test binary"));
    cmd.args([
        "--exact",
        "seccomp::tests::kernel::child_entry",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(SCENARIO, scenario)
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    if let Some(path) = socket {
        cmd.env(SOCKET, path);
    }
    cmd.spawn().expect("spawn the test binary")
}

fn finish(child: Child) -> (ExitStatus, String) {
    let out = child.wait_with_output().expect("wait for the child");
    (
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("corten-seccomp-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

#[test]
fn errno_rules_with_arguments() {
    if skip_spawn_under_emulation("errno_rules_with_arguments") {
        return;
    }
    let (status, stderr) = finish(spawn("errno", None));
    assert_eq!(status.code(), Some(0), "{status:?}: {stderr}");
}

#[test]
fn kill_process_kills_with_sigsys() {
    if skip_spawn_under_emulation("kill_process_kills_with_sigsys") {
        return;
    }
    let (status, stderr) = finish(spawn("kill", None));
    assert_eq!(status.signal(), Some(libc::SIGSYS), "{status:?}: {stderr}");
}

#[test]
fn default_action_and_enosys_for_newer_calls() {
    if skip_spawn_under_emulation("default_action_and_enosys_for_newer_calls") {
        return;
    }
    let (status, stderr) = finish(spawn("default", None));
    assert_eq!(status.code(), Some(0), "{status:?}: {stderr}");
}

#[test]
fn notify_listener_receives_and_answers_the_calls() {
    if skip_spawn_under_emulation("notify_listener_receives_and_answers_the_calls") {
        return;
    }
    let dir = scratch("notify");
    let path = dir.join("agent.sock");
    let listener = UnixListener::bind(&path).expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let mut child = spawn("notify", Some(&path));
    let deadline = Instant::now() + Duration::from_secs(60);

    let stream = loop {
        match listener.accept() {
            Ok((stream, _)) => break stream,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                if child.try_wait().expect("try_wait").is_some() {
                    let (status, stderr) = finish(child);
                    panic!("the child ended before connecting: {status:?}: {stderr}");
                }
                assert!(Instant::now() < deadline, "no connection");
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("accept: {e}"),
        }
    };
    stream.set_nonblocking(false).expect("blocking");
    let (state, fd) = receive(&stream);
    let pid = child.id();
    assert_eq!(state["fds"], json!(["seccompFd"]));
    assert_eq!(state["pid"], json!(pid));
    assert_eq!(state["metadata"], json!("meta"));
    assert_eq!(state["ociVersion"], json!(crate::spec::OCI_VERSION));
    assert_eq!(state["state"]["id"], json!("seccomp-test"));
    assert_eq!(state["state"]["status"], json!("creating"));

    // First getcwd: answered with an error.
    let notif = next_notification(fd.as_fd(), deadline);
    assert_eq!(i64::from(notif.data.nr), libc::SYS_getcwd);
    assert_eq!(notif.data.arch, Arch::native().expect("host").audit());
    // The calling thread's id: libtest runs the child's test on a thread.
    assert!(
        Path::new(&format!("/proc/{pid}/task/{}", notif.pid)).exists(),
        "{} is not a thread of {pid}",
        notif.pid
    );
    respond(fd.as_fd(), notif.id, -77, 0);
    // Second: let the kernel run it.
    let notif = next_notification(fd.as_fd(), deadline);
    let cont = u32::try_from(libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE).expect("flag");
    respond(fd.as_fd(), notif.id, 0, cont);

    let (status, stderr) = finish(child);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(status.code(), Some(0), "{status:?}: {stderr}");
}

#[test]
fn send_to_listener_passes_the_state_and_the_fd() {
    let dir = scratch("listener");
    let path = dir.join("agent.sock");
    let listener = UnixListener::bind(&path).expect("bind");
    let (read_end, _write_end) = nix::unistd::pipe().expect("pipe");
    let path_str = path.to_str().expect("utf-8 path");
    let annotations = Default::default();
    let state = crate::state::HookState {
        oci_version: "1.0.2-dev",
        id: "c1",
        status: crate::state::Status::Creating,
        pid: 4242,
        bundle: std::path::Path::new("/bundle"),
        annotations: &annotations,
    };

    send_to_listener(path_str, "MKNOD=/dev/null", read_end.as_fd(), 4242, &state).expect("send");
    let (stream, _) = listener.accept().expect("accept");
    let (message, fd) = receive(&stream);
    assert_eq!(
        message,
        json!({ "ociVersion": crate::spec::OCI_VERSION, "fds": ["seccompFd"], "pid": 4242,
                "metadata": "MKNOD=/dev/null",
                "state": { "ociVersion": "1.0.2-dev", "id": "c1", "status": "creating",
                           "pid": 4242, "bundle": "/bundle" } })
    );
    // runc's field order (ContainerProcessState): metadata before state.
    let keys: Vec<&str> = message
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["ociVersion", "fds", "pid", "metadata", "state"]);
    let ino = |fd: OwnedFd| std::fs::File::from(fd).metadata().expect("fstat").ino();
    assert_eq!(
        ino(fd),
        ino(read_end.try_clone().expect("dup")),
        "not the same pipe"
    );

    // Empty metadata is left out, as runc's omitempty does.
    send_to_listener(path_str, "", read_end.as_fd(), 1, &state).expect("send");
    let (stream, _) = listener.accept().expect("accept");
    let (message, _) = receive(&stream);
    assert!(message.get("metadata").is_none(), "{message}");

    let missing = dir.join("missing.sock");
    let err = send_to_listener(
        missing.to_str().expect("utf-8"),
        "",
        read_end.as_fd(),
        1,
        &state,
    )
    .expect_err("no agent");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        err.to_string()
            .starts_with("failed to connect with seccomp agent specified in the seccomp profile"),
        "{err}"
    );
}

/// The JSON and the one descriptor sent over `stream`, read to its end.
fn receive(stream: &UnixStream) -> (Value, OwnedFd) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut cmsg = nix::cmsg_space!([RawFd; 1]);
    let (len, fds) = {
        let mut iov = [IoSliceMut::new(&mut buf)];
        let msg = recvmsg::<()>(
            stream.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .expect("recvmsg");
        let mut fds = Vec::new();
        for c in msg.cmsgs().expect("cmsgs") {
            if let ControlMessageOwned::ScmRights(received) = c {
                fds.extend(received);
            }
        }
        (msg.bytes, fds)
    };
    buf.truncate(len);
    let mut rest = Vec::new();
    (&*stream).read_to_end(&mut rest).expect("read the rest");
    buf.extend(rest);
    assert_eq!(fds.len(), 1, "descriptors received: {fds:?}");
    // SAFETY: SCM_RIGHTS installed this descriptor in our table for us;
    // nothing else refers to it.
    let fd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fds[0]) };
    (serde_json::from_slice(&buf).expect("JSON"), fd)
}

fn next_notification(fd: BorrowedFd<'_>, deadline: Instant) -> libc::seccomp_notif {
    let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
    let left = deadline.saturating_duration_since(Instant::now());
    let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
    assert_eq!(poll(&mut fds, ms).expect("poll"), 1, "no notification");
    // SAFETY: seccomp_notif is plain integers, for which all-zero bytes are
    // a valid value (and the kernel wants it zeroed).
    let mut notif: libc::seccomp_notif = unsafe { std::mem::zeroed() };
    // SAFETY: SECCOMP_IOCTL_NOTIF_RECV writes one seccomp_notif to the
    // pointer, which is a live, writable seccomp_notif.
    let ret = unsafe {
        libc::ioctl(
            fd.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_RECV,
            &mut notif as *mut libc::seccomp_notif,
        )
    };
    assert_eq!(ret, 0, "NOTIF_RECV: {}", std::io::Error::last_os_error());
    notif
}

fn respond(fd: BorrowedFd<'_>, id: u64, error: i32, flags: u32) {
    let resp = libc::seccomp_notif_resp {
        id,
        val: 0,
        error,
        flags,
    };
    // SAFETY: SECCOMP_IOCTL_NOTIF_SEND reads one seccomp_notif_resp from
    // the pointer, which points at one.
    let ret = unsafe {
        libc::ioctl(
            fd.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_SEND,
            &resp as *const libc::seccomp_notif_resp,
        )
    };
    assert_eq!(ret, 0, "NOTIF_SEND: {}", std::io::Error::last_os_error());
}

// ---- child side (in the re-executed test binary) ----

/// Compiles `profile`, sets `no_new_privs` and installs the filter; an exit
/// code on failure.
fn install(profile: &Value) -> Result<Option<OwnedFd>, i32> {
    let filter = compile(profile).map_err(|e| {
        eprintln!("compile: {e}");
        90
    })?;
    nix::sys::prctl::set_no_new_privs().map_err(|e| {
        eprintln!("no_new_privs: {e}");
        91
    })?;
    filter.install().map_err(|e| {
        eprintln!("install: {e}");
        92
    })
}

/// The errno of a result, 0 for success.
fn errno_of<T>(result: nix::Result<T>) -> i32 {
    result.err().map_or(0, |e| e as i32)
}

/// 0 when every `(what, got, want)` agrees, else 10 + the first that does
/// not (reported on stderr when the filter lets `write` through).
fn verdict(checks: &[(&str, i32, i32)]) -> i32 {
    for (i, (what, got, want)) in checks.iter().enumerate() {
        if got != want {
            eprintln!("{what}: errno {got}, expected {want}");
            return 10 + i32::try_from(i).unwrap_or(80);
        }
    }
    0
}

fn errno_child() -> i32 {
    let profile = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            { "names": ["getcwd"], "action": "SCMP_ACT_ERRNO" },
            { "names": ["getpgid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 42,
              "args": [{ "index": 0, "value": 0x1234, "op": "SCMP_CMP_EQ" }] },
            { "names": ["lseek"], "action": "SCMP_ACT_ERRNO", "errnoRet": 55,
              "args": [{ "index": 1, "value": 0x1_0000_0005u64, "op": "SCMP_CMP_EQ" }] },
            { "names": ["fchdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 66,
              "args": [{ "index": 0, "value": 0xff00, "valueTwo": 0x1200, "op": "SCMP_CMP_MASKED_EQ" }] },
            { "names": ["dup"], "action": "SCMP_ACT_ERRNO", "errnoRet": 77,
              "args": [{ "index": 0, "value": 1000, "op": "SCMP_CMP_GT" }] }
        ]
    });
    if let Err(code) = install(&profile) {
        return code;
    }
    let ebadf = libc::EBADF;
    verdict(&[
        ("getcwd", errno_of(nix::unistd::getcwd()), libc::EPERM),
        (
            "getpgid(0x1234)",
            errno_of(nix::unistd::getpgid(Some(Pid::from_raw(0x1234)))),
            42,
        ),
        ("getpgid(0)", errno_of(nix::unistd::getpgid(None)), 0),
        (
            "lseek(0x1_0000_0005)",
            errno_of(nix::unistd::lseek(-1, 0x1_0000_0005, Whence::SeekSet)),
            55,
        ),
        (
            "lseek(5)",
            errno_of(nix::unistd::lseek(-1, 5, Whence::SeekSet)),
            ebadf,
        ),
        ("fchdir(0x12ab)", errno_of(nix::unistd::fchdir(0x12ab)), 66),
        (
            "fchdir(0x13ab)",
            errno_of(nix::unistd::fchdir(0x13ab)),
            ebadf,
        ),
        ("dup(1001)", errno_of(nix::unistd::dup(1001)), 77),
        ("dup(999)", errno_of(nix::unistd::dup(999)), ebadf),
    ])
}

fn kill_child() -> i32 {
    let profile = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{ "names": ["getcwd"], "action": "SCMP_ACT_KILL_PROCESS" }]
    });
    if let Err(code) = install(&profile) {
        return code;
    }
    let _ = nix::unistd::getcwd();
    eprintln!("getcwd returned");
    1
}

fn default_child() -> i32 {
    let native = match Arch::native() {
        Some(Arch::Aarch64) => "SCMP_ARCH_AARCH64",
        _ => "SCMP_ARCH_X86_64",
    };
    // Nothing can be printed once this is in place: write is refused.
    let profile = json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 99,
        "architectures": [native],
        "syscalls": [
            { "names": ["exit_group", "exit", "getpid"], "action": "SCMP_ACT_ALLOW" },
            { "names": ["getpgid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 12 }
        ]
    });
    if let Err(code) = install(&profile) {
        return code;
    }
    let getpid = if nix::unistd::getpid().as_raw() > 0 {
        0
    } else {
        -1
    };
    let memfd = nix::sys::memfd::memfd_create(c"x", nix::sys::memfd::MemFdCreateFlag::MFD_CLOEXEC);
    verdict(&[
        ("getpid", getpid, 0),
        ("getcwd", errno_of(nix::unistd::getcwd()), 99),
        ("getpgid", errno_of(nix::unistd::getpgid(None)), 12),
        (
            "memfd_create (newer than the profile)",
            errno_of(memfd),
            Errno::ENOSYS as i32,
        ),
    ])
}

fn notify_child() -> i32 {
    let Ok(socket) = std::env::var(SOCKET) else {
        return 95;
    };
    let profile = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": socket,
        "listenerMetadata": "meta",
        "flags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
                  "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
        "syscalls": [{ "names": ["getcwd"], "action": "SCMP_ACT_NOTIFY" }]
    });
    let fd = match install(&profile) {
        Ok(Some(fd)) => fd,
        Ok(None) => return 93,
        Err(code) => return code,
    };
    let pid = i32::try_from(std::process::id()).unwrap_or(-1);
    let annotations = Default::default();
    let state = crate::state::HookState {
        oci_version: "1.0.2-dev",
        id: "seccomp-test",
        status: crate::state::Status::Creating,
        pid,
        bundle: std::path::Path::new("/bundle"),
        annotations: &annotations,
    };
    if let Err(e) = send_to_listener(&socket, "meta", fd.as_fd(), pid, &state) {
        eprintln!("{e}");
        return 94;
    }
    drop(fd);
    verdict(&[
        (
            "getcwd answered with an error",
            errno_of(nix::unistd::getcwd()),
            77,
        ),
        ("getcwd continued", errno_of(nix::unistd::getcwd()), 0),
    ])
}
