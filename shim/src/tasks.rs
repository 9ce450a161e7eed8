//! The containers a shim serves and the lifecycle of each: create, start,
//! kill, delete (execs: `exec.rs`). The ttrpc adapter is `task.rs`; this file
//! holds the logic.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use containerd_shim::api::{CreateTaskRequest, Status};
use containerd_shim::protos::events::task::{TaskCreate, TaskDelete, TaskIO, TaskStart};
use containerd_shim::protos::topics::{
    TASK_CREATE_EVENT_TOPIC, TASK_DELETE_EVENT_TOPIC, TASK_START_EVENT_TOPIC,
};
use containerd_shim::protos::ttrpc::Code;
use containerd_shim::ExitSignal;
use nix::sys::signal::Signal;

use crate::container::{AfterExit, Container};
use crate::error::{RpcError, RpcResult};
use crate::events::{timestamp, Events};
use crate::io::{pipes, Pipes, ProcessIo, StdioPaths};
use crate::logger::LogContext;
use crate::reaper::{ProcessExit, ProcessKey, Reaper};
use crate::runtime::{CreateOpts, ProcessStdio};
use crate::sys::ConsoleSocket;
use crate::{mount, options};

/// How long the runtime has to send the pty master after `create`/`exec`.
const CONSOLE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `delete` waits for the output of a process to be copied.
pub(crate) const IO_DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// What `Delete` reports: pid, exit status, exit time.
pub(crate) type Exited = (u32, u32, Option<SystemTime>);

/// Everything a shim serves.
pub(crate) struct Tasks {
    pub(crate) namespace: String,
    /// containerd's gRPC socket (for the default runtime root).
    pub(crate) address: String,
    pub(crate) reaper: Arc<Reaper>,
    pub(crate) events: Events,
    pub(crate) exit: Arc<ExitSignal>,
    containers: Mutex<HashMap<String, Arc<Container>>>,
}

impl std::fmt::Debug for Tasks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tasks")
            .field("namespace", &self.namespace)
            .field("containers", &self.map().keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// The shim's ends of a process's IO before it runs.
#[derive(Debug)]
pub(crate) enum PendingIo {
    Pipes(Pipes),
    Console(ConsoleSocket),
}

impl PendingIo {
    /// The `--console-socket` to pass, for a terminal.
    pub(crate) fn console_path(&self) -> Option<PathBuf> {
        match self {
            PendingIo::Console(socket) => Some(socket.path().to_owned()),
            PendingIo::Pipes(_) => None,
        }
    }
}

impl Tasks {
    /// The task state, with an exit-handler thread that applies the exits
    /// the reaper delivers.
    pub(crate) fn spawn(
        namespace: String,
        address: String,
        reaper: Arc<Reaper>,
        exits: Receiver<ProcessExit>,
        events: Events,
        exit: Arc<ExitSignal>,
    ) -> std::io::Result<Arc<Tasks>> {
        let tasks = Arc::new(Tasks {
            namespace,
            address,
            reaper,
            events,
            exit,
            containers: Mutex::new(HashMap::new()),
        });
        let handler = Arc::clone(&tasks);
        std::thread::Builder::new()
            .name("exits".into())
            .stack_size(crate::SMALL_STACK)
            .spawn(move || {
                for e in exits {
                    handler.handle_exit(e);
                }
            })?;
        Ok(tasks)
    }

    fn map(&self) -> MutexGuard<'_, HashMap<String, Arc<Container>>> {
        self.containers.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn get(&self, id: &str) -> RpcResult<Arc<Container>> {
        self.map()
            .get(id)
            .cloned()
            .ok_or_else(|| RpcError::not_found(format!("container {id} does not exist")))
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.map().is_empty()
    }

    pub(crate) fn log_context<'a>(&'a self, container_id: &'a str) -> LogContext<'a> {
        LogContext {
            container_id,
            namespace: &self.namespace,
            reaper: Some(&self.reaper),
        }
    }

    fn handle_exit(&self, e: ProcessExit) {
        let Some(container) = self.map().get(&e.key.container).cloned() else {
            return;
        };
        crate::debug!(
            "exit of {}/{} pid {}: {}",
            e.key.container,
            e.key.exec,
            e.exit.pid,
            e.exit.status
        );
        let after = container.on_exit(&e.key.exec, e.exit, &self.events);
        self.after_exit(&container, after);
    }

    pub(crate) fn after_exit(&self, container: &Container, after: AfterExit) {
        if after == AfterExit::KillAll {
            let c = container;
            if let Err(e) =
                c.runtime
                    .kill(&self.reaper, &c.id, &c.bundle, Signal::SIGKILL as u32, true)
            {
                crate::debug!("kill the rest of {}: {e}", c.id);
            }
        }
    }

    /// `Create`: mount the rootfs, set up IO, `corten create`. An exit of
    /// the init, however early, is applied after `TaskCreate` is published.
    pub(crate) fn create(&self, req: &CreateTaskRequest) -> RpcResult<u32> {
        let container = self.new_container(req)?;
        let stdio = container.lock().init.stdio.clone();
        match self.create_init(&container, &stdio) {
            Ok(pid) => {
                crate::oom::watch(&req.id, pid, &self.events);
                let mut state = container.lock();
                state.init.pid = pid;
                self.events
                    .send(TASK_CREATE_EVENT_TOPIC, task_create_event(req, pid));
                let after = container.release(&mut state, &self.events);
                drop(state);
                self.after_exit(&container, after);
                Ok(pid)
            }
            Err(e) => {
                self.map().remove(&req.id);
                let _ = self.undo_rootfs(&container);
                Err(e)
            }
        }
    }

    /// Saves the runtime options, mounts the rootfs and registers the
    /// container (its exits held until `create` released them).
    fn new_container(&self, req: &CreateTaskRequest) -> RpcResult<Arc<Container>> {
        let id = req.id.as_str();
        if id.is_empty() {
            return Err(RpcError::new(
                Code::INVALID_ARGUMENT,
                "container id is empty",
            ));
        }
        let exists = || {
            RpcError::new(
                Code::ALREADY_EXISTS,
                format!("container {id} already exists"),
            )
        };
        if self.map().contains_key(id) {
            return Err(exists());
        }
        let bundle = PathBuf::from(&req.bundle);
        let runc = options::runc_options(req.options.as_ref())?;
        let runtime = options::runtime(runc.as_ref(), &self.namespace, &self.address);
        options::save(&bundle, &runtime)?;
        if !req.rootfs.is_empty() {
            let rootfs = bundle.join("rootfs");
            std::fs::create_dir_all(&rootfs)
                .with_context(|| format!("create {}", rootfs.display()))?;
            mount::mount_rootfs(&req.rootfs, &rootfs)?;
        }
        let stdio = StdioPaths {
            stdin: req.stdin.clone(),
            stdout: req.stdout.clone(),
            stderr: req.stderr.clone(),
            terminal: req.terminal,
        };
        let own_pid_ns = has_own_pid_namespace(&bundle);
        let mounted = !req.rootfs.is_empty();
        let container = Arc::new(Container::new(
            id, bundle, runtime, stdio, mounted, own_pid_ns,
        ));
        let mut map = self.map();
        if map.contains_key(id) {
            drop(map);
            let _ = self.undo_rootfs(&container);
            return Err(exists());
        }
        map.insert(id.to_owned(), Arc::clone(&container));
        Ok(container)
    }

    fn create_init(&self, c: &Container, stdio: &StdioPaths) -> RpcResult<u32> {
        let (child_stdio, pending) = prepare_io(stdio)?;
        let pid_file = c.bundle.join("init.pid");
        let mark = self.reaper.mark();
        let console_path = pending.console_path();
        c.runtime.create(
            &self.reaper,
            &c.id,
            &c.bundle,
            CreateOpts {
                pid_file: &pid_file,
                console_socket: console_path.as_deref(),
                stdio: child_stdio,
            },
        )?;
        let started = read_pid(&pid_file).and_then(|pid| {
            self.reaper.watch(
                i32::try_from(pid).unwrap_or(0),
                mark,
                ProcessKey {
                    container: c.id.clone(),
                    exec: String::new(),
                },
            );
            let io = start_io(stdio, pending, &self.log_context(&c.id))?;
            c.lock().init.io = Some(io);
            Ok(pid)
        });
        if started.is_err() {
            let _ = c.runtime.delete(&self.reaper, &c.id, &c.bundle, true);
        }
        started
    }

    fn undo_rootfs(&self, c: &Container) -> anyhow::Result<()> {
        if c.rootfs_mounted {
            mount::unmount_all(&c.bundle.join("rootfs"))?;
        }
        Ok(())
    }

    /// `Start` of the init or of an exec. An exit of the init, however
    /// early, is applied after `TaskStart` is published.
    pub(crate) fn start(&self, id: &str, exec_id: &str) -> RpcResult<u32> {
        let c = self.get(id)?;
        if !exec_id.is_empty() {
            return self.start_exec(&c, exec_id);
        }
        {
            let state = c.lock();
            if state.init.status != Status::CREATED {
                return Err(RpcError::precondition(format!(
                    "container {id} is not in the created state"
                )));
            }
        }
        c.hold();
        let result = c.runtime.start(&self.reaper, id, &c.bundle);
        let mut state = c.lock();
        let pid = state.init.pid;
        if result.is_ok() && state.init.status == Status::CREATED {
            state.init.status = Status::RUNNING;
            self.events.send(
                TASK_START_EVENT_TOPIC,
                TaskStart {
                    container_id: id.to_owned(),
                    pid,
                    ..Default::default()
                },
            );
        }
        let after = c.release(&mut state, &self.events);
        drop(state);
        self.after_exit(&c, after);
        result?;
        Ok(pid)
    }

    /// `Kill`: the init through the runtime (`--all` when asked), an exec
    /// directly (`exec.rs`).
    pub(crate) fn kill(&self, id: &str, exec_id: &str, signal: u32, all: bool) -> RpcResult<()> {
        let c = self.get(id)?;
        if !exec_id.is_empty() {
            return self.kill_exec(&c, exec_id, signal);
        }
        if c.lock().init.status == Status::STOPPED && !all {
            return Err(RpcError::not_found("process already finished"));
        }
        c.runtime
            .kill(&self.reaper, id, &c.bundle, signal, all)
            .map_err(|e| {
                if e.message.contains("not running") || e.is_not_found() {
                    RpcError::not_found("process already finished")
                } else {
                    e.into()
                }
            })
    }

    /// `Delete` of an exec (`exec.rs`) or of the container, whose init must
    /// be stopped or never started.
    pub(crate) fn delete(&self, id: &str, exec_id: &str) -> RpcResult<Exited> {
        let c = self.get(id)?;
        if !exec_id.is_empty() {
            return self.delete_exec(&c, exec_id);
        }
        let status = c.lock().init.status;
        if matches!(status, Status::RUNNING | Status::PAUSED) {
            return Err(RpcError::precondition(format!(
                "container {id} must be stopped before deletion"
            )));
        }
        if let Err(e) = c.runtime.delete(&self.reaper, id, &c.bundle, true) {
            if !e.is_not_found() {
                return Err(e.into());
            }
        }
        // A created init is killed by the delete: wait for its exit.
        if !c.wait_timeout("", Duration::from_secs(5)) {
            crate::warn!("the init of {id} did not exit after delete");
        }
        let mut io = c.lock().init.io.take();
        if let Some(io) = io.as_mut() {
            io.finish(IO_DRAIN_TIMEOUT);
        }
        let exec_ios: Vec<ProcessIo> = c
            .lock()
            .execs
            .values_mut()
            .filter_map(|p| p.io.take())
            .collect();
        for mut io in exec_ios {
            io.finish(Duration::ZERO);
        }
        self.undo_rootfs(&c)?;
        self.map().remove(id);
        let mut state = c.lock();
        // Waits on execs that never ran end with the container.
        state.execs.clear();
        c.notify();
        let (pid, status, at) = (
            state.init.pid,
            state.init.exit_status(),
            state.init.exited_at(),
        );
        self.events.send(
            TASK_DELETE_EVENT_TOPIC,
            TaskDelete {
                container_id: id.to_owned(),
                id: id.to_owned(),
                pid,
                exit_status: status,
                exited_at: at.map(timestamp).into(),
                ..Default::default()
            },
        );
        Ok((pid, status, at))
    }
}

/// The `TaskCreate` event of a created container.
fn task_create_event(req: &CreateTaskRequest, pid: u32) -> TaskCreate {
    TaskCreate {
        container_id: req.id.clone(),
        bundle: req.bundle.clone(),
        rootfs: req.rootfs.clone(),
        io: Some(TaskIO {
            stdin: req.stdin.clone(),
            stdout: req.stdout.clone(),
            stderr: req.stderr.clone(),
            terminal: req.terminal,
            ..Default::default()
        })
        .into(),
        checkpoint: req.checkpoint.clone(),
        pid,
        ..Default::default()
    }
}

/// Pipes, or a console socket for a terminal.
pub(crate) fn prepare_io(stdio: &StdioPaths) -> RpcResult<(ProcessStdio, PendingIo)> {
    if stdio.terminal {
        let socket = ConsoleSocket::new().context("listen for the terminal")?;
        return Ok((ProcessStdio::default(), PendingIo::Console(socket)));
    }
    let (child, shim) = pipes(stdio).context("create the stdio pipes")?;
    Ok((child, PendingIo::Pipes(shim)))
}

pub(crate) fn start_io(
    stdio: &StdioPaths,
    pending: PendingIo,
    ctx: &LogContext<'_>,
) -> RpcResult<ProcessIo> {
    match pending {
        PendingIo::Pipes(p) => Ok(ProcessIo::from_pipes(stdio, p, ctx).context("start the io")?),
        PendingIo::Console(socket) => {
            let master = socket
                .receive(CONSOLE_TIMEOUT)
                .context("receive the terminal from the runtime")?;
            Ok(ProcessIo::from_console(stdio, master).context("start the terminal copy")?)
        }
    }
}

pub(crate) fn read_pid(path: &Path) -> RpcResult<u32> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("read the pid file {}", path.display()))?;
    text.trim()
        .parse::<u32>()
        .ok()
        .filter(|pid| *pid > 0)
        .ok_or_else(|| RpcError::internal(format!("bad pid file {}: {text:?}", path.display())))
}

/// Whether `config.json` asks for a new pid namespace (not one joined by path).
fn has_own_pid_namespace(bundle: &Path) -> bool {
    std::fs::read(bundle.join("config.json")).map_or(true, |data| own_pid_namespace(&data))
}

/// [`has_own_pid_namespace`] for the contents of `config.json` (`true`
/// when they cannot be read as JSON: the runtime will refuse them).
pub(crate) fn own_pid_namespace(config: &[u8]) -> bool {
    let Ok(spec) = serde_json::from_slice::<serde_json::Value>(config) else {
        return true;
    };
    spec.pointer("/linux/namespaces")
        .and_then(|n| n.as_array())
        .is_some_and(|list| {
            list.iter().any(|ns| {
                ns.get("type").and_then(|t| t.as_str()) == Some("pid")
                    && ns
                        .get("path")
                        .and_then(|p| p.as_str())
                        .is_none_or(str::is_empty)
            })
        })
}
