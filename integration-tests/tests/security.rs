//! Regression tests for container breakouts. Each test attacks one
//! invariant from the design notes; a runtime passes by refusing the
//! container or by running it with the attack contained. Every "host" file
//! the attacks aim at is a file of the test's own bundle.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::os::fd::AsFd;
use std::os::unix::fs::symlink;
use std::path::Path;

use corten_integration_tests::{mounts_under, require_root, Bundle, OutputExt, Runtime};
use serde_json::json;

/// Names of the entries of a host directory.
fn listing(dir: &Path) -> BTreeSet<String> {
    fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// A directory of the bundle outside the rootfs, holding `original`.
fn host_marker_dir(b: &Bundle) -> std::path::PathBuf {
    b.write_file("host-marker/original", "original\n");
    b.path().join("host-marker")
}

fn assert_marker_untouched(dir: &Path) {
    assert_eq!(
        listing(dir),
        BTreeSet::from(["original".to_owned()]),
        "host dir {} modified",
        dir.display()
    );
    assert_eq!(
        fs::read_to_string(dir.join("original")).expect("marker"),
        "original\n"
    );
    assert!(
        mounts_under(dir).is_empty(),
        "host dir {} mounted over",
        dir.display()
    );
}

// --- CVE-2024-21626: leaked descriptors and a cwd outside the container ---

#[test]
fn only_stdio_reaches_the_container() {
    require_root!();
    let mut b = Bundle::new("fd-leak");
    // `; true` keeps sh (pid 1) from exec'ing ls, so ls lists sh's descriptors.
    b.sh("ls /proc/$$/fd; true");
    let rt = Runtime::new("fd-leak");
    // Descriptors the caller leaks to the runtime must not reach the container.
    let dir = File::open(b.path()).expect("open bundle dir");
    let file = File::open(b.path().join("config.json")).expect("open config");
    let out = rt.run_with_fds(b.name(), &b, &[], &[(dir.as_fd(), 7), (file.as_fd(), 5)]);
    assert_eq!(
        out.assert_success("run").stdout_str(),
        "0\n1\n2\n",
        "descriptors beyond stdio reached the container"
    );
}

#[test]
fn only_stdio_reaches_the_container_after_create_and_start() {
    require_root!();
    let mut b = Bundle::new("fd-leak-create");
    // `; true` keeps sh (pid 1) from exec'ing ls, so ls lists sh's descriptors.
    b.sh("ls /proc/$$/fd; true");
    let rt = Runtime::new("fd-leak-create");
    let id = b.name();
    let dir = File::open(b.path()).expect("open bundle dir");
    rt.create_with_fds(id, &b, &[], &[(dir.as_fd(), 7)])
        .assert_success("create");
    rt.start(id).assert_success("start");
    rt.wait_status(id, "stopped");
    assert_eq!(rt.container_stdout(id), "0\n1\n2\n");
}

#[test]
fn preserve_fds_passes_exactly_the_requested_descriptors() {
    require_root!();
    let mut b = Bundle::new("preserve-fds");
    b.sh("ls /proc/$$/fd; cat <&3");
    let rt = Runtime::new("preserve-fds");
    let passed = b.write_file("passed", "through-fd-3\n");
    let passed = File::open(passed).expect("open");
    let other = File::open(b.path()).expect("open bundle dir");
    let out = rt.run_with_fds(
        b.name(),
        &b,
        &["--preserve-fds", "1"],
        &[(passed.as_fd(), 3), (other.as_fd(), 4)],
    );
    assert_eq!(
        out.assert_success("run --preserve-fds 1").stdout_str(),
        "0\n1\n2\n3\nthrough-fd-3\n"
    );
}

/// Start a container whose cwd is `cwd` and report where it really is: the
/// run must fail, or the cwd must lie inside the container root.
fn assert_cwd_contained(test: &str, cwd: &str, prepare: impl FnOnce(&Bundle)) {
    let mut b = Bundle::new(test);
    prepare(&b);
    fs::write(b.rootfs().join("ROOTFS-MARKER"), "").expect("rootfs marker");
    b.write_file("HOST-MARKER", "");
    b.set("/process/cwd", json!(cwd)).sh(
        "up=../../../../../../../../../../..; test -e $up/ROOTFS-MARKER && echo root-is-container; \
         test -e $up/HOST-MARKER && echo host-visible; readlink /proc/self/cwd",
    );
    let rt = Runtime::new(test);
    let dir = File::open(b.path()).expect("open bundle dir");
    let out = rt.run_with_fds(b.name(), &b, &[], &[(dir.as_fd(), 7)]);
    if !out.status.success() {
        return; // refused: fine
    }
    let text = out.stdout_str();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.first().copied(),
        Some("root-is-container"),
        "cwd {cwd:?} escaped the container: {text:?}"
    );
    assert!(
        !text.contains("host-visible"),
        "cwd {cwd:?} reaches the host: {text:?}"
    );
    assert!(
        lines.get(1).is_some_and(|l| l.starts_with('/')),
        "cwd {cwd:?} is outside the root: {text:?}"
    );
}

#[test]
fn cwd_through_proc_self_fd_stays_inside() {
    require_root!();
    for fd in 3..=12 {
        assert_cwd_contained("cwd-proc-fd", &format!("/proc/self/fd/{fd}"), |_| {});
    }
}

#[test]
fn cwd_with_dotdot_stays_inside() {
    require_root!();
    assert_cwd_contained("cwd-dotdot", "/../../../../../..", |_| {});
}

#[test]
fn cwd_through_symlink_stays_inside() {
    require_root!();
    assert_cwd_contained("cwd-symlink", "/escape", |b| {
        symlink("../../../../../../../../../..", b.rootfs().join("escape")).expect("symlink");
    });
    assert_cwd_contained("cwd-symlink-abs", "/escape", |b| {
        symlink(b.path(), b.rootfs().join("escape")).expect("symlink");
    });
}

// --- CVE-2019-5736: overwriting the runtime binary through /proc/<pid>/exe ---

#[test]
fn runtime_binary_cannot_be_read_or_written_through_proc_exe() {
    require_root!();
    let rt = Runtime::new("exe-overwrite");
    let binary = fs::canonicalize(rt.bin()).expect("runtime binary");
    let before = fs::read(&binary).expect("read runtime binary");

    // A is left in `created`: its pid 1 is still the runtime's init.
    let mut a = Bundle::new("exe-overwrite-a");
    a.args(&["sleep", "1000"]);
    rt.create(a.name(), &a).assert_success("create A");
    let a_pid = rt.pid(a.name());

    // B joins A's pid namespace (so A's init is B's pid 1) with default caps.
    let mut b = Bundle::new("exe-overwrite-b");
    b.join_namespace("pid", &format!("/proc/{a_pid}/ns/pid"))
        .sh("cat /proc/1/exe > /dev/null 2>&1 && echo read-ok; \
         echo x >> /proc/1/exe 2>/dev/null && echo write-ok; echo done");
    let out = rt.run(b.name(), &b).assert_success("run B");
    assert_eq!(
        out.stdout_str(),
        "done\n",
        "the runtime's init was reachable through /proc/1/exe"
    );

    let after = fs::read(&binary).expect("read runtime binary");
    assert!(
        before == after,
        "the runtime binary {} changed",
        binary.display()
    );
    assert_eq!(rt.status(a.name()), "created");
}

/// Whatever reaches the init's executable before `start` (a process of the
/// container through `/proc/<pid>/exe`, or a `#!/proc/self/exe` entrypoint
/// that re-executes it inside the container) must not be able to write the
/// runtime's binary. The reference is taken as such a process would (an
/// `O_PATH` descriptor of `/proc/<init>/exe`); after `start` has replaced
/// the init's image, the test (host root, a stronger attacker) reopens it
/// for writing through `/proc/self/fd`.
fn assert_runtime_unwritable_through_the_init(test: &str, deny_open_tree: bool) {
    use std::io::Write;
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    // A private copy of the runtime: while any process executes a file,
    // opening it for writing fails with ETXTBSY before the mount is even
    // looked at, and other tests run the shared binary all the time.
    let rt = Runtime::new(test);
    let private = rt.scratch().join("corten-copy");
    fs::copy(rt.bin(), &private).expect("copy the runtime");
    let rt = rt.with_bin(private.to_str().expect("utf-8"));
    let binary = private;
    let before = fs::read(&binary).expect("read runtime binary");
    let mut b = Bundle::new(test);
    b.args(&["sleep", "1000"]);
    b.save();
    let id = b.name();
    let mut cmd = rt.command();
    cmd.arg("create")
        .arg("--bundle")
        .arg(b.path())
        .arg("--pid-file")
        .arg(rt.pid_file(id))
        .arg(id);
    if deny_open_tree {
        // As on a kernel or under a profile without the new mount API.
        corten_integration_tests::deny_syscalls(&mut cmd, &[(libc::SYS_open_tree, libc::EPERM)]);
    }
    rt.output(cmd).assert_success("create");
    let pid = rt.pid(id);
    let exe = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH)
        .open(format!("/proc/{pid}/exe"))
        .expect("open /proc/<init>/exe");
    let link = fs::read_link(format!("/proc/{pid}/exe")).expect("readlink exe");
    let ro_mount = nix::sys::statvfs::fstatvfs(&exe)
        .expect("fstatvfs")
        .flags()
        .contains(nix::sys::statvfs::FsFlags::ST_RDONLY);
    if deny_open_tree {
        assert!(
            link.to_string_lossy().starts_with("/memfd:corten"),
            "without open_tree the init should run from a sealed memfd, not {}",
            link.display()
        );
    } else {
        assert!(
            ro_mount,
            "the init's executable {} is on a writable mount",
            link.display()
        );
    }
    rt.start(id).assert_success("start");
    let execed = corten_integration_tests::wait_until(std::time::Duration::from_secs(10), || {
        fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|p| p.ends_with("busybox"))
    });
    assert!(execed, "the init did not exec the container process");
    match fs::OpenOptions::new()
        .write(true)
        .open(format!("/proc/self/fd/{}", exe.as_raw_fd()))
    {
        Err(e) => assert_eq!(
            e.raw_os_error(),
            Some(libc::EROFS),
            "reopening the init's former executable for writing failed, but not as read-only: {e}"
        ),
        Ok(mut f) => {
            assert!(!ro_mount, "opened a file on a read-only mount for writing");
            let w = f.write(b"#!/bin/sh\n");
            assert!(
                w.is_err(),
                "wrote into the runtime's executable through /proc/<init>/exe"
            );
        }
    }
    let after = fs::read(&binary).expect("read runtime binary");
    assert!(
        before == after,
        "the runtime binary {} changed",
        binary.display()
    );
    rt.cmd(&["delete", "--force", id]).assert_success("delete");
}

#[test]
fn the_runtime_cannot_be_written_through_the_inits_exe() {
    require_root!();
    // The default: a detached read-only bind of the binary.
    assert_runtime_unwritable_through_the_init("exe-ro-bind", false);
}

#[test]
fn without_open_tree_the_init_runs_from_a_sealed_memfd() {
    require_root!();
    assert_runtime_unwritable_through_the_init("exe-memfd", true);
}

// --- CVE-2021-30465: mount destinations through symlinks ---

#[test]
fn mount_destination_symlinks_resolve_inside_the_rootfs() {
    require_root!();
    let mut b = Bundle::new("mount-symlink");
    let marker = host_marker_dir(&b);
    b.write_file("volume/volume-file", "volume\n");
    let volume = b.path().join("volume");
    let volume = volume.to_str().expect("utf-8");
    let marker_str = marker.to_str().expect("utf-8");
    // Naively resolved from the host, each of these reaches the marker dir.
    symlink("../host-marker", b.rootfs().join("evil-rel")).expect("symlink");
    symlink(&marker, b.rootfs().join("evil-abs")).expect("symlink");
    symlink(
        format!("../../../../../../../../..{marker_str}"),
        b.rootfs().join("evil-up"),
    )
    .expect("symlink");
    b.set("/root/readonly", json!(false))
        .mount("/evil-rel", "bind", volume, &["bind"])
        .mount("/evil-abs/inner", "bind", volume, &["bind"])
        .mount("/evil-up/inner2", "bind", volume, &["bind"])
        .sh("cat /evil-rel/volume-file /evil-abs/inner/volume-file /evil-up/inner2/volume-file");
    let rt = Runtime::new("mount-symlink");
    let out = rt.run(b.name(), &b);
    if out.status.success() {
        assert_eq!(
            out.stdout_str(),
            "volume\nvolume\nvolume\n",
            "the mounts did not land inside the rootfs"
        );
    }
    assert_marker_untouched(&marker);
}

// --- CVE-2023-27561: /proc or /sys replaced by a symlink ---

fn assert_symlinked_dir_refused(test: &str, dir: &str) {
    let b = Bundle::new(test);
    let target = b.path().join(format!("fake-{dir}"));
    fs::create_dir(&target).expect("mkdir fake target");
    fs::remove_dir(b.rootfs().join(dir)).expect("rmdir");
    symlink(&target, b.rootfs().join(dir)).expect("symlink");
    let rt = Runtime::new(test);
    rt.create(b.name(), &b)
        .assert_failure(&format!("create with /{dir} a symlink"));
    assert!(
        listing(&target).is_empty(),
        "something was written through the /{dir} symlink"
    );
    assert!(mounts_under(&target).is_empty());
    assert!(rt.root_entries().is_empty(), "state left after the refusal");
}

#[test]
fn proc_symlink_is_refused() {
    require_root!();
    assert_symlinked_dir_refused("proc-symlink", "proc");
}

#[test]
fn sys_symlink_is_refused() {
    require_root!();
    assert_symlinked_dir_refused("sys-symlink", "sys");
}

// --- CVE-2025-31133: a fake /dev/null used to mask paths ---

/// A bundle whose /dev is a bind of `<bundle>/fakedev`, with `null` made by
/// `make_null`, and /etc/masked (plus the default list) to be masked.
fn fake_dev_bundle(test: &str, make_null: impl FnOnce(&Bundle, &Path)) -> Bundle {
    let mut b = Bundle::new(test);
    let fakedev = b.path().join("fakedev");
    fs::create_dir(&fakedev).expect("mkdir fakedev");
    make_null(&b, &fakedev.join("null"));
    b.write_file("rootfs/etc/masked", "masked-content\n");
    for dest in ["/dev", "/dev/pts", "/dev/shm", "/dev/mqueue"] {
        b.remove_mount(dest);
    }
    // Mounts are applied in order: /dev must come before anything below it.
    let mounts = b.config()["mounts"].as_array().cloned().unwrap_or_default();
    b.set("/mounts", json!([]))
        .mount("/dev", "bind", fakedev.to_str().expect("utf-8"), &["rbind"]);
    for m in mounts {
        b.push("/mounts", m);
    }
    b.set("/root/readonly", json!(false))
        .push("/linux/maskedPaths", json!("/etc/masked"))
        .sh("cat /etc/masked 2>&1; echo pwned >> /etc/masked 2>/dev/null; cat /proc/timer_list 2>&1 | head -c 100; echo done");
    b
}

#[test]
fn fake_dev_null_regular_file_is_not_used_for_masking() {
    require_root!();
    let b = fake_dev_bundle("fake-null-file", |_, null| {
        fs::write(null, "fake-null\n").expect("fake null")
    });
    let rt = Runtime::new("fake-null-file");
    let out = rt.run(b.name(), &b);
    if out.status.success() {
        let text = out.stdout_str();
        assert!(
            !text.contains("fake-null"),
            "a masked path shows the fake /dev/null: {text:?}"
        );
        assert!(
            !text.contains("masked-content"),
            "/etc/masked not masked: {text:?}"
        );
    }
    assert_eq!(
        fs::read_to_string(b.path().join("fakedev/null")).expect("fake null"),
        "fake-null\n"
    );
}

#[test]
fn fake_dev_null_symlink_is_not_used_for_masking() {
    require_root!();
    let b = {
        let mut b = fake_dev_bundle("fake-null-link", |b, null| {
            b.write_file("hostdata/secret", "secret\n");
            symlink("/hostdata/secret", null).expect("symlink");
        });
        let hostdata = b.path().join("hostdata");
        b.mount(
            "/hostdata",
            "bind",
            hostdata.to_str().expect("utf-8"),
            &["bind", "ro"],
        );
        b
    };
    let rt = Runtime::new("fake-null-link");
    let out = rt.run(b.name(), &b);
    if out.status.success() {
        let text = out.stdout_str();
        assert!(
            !text.contains("secret"),
            "a masked path exposes the symlink target: {text:?}"
        );
    }
    assert_eq!(
        fs::read_to_string(b.path().join("hostdata/secret")).expect("secret"),
        "secret\n",
        "the container wrote through the fake /dev/null"
    );
}

// --- a runtime that itself runs in a chroot (a build root, a fresh-install
// tree, a container of containers) ---

/// Whether the ELF file at `path` names a program interpreter (is
/// dynamically linked): a `PT_INTERP` program header (ELF64, little endian).
fn has_interpreter(path: &Path) -> bool {
    let Ok(elf) = fs::read(path) else { return true };
    let u16_at = |o: usize| {
        elf.get(o..o + 2)
            .map_or(0, |b| u16::from_le_bytes([b[0], b[1]]) as usize)
    };
    let Some(phoff) = elf
        .get(32..40)
        .map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])) as usize)
    else {
        return true;
    };
    let (size, count) = (u16_at(54), u16_at(56));
    (0..count).any(|i| {
        let at = phoff + i * size;
        elf.get(at..at + 4) == Some(&3u32.to_le_bytes()[..])
    })
}

/// pivot_root from a chroot leaves the host's tree above the container's
/// root in the container's mount namespace, and joining that namespace puts
/// a process at its root: an `exec` that only joins it lands in the host's
/// filesystem (runc 1.1 does). corten enters the init's own root.
#[test]
fn exec_from_a_chrooted_runtime_enters_the_container_root() {
    require_root!();
    let bin = corten_integration_tests::runtime_bin();
    if has_interpreter(&bin) {
        corten_integration_tests::skip(
            "exec_from_a_chrooted_runtime_enters_the_container_root",
            "the runtime binary is dynamically linked and cannot run in a bare chroot (make build gives a static one)",
        );
        return;
    }
    let mut b = Bundle::new("chroot-exec");
    b.args(&["sleep", "30"]);
    b.write_file("rootfs/container-marker", "inside\n");
    b.save();
    // The chroot is the bundle directory itself: bundle `/`, rootfs
    // `/rootfs`, state in `/state`, the runtime as `/corten`.
    let dir = b.path().display().to_string();
    let script = format!(
        r#"set -e
D={dir}
cp {bin} $D/corten
mount --bind $D $D
for m in proc sys dev; do mkdir -p $D/$m; mount --rbind /$m $D/$m; mount --make-rslave $D/$m; done
trap 'chroot $D /corten --root /state delete -f c1 >/dev/null 2>&1' EXIT
chroot $D /corten --root /state run -d -b / c1 </dev/null >/dev/null 2>&1
chroot $D /corten --root /state exec c1 cat /container-marker
"#,
        bin = bin.display()
    );
    let out = std::process::Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .output()
        .expect("unshare");
    assert_eq!(
        out.stdout_str(),
        "inside\n",
        "exec from a chrooted runtime did not enter the container's root: {}",
        out.stderr_str()
    );
}
