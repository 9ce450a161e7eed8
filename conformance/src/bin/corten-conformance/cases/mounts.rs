//! config.md#root and #mounts, config-linux.md#default-filesystems,
//! #rootfs-mount-propagation, #masked-paths and #readonly-paths.

use std::fs;
use std::path::Path;

use anyhow::{bail, ensure, Context, Result};
use corten_conformance::expect::{Check, FileKind};
use nix::mount::{mount, MsFlags};
use serde_json::json;

use super::{case, Case};
use crate::bundle::Bundle;
use crate::ctx::{wait_file, Ctx};

pub fn cases() -> Vec<Case> {
    vec![
        case(
            "config-linux.default-filesystems.proc",
            "config-linux.md#default-filesystems",
            |cx| default_fs(cx, "/proc", "proc"),
        ),
        case(
            "config-linux.default-filesystems.sysfs",
            "config-linux.md#default-filesystems",
            |cx| default_fs(cx, "/sys", "sysfs"),
        ),
        case(
            "config-linux.default-filesystems.devpts",
            "config-linux.md#default-filesystems",
            |cx| default_fs(cx, "/dev/pts", "devpts"),
        ),
        case(
            "config-linux.default-filesystems.shm",
            "config-linux.md#default-filesystems",
            |cx| default_fs(cx, "/dev/shm", "tmpfs"),
        ),
        case("config.mounts.mqueue", "config.md#mounts", |cx| {
            default_fs(cx, "/dev/mqueue", "mqueue")
        }),
        case(
            "config.mounts.sysfs-read-only",
            "config.md#mounts (options)",
            sysfs_ro,
        ),
        case(
            "config.mounts.cgroup-read-only",
            "config.md#mounts (options)",
            cgroup_ro,
        ),
        case(
            "config.mounts.tmpfs-options",
            "config.md#mounts (options)",
            tmpfs_options,
        ),
        case(
            "config.mounts.read-only",
            "config.md#mounts (options)",
            tmpfs_ro,
        ),
        case(
            "config.mounts.atime-options",
            "config.md#mounts (options)",
            atime_options,
        ),
        case(
            "config.mounts.order",
            "config.md#mounts (listed order)",
            order,
        ),
        case(
            "config.mounts.bind-directory",
            "config.md#mounts (bind)",
            bind_dir,
        ),
        case(
            "config.mounts.bind-file",
            "config.md#mounts (bind)",
            bind_file,
        ),
        case(
            "config.mounts.bind-relative-source",
            "config.md#mounts (source relative to the bundle)",
            bind_relative,
        ),
        case(
            "config.mounts.bind-read-only",
            "config.md#mounts (bind, ro)",
            bind_ro,
        ),
        case(
            "config.mounts.bind-read-write",
            "config.md#mounts (bind, rw)",
            bind_rw,
        ),
        case(
            "config.mounts.bind-excludes-submounts",
            "config.md#mounts (bind)",
            bind_no_submounts,
        ),
        case(
            "config.mounts.rbind-includes-submounts",
            "config.md#mounts (rbind)",
            rbind_submounts,
        ),
        case(
            "config.mounts.rro-recursive",
            "config.md#linux-mount-options (rro)",
            rro,
        ),
        case(
            "config.mounts.propagation-shared",
            "config.md#mounts (options: shared)",
            |cx| mount_propagation(cx, "shared", "shared"),
        ),
        case(
            "config.mounts.propagation-private",
            "config.md#mounts (options: private)",
            |cx| mount_propagation(cx, "private", "private"),
        ),
        case(
            "config.mounts.propagation-unbindable",
            "config.md#mounts (options: unbindable)",
            |cx| mount_propagation(cx, "unbindable", "unbindable"),
        ),
        case(
            "config.mounts.propagation-slave",
            "config.md#mounts (options: rslave)",
            mount_slave,
        ),
        case(
            "config.mounts.relative-destination",
            "config.md#mounts (destination)",
            relative_destination,
        ),
        case(
            "config.root.readonly",
            "config.md#root (readonly)",
            root_readonly,
        ),
        case(
            "config.root.writable",
            "config.md#root (readonly: false)",
            root_writable,
        ),
        case(
            "config.root.absolute-path",
            "config.md#root (path)",
            root_absolute,
        ),
        case(
            "config-linux.rootfs-propagation.private",
            "config-linux.md#rootfs-mount-propagation",
            |cx| rootfs_propagation(cx, "private", "private"),
        ),
        case(
            "config-linux.rootfs-propagation.slave",
            "config-linux.md#rootfs-mount-propagation",
            |cx| rootfs_propagation(cx, "slave", "slave"),
        )
        .runc(RUNC_ROOT_PRIVATE),
        case(
            "config-linux.rootfs-propagation.slave-receives-host-mounts",
            "config-linux.md#rootfs-mount-propagation (slave)",
            rootfs_slave_receives,
        )
        .runc(RUNC_ROOT_PRIVATE),
        case(
            "config-linux.rootfs-propagation.private-isolated",
            "config-linux.md#rootfs-mount-propagation (private)",
            rootfs_private_isolated,
        ),
        case(
            "config-linux.rootfs-propagation.shared",
            "config-linux.md#rootfs-mount-propagation",
            |cx| rootfs_propagation(cx, "shared", "shared"),
        )
        .runc("with rootfsPropagation shared, runc 1.1's root mount is private (no peer group)"),
        case(
            "config-linux.rootfs-propagation.unbindable",
            "config-linux.md#rootfs-mount-propagation",
            |cx| rootfs_propagation(cx, "unbindable", "unbindable"),
        )
        .runc(
            "with rootfsPropagation unbindable, runc 1.1's root mount is private, not unbindable",
        ),
        case(
            "config-linux.masked-paths.file",
            "config-linux.md#masked-paths",
            masked_file,
        ),
        case(
            "config-linux.masked-paths.directory",
            "config-linux.md#masked-paths",
            masked_dir,
        ),
        case(
            "config-linux.readonly-paths.proc-sys",
            "config-linux.md#readonly-paths",
            readonly_proc_sys,
        ),
        case(
            "config-linux.readonly-paths.directory",
            "config-linux.md#readonly-paths",
            readonly_dir,
        ),
        case(
            "config.mounts.bind-flags",
            "config.md#mounts (bind, nosuid/nodev/noexec)",
            bind_flags,
        ),
    ]
}

/// Why runc 1.1 fails the slave cases.
const RUNC_ROOT_PRIVATE: &str =
    "with rootfsPropagation slave, runc 1.1's root mount has no master: \
     mounts made on the host below the rootfs never reach the container";

pub(super) fn mounted(path: &str, fstype: Option<&str>, options: &[&str]) -> Check {
    Check::Mount {
        path: path.into(),
        fstype: fstype.map(str::to_owned),
        options: options.iter().map(|o| (*o).to_owned()).collect(),
        absent: Vec::new(),
        propagation: None,
    }
}

fn propagation(path: &str, p: &str) -> Check {
    Check::Mount {
        path: path.into(),
        fstype: None,
        options: Vec::new(),
        absent: Vec::new(),
        propagation: Some(p.into()),
    }
}

fn ro(path: &str) -> Check {
    Check::ReadOnly { path: path.into() }
}

fn host_path(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// Mount a small tmpfs on the host at `<bundle>/<rel>` holding a file
/// `inner-file` (`inner`); detached with the case directory.
fn host_tmpfs(b: &Bundle, rel: &str) -> Result<()> {
    let path = b.path().join(rel);
    fs::create_dir_all(&path)?;
    mount(
        Some("tmpfs"),
        &path,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("size=1m,mode=755"),
    )
    .with_context(|| format!("mount tmpfs on {}", path.display()))?;
    fs::write(path.join("inner-file"), "inner")?;
    Ok(())
}

fn default_fs(cx: &mut Ctx, path: &str, fstype: &str) -> Result<()> {
    let mut b = cx.bundle()?;
    b.expect(
        &format!("{path} is {fstype}"),
        mounted(path, Some(fstype), &[]),
    );
    cx.run_checks(&b)
}

fn sysfs_ro(cx: &mut Ctx) -> Result<()> {
    let mut b = cx.bundle()?;
    b.expect(
        "/sys options",
        mounted("/sys", Some("sysfs"), &["ro", "nosuid", "nodev", "noexec"]),
    );
    b.expect("/sys/kernel read-only", ro("/sys/kernel"));
    cx.run_checks(&b)
}

fn cgroup_ro(cx: &mut Ctx) -> Result<()> {
    let mut b = cx.bundle()?;
    let probe = if cx.host.cgroup_v2 {
        "/sys/fs/cgroup"
    } else {
        "/sys/fs/cgroup/pids"
    };
    b.expect(&format!("{probe} read-only"), ro(probe));
    cx.run_checks(&b)
}

fn tmpfs_options(cx: &mut Ctx) -> Result<()> {
    let mut b = cx.bundle()?;
    b.mount(
        "/mnt/t",
        "tmpfs",
        "tmpfs",
        &["nosuid", "nodev", "noexec", "size=1024k", "mode=710"],
    );
    b.expect(
        "/mnt/t options",
        mounted(
            "/mnt/t",
            Some("tmpfs"),
            &["nosuid", "nodev", "noexec", "size=1024k", "mode=710"],
        ),
    );
    b.expect(
        "/mnt/t writable",
        Check::Writable {
            path: "/mnt/t".into(),
        },
    );
    cx.run_checks(&b)
}

fn tmpfs_ro(cx: &mut Ctx) -> Result<()> {
    let mut b = cx.bundle()?;
    b.mount("/mnt/ro", "tmpfs", "tmpfs", &["ro"]);
    b.expect("/mnt/ro ro", mounted("/mnt/ro", Some("tmpfs"), &["ro"]));
    b.expect("/mnt/ro not writable", ro("/mnt/ro"));
    cx.run_checks(&b)
}

fn atime_options(cx: &mut Ctx) -> Result<()> {
    let mut b = cx.bundle()?;
    b.mount("/mnt/noatime", "tmpfs", "tmpfs", &["noatime"]);
    b.mount("/mnt/nodiratime", "tmpfs", "tmpfs", &["nodiratime"]);
    b.expect("noatime", mounted("/mnt/noatime", None, &["noatime"]));
    b.expect(
        "nodiratime",
        mounted("/mnt/nodiratime", None, &["nodiratime"]),
    );
    cx.run_checks(&b)
}

fn order(cx: &mut Ctx) -> Result<()> {
    let mut b = cx.bundle()?;
    b.mount("/mnt/o", "tmpfs", "tmpfs", &["size=1024k"]);
    b.mount("/mnt/o", "tmpfs", "tmpfs", &["size=2048k"]);
    b.mount("/mnt/n", "tmpfs", "tmpfs", &["size=1024k"]);
    b.mount("/mnt/n/inner", "tmpfs", "tmpfs", &["size=2048k"]);
    b.expect(
        "second mount on top",
        mounted("/mnt/o", Some("tmpfs"), &["size=2048k"]),
    );
    b.expect(
        "outer mount",
        mounted("/mnt/n", Some("tmpfs"), &["size=1024k"]),
    );
    b.expect(
        "inner mount on the outer one",
        mounted("/mnt/n/inner", Some("tmpfs"), &["size=2048k"]),
    );
    cx.run_checks(&b)
}

fn bind_dir(cx: &mut Ctx) -> Result<()> {
    let mut b = cx.bundle()?;
    b.write_file("data/hello", "hello")?;
    let src = host_path(&b.path().join("data"));
    b.mount("/mnt/data", "bind", &src, &["bind"]);
    b.expect(
        "bound file",
        Check::FileEquals {
            path: "/mnt/data/hello".into(),
            text: "hello".into(),
        },
    );
    cx.run_checks(&b)
}

fn bind_file(cx: &mut Ctx) -> Result<()> {
    let mut b = cx.bundle()?;
    let src = host_path(&b.write_file("single", "one file")?);
    b.mount("/mnt/single", "bind", &src, &["bind"]);
    b.expect(
        "bound file",
        Check::FileEquals {
            path: "/mnt/single".into(),
            text: "one file".into(),
        },
    );
    b.expect(
        "is a file",
        Check::Exists {
            path: "/mnt/single".into(),
            kind: Some(FileKind::File),
        },
    );
    cx.run_checks(&b)
}

fn bind_relative(cx: &mut Ctx) -> Result<()> {
    let mut b = cx.bundle()?;
    b.write_file("data/hello", "relative")?;
    b.mount("/mnt/data", "bind", "data", &["bind"]);
    b.expect(
        "bound file",
        Check::FileEquals {
            path: "/mnt/data/hello".into(),
            text: "relative".into(),
        },
    );
    cx.run_checks(&b)
}

fn bind_ro(cx: &mut Ctx) -> Result<()> {
    let mut b = cx.bundle()?;
    b.write_file("data/hello", "hello")?;
    let src = host_path(&b.path().join("data"));
    b.mount("/mnt/data", "bind", &src, &["bind", "ro"]);
    b.expect("ro flag", mounted("/mnt/data", None, &["ro"]));
    b.expect("directory read-only", ro("/mnt/data"));
    b.expect("file read-only", ro("/mnt/data/hello"));
    cx.run_checks(&b)?;
    let host = fs::read_to_string(b.path().join("data/hello"))?;
    ensure!(host == "hello", "the host file changed to {host:?}");
    Ok(())
}

fn bind_rw(cx: &mut Ctx) -> Result<()> {
    let mut b = cx.bundle()?;
    fs::create_dir_all(b.path().join("data"))?;
    let src = host_path(&b.path().join("data"));
    b.mount("/mnt/data", "bind", &src, &["bind", "rw"]);
    b.sh("echo from-container > /mnt/data/written");
    let cmd = cx.run_command(&b)?;
    let out = cx.exec(cmd)?;
    crate::ctx::ensure_ok(&out, "run")?;
    let host = fs::read_to_string(b.path().join("data/written"))
        .context("the write did not reach the host")?;
    ensure!(host.trim() == "from-container", "host sees {host:?}");
    Ok(())
}

fn bind_no_submounts(cx: &mut Ctx) -> Result<()> {
    let mut b = cx.bundle()?;
    host_tmpfs(&b, "tree/inner")?;
    let src = host_path(&b.path().join("tree"));
    b.mount("/mnt/tree", "bind", &src, &["bind"]);
    b.expect(
        "submount not bound",
        Check::NotMounted {
            path: "/mnt/tree/inner".into(),
        },
    );
    b.expect(
        "submount content hidden",
        Check::Absent {
            path: "/mnt/tree/inner/inner-file".into(),
        },
    );
    cx.run_checks(&b)
}

fn rbind_submounts(cx: &mut Ctx) -> Result<()> {
    let mut b = cx.bundle()?;
    host_tmpfs(&b, "tree/inner")?;
    let src = host_path(&b.path().join("tree"));
    b.mount("/mnt/tree", "bind", &src, &["rbind"]);
    b.expect(
        "submount bound",
        mounted("/mnt/tree/inner", Some("tmpfs"), &[]),
    );
    b.expect(
        "submount content",
        Check::FileEquals {
            path: "/mnt/tree/inner/inner-file".into(),
            text: "inner".into(),
        },
    );
    cx.run_checks(&b)
}

fn rro(cx: &mut Ctx) -> Result<()> {
    let mut b = cx.bundle()?;
    host_tmpfs(&b, "tree/inner")?;
    let src = host_path(&b.path().join("tree"));
    b.mount("/mnt/tree", "bind", &src, &["rbind", "rro"]);
    b.expect("top read-only", ro("/mnt/tree"));
    b.expect("submount read-only", ro("/mnt/tree/inner"));
    cx.run_checks(&b)
}

fn mount_propagation(cx: &mut Ctx, option: &str, want: &str) -> Result<()> {
    let mut b = cx.bundle()?;
    b.mount("/mnt/p", "tmpfs", "tmpfs", &[option]);
    b.expect(&format!("/mnt/p {want}"), propagation("/mnt/p", want));
    cx.run_checks(&b)
}

/// Bind `<bundle>/<rel>` onto itself on the host and make it shared, so
/// that a slave copy of it has a master.
fn host_shared(b: &Bundle, rel: &str) -> Result<()> {
    let path = b.path().join(rel);
    fs::create_dir_all(&path)?;
    mount(
        Some(&path),
        &path,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .with_context(|| format!("bind {} onto itself", path.display()))?;
    mount(
        None::<&str>,
        &path,
        None::<&str>,
        MsFlags::MS_SHARED,
        None::<&str>,
    )
    .with_context(|| format!("make {} shared", path.display()))?;
    Ok(())
}

fn mount_slave(cx: &mut Ctx) -> Result<()> {
    let mut b = cx.bundle()?;
    host_shared(&b, "shared")?;
    let src = host_path(&b.path().join("shared"));
    b.mount("/mnt/s", "bind", &src, &["rbind", "rslave"]);
    b.expect("/mnt/s slave", propagation("/mnt/s", "slave"));
    cx.run_checks(&b)
}

fn relative_destination(cx: &mut Ctx) -> Result<()> {
    let mut b = cx.bundle()?;
    b.mount("mnt/rel", "tmpfs", "tmpfs", &["size=1024k"]);
    b.expect(
        "mounted at /mnt/rel",
        mounted("/mnt/rel", Some("tmpfs"), &["size=1024k"]),
    );
    cx.run_checks(&b)
}

fn root_readonly(cx: &mut Ctx) -> Result<()> {
    let mut b = cx.bundle()?;
    b.set("/root/readonly", json!(true));
    b.expect("/ ro", mounted("/", None, &["ro"]));
    b.expect("/ not writable", ro("/"));
    b.expect("/etc not writable", ro("/etc/passwd"));
    cx.run_checks(&b)
}

fn root_writable(cx: &mut Ctx) -> Result<()> {
    let mut b = cx.bundle()?;
    b.set("/root/readonly", json!(false));
    b.expect("/ writable", Check::Writable { path: "/".into() });
    b.expect(
        "/etc writable",
        Check::Writable {
            path: "/etc".into(),
        },
    );
    cx.run_checks(&b)
}

fn root_absolute(cx: &mut Ctx) -> Result<()> {
    let mut b = cx.bundle()?;
    let abs = host_path(&b.rootfs());
    b.set("/root/path", json!(abs));
    b.expect(
        "checker ran from the rootfs",
        Check::Exists {
            path: "/conformance/expect.json".into(),
            kind: Some(FileKind::File),
        },
    );
    cx.run_checks(&b)
}

fn rootfs_propagation(cx: &mut Ctx, value: &str, want: &str) -> Result<()> {
    let mut b = cx.bundle()?;
    // A shared rootfs on the host: "slave" then has a master, and "private"
    // must cut the peer group the runtime's copy starts in.
    host_shared(&b, "rootfs")?;
    b.set("/linux/rootfsPropagation", json!(value));
    b.expect(&format!("/ {want}"), propagation("/", want));
    cx.run_checks(&b)
}

/// With a shared rootfs on the host, mount a tmpfs below it on the host
/// while the container runs: it must appear inside (`slave`) or not (`private`).
fn host_mount_event(cx: &mut Ctx, value: &str, must_appear: bool) -> Result<()> {
    let mut b = cx.bundle()?;
    host_shared(&b, "rootfs")?;
    fs::create_dir_all(b.rootfs().join("mnt/late"))?;
    b.set("/linux/rootfsPropagation", json!(value));
    // The host mounts, then says so; propagation happens at mount time,
    // so the container then looks once.
    b.with_out().sh(
        "touch /out/ready; while [ ! -e /out/mounted ]; do sleep 0.02; done; \
         if [ -e /mnt/late/inner-file ]; then echo seen; else echo unseen; fi > /out/result.tmp; \
         mv /out/result.tmp /out/result",
    );
    let id = cx.new_id();
    cx.create_ok(&b, &id)?;
    cx.start_ok(&id)?;
    wait_file(&b.out().join("ready"))?;
    host_tmpfs(&b, "rootfs/mnt/late")?;
    fs::write(b.out().join("mounted"), "")?;
    let result = b.out().join("result");
    wait_file(&result)?;
    let seen = fs::read_to_string(&result)?.trim() == "seen";
    match (must_appear, seen) {
        (true, false) => {
            bail!("a mount made on the host below the rootfs did not reach the container")
        }
        (false, true) => bail!("a mount made on the host below the rootfs reached the container"),
        _ => Ok(()),
    }
}

fn rootfs_slave_receives(cx: &mut Ctx) -> Result<()> {
    host_mount_event(cx, "slave", true)
}

fn rootfs_private_isolated(cx: &mut Ctx) -> Result<()> {
    host_mount_event(cx, "private", false)
}

fn masked_file(cx: &mut Ctx) -> Result<()> {
    let mut b = cx.bundle()?;
    b.set(
        "/linux/maskedPaths",
        json!(["/proc/timer_list", "/proc/keys"]),
    );
    b.expect(
        "/proc/timer_list masked",
        Check::Masked {
            path: "/proc/timer_list".into(),
        },
    );
    b.expect(
        "/proc/keys masked",
        Check::Masked {
            path: "/proc/keys".into(),
        },
    );
    cx.run_checks(&b)
}

fn masked_dir(cx: &mut Ctx) -> Result<()> {
    let mut b = cx.bundle()?;
    fs::create_dir_all(b.rootfs().join("secret"))?;
    fs::write(b.rootfs().join("secret/key"), "do not read")?;
    b.set("/linux/maskedPaths", json!(["/secret"]));
    b.expect(
        "/secret masked",
        Check::Masked {
            path: "/secret".into(),
        },
    );
    b.expect(
        "/secret/key hidden",
        Check::Absent {
            path: "/secret/key".into(),
        },
    );
    cx.run_checks(&b)
}

fn readonly_proc_sys(cx: &mut Ctx) -> Result<()> {
    let mut b = cx.bundle()?;
    b.set("/linux/readonlyPaths", json!(["/proc/sys"]));
    b.expect("/proc/sys ro flag", mounted("/proc/sys", None, &["ro"]));
    b.expect(
        "/proc/sys/kernel/hostname read-only",
        ro("/proc/sys/kernel/hostname"),
    );
    cx.run_checks(&b)
}

fn readonly_dir(cx: &mut Ctx) -> Result<()> {
    let mut b = cx.bundle()?;
    fs::create_dir_all(b.rootfs().join("rodir"))?;
    b.set("/root/readonly", json!(false));
    b.set("/linux/readonlyPaths", json!(["/rodir"]));
    b.expect("/rodir read-only", ro("/rodir"));
    b.expect("/ still writable", Check::Writable { path: "/".into() });
    cx.run_checks(&b)
}

fn bind_flags(cx: &mut Ctx) -> Result<()> {
    let mut b = cx.bundle()?;
    b.write_file("data/hello", "hello")?;
    let src = host_path(&b.path().join("data"));
    b.mount(
        "/mnt/data",
        "bind",
        &src,
        &["bind", "nosuid", "nodev", "noexec"],
    );
    b.expect(
        "flags",
        mounted("/mnt/data", None, &["nosuid", "nodev", "noexec"]),
    );
    cx.run_checks(&b)
}
