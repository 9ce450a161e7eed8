//! The shim's own lifecycle, as containerd's runtime v2 drives it:
//! - `start`: start (or find, for a pod) the long-lived shim server for this
//!   container and print its ttrpc address;
//! - the server: serve the Task API until `Shutdown`;
//! - `delete`: clean up after a shim that died (kill and delete the
//!   container, unmount its rootfs) and report it as killed.
//!
//! # Socket address
//! `<containerd's state dir>/s/<sha256(address/namespace/group)>`, where the
//! state dir is the directory of containerd's socket: `/run/containerd/s/…`
//! for a default containerd (as runc's shim), and a private directory for a
//! containerd started with its own socket.

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
        Ok(DeleteResponse {
            pid: 0,
            exit_status: 128 + libc::SIGKILL as u32,
            exited_at: Some(timestamp(std::time::SystemTime::now())).into(),
            ..Default::default()
        })
    }

    fn wait(&mut self) {
        self.exit.wait();
        // The crate then removes the socket named in `address` in the
        // working directory: the bundle of the shim's first container, which
        // is gone when the shim served a pod. Remove it here in that case.
        if std::fs::metadata("address").is_err() {
            let _ = std::fs::remove_file(self.socket.trim_start_matches("unix://"));
            // Let the reply to Shutdown go out.
            std::thread::sleep(std::time::Duration::from_millis(20));
            std::process::exit(0);
        }
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
    format!(
        "unix://{}/s/{hash}",
        options::containerd_dir(containerd).display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_address_is_beside_containerd() {
        let a = socket_address("/run/containerd/containerd.sock", "default", "c1");
        assert_eq!(
            a,
            containerd_shim::socket_address("/run/containerd/containerd.sock", "default", "c1")
        );
        let b = socket_address("/tmp/ct/containerd.sock", "default", "c1");
        assert!(b.starts_with("unix:///tmp/ct/s/"), "{b}");
        assert_eq!(b.len(), "unix:///tmp/ct/s/".len() + 64);
        assert_ne!(
            b,
            socket_address("/tmp/ct/containerd.sock", "default", "c2")
        );
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
