//! The root filesystem and mounts: pivot_root and --no-pivot, root.readonly,
//! rootfsPropagation, mount types and flags, bind/rbind/rro, maskedPaths and
//! readonlyPaths — all observed in the container's /proc/self/mountinfo.

use std::fs;
use std::path::{Path, PathBuf};

use corten_integration_tests::{
    parse_mountinfo, require_root, Bundle, MountInfo, OutputExt, Runtime,
};
use serde_json::json;

/// Run `script` (after `cat /proc/self/mountinfo; echo ---`) and return the
/// parsed mount table plus the rest of the output.
fn mounts_and_output(test: &str, b: &mut Bundle, script: &str) -> (Vec<MountInfo>, String) {
    b.sh(&format!("cat /proc/self/mountinfo; echo ---; {script}"));
    let rt = Runtime::new(test);
    let out = rt.run_ok(b.name(), b);
    let (table, rest) = out
        .split_once("---\n")
        .unwrap_or_else(|| panic!("no separator in {out}"));
    (parse_mountinfo(table), rest.to_owned())
}

/// The (last, i.e. topmost) mount at `point`.
fn mount_at<'a>(mounts: &'a [MountInfo], point: &str) -> &'a MountInfo {
    mounts
        .iter()
        .rev()
        .find(|m| m.mount_point == point)
        .unwrap_or_else(|| panic!("nothing mounted at {point}: {mounts:#?}"))
}

fn assert_flags(m: &MountInfo, flags: &[&str]) {
    for flag in flags {
        assert!(
            m.has(flag),
            "{} lacks {flag}: {:?}",
            m.mount_point,
            m.options
        );
    }
}

fn host_source(b: &Bundle, name: &str) -> String {
    let dir = b.path().join(name);
    fs::create_dir_all(&dir).expect("mkdir source");
    fs::write(dir.join("file"), "from-host\n").expect("write source file");
    dir.to_str().expect("utf-8").to_owned()
}

/// After pivot_root (or chroot) only the rootfs and the configured mounts
/// are visible; the host's other mounts and files are not.
fn assert_host_hidden(mounts: &[MountInfo], rest: &str, b: &Bundle) {
    assert_eq!(
        mounts.iter().filter(|m| m.mount_point == "/").count(),
        1,
        "{mounts:#?}"
    );
    let root = mount_at(mounts, "/");
    // mountinfo's root is relative to the filesystem holding the bundle,
    // so it is the rootfs path or (when /tmp is its own mount) a suffix of it.
    let rootfs = b.rootfs();
    let rootfs = rootfs.to_str().expect("utf-8");
    assert!(
        root.root.len() > 1 && (rootfs.ends_with(&root.root) || root.root.ends_with(rootfs)),
        "root mount is {:?}, not {rootfs}",
        root.root
    );
    for m in mounts {
        let p = &m.mount_point;
        let expected = p == "/"
            || ["/proc", "/dev", "/sys"]
                .iter()
                .any(|top| Path::new(p).starts_with(top));
        assert!(expected, "unexpected mount visible in the container: {m:?}");
    }
    assert_eq!(rest, "marker-visible\nhost-hidden\n");
}

const ESCAPE_SCRIPT: &str = "test -e /ROOTFS-MARKER && echo marker-visible; \
    test -e /../../../../../../HOST-MARKER || echo host-hidden";

#[test]
fn pivot_root_shows_only_the_rootfs() {
    require_root!();
    let mut b = Bundle::new("pivot");
    fs::write(b.rootfs().join("ROOTFS-MARKER"), "").expect("marker");
    b.write_file("HOST-MARKER", "");
    let (mounts, rest) = mounts_and_output("pivot", &mut b, ESCAPE_SCRIPT);
    assert_host_hidden(&mounts, &rest, &b);
}

#[test]
fn no_pivot_shows_only_the_rootfs() {
    require_root!();
    let mut b = Bundle::new("no-pivot");
    fs::write(b.rootfs().join("ROOTFS-MARKER"), "").expect("marker");
    b.write_file("HOST-MARKER", "");
    b.sh(&format!(
        "cat /proc/self/mountinfo; echo ---; {ESCAPE_SCRIPT}"
    ));
    let rt = Runtime::new("no-pivot");
    let out = rt
        .run_with(b.name(), &b, &["--no-pivot"])
        .assert_success("run --no-pivot")
        .stdout_str();
    let (table, rest) = out.split_once("---\n").expect("separator");
    assert_eq!(rest, "marker-visible\nhost-hidden\n");
    let mounts = parse_mountinfo(table);
    assert!(
        mounts
            .iter()
            .any(|m| m.mount_point == "/proc" && m.fs_type == "proc"),
        "{mounts:#?}"
    );
}

#[test]
fn root_readonly() {
    require_root!();
    let mut b = Bundle::new("root-ro");
    b.set("/root/readonly", json!(true));
    let (mounts, rest) = mounts_and_output("root-ro", &mut b, "touch /new 2>&1 || echo refused");
    assert!(mount_at(&mounts, "/").has("ro"));
    assert!(
        rest.contains("Read-only file system") && rest.ends_with("refused\n"),
        "{rest}"
    );
    assert!(!b.rootfs().join("new").exists());
}

#[test]
fn root_writable() {
    require_root!();
    let mut b = Bundle::new("root-rw");
    b.set("/root/readonly", json!(false));
    let (mounts, rest) = mounts_and_output("root-rw", &mut b, "echo hi > /new && echo written");
    assert!(mount_at(&mounts, "/").has("rw"));
    assert_eq!(rest, "written\n");
    assert_eq!(
        fs::read_to_string(b.rootfs().join("new")).expect("written through to the bundle"),
        "hi\n"
    );
}

#[test]
fn rootfs_propagation_private() {
    require_root!();
    let mut b = Bundle::new("prop-private");
    b.set("/linux/rootfsPropagation", json!("private"));
    let (mounts, _) = mounts_and_output("prop-private", &mut b, "true");
    let root = mount_at(&mounts, "/");
    assert!(
        root.optional.is_empty(),
        "a private root has no peer group: {:?}",
        root.optional
    );
}

#[test]
fn rootfs_propagation_shared() {
    require_root!();
    // Safety: a shared container root is only harmless when the host's mount
    // holding the bundles is not itself shared with the host's namespace.
    let host = fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    let holder = parse_mountinfo(&host)
        .into_iter()
        .filter(|m| Path::new(corten_integration_tests::BASE_DIR).starts_with(&m.mount_point))
        .max_by_key(|m| m.mount_point.len())
        .expect("mount holding the bundles");
    if holder.optional.iter().any(|o| o.starts_with("shared:")) {
        corten_integration_tests::skip(
            "rootfs_propagation_shared",
            &format!("{} is a shared mount on this host", holder.mount_point),
        );
        return;
    }
    let mut b = Bundle::new("prop-shared");
    b.set("/linux/rootfsPropagation", json!("shared"));
    let (mounts, _) = mounts_and_output("prop-shared", &mut b, "true");
    let root = mount_at(&mounts, "/");
    assert!(
        root.optional.iter().any(|o| o.starts_with("shared:")),
        "root not shared: {:?}",
        root.optional
    );
}

#[test]
fn default_mounts_types_and_flags() {
    require_root!();
    let mut b = Bundle::new("default-mounts");
    let (mounts, _) = mounts_and_output("default-mounts", &mut b, "true");
    let expect = [
        ("/proc", "proc", &[][..]),
        ("/dev", "tmpfs", &["nosuid"][..]),
        ("/dev/pts", "devpts", &["nosuid", "noexec"][..]),
        ("/dev/shm", "tmpfs", &["nosuid", "nodev", "noexec"][..]),
        ("/dev/mqueue", "mqueue", &["nosuid", "nodev", "noexec"][..]),
        ("/sys", "sysfs", &["ro", "nosuid", "nodev", "noexec"][..]),
    ];
    for (point, fs_type, flags) in expect {
        let m = mount_at(&mounts, point);
        assert_eq!(m.fs_type, fs_type, "{point}");
        assert_flags(m, flags);
    }
    let devpts = mount_at(&mounts, "/dev/pts");
    assert!(
        devpts.super_options.iter().any(|o| o == "ptmxmode=666"),
        "{:?}",
        devpts.super_options
    );
    let cgroups: Vec<&MountInfo> = mounts
        .iter()
        .filter(|m| m.mount_point.starts_with("/sys/fs/cgroup") && m.fs_type.starts_with("cgroup"))
        .collect();
    assert!(
        !cgroups.is_empty(),
        "no cgroup filesystem under /sys/fs/cgroup: {mounts:#?}"
    );
    for m in cgroups {
        assert_flags(m, &["ro", "nosuid", "nodev", "noexec"]);
    }
}

#[test]
fn tmpfs_mount_with_flags_size_and_mode() {
    require_root!();
    let mut b = Bundle::new("tmpfs");
    b.mount(
        "/mnt/t",
        "tmpfs",
        "tmpfs",
        &["nosuid", "nodev", "noexec", "size=1m", "mode=700"],
    );
    let (mounts, rest) = mounts_and_output("tmpfs", &mut b, "stat -c %a /mnt/t");
    let m = mount_at(&mounts, "/mnt/t");
    assert_eq!(m.fs_type, "tmpfs");
    assert_flags(m, &["rw", "nosuid", "nodev", "noexec"]);
    assert!(
        m.super_options.iter().any(|o| o == "size=1024k"),
        "{:?}",
        m.super_options
    );
    assert_eq!(rest, "700\n");
}

#[test]
fn readonly_tmpfs_and_mqueue_and_sysfs_extra_mounts() {
    require_root!();
    let mut b = Bundle::new("extra-mounts");
    b.mount("/mnt/ro", "tmpfs", "tmpfs", &["ro"])
        .mount(
            "/mnt/mq",
            "mqueue",
            "mqueue",
            &["nosuid", "nodev", "noexec"],
        )
        .mount("/mnt/proc2", "proc", "proc", &["nosuid", "nodev", "noexec"]);
    let (mounts, rest) = mounts_and_output(
        "extra-mounts",
        &mut b,
        "touch /mnt/ro/x 2>/dev/null || echo refused",
    );
    assert_flags(mount_at(&mounts, "/mnt/ro"), &["ro"]);
    assert_eq!(mount_at(&mounts, "/mnt/mq").fs_type, "mqueue");
    let proc2 = mount_at(&mounts, "/mnt/proc2");
    assert_eq!(proc2.fs_type, "proc");
    assert_flags(proc2, &["nosuid", "nodev", "noexec"]);
    assert_eq!(rest, "refused\n");
}

#[test]
fn bind_mount_readonly() {
    require_root!();
    let mut b = Bundle::new("bind-ro");
    let src = host_source(&b, "src");
    b.mount("/mnt/b", "bind", &src, &["bind", "ro"]);
    let (mounts, rest) = mounts_and_output(
        "bind-ro",
        &mut b,
        "cat /mnt/b/file; touch /mnt/b/new 2>/dev/null || echo refused",
    );
    assert_flags(mount_at(&mounts, "/mnt/b"), &["ro"]);
    assert_eq!(rest, "from-host\nrefused\n");
    assert!(!Path::new(&src).join("new").exists());
}

#[test]
fn bind_mount_writable_writes_through() {
    require_root!();
    let mut b = Bundle::new("bind-rw");
    let src = host_source(&b, "src");
    b.mount("/mnt/b", "none", &src, &["bind", "rw"]);
    let (mounts, _) = mounts_and_output("bind-rw", &mut b, "echo from-container > /mnt/b/new");
    assert_flags(mount_at(&mounts, "/mnt/b"), &["rw"]);
    assert_eq!(
        fs::read_to_string(Path::new(&src).join("new")).expect("written"),
        "from-container\n"
    );
}

#[test]
fn bind_mount_nosuid_nodev_noexec() {
    require_root!();
    let mut b = Bundle::new("bind-flags");
    let src = host_source(&b, "src");
    fs::copy("/bin/busybox", Path::new(&src).join("bb")).expect("copy busybox");
    b.mount(
        "/mnt/b",
        "bind",
        &src,
        &["bind", "nosuid", "nodev", "noexec"],
    );
    let (mounts, rest) = mounts_and_output(
        "bind-flags",
        &mut b,
        "/mnt/b/bb true 2>/dev/null || echo noexec",
    );
    assert_flags(mount_at(&mounts, "/mnt/b"), &["nosuid", "nodev", "noexec"]);
    assert_eq!(rest, "noexec\n");
}

#[test]
fn bind_file_mount() {
    require_root!();
    let mut b = Bundle::new("bind-file");
    let file = b.write_file("hostfile", "single-file\n");
    b.mount(
        "/etc/hostfile",
        "bind",
        file.to_str().expect("utf-8"),
        &["bind", "ro"],
    );
    let (mounts, rest) = mounts_and_output("bind-file", &mut b, "cat /etc/hostfile");
    assert_flags(mount_at(&mounts, "/etc/hostfile"), &["ro"]);
    assert_eq!(rest, "single-file\n");
}

#[test]
fn bind_is_not_recursive_and_rbind_is() {
    require_root!();
    let mut b = Bundle::new("rbind");
    let src = host_source(&b, "src");
    let sub = b.mount_host_tmpfs("src/sub");
    fs::write(sub.join("in-submount"), "").expect("write in submount");
    b.mount("/mnt/bind", "bind", &src, &["bind"])
        .mount("/mnt/rbind", "bind", &src, &["rbind"]);
    let (mounts, rest) = mounts_and_output(
        "rbind",
        &mut b,
        "ls /mnt/bind/sub; echo ---; ls /mnt/rbind/sub",
    );
    assert_eq!(
        rest, "---\nin-submount\n",
        "bind must not carry submounts, rbind must"
    );
    assert!(mounts
        .iter()
        .any(|m| m.mount_point == "/mnt/rbind/sub" && m.fs_type == "tmpfs"));
    assert!(!mounts.iter().any(|m| m.mount_point == "/mnt/bind/sub"));
}

#[test]
fn rro_makes_every_submount_readonly() {
    require_root!();
    let mut b = Bundle::new("rro");
    let src = host_source(&b, "src");
    b.mount_host_tmpfs("src/sub");
    b.mount("/mnt/r", "bind", &src, &["rbind", "rro"]);
    let (mounts, rest) = mounts_and_output(
        "rro",
        &mut b,
        "touch /mnt/r/x 2>/dev/null || echo top-refused; touch /mnt/r/sub/x 2>/dev/null || echo sub-refused",
    );
    assert_flags(mount_at(&mounts, "/mnt/r"), &["ro"]);
    assert_flags(mount_at(&mounts, "/mnt/r/sub"), &["ro"]);
    assert_eq!(rest, "top-refused\nsub-refused\n");
}

#[test]
fn masked_paths_are_empty_or_unreadable() {
    require_root!();
    let mut b = Bundle::new("masked");
    b.write_file("rootfs/etc/secret", "top-secret\n");
    b.write_file("rootfs/home/user/private", "private\n");
    let defaults: Vec<String> = b.config()["linux"]["maskedPaths"]
        .as_array()
        .expect("spec has maskedPaths")
        .iter()
        .filter_map(|p| p.as_str().map(str::to_owned))
        .collect();
    b.push("/linux/maskedPaths", json!("/etc/secret"))
        .push("/linux/maskedPaths", json!("/home/user"))
        .push("/linux/maskedPaths", json!("/does/not/exist"));
    // A masked file is /dev/null bound over it; a masked directory is an
    // empty read-only tmpfs. Paths absent on this host are skipped.
    let mut script = String::new();
    let mut expected = String::new();
    let on_host = defaults
        .iter()
        .filter(|p| Path::new(p).exists())
        .map(|p| (p.as_str(), Path::new(p).is_dir()));
    for (path, is_dir) in on_host.chain([("/etc/secret", false), ("/home/user", true)]) {
        if is_dir {
            script += &format!("echo {path} $(ls -A {path} | wc -l); ");
            expected += &format!("{path} 0\n");
        } else {
            script += &format!("echo {path} $(stat -c %t:%T {path}) $(cat {path} | wc -c); ");
            expected += &format!("{path} 1:3 0\n");
        }
    }
    script += "touch /home/user/x 2>/dev/null || echo refused";
    expected += "refused\n";
    let (mounts, rest) = mounts_and_output("masked", &mut b, &script);
    assert_eq!(rest, expected, "masked paths leak content");
    assert!(
        mounts.iter().any(|m| m.mount_point == "/etc/secret"),
        "/etc/secret not masked by a mount"
    );
}

#[test]
fn readonly_paths_refuse_writes() {
    require_root!();
    let mut b = Bundle::new("readonly-paths");
    b.set("/root/readonly", json!(false))
        .push("/linux/readonlyPaths", json!("/home/user"));
    let (mounts, rest) = mounts_and_output(
        "readonly-paths",
        &mut b,
        "echo 0 > /proc/sys/net/ipv4/ip_forward 2>/dev/null || echo sys-refused; \
         touch /home/user/x 2>/dev/null || echo home-refused; touch /tmp/x && echo tmp-ok",
    );
    assert_eq!(rest, "sys-refused\nhome-refused\ntmp-ok\n");
    for point in ["/proc/sys", "/home/user"] {
        assert_flags(mount_at(&mounts, point), &["ro"]);
    }
    for point in ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sysrq-trigger"] {
        if Path::new(point).exists() {
            assert_flags(mount_at(&mounts, point), &["ro"]);
        }
    }
}

/// Bidirectional propagation (Kubernetes' `mountPropagation:
/// Bidirectional`, as containerd's CRI writes it: the volume `rbind,rshared`
/// and `rootfsPropagation: rshared`): a mount made inside the container
/// under the volume appears on the host. Checked in a private mount
/// namespace made for the run (its own shared tmpfs as the host's volume),
/// so nothing reaches the real host; side by side with runc.
#[test]
fn bidirectional_propagation_reaches_the_host() {
    require_root!();
    let mut seen = Vec::new();
    for bin in [
        corten_integration_tests::runtime_bin(),
        PathBuf::from("/usr/sbin/runc"),
    ] {
        if !bin.exists() {
            corten_integration_tests::skip(
                "bidirectional_propagation_reaches_the_host",
                "runc is not installed here",
            );
            continue;
        }
        let mut b = Bundle::new("prop-bidi");
        let host = Path::new(corten_integration_tests::BASE_DIR)
            .join(corten_integration_tests::unique_name("prop-host"));
        fs::create_dir_all(&host).expect("mkdir host volume");
        b.push(
            "/mounts",
            json!({ "destination": "/vol", "type": "bind", "source": host.join("vol"), "options": ["rbind", "rshared"] }),
        );
        b.set("/linux/rootfsPropagation", json!("rshared"));
        for set in ["bounding", "effective", "permitted"] {
            b.push(
                &format!("/process/capabilities/{set}"),
                json!("CAP_SYS_ADMIN"),
            );
        }
        b.sh("mkdir -p /vol/inner && mount -t tmpfs inner /vol/inner && touch /vol/inner/made-inside");
        b.save();
        let root = Path::new(corten_integration_tests::BASE_DIR)
            .join(corten_integration_tests::unique_name("prop-root"));
        let script = format!(
            "mount -t tmpfs hostvol {h} && mount --make-rshared {h} && mkdir {h}/vol && \
             {bin} --root {root} run {id} && \
             if test -e {h}/vol/inner/made-inside; then echo propagated; else echo not-propagated; fi",
            h = host.display(),
            bin = bin.display(),
            root = root.display(),
            id = b.name(),
        );
        let (status, out) = corten_integration_tests::run_in_private_mount_ns(
            b.path(),
            &script,
            std::time::Duration::from_secs(60),
        );
        let _ = fs::remove_dir_all(&root);
        let _ = fs::remove_dir_all(&host);
        let text = out.trim().to_owned();
        assert!(status.success(), "{}: {status}: {out}", bin.display());
        assert_eq!(text, "propagated", "{}", bin.display());
        seen.push(text);
    }
    assert!(!seen.is_empty());
}
