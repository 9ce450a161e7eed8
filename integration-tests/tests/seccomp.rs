//! `linux.seccomp`: filters installed in the container's init and in exec'd
//! processes, actions observed from inside, the notify listener handed to
//! `listenerPath`.

use std::fs;
use std::io::Read;
use std::os::unix::net::UnixListener;
use std::time::Duration;

use corten_integration_tests::{require_root, Bundle, OutputExt, Runtime};
use serde_json::{json, Value};

fn profile(default: &str, rules: Value) -> Value {
    json!({
        "defaultAction": default,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
        "syscalls": rules
    })
}

#[test]
fn errno_rule_denies_only_its_syscalls() {
    require_root!();
    let mut b = Bundle::new("seccomp-errno");
    b.set("/root/readonly", json!(false))
        .set(
            "/linux/seccomp",
            profile(
                "SCMP_ACT_ALLOW",
                json!([
                    { "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13 },
                    { "names": ["no_such_syscall_name"], "action": "SCMP_ACT_ERRNO" }
                ]),
            ),
        )
        .sh("mkdir /tmp/x 2>&1; echo ok > /tmp/file && cat /tmp/file");
    let rt = Runtime::new("seccomp-errno");
    let out = rt.run_ok(b.name(), &b);
    assert!(
        out.contains("Permission denied"),
        "mkdir was not denied with EACCES: {out}"
    );
    assert!(out.ends_with("ok\n"), "{out}");
    assert!(!b.rootfs().join("tmp/x").exists());
}

#[test]
fn default_errno_with_an_allow_list() {
    require_root!();
    // A Docker-style profile: deny by default, allow what sh and echo need
    // (and what corten's init does after installing it), so mkdir gets the
    // default errno. (busybox's uname ignores errors: mkdir is observable.)
    let allowed = [
        "read",
        "write",
        "openat",
        "open",
        "close",
        "fstat",
        "newfstatat",
        "stat",
        "lstat",
        "statx",
        "mmap",
        "munmap",
        "mprotect",
        "brk",
        "rt_sigaction",
        "rt_sigprocmask",
        "rt_sigreturn",
        "ioctl",
        "access",
        "faccessat",
        "faccessat2",
        "getpid",
        "getppid",
        "getuid",
        "geteuid",
        "getgid",
        "getegid",
        "execve",
        "execveat",
        "exit",
        "exit_group",
        "arch_prctl",
        "set_tid_address",
        "set_robust_list",
        "prlimit64",
        "getrandom",
        "fcntl",
        "dup2",
        "dup3",
        "wait4",
        "clone",
        "clone3",
        "fork",
        "vfork",
        "getcwd",
        "chdir",
        "lseek",
        "readlink",
        "readlinkat",
        "sysinfo",
        "getdents64",
        "pipe",
        "pipe2",
        "sendmsg",
        "recvfrom",
        "recvmsg",
        "close_range",
        "prctl",
        "setsid",
        "getpgrp",
        "setpgid",
        "capget",
        "capset",
        "setgroups",
        "setresuid",
        "setresgid",
        "futex",
        "nanosleep",
        "clock_nanosleep",
        "rseq",
        "poll",
        "ppoll",
        "pselect6",
        "select",
        "sendto",
        "madvise",
        "sigaltstack",
        "umask",
        "uname",
    ];
    let mut b = Bundle::new("seccomp-default-errno");
    let mut p = profile(
        "SCMP_ACT_ERRNO",
        json!([{ "names": allowed.to_vec(), "action": "SCMP_ACT_ALLOW" }]),
    );
    p["defaultErrnoRet"] = json!(1);
    b.set("/linux/seccomp", p)
        .sh("echo allowed; mkdir /dev/shm/x 2>&1; echo after");
    let rt = Runtime::new("seccomp-default-errno");
    let out = rt.run_ok(b.name(), &b);
    assert!(out.starts_with("allowed\n"), "{out}");
    assert!(
        out.contains("Operation not permitted"),
        "mkdir was not denied: {out}"
    );
    assert!(out.ends_with("after\n"), "{out}");
}

#[test]
fn kill_process_action_kills_with_sigsys() {
    require_root!();
    let mut b = Bundle::new("seccomp-kill");
    b.set(
        "/linux/seccomp",
        profile(
            "SCMP_ACT_ALLOW",
            json!([{ "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_KILL_PROCESS" }]),
        ),
    )
    .sh("mkdir /dev/shm/x; echo survived");
    let rt = Runtime::new("seccomp-kill");
    let out = rt.run(b.name(), &b);
    // sh forks mkdir, which dies of SIGSYS; sh reports it and goes on.
    assert!(
        out.stdout_str().contains("survived"),
        "{}",
        out.stdout_str()
    );
    assert!(
        out.stderr_str().contains("Bad system call"),
        "{}",
        out.stderr_str()
    );
    let mut b = Bundle::new("seccomp-kill-init");
    b.set(
        "/linux/seccomp",
        profile(
            "SCMP_ACT_ALLOW",
            json!([{ "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_KILL_PROCESS" }]),
        ),
    )
    .args(&["mkdir", "/dev/shm/x"]);
    let rt = Runtime::new("seccomp-kill-init");
    let out = rt.run(b.name(), &b);
    assert_eq!(
        out.code(),
        128 + 31,
        "mkdir as pid 1 was not killed by SIGSYS"
    );
}

#[test]
fn argument_comparisons_select_calls() {
    require_root!();
    // personality(0xffffffff) only queries; deny any other value. busybox's
    // `setarch`/`linux32` call personality(PER_LINUX32).
    let mut b = Bundle::new("seccomp-args");
    b.set(
        "/linux/seccomp",
        profile(
            "SCMP_ACT_ALLOW",
            json!([{
                "names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
                "args": [{ "index": 0, "value": 8, "op": "SCMP_CMP_EQ" }]
            }]),
        ),
    )
    .sh("linux32 true 2>&1 && echo linux32-ran; echo end");
    let rt = Runtime::new("seccomp-args");
    let out = rt.run_ok(b.name(), &b);
    assert!(
        !out.contains("linux32-ran"),
        "personality(8) was allowed: {out}"
    );
    assert!(out.ends_with("end\n"), "{out}");
}

#[test]
fn exec_gets_the_container_filter() {
    require_root!();
    let mut b = Bundle::new("seccomp-exec");
    b.set(
        "/linux/seccomp",
        profile(
            "SCMP_ACT_ALLOW",
            json!([{ "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1 }]),
        ),
    )
    .args(&["sleep", "1000"]);
    let rt = Runtime::new("seccomp-exec");
    let id = b.name();
    rt.run_with(id, &b, &["--detach"])
        .assert_success("run --detach");
    let out = rt
        .cmd(&[
            "exec",
            id,
            "sh",
            "-c",
            "mkdir /dev/shm/x 2>&1; grep Seccomp: /proc/self/status",
        ])
        .assert_success("exec");
    let text = out.stdout_str();
    assert!(text.contains("Operation not permitted"), "{text}");
    assert!(text.contains("Seccomp:\t2"), "{text}");
}

#[test]
fn filter_without_no_new_privs_for_a_non_root_user() {
    require_root!();
    // Without no_new_privs the filter is installed while still privileged.
    let mut b = Bundle::new("seccomp-nnp-off");
    b.set("/process/noNewPrivileges", json!(false))
        .user(1000, 1000)
        .set(
            "/linux/seccomp",
            profile("SCMP_ACT_ALLOW", json!([{ "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1 }])),
        )
        .sh("mkdir /dev/shm/x 2>&1; id -u; grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status");
    let rt = Runtime::new("seccomp-nnp-off");
    let out = rt.run_ok(b.name(), &b);
    assert!(out.contains("Operation not permitted"), "{out}");
    assert!(out.contains("1000\n"), "{out}");
    assert!(out.contains("NoNewPrivs:\t0"), "{out}");
    assert!(out.contains("Seccomp:\t2"), "{out}");
}

#[test]
fn notify_listener_is_sent_to_listener_path() {
    require_root!();
    let rt = Runtime::new("seccomp-notify");
    let sock = rt.scratch().join("agent.sock");
    let listener = UnixListener::bind(&sock).expect("bind agent socket");
    let agent = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().expect("accept");
        // Receive the JSON and the descriptor, then close both: the kernel
        // then fails the notified syscall with ENOSYS.
        let (text, fds) = recv_listener(&mut conn, true);
        (text, fds.len())
    });
    let mut b = Bundle::new("seccomp-notify");
    let mut p = profile(
        "SCMP_ACT_ALLOW",
        json!([{ "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY" }]),
    );
    p["listenerPath"] = json!(sock.to_str().expect("utf-8"));
    p["listenerMetadata"] = json!("meta-data");
    b.set("/linux/seccomp", p)
        .sh("mkdir /dev/shm/x 2>&1; echo done");
    let id = b.name().to_owned();
    let out = rt.run_ok(&id, &b);
    assert!(out.ends_with("done\n"), "{out}");
    assert!(
        out.contains("not implemented"),
        "the notified mkdir did not fail with ENOSYS: {out}"
    );
    let (text, nfds) = agent.join().expect("agent");
    assert_eq!(nfds, 1, "no listener descriptor received");
    let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(v["fds"], json!(["seccompFd"]));
    assert_eq!(v["metadata"], "meta-data");
    assert_eq!(v["state"]["id"], json!(id));
    assert!(v["pid"].as_i64().unwrap_or(0) > 0, "{v}");
    let _ = Duration::from_secs(0);
}

/// What a seccomp agent receives on one connection: the container process
/// state JSON and the descriptors (the notify listener). With `to_eof`,
/// the rest of the JSON is read until the runtime closes the connection
/// (runc 1.1 closes it only later, so an agent that must answer at once
/// reads just the first message).
fn recv_listener(
    conn: &mut std::os::unix::net::UnixStream,
    to_eof: bool,
) -> (String, Vec<std::os::fd::OwnedFd>) {
    let mut buf = vec![0u8; 65536];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let msg = nix::sys::socket::recvmsg::<()>(
        std::os::fd::AsRawFd::as_raw_fd(&*conn),
        &mut iov,
        Some(&mut cmsg),
        nix::sys::socket::MsgFlags::empty(),
    )
    .expect("recvmsg");
    let mut fds = Vec::new();
    for c in msg.cmsgs().expect("cmsgs") {
        if let nix::sys::socket::ControlMessageOwned::ScmRights(f) = c {
            // SAFETY: SCM_RIGHTS just installed these descriptors for us.
            fds.extend(f.into_iter().map(|fd| unsafe {
                <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd)
            }));
        }
    }
    let n = msg.bytes;
    let mut text = String::from_utf8_lossy(&buf[..n]).into_owned();
    if to_eof {
        let mut rest = String::new();
        let _ = conn.read_to_string(&mut rest);
        text.push_str(&rest);
    }
    (text, fds)
}

/// A seccomp agent that lets every notified call go on
/// (`SECCOMP_USER_NOTIF_FLAG_CONTINUE`), for each listener it receives on
/// `listener`, until `deadline`.
fn continue_agent(listener: UnixListener, deadline: std::time::Instant) {
    use nix::poll::{poll, PollFd, PollFlags};
    use std::os::fd::AsFd;
    listener.set_nonblocking(true).expect("nonblocking");
    let mut fds: Vec<std::os::fd::OwnedFd> = Vec::new();
    while std::time::Instant::now() < deadline {
        if let Ok((mut conn, _)) = listener.accept() {
            conn.set_nonblocking(false).expect("blocking");
            fds.extend(recv_listener(&mut conn, false).1);
        }
        fds.retain(|fd| {
            let mut p = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
            match poll(&mut p, 10u16) {
                Ok(1)
                    if p[0]
                        .revents()
                        .is_some_and(|r| r.contains(PollFlags::POLLIN)) =>
                {
                    // SAFETY: all-zero bytes are a valid seccomp_notif (plain integers).
                    let mut n: libc::seccomp_notif = unsafe { std::mem::zeroed() };
                    // SAFETY: NOTIF_RECV writes one seccomp_notif to a live one.
                    let r = unsafe {
                        libc::ioctl(
                            std::os::fd::AsRawFd::as_raw_fd(fd),
                            libc::SECCOMP_IOCTL_NOTIF_RECV,
                            &mut n,
                        )
                    };
                    if r == 0 {
                        let resp = libc::seccomp_notif_resp {
                            id: n.id,
                            val: 0,
                            error: 0,
                            flags: libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32,
                        };
                        // SAFETY: NOTIF_SEND reads one seccomp_notif_resp.
                        unsafe {
                            libc::ioctl(
                                std::os::fd::AsRawFd::as_raw_fd(fd),
                                libc::SECCOMP_IOCTL_NOTIF_SEND,
                                &resp,
                            )
                        };
                    }
                    true
                }
                // POLLHUP: no process uses the filter any more.
                Ok(1) => false,
                _ => true,
            }
        });
        if fds.is_empty() {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Every system call the runtime itself makes after installing the filter
/// (reading its channel, the user switch, chdir, execve, …) set to notify:
/// the runtime must hand the listener over before any of them, or the
/// container never starts (runc: the fd number goes out with `write`, the
/// one call a profile may not notify on). With and without
/// `no_new_privs`, for the init and for `exec`.
#[test]
fn notify_on_the_runtimes_own_system_calls_does_not_deadlock() {
    require_root!();
    const CALLS: [&str; 32] = [
        "execve",
        "execveat",
        "openat",
        "open",
        "read",
        "readv",
        "close",
        "mmap",
        "munmap",
        "brk",
        "mprotect",
        "fstat",
        "newfstatat",
        "rt_sigaction",
        "rt_sigprocmask",
        "getpid",
        "chdir",
        "getcwd",
        "setresuid",
        "setresgid",
        "setgroups",
        "capset",
        "capget",
        "prctl",
        "recvfrom",
        "recvmsg",
        "sendto",
        "sendmsg",
        "umask",
        "fcntl",
        "exit_group",
        "close_range",
    ];
    for nnp in [true, false] {
        let rt = Runtime::new("seccomp-notify-all");
        let sock = rt.scratch().join("agent.sock");
        let listener = UnixListener::bind(&sock).expect("bind agent socket");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let agent = std::thread::spawn(move || continue_agent(listener, deadline));
        let mut b = Bundle::new("seccomp-notify-all");
        let mut p = profile(
            "SCMP_ACT_ALLOW",
            json!([{ "names": CALLS, "action": "SCMP_ACT_NOTIFY" }]),
        );
        p["listenerPath"] = json!(sock.to_str().expect("utf-8"));
        b.set("/linux/seccomp", p)
            .set("/process/noNewPrivileges", json!(nnp))
            .user(1000, 1000)
            .args(&["sleep", "30"]);
        let id = b.name().to_owned();
        rt.create(&id, &b)
            .assert_success("create with notify on the runtime's calls");
        rt.start(&id).assert_success("start");
        let out = rt.cmd(&["exec", &id, "sh", "-c", "echo exec-ok; id -u"]);
        assert_eq!(
            out.stdout_str(),
            "exec-ok\n1000\n",
            "nnp {nnp}: {}",
            out.stderr_str()
        );
        rt.cmd(&["delete", "-f", &id]).assert_success("delete");
        drop(agent);
    }
}

// --- Docker's default profile, as dockerd turns it into config.json ---

/// Docker 20.10's default capabilities.
const DOCKER_CAPS: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

fn kernel_at_least(min: &str) -> bool {
    let release = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let nums = |s: &str| -> Vec<u32> {
        s.split(|c: char| !c.is_ascii_digit())
            .take(2)
            .filter_map(|x| x.parse().ok())
            .collect()
    };
    nums(&release) >= nums(min)
}

/// Converts moby's profile format (archMap, includes/excludes by caps,
/// arches and minKernel) into an OCI `linux.seccomp` for this machine and
/// Docker's default capabilities, as dockerd does.
fn docker_profile_to_oci(moby: &Value) -> Value {
    let (scmp_arch, goarch) = if cfg!(target_arch = "aarch64") {
        ("SCMP_ARCH_AARCH64", "arm64")
    } else {
        ("SCMP_ARCH_X86_64", "amd64")
    };
    let mut arches = vec![json!(scmp_arch)];
    for m in moby["archMap"].as_array().into_iter().flatten() {
        if m["architecture"] == scmp_arch {
            arches.extend(
                m["subArchitectures"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default(),
            );
        }
    }
    let strs = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|x| x.as_str().map(str::to_owned))
            .collect()
    };
    let mut syscalls = Vec::new();
    for s in moby["syscalls"].as_array().into_iter().flatten() {
        let inc = &s["includes"];
        let exc = &s["excludes"];
        let caps_ok = strs(&inc["caps"])
            .iter()
            .all(|c| DOCKER_CAPS.contains(&c.as_str()));
        let arch_ok =
            strs(&inc["arches"]).is_empty() || strs(&inc["arches"]).iter().any(|a| a == goarch);
        let kernel_ok = inc["minKernel"].as_str().is_none_or(kernel_at_least);
        let excluded = strs(&exc["caps"])
            .iter()
            .any(|c| DOCKER_CAPS.contains(&c.as_str()))
            || strs(&exc["arches"]).iter().any(|a| a == goarch);
        if !(caps_ok && arch_ok && kernel_ok) || excluded {
            continue;
        }
        let mut rule = json!({ "names": s["names"], "action": s["action"] });
        if s["args"].as_array().is_some_and(|a| !a.is_empty()) {
            rule["args"] = s["args"].clone();
        }
        if !s["errnoRet"].is_null() {
            rule["errnoRet"] = s["errnoRet"].clone();
        }
        syscalls.push(rule);
    }
    let mut p = json!({ "defaultAction": moby["defaultAction"], "architectures": arches, "syscalls": syscalls });
    if !moby["defaultErrnoRet"].is_null() {
        p["defaultErrnoRet"] = moby["defaultErrnoRet"].clone();
    }
    p
}

#[test]
fn docker_default_profile_behaves_as_under_runc() {
    require_root!();
    let path = std::env::var("CORTEN_DOCKER_SECCOMP_PROFILE").unwrap_or_else(|_| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../target/docker-seccomp/default.json"
        )
        .to_owned()
    });
    let Ok(text) = fs::read_to_string(&path) else {
        corten_integration_tests::skip(
            "docker_default_profile_behaves_as_under_runc",
            &format!("{path} missing (`make deps` extracts it from Debian's golang-github-docker-docker-dev)"),
        );
        return;
    };
    let profile =
        docker_profile_to_oci(&serde_json::from_str(&text).expect("Docker's profile is JSON"));
    let script = "echo start; ls / >/dev/null && echo ls-ok; mkdir /dev/shm/d && echo mkdir-ok; \
                  grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status; \
                  unshare -U true 2>&1 | head -c 60; echo; mount -t tmpfs none /mnt 2>&1 | head -c 60; echo; \
                  chroot / true && echo chroot-ok; echo end";
    let run_with = |bin: &str, name: &str| -> String {
        let mut b = Bundle::new(name);
        b.set("/linux/seccomp", profile.clone())
            .set("/process/capabilities/bounding", json!(DOCKER_CAPS))
            .set("/process/capabilities/effective", json!(DOCKER_CAPS))
            .set("/process/capabilities/permitted", json!(DOCKER_CAPS))
            .sh(script);
        let rt = Runtime::new(name).with_bin(bin);
        rt.run_ok(b.name(), &b)
    };
    let corten = run_with(
        &corten_integration_tests::runtime_bin().to_string_lossy(),
        "docker-profile-corten",
    );
    assert!(
        corten.contains("ls-ok") && corten.contains("mkdir-ok") && corten.ends_with("end\n"),
        "{corten}"
    );
    assert!(corten.contains("Seccomp:\t2"), "{corten}");
    assert!(
        corten.contains("Operation not permitted"),
        "unshare/mount were not denied: {corten}"
    );
    let runc = ["/usr/sbin/runc", "/usr/bin/runc"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists());
    match runc {
        Some(runc) => {
            let reference = run_with(runc, "docker-profile-runc");
            assert_eq!(
                corten, reference,
                "corten and runc differ under Docker's profile"
            );
        }
        None => corten_integration_tests::skip(
            "docker_default_profile_behaves_as_under_runc",
            "runc not installed: no side-by-side comparison",
        ),
    }
}
