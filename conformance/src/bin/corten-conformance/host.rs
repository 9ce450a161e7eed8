//! What the harness knows about the host: the runtime namespaces, the cgroup
//! version and controllers, busybox, and the run directory.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

/// The static busybox every rootfs is made from.
pub const BUSYBOX: &str = "/bin/busybox";
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// Host facts, gathered once per run.
#[derive(Debug)]
pub struct Host {
    /// `/tmp/corten-conformance-<pid>`.
    pub run_dir: PathBuf,
    /// The harness's pid (names the run directory and the cgroup parent).
    pub pid: u32,
    /// `true` when `/sys/fs/cgroup` is a cgroup v2 mount.
    pub cgroup_v2: bool,
    /// Inodes of the harness's (the runtime's) namespaces, by `/proc/self/ns` name.
    pub ns: BTreeMap<String, u64>,
    /// busybox applet names (without `busybox`).
    pub applets: Vec<String>,
    /// Master copy of the checker in the run directory.
    pub checker: PathBuf,
    /// Master copy of busybox in the run directory.
    pub busybox: PathBuf,
    /// The harness's (and so the runtime's) effective capabilities.
    pub cap_eff: u64,
    /// Why no user namespace can be created here, if so (the kernel
    /// refuses them to a process in a chroot, such as a fresh-install tree).
    pub no_userns: Option<String>,
}

impl Host {
    /// Gather the facts and create the run directory with master copies of
    /// busybox and the checker (hard-linked into each bundle).
    pub fn new(checker: &Path) -> Result<Host> {
        if !Path::new(BUSYBOX).exists() {
            bail!("{BUSYBOX} not found (install busybox-static)");
        }
        let pid = std::process::id();
        let run_dir = PathBuf::from(format!("/tmp/corten-conformance-{pid}"));
        fs::create_dir(&run_dir).with_context(|| format!("mkdir {}", run_dir.display()))?;
        let busybox = run_dir.join("busybox");
        fs::copy(BUSYBOX, &busybox).with_context(|| format!("copy {BUSYBOX}"))?;
        let master = run_dir.join("checker");
        fs::copy(checker, &master).with_context(|| format!("copy {}", checker.display()))?;
        let mut ns = BTreeMap::new();
        for name in ["pid", "net", "mnt", "ipc", "uts", "user", "cgroup", "time"] {
            if let Ok(m) = fs::metadata(format!("/proc/self/ns/{name}")) {
                ns.insert(name.to_owned(), m.ino());
            }
        }
        Ok(Host {
            run_dir,
            pid,
            cgroup_v2: is_cgroup2(CGROUP_ROOT),
            ns,
            applets: applets()?,
            checker: master,
            busybox,
            cap_eff: effective_caps(),
            no_userns: userns_refusal(),
        })
    }

    /// Skip the case (with the reason) where no user namespace can be made.
    pub fn require_userns(&self) -> Result<()> {
        match &self.no_userns {
            Some(why) => Err(anyhow::Error::new(crate::cases::Skip(why.clone()))),
            None => Ok(()),
        }
    }

    /// The cgroup parent every case's `cgroupsPath` lives under.
    pub fn cgroup_parent(&self) -> String {
        format!("/corten-conformance-{}", self.pid)
    }

    /// Inode of the runtime's namespace `ns` (`/proc/self/ns` name).
    pub fn ns_inode(&self, ns: &str) -> Option<u64> {
        self.ns.get(ns).copied()
    }

    /// Whether the runtime has capability number `cap` (capabilities(7)).
    pub fn has_cap(&self, cap: u32) -> bool {
        self.cap_eff & (1u64 << cap) != 0
    }

    /// Whether the controller is usable: a v1 hierarchy of that name, or
    /// listed in the v2 root's `cgroup.controllers`.
    pub fn has_controller(&self, controller: &str) -> bool {
        if self.cgroup_v2 {
            fs::read_to_string(format!("{CGROUP_ROOT}/cgroup.controllers"))
                .map(|t| t.split_whitespace().any(|c| c == controller))
                .unwrap_or(false)
        } else {
            Path::new(CGROUP_ROOT)
                .join(controller)
                .join("cgroup.procs")
                .exists()
        }
    }

    /// Whether a v1 controller file exists at the hierarchy root
    /// (`cpu/cpu.rt_runtime_us`); always `false` on v2.
    pub fn has_v1_file(&self, file: &str) -> bool {
        !self.cgroup_v2 && Path::new(CGROUP_ROOT).join(file).exists()
    }

    /// Every cgroup hierarchy directory: each v1 mount below
    /// `/sys/fs/cgroup`, or the v2 root.
    pub fn hierarchies(&self) -> Vec<PathBuf> {
        if self.cgroup_v2 {
            return vec![PathBuf::from(CGROUP_ROOT)];
        }
        let Ok(entries) = fs::read_dir(CGROUP_ROOT) else {
            return Vec::new();
        };
        entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.join("cgroup.procs").exists())
            .collect()
    }

    /// The host directory of `cgroups_path` in the hierarchy of
    /// `controller` (v1), or in the v2 tree.
    pub fn cgroup_dir(&self, controller: &str, cgroups_path: &str) -> PathBuf {
        let rel = cgroups_path.trim_start_matches('/');
        if self.cgroup_v2 {
            Path::new(CGROUP_ROOT).join(rel)
        } else {
            Path::new(CGROUP_ROOT).join(controller).join(rel)
        }
    }
}

fn effective_caps() -> u64 {
    fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0)
}

fn is_cgroup2(path: &str) -> bool {
    nix::sys::statfs::statfs(path)
        .map(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
        .unwrap_or(false)
}

fn applets() -> Result<Vec<String>> {
    let out = Command::new(BUSYBOX)
        .arg("--list")
        .output()
        .with_context(|| format!("{BUSYBOX} --list"))?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|a| !a.is_empty() && *a != "busybox" && !a.contains('/'))
        .map(str::to_owned)
        .collect())
}

/// Whether the ELF file at `path` has no program interpreter (is static).
pub fn is_static_elf(path: &Path) -> Result<bool> {
    let data = fs::read(path).with_context(|| format!("read {}", path.display()))?;
    if data.len() < 64 || &data[..4] != b"\x7fELF" || data[4] != 2 {
        bail!("{} is not a 64-bit ELF file", path.display());
    }
    let u16_at = |o: usize| u16::from_le_bytes([data[o], data[o + 1]]);
    let u64_at = |o: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&data[o..o + 8]);
        u64::from_le_bytes(b)
    };
    let phoff = usize::try_from(u64_at(32))?;
    let phentsize = usize::from(u16_at(54));
    let phnum = usize::from(u16_at(56));
    const PT_INTERP: u32 = 3;
    for i in 0..phnum {
        let o = phoff + i * phentsize;
        if o + 4 > data.len() {
            bail!("{}: truncated program headers", path.display());
        }
        let p_type = u32::from_le_bytes([data[o], data[o + 1], data[o + 2], data[o + 3]]);
        if p_type == PT_INTERP {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Why `unshare --user` fails here, or `None` when it works.
fn userns_refusal() -> Option<String> {
    let out = std::process::Command::new("unshare")
        .args(["--user", "true"])
        .output();
    match out {
        Ok(o) if o.status.success() => None,
        Ok(o) => Some(format!(
            "no user namespace can be created here ({}); the kernel refuses them to chrooted processes",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Some(format!("unshare --user: {e}")),
    }
}
