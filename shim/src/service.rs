//! The shim's own lifecycle, as containerd's runtime v2 drives it:
//! - `start`: start (or find, for a pod) the long-lived shim server for this
//!   container and print its ttrpc address;
//! - the server: serve the Task API until `Shutdown`;
//! - `delete`: clean up after a shim that died (kill and delete the
//!   container, unmount its rootfs) and report it as killed.
//!
//! # Socket address
//! `/run/corten/s/<sha256(address/namespace/group)>`: like containerd's own
//! shims (`/run/containerd/s/…`, the same hash), a short fixed directory,
//! whatever containerd's address, so the path always fits a unix socket's
//! 108 bytes (a path under containerd's socket directory did not once that
//! directory was about 40 bytes long). The hash covers containerd's address,
//! so several containerds never share a socket.
//!
//! A shim that is killed leaves its socket. `delete` removes it, but
//! containerd may remove the bundle first, and then cannot run `delete`
//! at all (its working directory is the bundle). So every `start` that
//! spawns a server also removes the sockets in the directory nobody listens
//! on; the directory is corten's own, so no other shim's files are touched,
//! and a socket younger than [`STALE_AFTER`] is left alone (a server that
//! has bound but not yet listened refuses connections too).

use std::io::Read;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use containerd_shim::api::DeleteResponse;
use containerd_shim::publisher::RemotePublisher;
use containerd_shim::util::write_address;
use containerd_shim::{Config, Error, ExitSignal, Flags, Shim, StartOpts};

use crate::events::{timestamp, Events};
use crate::options;
use crate::reaper::Reaper;
use crate::task::TaskService;
use crate::tasks::Tasks;

/// Where the shims' sockets are (see the module docs).
const SOCKET_DIR: &str = "/run/corten/s";

/// How old a socket nobody listens on must be to be removed as stale.
const STALE_AFTER: std::time::Duration = std::time::Duration::from_secs(10);

/// The annotation CRI sets on every container of a pod: one shim per pod.
const SANDBOX_ANNOTATION: &str = "io.kubernetes.cri.sandbox-id";

/// The shim, for each of its actions.
pub(crate) struct Service {
    id: String,
    namespace: String,
    address: String,
    /// The ttrpc socket the server listens on (`-socket`).
    socket: String,
    bundle: PathBuf,
    exit: Arc<ExitSignal>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("id", &self.id)
            .field("namespace", &self.namespace)
            .field("bundle", &self.bundle)
            .finish_non_exhaustive()
    }
}

impl Shim for Service {
    type T = TaskService;

    fn new(_runtime_id: &str, args: &Flags, _config: &mut Config) -> Self {
        let bundle = if args.bundle.is_empty() {
            std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."))
        } else {
            PathBuf::from(&args.bundle)
        };
        Service {
            id: args.id.clone(),
            namespace: args.namespace.clone(),
            address: args.address.clone(),
            socket: args.socket.clone(),
            bundle,
            exit: Arc::new(ExitSignal::default()),
        }
    }

    fn start_shim(&mut self, opts: StartOpts) -> containerd_shim::Result<String> {
        let group = group_id(&self.bundle).unwrap_or_else(|| opts.id.clone());
        let address = socket_address(&opts.address, &opts.namespace, &group);
        let path = address.trim_start_matches("unix://");
        if UnixStream::connect(path).is_ok() {
            // A shim already serves this pod.
            write_address(&address)?;
            return Ok(address);
        }
        // A socket at this very path that nobody listens on is replaced by
        // the server itself (the crate retries the bind after checking it):
        // removing it here would race with a server of the same pod that
        // has just bound it.
        remove_stale_sockets(Path::new(SOCKET_DIR), STALE_AFTER);
        let exe = std::env::current_exe().map_err(|e| io_err("find the shim binary", e))?;
        let mut command = Command::new(exe);
        command
            .args(["-namespace", &opts.namespace, "-id", &opts.id])
            .args(["-address", &opts.address, "-socket", &address])
            .current_dir(&self.bundle)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0);
        if opts.debug {
            command.arg("-debug");
        }
        let mut child = command
            .spawn()
            .map_err(|e| io_err("spawn the shim server", e))?;
        // The server closes its stdout once it listens (or when it fails).
        if let Some(mut out) = child.stdout.take() {
            let mut sink = Vec::new();
            let _ = out.read_to_end(&mut sink);
        }
        if UnixStream::connect(path).is_err() {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::Other(format!(
                "the shim server does not listen on {address}"
            )));
        }
        write_address(&address)?;
        Ok(address)
    }

    fn delete_shim(&mut self) -> containerd_shim::Result<DeleteResponse> {
        let runtime = options::load(&self.bundle)
            .unwrap_or_else(|| options::runtime(None, &self.namespace, &self.address));
        let out = runtime.delete_command(&self.id, &self.bundle).output();
        match out {
            Ok(o) if !o.status.success() => {
                let message = crate::runtime::last_error(&self.bundle.join("log.json"))
                    .unwrap_or_else(|| String::from_utf8_lossy(&o.stderr).trim().to_owned());
                if !message.contains("does not exist") {
                    crate::warn!("delete {}: {message}", self.id);
                }
            }
            Ok(_) => {}
            Err(e) => crate::warn!("run {}: {e}", runtime.binary.display()),
        }
        if let Err(e) = crate::mount::unmount_all(&self.bundle.join("rootfs")) {
            crate::warn!("{e:#}");
        }
        // The dead shim's socket, unless another shim of the group (a pod's)
        // still listens on it.
        let group = group_id(&self.bundle).unwrap_or_else(|| self.id.clone());
        let address = socket_address(&self.address, &self.namespace, &group);
        let path = address.trim_start_matches("unix://");
        if UnixStream::connect(path).is_err() {
            let _ = std::fs::remove_file(path);
        }
        Ok(DeleteResponse {
            pid: 0,
            exit_status: 128 + libc::SIGKILL as u32,
            exited_at: Some(timestamp(std::time::SystemTime::now())).into(),
            ..Default::default()
        })
    }

    fn wait(&mut self) {
        self.exit.wait();
        // The crate would then remove the socket named in the `address` file
        // of the working directory: the bundle of the shim's first
        // container, which containerd may be removing right now (and is
        // gone when the shim served a pod). Remove our own socket instead.
        let _ = std::fs::remove_file(self.socket.trim_start_matches("unix://"));
        // Let the reply to Shutdown go out.
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::process::exit(0);
    }

    fn create_task_service(&self, publisher: RemotePublisher) -> TaskService {
        // Events go through our own client (see events.rs).
        drop(publisher);
        let (reaper, exits) = Reaper::start().expect("start the reaper thread");
        let ttrpc_address = std::env::var("TTRPC_ADDRESS").unwrap_or_default();
        let events =
            Events::start(&ttrpc_address, self.namespace.clone()).expect("start the events thread");
        let tasks = Tasks::spawn(
            self.namespace.clone(),
            self.address.clone(),
            reaper,
            exits,
            events,
            Arc::clone(&self.exit),
        )
        .expect("start the exit handler thread");
        TaskService { tasks }
    }
}

/// The `-info` action (containerd 2.x): the runtime options arrive on
/// stdin; print a `RuntimeInfo` whose features are `corten features`.
pub(crate) fn print_info(runtime_id: &str) -> anyhow::Result<()> {
    use anyhow::Context;
    use containerd_shim::protos::protobuf::well_known_types::any::Any;
    use containerd_shim::protos::protobuf::{Message, MessageField};
    use containerd_shim::protos::types::introspection::{RuntimeInfo, RuntimeVersion};
    use std::io::Write;

    let mut input = Vec::new();
    std::io::stdin()
        .read_to_end(&mut input)
        .context("read the runtime options")?;
    let options = if input.is_empty() {
        None
    } else {
        Some(Any::parse_from_bytes(&input).context("decode the runtime options")?)
    };
    let runc = options::runc_options(options.as_ref())?;
    let runtime = options::runtime(runc.as_ref(), "default", "");
    let out = Command::new(&runtime.binary)
        .arg("features")
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("run {} features", runtime.binary.display()))?;
    anyhow::ensure!(
        out.status.success(),
        "{} features: {}",
        runtime.binary.display(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    let info = RuntimeInfo {
        name: runtime_id.to_owned(),
        version: MessageField::some(RuntimeVersion {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            ..Default::default()
        }),
        options: options.into(),
        features: MessageField::some(Any {
            type_url: "types.containerd.io/opencontainers/runtime-spec/1/features/Features".into(),
            value: out.stdout,
            ..Default::default()
        }),
        ..Default::default()
    };
    let bytes = info.write_to_bytes().context("encode the runtime info")?;
    std::io::stdout()
        .write_all(&bytes)
        .context("write the runtime info")
}

fn io_err(context: &str, e: std::io::Error) -> Error {
    Error::Other(format!("{context}: {e}"))
}

/// The pod (sandbox) this container belongs to, from its `config.json`.
fn group_id(bundle: &Path) -> Option<String> {
    group_of(&std::fs::read(bundle.join("config.json")).ok()?)
}

/// [`group_id`] for the contents of `config.json`.
pub(crate) fn group_of(config: &[u8]) -> Option<String> {
    let spec: serde_json::Value = serde_json::from_slice(config).ok()?;
    spec.pointer("/annotations")?
        .get(SANDBOX_ANNOTATION)?
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// The ttrpc address of the shim for `group` (see the module docs).
pub(crate) fn socket_address(containerd: &str, namespace: &str, group: &str) -> String {
    // The crate hashes exactly as containerd does; only the directory differs.
    let default = containerd_shim::socket_address(containerd, namespace, group);
    let hash = default.rsplit('/').next().unwrap_or_default();
    format!("unix://{SOCKET_DIR}/{hash}")
}

/// Removes the sockets in `dir` older than `age` that refuse connections.
fn remove_stale_sockets(dir: &Path, age: std::time::Duration) {
    use std::os::unix::fs::FileTypeExt;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        let old = meta
            .modified()
            .ok()
            .and_then(|m| m.elapsed().ok())
            .is_some_and(|elapsed| elapsed >= age);
        if !meta.file_type().is_socket() || !old {
            continue;
        }
        if let Err(e) = UnixStream::connect(&path) {
            if e.kind() == std::io::ErrorKind::ConnectionRefused {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_address_is_short_and_fixed() {
        // sha256("/run/containerd/containerd.sock/default/c1"), as containerd.
        let a = socket_address("/run/containerd/containerd.sock", "default", "c1");
        let containerds =
            containerd_shim::socket_address("/run/containerd/containerd.sock", "default", "c1");
        assert_eq!(
            a.rsplit('/').next(),
            containerds.rsplit('/').next(),
            "{a} {containerds}"
        );
        assert!(a.starts_with("unix:///run/corten/s/"), "{a}");
        let long = format!("/tmp/{}/containerd.sock", "d".repeat(200));
        let b = socket_address(&long, "default", "c1");
        assert!(b.starts_with("unix:///run/corten/s/"), "{b}");
        assert_eq!(b.len(), "unix:///run/corten/s/".len() + 64);
        assert!(b.len() - "unix://".len() < 108);
        assert_ne!(a, b);
        assert_ne!(b, socket_address(&long, "default", "c2"));
        assert_ne!(b, socket_address(&long, "k8s.io", "c1"));
    }

    #[test]
    fn only_old_sockets_nobody_listens_on_are_removed() {
        use std::os::unix::net::UnixListener;
        let dir = std::env::temp_dir().join(format!("corten-shim-stale-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let live = UnixListener::bind(dir.join("live")).unwrap();
        drop(UnixListener::bind(dir.join("dead")).unwrap());
        std::fs::write(dir.join("file"), "").unwrap();
        // Young: all kept.
        remove_stale_sockets(&dir, std::time::Duration::from_secs(3600));
        assert!(dir.join("dead").exists());
        remove_stale_sockets(&dir, std::time::Duration::ZERO);
        assert!(!dir.join("dead").exists());
        assert!(dir.join("live").exists());
        assert!(dir.join("file").exists());
        drop(live);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn pods_share_a_group() {
        let dir = std::env::temp_dir().join(format!("corten-shim-group-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("config.json"),
            r#"{"annotations":{"io.kubernetes.cri.sandbox-id":"pod1"}}"#,
        )
        .unwrap();
        assert_eq!(group_id(&dir).as_deref(), Some("pod1"));
        std::fs::write(dir.join("config.json"), r#"{"annotations":{}}"#).unwrap();
        assert_eq!(group_id(&dir), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
