//! A private containerd with its CRI plugin, driven as a kubelet drives it:
//! Kubernetes' CRI v1 over gRPC (the `k8s-cri` crate's generated client),
//! streaming Exec/Attach over a websocket to containerd's streaming server
//! (`v4.channel.k8s.io`, as `kubectl exec` speaks it through the API
//! server).
//!
//! Everything is the test's own, under `/tmp/corten-it/cri-<pid>-<n>/`:
//! config, root, state, sockets, CNI plugin and config, pod logs, runtime
//! roots. The daemon runs in a **private mount namespace** (`unshare
//! --mount --propagation private`), so the mounts of its pods (rootfs,
//! /dev/shm, network namespaces, the volumes of the propagation tests under
//! a shared tmpfs `vols/`) never reach the host's; what containerd's
//! "host" sees is read through `/proc/<containerd>/root`. Pod cgroups are
//! under this process's test cgroup parent. The network is never used:
//! images are made here and imported, and the pod network is the
//! project's own CNI plugin (`integration-tests/cni/corten-linklocal`: a
//! link-local /32 and no routes).
//!
//! Three runtime handlers, as a cluster declares them with RuntimeClass:
//! [`HANDLERS`].
//!
//! The client: `k8s-cri` (tonic code generated at build time from the
//! upstream CRI protos, v1 and v1alpha2, with Debian's `protoc`) rather than
//! our own generation from the protos: that would take the same protoc and
//! tonic-build machinery and a copy of the protos to keep current, and the
//! protobuf/ttrpc stack the shim already uses does not speak gRPC (HTTP/2).

use std::collections::HashMap;
use std::fs;
use std::future::Future;
use std::io::ErrorKind;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use k8s_cri::v1 as cri;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use tonic::transport::Channel;

use crate::{
    cgroup_dirs, cgroup_parent, oci_image_tar, on_path, pid_alive, processes_mentioning,
    runtime_bin, unique_name, wait_for, wait_until, Bundle, BASE_DIR,
};

/// The runtime handlers (RuntimeClass `handler`s) the tests run with:
/// runc (the reference, runc's shim), corten under runc's shim
/// (`BinaryName`), and corten's own shim.
pub const HANDLERS: [&str; 3] = ["runc", "corten-runc-shim", "corten"];

/// The image the containers run.
pub const BUSYBOX: &str = "docker.io/library/corten-busybox:latest";
/// The sandbox ("pause") image: busybox's sh sleeping, reaping orphans
/// (ash waits for any child) and leaving on SIGTERM/SIGINT.
pub const PAUSE: &str = "docker.io/library/corten-pause:1";
const PAUSE_SCRIPT: &str = "trap 'exit 0' TERM INT; while :; do sleep 1; done";

/// How long any one CRI call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(90);

/// The masked and read-only paths a kubelet asks for (its defaults).
pub const MASKED_PATHS: [&str; 9] = [
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
];
/// See [`MASKED_PATHS`].
pub const READONLY_PATHS: [&str; 6] = [
    "/proc/asound",
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// The namespaces of a kubelet's pod by default: network and IPC the
/// pod's, PID the container's own (`shareProcessNamespace: false`).
pub fn pod_namespaces() -> cri::NamespaceOption {
    cri::NamespaceOption {
        network: cri::NamespaceMode::Pod as i32,
        pid: cri::NamespaceMode::Container as i32,
        ipc: cri::NamespaceMode::Pod as i32,
        ..Default::default()
    }
}

/// A pod made by [`Cri::run_pod`].
#[derive(Debug, Clone)]
pub struct Pod {
    pub id: String,
    pub handler: String,
    pub config: cri::PodSandboxConfig,
}

/// The private containerd and a CRI client to it; everything is stopped,
/// killed and removed on drop.
#[allow(missing_debug_implementations)]
pub struct Cri {
    pub dir: PathBuf,
    child: Option<Child>,
    rt: tokio::runtime::Runtime,
    client: Option<RuntimeServiceClient<Channel>>,
    /// The busybox rootfs (and this process's test cgroup parent).
    bundle: Bundle,
    n: AtomicUsize,
}

impl Cri {
    /// Starts containerd with the CRI plugin and waits until CRI reports
    /// the runtime and the network ready.
    pub fn start() -> Cri {
        for tool in [
            "containerd",
            "ctr",
            "containerd-shim-runc-v2",
            "runc",
            "ip",
            "nsenter",
            "unshare",
        ] {
            assert!(
                on_path(tool).is_some(),
                "the CRI tests need `{tool}` on PATH: `make deps` installs Debian's \
                 containerd, runc and iproute2"
            );
        }
        let shim = shim_bin();
        assert!(
            shim.is_file(),
            "no shim at {}: run `make build`",
            shim.display()
        );
        let runtime = runtime_bin();
        assert!(runtime.is_file(), "no runtime at {}", runtime.display());
        let bundle = Bundle::new("cri-rootfs");
        let dir = Path::new(BASE_DIR).join(unique_name("cri"));
        for sub in ["bin", "cni/bin", "cni/conf", "vols", "logs", "seccomp"] {
            fs::create_dir_all(dir.join(sub)).expect("create the CRI test directories");
        }
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o711)).expect("chmod");
        for (from, to) in [
            (shim.clone(), "bin/containerd-shim-corten-v2"),
            (runtime.clone(), "bin/corten"),
            (cni_plugin(), "cni/bin/corten-linklocal"),
            (cni_plugin(), "cni/bin/loopback"),
        ] {
            fs::copy(&from, dir.join(to))
                .unwrap_or_else(|e| panic!("copy {} to {to}: {e}", from.display()));
        }
        fs::write(
            dir.join("cni/conf/10-corten.conf"),
            r#"{"cniVersion":"0.4.0","name":"corten-test","type":"corten-linklocal"}"#,
        )
        .expect("write the CNI config");
        let runc = on_path("runc").expect("runc");
        let d = dir.display();
        let cri = "plugins.\"io.containerd.grpc.v1.cri\"";
        let rts = format!("{cri}.containerd.runtimes");
        let config = format!(
            "version = 2\n\
             root = \"{d}/root\"\n\
             state = \"{d}/state\"\n\
             [grpc]\n  address = \"{d}/c.sock\"\n\
             [ttrpc]\n  address = \"{d}/c.sock.ttrpc\"\n\
             [debug]\n  address = \"{d}/debug.sock\"\n  level = \"debug\"\n\
             [plugins.\"io.containerd.internal.v1.opt\"]\n  path = \"{d}/opt\"\n\
             [{cri}]\n\
               sandbox_image = \"{PAUSE}\"\n\
               restrict_oom_score_adj = true\n\
               stream_server_address = \"127.0.0.1\"\n\
               stream_server_port = \"0\"\n\
               disable_apparmor = true\n\
             [{cri}.cni]\n  bin_dir = \"{d}/cni/bin\"\n  conf_dir = \"{d}/cni/conf\"\n\
             [{cri}.containerd]\n  default_runtime_name = \"runc\"\n\
             [{rts}.runc]\n  runtime_type = \"io.containerd.runc.v2\"\n\
             [{rts}.runc.options]\n  BinaryName = \"{runc}\"\n  Root = \"{d}/runc-root\"\n\
             [{rts}.corten-runc-shim]\n  runtime_type = \"io.containerd.runc.v2\"\n\
             [{rts}.corten-runc-shim.options]\n  BinaryName = \"{d}/bin/corten\"\n  \
               Root = \"{d}/corten-runc-root\"\n\
             [{rts}.corten]\n  runtime_type = \"io.containerd.corten.v2\"\n",
            runc = runc.display(),
        );
        fs::write(dir.join("config.toml"), config).expect("write config.toml");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let mut c = Cri {
            dir,
            child: None,
            rt,
            client: None,
            bundle,
            n: AtomicUsize::new(0),
        };
        c.spawn_daemon();
        c.import_images();
        c.connect();
        c
    }

    fn spawn_daemon(&mut self) {
        let log = fs::File::create(self.dir.join("containerd.log")).expect("containerd.log");
        let d = self.dir.display();
        let script = format!(
            "mount -t tmpfs vols {d}/vols && mount --make-rshared {d}/vols && \
             exec containerd --config {d}/config.toml"
        );
        let path = format!("{d}/bin:{}", std::env::var("PATH").unwrap_or_default());
        let child = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c", &script])
            .env("PATH", path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log"))
            .stderr(log)
            .spawn()
            .expect("start containerd");
        self.child = Some(child);
        let up = wait_until(Duration::from_secs(30), || {
            self.sock().exists()
                && self
                    .ctr_cmd(&["version"])
                    .output()
                    .is_ok_and(|o| o.status.success())
        });
        assert!(up, "containerd did not come up:\n{}", self.log_tail(60));
    }

    fn connect(&mut self) {
        let sock = self.sock();
        let channel = self
            .rt
            .block_on(async {
                tonic::transport::Endpoint::try_from("http://[::]")
                    .expect("endpoint")
                    .connect_with_connector(tower::service_fn(move |_: tonic::transport::Uri| {
                        let sock = sock.clone();
                        async move {
                            let stream = tokio::net::UnixStream::connect(sock).await?;
                            Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
                        }
                    }))
                    .await
            })
            .expect("connect to containerd's CRI");
        self.client = Some(RuntimeServiceClient::new(channel));
        // Ready: the runtime, and the network (the CNI config is loaded).
        let ready = wait_until(Duration::from_secs(30), || {
            let Ok(status) = self.try_call(|mut c| async move {
                c.status(cri::StatusRequest { verbose: false }).await
            }) else {
                return false;
            };
            status
                .status
                .is_some_and(|s| s.conditions.iter().all(|c| c.status) && s.conditions.len() >= 2)
        });
        assert!(ready, "CRI never became ready:\n{}", self.log_tail(60));
    }

    fn import_images(&self) {
        let busybox = serde_json::json!({
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["sh"],
        });
        let pause = serde_json::json!({
            "Env": ["PATH=/bin"],
            "Entrypoint": ["/bin/sh", "-c", PAUSE_SCRIPT],
        });
        for (name, config, work) in [
            (BUSYBOX, busybox, "image-busybox"),
            (PAUSE, pause, "image-pause"),
        ] {
            let tar = oci_image_tar(&self.bundle.rootfs(), &self.dir.join(work), name, config);
            let out = self
                .ctr_cmd(&["-n", "k8s.io", "images", "import"])
                .arg(&tar)
                .output()
                .expect("run ctr images import");
            assert!(out.status.success(), "import {name}: {out:?}");
            let _ = fs::remove_dir_all(self.dir.join(work));
        }
    }

    pub fn sock(&self) -> PathBuf {
        self.dir.join("c.sock")
    }

    /// containerd's pid (the daemon runs in its own mount namespace).
    pub fn containerd_pid(&self) -> u32 {
        self.child.as_ref().expect("containerd runs").id()
    }

    /// `path` as containerd and its pods' host side see it (in the
    /// daemon's mount namespace).
    pub fn host_path(&self, path: &Path) -> PathBuf {
        Path::new(&format!("/proc/{}/root", self.containerd_pid()))
            .join(path.strip_prefix("/").unwrap_or(path))
    }

    /// Runs `script` with `sh -c` in containerd's mount namespace, with
    /// containerd's root and working directory (`-r -w`: joining a mount
    /// namespace alone puts a process at the namespace's root, which in a
    /// chroot is the host's tree above it).
    pub fn host_sh(&self, script: &str) -> std::process::Output {
        Command::new("nsenter")
            .args(["-t", &self.containerd_pid().to_string(), "-m", "-r", "-w"])
            .args(["sh", "-c", script])
            .stdin(Stdio::null())
            .output()
            .expect("run nsenter")
    }

    pub fn ctr_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("ctr");
        c.arg("-a").arg(self.sock()).args(args);
        c
    }

    /// The last `lines` lines of containerd's log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = fs::read_to_string(self.dir.join("containerd.log")).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// One CRI call, bounded by [`CALL_TIMEOUT`].
    pub fn try_call<T, F, Fut>(&self, call: F) -> Result<T, tonic::Status>
    where
        F: FnOnce(RuntimeServiceClient<Channel>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let client = self.client.clone().expect("connected");
        self.rt.block_on(async {
            match tokio::time::timeout(crate::scaled(CALL_TIMEOUT), call(client)).await {
                Ok(r) => r.map(tonic::Response::into_inner),
                Err(_) => Err(tonic::Status::deadline_exceeded(format!(
                    "no answer in {CALL_TIMEOUT:?}"
                ))),
            }
        })
    }

    /// [`Cri::try_call`], failing the test on an error.
    pub fn call<T, F, Fut>(&self, what: &str, call: F) -> T
    where
        F: FnOnce(RuntimeServiceClient<Channel>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        self.try_call(call).unwrap_or_else(|e| {
            panic!(
                "{what}: {} {}\ncontainerd log:\n{}",
                e.code(),
                e.message(),
                self.log_tail(40)
            )
        })
    }

    fn next(&self) -> usize {
        self.n.fetch_add(1, Ordering::SeqCst)
    }

    /// The cgroup parent of this test's pods (under the test cgroup
    /// parent, removed on drop).
    fn pods_cgroup(&self) -> String {
        format!(
            "{}/{}",
            cgroup_parent(),
            self.dir.file_name().unwrap().to_string_lossy()
        )
    }

    /// The sandbox config of a pod named `name`: its own hostname, log
    /// directory and cgroup parent, every namespace the pod's.
    pub fn pod_config(&self, name: &str) -> cri::PodSandboxConfig {
        let n = self.next();
        let log_dir = self.dir.join("logs").join(format!("{name}-{n}"));
        fs::create_dir_all(&log_dir).expect("the pod's log directory");
        cri::PodSandboxConfig {
            metadata: Some(cri::PodSandboxMetadata {
                name: name.to_owned(),
                uid: format!("uid-{name}-{n}"),
                namespace: "default".into(),
                attempt: 0,
            }),
            hostname: name.to_owned(),
            log_directory: log_dir.display().to_string(),
            linux: Some(cri::LinuxPodSandboxConfig {
                cgroup_parent: format!("{}/pod{n}", self.pods_cgroup()),
                security_context: Some(cri::LinuxSandboxSecurityContext {
                    namespace_options: Some(pod_namespaces()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// RunPodSandbox with `config` and `handler`.
    pub fn run_pod_with(&self, handler: &str, config: cri::PodSandboxConfig) -> Pod {
        let req = cri::RunPodSandboxRequest {
            config: Some(config.clone()),
            runtime_handler: handler.to_owned(),
        };
        let resp = self.call(&format!("RunPodSandbox ({handler})"), |mut c| async move {
            c.run_pod_sandbox(req).await
        });
        Pod {
            id: resp.pod_sandbox_id,
            handler: handler.to_owned(),
            config,
        }
    }

    /// A pod named `name` with the defaults of [`Cri::pod_config`].
    pub fn run_pod(&self, handler: &str, name: &str) -> Pod {
        self.run_pod_with(handler, self.pod_config(name))
    }

    /// A container config running `cmd` in busybox, logging to `<name>.log`.
    pub fn container_config(name: &str, cmd: &[&str]) -> cri::ContainerConfig {
        cri::ContainerConfig {
            metadata: Some(cri::ContainerMetadata {
                name: name.to_owned(),
                attempt: 0,
            }),
            image: Some(cri::ImageSpec {
                image: BUSYBOX.into(),
                ..Default::default()
            }),
            command: cmd.iter().map(|s| (*s).to_owned()).collect(),
            log_path: format!("{name}.log"),
            linux: Some(cri::LinuxContainerConfig {
                resources: Some(cri::LinuxContainerResources::default()),
                security_context: Some(cri::LinuxContainerSecurityContext {
                    namespace_options: Some(pod_namespaces()),
                    masked_paths: MASKED_PATHS.iter().map(|s| (*s).to_owned()).collect(),
                    readonly_paths: READONLY_PATHS.iter().map(|s| (*s).to_owned()).collect(),
                    ..Default::default()
                }),
            }),
            ..Default::default()
        }
    }

    /// CreateContainer in `pod`.
    pub fn create(&self, pod: &Pod, config: cri::ContainerConfig) -> String {
        let req = cri::CreateContainerRequest {
            pod_sandbox_id: pod.id.clone(),
            config: Some(config),
            sandbox_config: Some(pod.config.clone()),
        };
        self.call(
            &format!("CreateContainer ({})", pod.handler),
            |mut c| async move { c.create_container(req).await },
        )
        .container_id
    }

    pub fn start_container(&self, id: &str) {
        let req = cri::StartContainerRequest {
            container_id: id.to_owned(),
        };
        self.call("StartContainer", |mut c| async move {
            c.start_container(req).await
        });
    }

    /// Create and start.
    pub fn run(&self, pod: &Pod, config: cri::ContainerConfig) -> String {
        let id = self.create(pod, config);
        self.start_container(&id);
        id
    }

    pub fn stop_container(&self, id: &str, timeout: i64) {
        let req = cri::StopContainerRequest {
            container_id: id.to_owned(),
            timeout,
        };
        self.call("StopContainer", |mut c| async move {
            c.stop_container(req).await
        });
    }

    pub fn remove_container(&self, id: &str) {
        let req = cri::RemoveContainerRequest {
            container_id: id.to_owned(),
        };
        self.call("RemoveContainer", |mut c| async move {
            c.remove_container(req).await
        });
    }

    pub fn status(&self, id: &str) -> cri::ContainerStatus {
        let req = cri::ContainerStatusRequest {
            container_id: id.to_owned(),
            verbose: false,
        };
        self.call("ContainerStatus", |mut c| async move {
            c.container_status(req).await
        })
        .status
        .expect("a container status")
    }

    /// The container's `info` (verbose status): pid, runtime spec, …
    pub fn info(&self, id: &str) -> serde_json::Value {
        let req = cri::ContainerStatusRequest {
            container_id: id.to_owned(),
            verbose: true,
        };
        let resp = self.call("ContainerStatus (verbose)", |mut c| async move {
            c.container_status(req).await
        });
        resp.info
            .get("info")
            .and_then(|t| serde_json::from_str(t).ok())
            .unwrap_or_default()
    }

    /// The container's init pid (as containerd sees it).
    pub fn pid(&self, id: &str) -> i32 {
        let pid = self.info(id)["pid"].as_i64().unwrap_or(0);
        i32::try_from(pid).expect("pid")
    }

    /// Waits until the container has exited; its final status.
    pub fn wait_exited(&self, id: &str, timeout: Duration) -> cri::ContainerStatus {
        wait_for(timeout, || {
            let s = self.status(id);
            (s.state == cri::ContainerState::ContainerExited as i32).then_some(s)
        })
        .unwrap_or_else(|| panic!("container {id} did not exit within {timeout:?}"))
    }

    /// ExecSync: exit code, stdout, stderr.
    pub fn exec_sync(&self, id: &str, cmd: &[&str]) -> (i32, String, String) {
        let req = cri::ExecSyncRequest {
            container_id: id.to_owned(),
            cmd: cmd.iter().map(|s| (*s).to_owned()).collect(),
            timeout: 60,
        };
        let r = self.call(&format!("ExecSync {cmd:?}"), |mut c| async move {
            c.exec_sync(req).await
        });
        (
            r.exit_code,
            String::from_utf8_lossy(&r.stdout).into_owned(),
            String::from_utf8_lossy(&r.stderr).into_owned(),
        )
    }

    /// `sh -c script` through ExecSync; stdout trimmed, failing the test
    /// unless it exits 0.
    pub fn sh(&self, id: &str, script: &str) -> String {
        let (code, out, err) = self.exec_sync(id, &["sh", "-c", script]);
        assert_eq!(
            code, 0,
            "`{script}` in {id}: exit {code}, stdout {out:?}, stderr {err:?}"
        );
        out.trim().to_owned()
    }

    /// The streaming Exec: the URL from containerd's streaming server.
    pub fn exec_url(&self, id: &str, cmd: &[&str], stdin: bool) -> String {
        let req = cri::ExecRequest {
            container_id: id.to_owned(),
            cmd: cmd.iter().map(|s| (*s).to_owned()).collect(),
            tty: false,
            stdin,
            stdout: true,
            stderr: true,
        };
        self.call("Exec", |mut c| async move { c.exec(req).await })
            .url
    }

    /// The streaming Attach URL.
    pub fn attach_url(&self, id: &str, stdin: bool) -> String {
        let req = cri::AttachRequest {
            container_id: id.to_owned(),
            stdin,
            tty: false,
            stdout: true,
            stderr: true,
        };
        self.call("Attach", |mut c| async move { c.attach(req).await })
            .url
    }

    pub fn stop_pod(&self, pod: &Pod) {
        let req = cri::StopPodSandboxRequest {
            pod_sandbox_id: pod.id.clone(),
        };
        self.call("StopPodSandbox", |mut c| async move {
            c.stop_pod_sandbox(req).await
        });
    }

    pub fn remove_pod(&self, pod: &Pod) {
        let req = cri::RemovePodSandboxRequest {
            pod_sandbox_id: pod.id.clone(),
        };
        self.call("RemovePodSandbox", |mut c| async move {
            c.remove_pod_sandbox(req).await
        });
    }

    pub fn pod_status(&self, pod: &Pod) -> cri::PodSandboxStatus {
        let req = cri::PodSandboxStatusRequest {
            pod_sandbox_id: pod.id.clone(),
            verbose: false,
        };
        self.call("PodSandboxStatus", |mut c| async move {
            c.pod_sandbox_status(req).await
        })
        .status
        .expect("a pod status")
    }

    /// Stops and removes the pod, then checks nothing of it is left: no
    /// shim or container process, no container cgroup.
    pub fn remove_pod_and_check(&self, pod: &Pod) {
        self.stop_pod(pod);
        self.remove_pod(pod);
        let gone = wait_until(Duration::from_secs(20), || self.shims().is_empty());
        assert!(
            gone,
            "{}: shims left after RemovePodSandbox: {:?}",
            pod.handler,
            self.shims()
        );
        let parent = &pod.config.linux.as_ref().expect("linux").cgroup_parent;
        for dir in cgroup_dirs(parent) {
            let children: Vec<PathBuf> = fs::read_dir(&dir)
                .map(|d| {
                    d.flatten()
                        .map(|e| e.path())
                        .filter(|p| p.is_dir())
                        .collect()
                })
                .unwrap_or_default();
            assert!(
                children.is_empty(),
                "{}: cgroups left: {children:?}",
                pod.handler
            );
        }
    }

    /// Live shim processes of this containerd: (pid, binary name).
    pub fn shims(&self) -> Vec<(i32, String)> {
        processes_mentioning(&self.sock().display().to_string())
            .into_iter()
            .filter_map(|pid| {
                let cmdline = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
                let argv0 = cmdline.split(|&b| b == 0).next()?;
                let name = Path::new(&*String::from_utf8_lossy(argv0))
                    .file_name()?
                    .to_string_lossy()
                    .into_owned();
                name.starts_with("containerd-shim").then_some((pid, name))
            })
            .collect()
    }

    /// A Localhost seccomp profile file: `profile` written under the
    /// test's directory, its path for `localhost_ref`.
    pub fn seccomp_profile(&self, name: &str, profile: &serde_json::Value) -> String {
        let path = self.dir.join("seccomp").join(name);
        fs::write(&path, profile.to_string()).expect("write the seccomp profile");
        path.display().to_string()
    }

    /// Removes every pod left (a failed test), the way a kubelet would.
    fn remove_all_pods(&self) {
        let Ok(list) = self.try_call(|mut c| async move {
            c.list_pod_sandbox(cri::ListPodSandboxRequest { filter: None })
                .await
        }) else {
            return;
        };
        for pod in list.items {
            let id = pod.id;
            let stop = cri::StopPodSandboxRequest {
                pod_sandbox_id: id.clone(),
            };
            let _ = self.try_call(|mut c| async move { c.stop_pod_sandbox(stop).await });
            let remove = cri::RemovePodSandboxRequest { pod_sandbox_id: id };
            let _ = self.try_call(|mut c| async move { c.remove_pod_sandbox(remove).await });
        }
    }
}

impl Drop for Cri {
    fn drop(&mut self) {
        if self.client.is_some() {
            self.remove_all_pods();
        }
        if let Some(mut child) = self.child.take() {
            let pid = i32::try_from(child.id()).expect("pid");
            // SAFETY: kill has no memory-safety preconditions; the pid is the
            // containerd this test started and has not reaped.
            unsafe { libc::kill(pid, libc::SIGTERM) };
            if !wait_until(Duration::from_secs(10), || {
                child.try_wait().is_ok_and(|s| s.is_some())
            }) {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
        // Shims and their runtimes (their command lines name our directory),
        // and any process left in our pods' cgroups, by pid.
        let mut pids = processes_mentioning(&self.dir.display().to_string());
        let pods = self.pods_cgroup();
        for top in cgroup_dirs(&pods) {
            for dir in walk_dirs(&top) {
                let procs = fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
                pids.extend(procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
            }
        }
        for &pid in pids.iter().filter(|&&p| p > 1) {
            eprintln!("CRI test: killing leftover process {pid}");
            // SAFETY: as above; these processes were started for this test.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        wait_until(Duration::from_secs(5), || {
            pids.iter().all(|&p| !pid_alive(p.into()))
        });
        for top in cgroup_dirs(&pods) {
            let mut dirs = walk_dirs(&top);
            dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
            for dir in dirs {
                let _ = fs::remove_dir(dir);
            }
        }
        // Its mounts lived in containerd's mount namespace, gone with it.
        if crate::mounts_under(&self.dir).is_empty() {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// `dir` and every directory below it.
fn walk_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![dir.to_owned()];
    let mut i = 0;
    while i < out.len() {
        if let Ok(entries) = fs::read_dir(&out[i]) {
            out.extend(
                entries
                    .flatten()
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .map(|e| e.path()),
            );
        }
        i += 1;
    }
    out
}

/// The shim under test: `$CORTEN_SHIM_BIN`, or the workspace's release build.
pub fn shim_bin() -> PathBuf {
    crate::env_path_or(
        "CORTEN_SHIM_BIN",
        "target/release/containerd-shim-corten-v2",
    )
}

/// The CNI plugin: `$CORTEN_CNI_PLUGIN` (where the test binary runs away
/// from the source tree, as in the systemd VM), or the source tree's.
fn cni_plugin() -> PathBuf {
    crate::env_path_or(
        "CORTEN_CNI_PLUGIN",
        "integration-tests/cni/corten-linklocal",
    )
}

/// What a streaming Exec or Attach delivered.
#[derive(Debug, Default)]
pub struct Streamed {
    pub stdout: String,
    pub stderr: String,
    /// The exit code from the error channel's status (Exec only; None when
    /// the stream ended without one).
    pub exit_code: Option<i32>,
}

/// Speaks `v4.channel.k8s.io` over a websocket to a streaming URL from
/// Exec or Attach: sends `stdin` (if any) on channel 0, collects channels 1
/// and 2 and the status on 3, until the server closes the stream, `until`
/// holds for the output so far, or `timeout` passes.
pub fn stream(
    url: &str,
    stdin: Option<&[u8]>,
    until: impl Fn(&Streamed) -> bool,
    timeout: Duration,
) -> Streamed {
    use tungstenite::client::IntoClientRequest;
    use tungstenite::Message;
    let ws_url = url.replacen("http://", "ws://", 1);
    let host = ws_url
        .trim_start_matches("ws://")
        .split('/')
        .next()
        .expect("a host in the URL")
        .to_owned();
    let tcp = std::net::TcpStream::connect(&host)
        .unwrap_or_else(|e| panic!("connect to the streaming server {host}: {e}"));
    tcp.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("set a read timeout");
    let mut req = ws_url
        .as_str()
        .into_client_request()
        .expect("a websocket request");
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "v4.channel.k8s.io".parse().expect("header"),
    );
    let (mut ws, _) = tungstenite::client(req, tcp)
        .unwrap_or_else(|e| panic!("websocket handshake with {url}: {e}"));
    if let Some(data) = stdin {
        let mut frame = vec![0u8];
        frame.extend_from_slice(data);
        ws.send(Message::Binary(frame.into())).expect("send stdin");
    }
    let mut got = Streamed::default();
    let deadline = Instant::now() + crate::scaled(timeout);
    while Instant::now() < deadline && !until(&got) {
        match ws.read() {
            Ok(Message::Binary(b)) if !b.is_empty() => {
                let text = String::from_utf8_lossy(&b[1..]).into_owned();
                match b[0] {
                    1 => got.stdout += &text,
                    2 => got.stderr += &text,
                    3 if !text.is_empty() => got.exit_code = Some(exit_code_of(&text)),
                    _ => {}
                }
            }
            Ok(Message::Close(_)) => break,
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    let _ = ws.close(None);
    got
}

/// The exit code in a `v4.channel.k8s.io` status: 0 for Success, the
/// `ExitCode` cause's message for NonZeroExitCode, -1 otherwise.
fn exit_code_of(status: &str) -> i32 {
    let v: serde_json::Value = serde_json::from_str(status).unwrap_or_default();
    if v["status"] == "Success" {
        return 0;
    }
    v["details"]["causes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["reason"] == "ExitCode")
        .and_then(|c| c["message"].as_str()?.parse().ok())
        .unwrap_or(-1)
}

/// Runs `check` for each of [`HANDLERS`], each returning its observations
/// (name, value); every handler must observe what runc observes. A
/// handler's failure (a panic) is reported and the others still run; the
/// test fails after all three, naming the handlers that failed. Each
/// handler's result is printed as `CRI <test> <handler>: ok|FAILED`.
///
/// In a chroot (a fresh-install tree), runc's `exec` puts the process at the
/// mount namespace's root, the host's tree above the chroot, not in the
/// container (conformance/README): the `runc` handler is left out there
/// (said, and counted as skipped), and `corten-runc-shim` is the reference.
pub fn side_by_side(test: &str, check: impl Fn(&Cri, &str) -> Observations) {
    let handlers: &[&str] = if in_chroot() {
        crate::skip(
            &format!("{test} (runc handler)"),
            "running in a chroot, where runc's exec lands in the host's tree above it",
        );
        record(test, HANDLERS[0], "skipped");
        &HANDLERS[1..]
    } else {
        &HANDLERS
    };
    let cri = Cri::start();
    let mut results: Vec<(&str, Result<Observations, String>)> = Vec::new();
    for &handler in handlers {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&cri, handler)));
        let r = r.map_err(|e| {
            e.downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default()
        });
        if r.is_err() {
            // What a failed handler left must not spoil the next one.
            cri.remove_all_pods();
        }
        results.push((handler, r));
    }
    let reference_name = results[0].0;
    let reference = results[0].1.as_ref().ok().cloned();
    let mut failed = Vec::new();
    for (handler, r) in &results {
        let verdict = match (r, &reference) {
            (Err(e), _) => Err(e.clone()),
            (Ok(seen), Some(want)) if seen != want => Err(format!(
                "observed differently from {reference_name}:\n  {handler}: {seen:?}\n  \
                 {reference_name}: {want:?}"
            )),
            (Ok(_), _) => Ok(()),
        };
        record(test, handler, if verdict.is_ok() { "ok" } else { "failed" });
        match verdict {
            Ok(()) => eprintln!("CRI {test} {handler}: ok"),
            Err(e) => {
                eprintln!("CRI {test} {handler}: FAILED: {e}");
                failed.push(format!("{handler}: {e}"));
            }
        }
    }
    if let Some(Ok(seen)) = results.first().map(|r| &r.1) {
        for (k, v) in seen {
            eprintln!("CRI {test}: {k} = {v}");
        }
    }
    assert!(failed.is_empty(), "{test}:\n{}", failed.join("\n"));
}

/// Appends `test handler ok|failed|skipped` to `$CORTEN_CRI_RESULTS`
/// (default `/tmp/corten-it/cri-results.log`), which `make integration`
/// counts per handler.
fn record(test: &str, handler: &str, verdict: &str) {
    use std::io::Write;
    let path = std::env::var_os("CORTEN_CRI_RESULTS").map_or_else(
        || Path::new(BASE_DIR).join("cri-results.log"),
        PathBuf::from,
    );
    let line = format!("{test} {handler} {verdict}\n");
    if let Ok(mut f) = fs::OpenOptions::new().create(true).append(true).open(path) {
        let _ = f.write_all(line.as_bytes());
    }
}

/// Whether this process runs in a chroot: its root is not the root of its
/// mount namespace. A forked child joins the namespace (which puts it at
/// the namespace's root, as runc's exec is put) and reports the device and
/// inode of `/` there. (pid 1's root would tell too, but reading it is
/// refused on some hosts.)
fn in_chroot() -> bool {
    use std::io::Read;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::os::unix::fs::MetadataExt;
    let (Ok(mine), Ok(ns)) = (fs::metadata("/"), fs::File::open("/proc/self/ns/mnt")) else {
        return false;
    };
    let mut fds = [0; 2];
    // SAFETY: fds is a valid array of two ints for pipe2 to fill.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return false;
    }
    // SAFETY: pipe2 returned two new descriptors that nothing else owns.
    let (read_end, write_end) =
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: the child calls only async-signal-safe functions (setns,
    // stat, write, _exit) on memory prepared before the fork.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: as above; `st` is a plain C struct the kernel fills.
        unsafe {
            let mut st: libc::stat = std::mem::zeroed();
            if libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNS) == 0
                && libc::stat(c"/".as_ptr(), &mut st) == 0
            {
                let ids = [st.st_dev, st.st_ino];
                libc::write(
                    write_end.as_raw_fd(),
                    ids.as_ptr().cast(),
                    std::mem::size_of_val(&ids),
                );
            }
            libc::_exit(0);
        }
    }
    drop(write_end);
    if pid < 0 {
        return false;
    }
    let mut buf = Vec::new();
    let _ = fs::File::from(read_end).read_to_end(&mut buf);
    // SAFETY: pid is the child forked above, reaped once here.
    unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
    if buf.len() != 16 {
        return false;
    }
    let dev = u64::from_ne_bytes(buf[..8].try_into().expect("8 bytes"));
    let ino = u64::from_ne_bytes(buf[8..].try_into().expect("8 bytes"));
    (dev, ino) != (mine.dev(), mine.ino())
}

/// What one handler observed: `(name, value)` pairs.
pub type Observations = Vec<(String, String)>;

/// [`Observations`] from pairs.
pub fn obs(pairs: &[(&str, String)]) -> Observations {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

/// Environment of a container config as CRI key-values.
pub fn envs(pairs: &[(&str, &str)]) -> Vec<cri::KeyValue> {
    pairs
        .iter()
        .map(|(k, v)| cri::KeyValue {
            key: (*k).to_owned(),
            value: (*v).to_owned(),
        })
        .collect()
}

/// Sysctls for a pod config.
pub fn sysctls(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    /// `CORTEN_EXPECT_CHROOT=1` (or 0) says what this run is; unset, the
    /// detection only has to answer.
    #[test]
    fn chroot_detection() {
        let found = super::in_chroot();
        match std::env::var("CORTEN_EXPECT_CHROOT").as_deref() {
            Ok("1") => assert!(found),
            Ok("0") => assert!(!found),
            _ => eprintln!("in a chroot: {found}"),
        }
    }
}
