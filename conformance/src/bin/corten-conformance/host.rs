//! What the harness knows about the host: the runtime namespaces, the cgroup
//! version and controllers, busybox, and the run directory.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use corten_testkit::cgroup::{self, CgroupParent, CGROUP_ROOT};
use corten_testkit::rootfs::BUSYBOX;
use corten_testkit::Busybox;

/// Host facts, gathered once per run.
#[derive(Debug)]
pub struct Host {
    /// `/tmp/corten-conformance-<pid>`.
    pub run_dir: PathBuf,
    /// `true` when `/sys/fs/cgroup` is a cgroup v2 mount.
    pub cgroup_v2: bool,
    /// Inodes of the harness's (the runtime's) namespaces, by `/proc/self/ns` name.
    pub ns: BTreeMap<String, u64>,
    /// Master copy of the checker in the run directory.
    pub checker: PathBuf,
    /// Master copy of busybox in the run directory, hard-linked into each rootfs.
    pub busybox: Busybox,
    /// The parent of every case's cgroups, `/corten-conformance-<pid>`.
    pub cgroups: CgroupParent,
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
        let busybox = Busybox::master_copy(&run_dir)?;
        // Listed once, before any case runs.
        corten_testkit::rootfs::applets()?;
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
            cgroup_v2: cgroup::is_cgroup2(),
            ns,
            checker: master,
            busybox,
            cgroups: CgroupParent::for_process("corten-conformance"),
            cap_eff: effective_caps(),
            no_userns: corten_testkit::userns_unavailable(),
        })
    }

    /// Skip the case (with the reason) where no user namespace can be made.
    pub fn require_userns(&self) -> Result<()> {
        match &self.no_userns {
            Some(why) => Err(anyhow::Error::new(crate::cases::Skip(why.clone()))),
            None => Ok(()),
        }
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
        cgroup::hierarchies()
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
