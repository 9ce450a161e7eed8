//! User namespaces as root (issue 19): multi-range maps and a joined user
//! namespace, side by side with runc; idmapped mounts (runtime-spec 1.1,
//! `mount_setattr(MOUNT_ATTR_IDMAP)`), which Debian's runc 1.1 does not
//! have: checked against what the kernel must show.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use corten_integration_tests::{require_root, Bundle, OutputExt, Runtime};
use serde_json::json;

/// The runtimes compared: corten, and runc where it is installed.
fn runtimes(test: &str) -> Vec<Runtime> {
    let mut out = vec![Runtime::new(test)];
    if Path::new("/usr/sbin/runc").exists() {
        out.push(Runtime::new(test).with_bin("/usr/sbin/runc"));
    } else {
        corten_integration_tests::skip(test, "runc is not installed here: corten alone");
    }
    out
}

/// Lines with their blanks squeezed (`/proc/self/uid_map` pads with spaces).
fn squeezed(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

#[test]
fn multi_range_maps_side_by_side_with_runc() {
    require_root!();
    corten_integration_tests::require_userns!("multi_range_maps_side_by_side_with_runc");
    let mut seen = Vec::new();
    for rt in runtimes("userns-multi") {
        let mut b = Bundle::new("userns-multi");
        b.user_namespace(
            json!([
                { "containerID": 0, "hostID": 100000, "size": 1000 },
                { "containerID": 1000, "hostID": 300000, "size": 64536 }
            ]),
            json!([
                { "containerID": 0, "hostID": 200000, "size": 10 },
                { "containerID": 10, "hostID": 400000, "size": 65526 }
            ]),
        );
        // A file the host gives to 300005:400007 is 1005:17 inside.
        let probe = b.rootfs().join("probe");
        fs::write(&probe, "").expect("write probe");
        std::os::unix::fs::chown(&probe, Some(300_005), Some(400_007)).expect("chown probe");
        b.sh("cat /proc/self/uid_map /proc/self/gid_map; stat -c %u:%g /probe; id -u");
        b.user(1005, 17);
        let out = rt.run_ok(b.name(), &b);
        let lines = squeezed(&out);
        assert_eq!(
            lines,
            [
                "0 100000 1000",
                "1000 300000 64536",
                "0 200000 10",
                "10 400000 65526",
                "1005:17",
                "1005"
            ],
            "{}: {out}",
            rt.bin().display()
        );
        seen.push(lines);
    }
    assert!(seen.windows(2).all(|w| w[0] == w[1]), "{seen:?}");
}

#[test]
fn joined_user_namespace_side_by_side_with_runc() {
    require_root!();
    corten_integration_tests::require_userns!("joined_user_namespace_side_by_side_with_runc");
    let maps = json!([{ "containerID": 0, "hostID": 100000, "size": 65536 }]);
    for rt in runtimes("userns-join") {
        let mut first = Bundle::new("userns-join-a");
        first.user_namespace(maps.clone(), maps.clone());
        first.args(&["sleep", "1000"]);
        let a = first.name();
        rt.run_with(a, &first, &["--detach"])
            .assert_success("run --detach");
        let pid = rt.pid(a);
        let ns_a = fs::read_link(format!("/proc/{pid}/ns/user")).expect("ns of the first");

        let mut second = Bundle::new("userns-join-b");
        second
            .join_namespace("user", &format!("/proc/{pid}/ns/user"))
            .set("/linux/uidMappings", maps.clone())
            .set("/linux/gidMappings", maps.clone());
        second.sh("readlink /proc/self/ns/user; cat /proc/self/uid_map; id -u");
        let out = rt.run_ok(second.name(), &second);
        let lines = squeezed(&out);
        assert_eq!(
            lines,
            [
                ns_a.display().to_string(),
                "0 100000 65536".into(),
                "0".into()
            ],
            "{}: {out}",
            rt.bin().display()
        );
        rt.kill(a, "KILL");
        rt.wait_status(a, "stopped");
        rt.delete(a).assert_success("delete");
    }
}

/// A directory for a bind source: `rootfile` (0:0), `userfile`
/// (1000:1000), writable by all; removed when dropped.
struct Source(PathBuf);

impl Source {
    fn new(test: &str) -> Source {
        let dir = Path::new(corten_integration_tests::BASE_DIR)
            .join(corten_integration_tests::unique_name(test));
        fs::create_dir_all(&dir).expect("make the source");
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).expect("chmod");
        fs::write(dir.join("rootfile"), "").expect("rootfile");
        fs::write(dir.join("userfile"), "").expect("userfile");
        std::os::unix::fs::chown(dir.join("userfile"), Some(1000), Some(1000)).expect("chown");
        Source(dir)
    }

    fn path(&self) -> &str {
        self.0.to_str().expect("utf-8")
    }

    /// `uid:gid` of a file on the disk.
    fn owner(&self, file: &str) -> String {
        use std::os::unix::fs::MetadataExt;
        let m = fs::metadata(self.0.join(file)).expect("stat");
        format!("{}:{}", m.uid(), m.gid())
    }
}

/// The kernel's release when it cannot idmap tmpfs (Linux 6.3 can; the
/// cgroup v2 VM boots 6.1, and its /tmp is tmpfs).
fn tmpfs_idmap_missing() -> Option<String> {
    let release = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut parts = release
        .trim()
        .split(['.', '-'])
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let version = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (version < (6, 3)).then(|| release.trim().to_string())
}

impl Source {
    /// A source for `test`, or `None` (the skip said and counted) where its
    /// filesystem cannot be idmapped on this kernel.
    fn idmappable(test: &str, tag: &str) -> Option<Source> {
        let src = Source::new(tag);
        let c = std::ffi::CString::new(src.path()).expect("no NUL");
        // SAFETY: a NUL-terminated path and a zeroed statfs the call fills.
        let mut st: libc::statfs = unsafe { std::mem::zeroed() };
        // SAFETY: see above.
        let tmpfs = unsafe { libc::statfs(c.as_ptr(), &mut st) } == 0 && st.f_type == 0x0102_1994;
        match tmpfs.then(tmpfs_idmap_missing).flatten() {
            Some(release) => {
                let why = format!(
                    "{} is on tmpfs, which Linux {release} cannot idmap (6.3 can)",
                    src.path()
                );
                corten_integration_tests::skip(test, &why);
                None
            }
            None => Some(src),
        }
    }
}

impl Drop for Source {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[test]
fn idmapped_mounts_show_the_mapped_owners() {
    require_root!();
    corten_integration_tests::require_userns!("idmapped_mounts_show_the_mapped_owners");
    let Some(src) = Source::idmappable("idmapped_mounts_show_the_mapped_owners", "idmap-src")
    else {
        return;
    };
    let map = json!([{ "containerID": 0, "hostID": 100000, "size": 65536 }]);
    let shifted = json!([{ "containerID": 0, "hostID": 101000, "size": 1000 }]);
    let mut b = Bundle::new("idmap");
    b.user_namespace(map.clone(), map);
    // idmap: the container's own maps, so the host's root is its root.
    b.push(
        "/mounts",
        json!({ "destination": "/same", "type": "bind", "source": src.path(), "options": ["bind", "idmap"] }),
    );
    // Maps of the mount's own: on-disk 0 is host 101000, 1000 inside.
    b.push(
        "/mounts",
        json!({ "destination": "/own", "type": "bind", "source": src.path(), "options": ["rbind", "ridmap"],
                "uidMappings": shifted, "gidMappings": shifted }),
    );
    // No idmap: the host's root is nobody inside.
    b.push(
        "/mounts",
        json!({ "destination": "/plain", "type": "bind", "source": src.path(), "options": ["bind"] }),
    );
    // The container's root may not make them in the host root's rootfs.
    for d in ["same", "own", "plain"] {
        fs::create_dir_all(b.rootfs().join(d)).expect("mount point");
    }
    b.sh(
        "stat -c %u:%g /same/rootfile /same/userfile /own/rootfile /plain/rootfile /plain/userfile; \
         touch /same/made-inside && stat -c %u:%g /same/made-inside",
    );
    let rt = Runtime::new("idmap");
    let out = rt.run_ok(b.name(), &b);
    assert_eq!(
        squeezed(&out),
        [
            "0:0",
            "1000:1000",
            "1000:1000",
            "65534:65534",
            "65534:65534",
            "0:0"
        ],
        "{out}"
    );
    // The container's root wrote as the host's root through the mount.
    assert_eq!(src.owner("made-inside"), "0:0");
}

#[test]
fn idmapped_mount_without_a_user_namespace() {
    require_root!();
    // The mount's maps still live in a user namespace made for them.
    corten_integration_tests::require_userns!("idmapped_mount_without_a_user_namespace");
    let Some(src) = Source::idmappable("idmapped_mount_without_a_user_namespace", "idmap-nons-src")
    else {
        return;
    };
    let shifted = json!([{ "containerID": 0, "hostID": 100000, "size": 65536 }]);
    let mut b = Bundle::new("idmap-nons");
    b.push(
        "/mounts",
        json!({ "destination": "/m", "type": "bind", "source": src.path(), "options": ["bind", "idmap"],
                "uidMappings": shifted, "gidMappings": shifted }),
    );
    b.sh("stat -c %u:%g /m/rootfile /m/userfile");
    let rt = Runtime::new("idmap-nons");
    let out = rt.run_ok(b.name(), &b);
    assert_eq!(squeezed(&out), ["100000:100000", "101000:101000"], "{out}");
}

#[test]
fn ridmap_idmaps_submounts_and_idmap_only_the_top() {
    require_root!();
    let test = "ridmap_idmaps_submounts_and_idmap_only_the_top";
    corten_integration_tests::require_userns!(test);
    if let Some(release) = tmpfs_idmap_missing() {
        let why = format!("the submount is a tmpfs, which Linux {release} cannot idmap (6.3 can)");
        corten_integration_tests::skip(test, &why);
        return;
    }
    let Some(src) = Source::idmappable(test, "ridmap-src") else {
        return;
    };
    fs::create_dir(src.0.join("sub")).expect("mkdir sub");
    let map = json!([{ "containerID": 0, "hostID": 100000, "size": 65536 }]);
    let mut b = Bundle::new("ridmap");
    b.user_namespace(map.clone(), map);
    for (dest, opts) in [("/r", ["rbind", "ridmap"]), ("/n", ["rbind", "idmap"])] {
        b.push(
            "/mounts",
            json!({ "destination": dest, "type": "bind", "source": src.path(), "options": opts }),
        );
        fs::create_dir_all(b.rootfs().join(&dest[1..])).expect("mount point");
    }
    b.sh("stat -c %u:%g /r/sub/f /n/sub/f /n/rootfile");
    b.save();
    // The submount (a tmpfs over sub/, a file of the host's root in it)
    // exists only in a private mount namespace made for this run.
    let root = Path::new(corten_integration_tests::BASE_DIR)
        .join(corten_integration_tests::unique_name("ridmap-root"));
    let script = format!(
        "mount -t tmpfs tmpfs {src}/sub && touch {src}/sub/f && exec {bin} --root {root} run {id}",
        src = src.path(),
        bin = corten_integration_tests::runtime_bin().display(),
        root = root.display(),
        id = b.name(),
    );
    let (status, out) = corten_integration_tests::run_in_private_mount_ns(
        b.path(),
        &script,
        std::time::Duration::from_secs(60),
    );
    let _ = fs::remove_dir_all(&root);
    assert!(status.success(), "{status}: {out}");
    // ridmap: the submount's root file is the container's root; idmap: the
    // submount keeps the host's ids (nobody inside), the top is mapped.
    assert_eq!(squeezed(&out), ["0:0", "65534:65534", "0:0"], "{out}");
}
