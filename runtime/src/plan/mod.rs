//! The plan of a container: what `create` reads, checks and computes
//! before it touches the system, once. config.json is decoded into the
//! typed [`Spec`] (`spec` is data only: it imports no subsystem); the
//! checks of [`validate`] produce the compiled seccomp program; the
//! namespaces become an [`NsPlan`], the rootfs an absolute directory,
//! `linux.resources` the list of cgroup file writes. The parent side of
//! `create` and the container's init work from this one value.

mod validate;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

pub use validate::{validate, validate_process};

use crate::cgroups::resources::Write;
use crate::container::CreateOpts;
use crate::process::create::{step, CreateError};
use crate::process::namespaces::NsPlan;
use crate::seccomp::Filter;
use crate::spec::Spec;
use crate::state::{HookState, StateDir, Status};

/// A container to create, checked and compiled.
#[derive(Debug)]
pub struct Plan {
    /// The state directory (named; `create` makes it).
    pub(crate) dir: StateDir,
    /// The bundle, absolute.
    pub(crate) bundle: PathBuf,
    /// The rootfs, absolute, checked to be a directory.
    pub(crate) rootfs: PathBuf,
    /// The validated config.
    pub(crate) spec: Spec,
    /// The namespaces to create and join.
    pub(crate) ns: NsPlan,
    /// The compiled `linux.seccomp`.
    pub(crate) seccomp: Option<Filter>,
    /// `linux.resources` as cgroup file writes for this host's cgroup
    /// version (devices apart: see `cgroups::devices`).
    pub(crate) cgroup_writes: Vec<Write>,
    /// The caller's options.
    pub(crate) opts: CreateOpts,
    /// Rootless (`--rootless`, or by runc's rule when `auto`): a cgroup
    /// this user cannot make is done without, unless limits are asked for.
    pub(crate) rootless: bool,
}

/// A bundle read and checked: the first half of a [`Plan`], before the
/// caller's console socket is known (`run` decides on it from the
/// config's `process.terminal`).
#[derive(Debug)]
pub struct Bundle {
    dir: StateDir,
    bundle: PathBuf,
    rootfs: PathBuf,
    spec: Spec,
    seccomp: Option<Filter>,
    rootless: bool,
}

impl Bundle {
    /// Reads container `id`'s bundle `bundle` for the state root `root`:
    /// config.json decoded and validated (the seccomp profile compiled),
    /// `--rootless` checked, the rootfs resolved.
    pub fn read(
        root: &Path,
        id: &str,
        bundle: &Path,
        rootless: Option<&str>,
    ) -> Result<Bundle, CreateError> {
        let dir = StateDir::new(root, id)?;
        let bundle =
            fs::canonicalize(bundle).map_err(step(format!("bundle {}", bundle.display())))?;
        let spec = Spec::read(&bundle)?;
        let seccomp = validate(&spec)?;
        crate::capabilities::warn_unknown(spec.process().capabilities.as_ref());
        crate::logging::step(|| {
            format!(
                "config {} loaded and validated",
                bundle.join("config.json").display()
            )
        });
        let rootless = parse_rootless(rootless)?.unwrap_or_else(crate::rootless::auto);
        if rootless && !nix::unistd::geteuid().is_root() {
            crate::plan::validate::rootless_euid(&spec)?;
        }
        let rootfs = rootfs_path(&spec, &bundle)?;
        Ok(Bundle {
            dir,
            bundle,
            rootfs,
            spec,
            seccomp,
            rootless,
        })
    }

    /// The validated config.
    pub fn spec(&self) -> &Spec {
        &self.spec
    }

    /// The rest of the plan, with the caller's options.
    pub fn plan(self, opts: CreateOpts) -> Result<Plan, CreateError> {
        let process = self.spec.process();
        if process.terminal && opts.console_socket.is_none() {
            return Err(CreateError::Usage(
                "cannot allocate tty if corten will detach without setting console socket",
            ));
        }
        if !process.terminal && opts.console_socket.is_some() {
            return Err(CreateError::Usage(
                "cannot use console socket if corten will not detach or allocate tty",
            ));
        }
        let ns = NsPlan::new(&self.spec.linux().namespaces)?;
        // What this host's cgroup version cannot express is refused before
        // anything exists.
        let cgroup_writes = match &self.spec.linux().resources {
            Some(res) => crate::cgroups::resources::plan(res, crate::cgroups::Version::host())?,
            None => Vec::new(),
        };
        Ok(Plan {
            dir: self.dir,
            bundle: self.bundle,
            rootfs: self.rootfs,
            spec: self.spec,
            ns,
            seccomp: self.seccomp,
            cgroup_writes,
            opts,
            rootless: self.rootless,
        })
    }
}

impl Plan {
    /// [`Bundle::read`] then [`Bundle::plan`].
    pub fn new(
        root: &Path,
        id: &str,
        bundle: &Path,
        opts: CreateOpts,
    ) -> Result<Plan, CreateError> {
        Bundle::read(root, id, bundle, opts.rootless.as_deref())?.plan(opts)
    }

    /// The validated config.
    pub fn spec(&self) -> &Spec {
        &self.spec
    }

    /// The container id.
    pub fn id(&self) -> &str {
        &self.dir.id
    }

    /// The state hooks and a seccomp agent are given while the container
    /// is made (`pid` 0 once it is gone).
    pub(crate) fn hook_state(&self, status: Status, pid: i32) -> HookState<'_> {
        HookState {
            oci_version: &self.spec.oci_version,
            id: &self.dir.id,
            status,
            pid,
            bundle: &self.bundle,
            annotations: &self.spec.annotations,
        }
    }
}

/// `--rootless`: Go's `strconv.ParseBool`, or `auto` (`None`), with runc's
/// error.
fn parse_rootless(value: Option<&str>) -> Result<Option<bool>, CreateError> {
    match value {
        None | Some("" | "auto") => Ok(None),
        Some("1" | "t" | "T" | "TRUE" | "true" | "True") => Ok(Some(true)),
        Some("0" | "f" | "F" | "FALSE" | "false" | "False") => Ok(Some(false)),
        Some(v) => Err(CreateError::Refused(format!(
            "strconv.ParseBool: parsing {v:?}: invalid syntax"
        ))),
    }
}

/// Resolves the rootfs of `spec` against `bundle` and checks it is a directory.
fn rootfs_path(spec: &Spec, bundle: &Path) -> Result<PathBuf, CreateError> {
    let root = spec
        .root
        .as_ref()
        .map(|r| r.path.clone())
        .unwrap_or_default();
    let p = if root.is_absolute() {
        root
    } else {
        bundle.join(root)
    };
    let real = fs::canonicalize(&p).map_err(|source| CreateError::Rootfs {
        path: p.clone(),
        source,
    })?;
    // runc's check: the path as given, cleaned, must be the real one.
    if clean(&p) != real {
        return Err(CreateError::Usage(
            "invalid rootfs: not an absolute path, or a symlink",
        ));
    }
    let p = real;
    if !p.is_dir() {
        return Err(CreateError::Rootfs {
            path: p,
            source: io::Error::from_raw_os_error(libc::ENOTDIR),
        });
    }
    Ok(p)
}

/// `path` cleaned lexically as Go's `filepath.Clean` does: `.` and empty
/// components dropped, `..` taken back against the previous component.
fn clean(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::Normal(n) => out.push(n),
            _ => {}
        }
    }
    out
}
