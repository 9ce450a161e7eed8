//! The ttrpc Task service (`containerd.task.v2.Task`): decodes each request,
//! calls [`Tasks`], encodes the answer. Lifecycle logic lives in `tasks.rs`.

use std::sync::Arc;

use containerd_shim::api::{
    CloseIORequest, ConnectRequest, ConnectResponse, CreateTaskRequest, CreateTaskResponse,
    DeleteRequest, DeleteResponse, Empty, ExecProcessRequest, KillRequest, PauseRequest,
    PidsRequest, PidsResponse, ResizePtyRequest, ResumeRequest, ShutdownRequest, StartRequest,
    StartResponse, StateRequest, StateResponse, StatsRequest, StatsResponse, Status,
    UpdateTaskRequest, WaitRequest, WaitResponse,
};
use containerd_shim::protos::events::task::{TaskPaused, TaskResumed};
use containerd_shim::protos::protobuf::well_known_types::any::Any;
use containerd_shim::protos::protobuf::{Message, MessageField};
use containerd_shim::protos::shim::oci::ProcessDetails;
use containerd_shim::protos::topics::{TASK_PAUSED_EVENT_TOPIC, TASK_RESUMED_EVENT_TOPIC};
use containerd_shim::protos::ttrpc::{self, Code};
use containerd_shim::protos::types::task::ProcessInfo;
use containerd_shim::{Task, TtrpcContext, TtrpcResult};

use crate::error::{RpcError, RpcResult};
use crate::events::timestamp;
use crate::stats;
use crate::tasks::Tasks;

/// The ttrpc face of [`Tasks`].
#[derive(Debug, Clone)]
pub(crate) struct TaskService {
    pub(crate) tasks: Arc<Tasks>,
}

fn reply<T>(op: &str, result: RpcResult<T>) -> TtrpcResult<T> {
    result.map_err(|e| {
        crate::debug!("{op}: {e}");
        e.into()
    })
}

impl TaskService {
    fn state(&self, req: &StateRequest) -> RpcResult<StateResponse> {
        let c = self.tasks.get(&req.id)?;
        let state = c.lock();
        let p = state.process(&req.exec_id).ok_or_else(|| {
            RpcError::not_found(format!("process {} does not exist", req.exec_id))
        })?;
        let status = if req.exec_id.is_empty() && state.paused && p.status == Status::RUNNING {
            Status::PAUSED
        } else {
            p.status
        };
        Ok(StateResponse {
            id: if req.exec_id.is_empty() {
                req.id.clone()
            } else {
                req.exec_id.clone()
            },
            bundle: c.bundle.to_string_lossy().into_owned(),
            pid: p.pid,
            status: status.into(),
            stdin: p.stdio.stdin.clone(),
            stdout: p.stdio.stdout.clone(),
            stderr: p.stdio.stderr.clone(),
            terminal: p.stdio.terminal,
            exit_status: p.exit_status(),
            exited_at: p.exited_at().map(timestamp).into(),
            exec_id: req.exec_id.clone(),
            ..Default::default()
        })
    }

    fn pids(&self, req: &PidsRequest) -> RpcResult<PidsResponse> {
        let c = self.tasks.get(&req.id)?;
        let pids = c.runtime.ps(&self.tasks.reaper, &c.id, &c.bundle)?;
        let execs: Vec<(u32, String)> = c
            .lock()
            .execs
            .values()
            .map(|p| (p.pid, p.exec_id.clone()))
            .collect();
        let mut processes = Vec::with_capacity(pids.len());
        for pid in pids {
            let mut info = ProcessInfo {
                pid,
                ..Default::default()
            };
            if let Some((_, exec_id)) = execs.iter().find(|(p, _)| *p == pid) {
                let details = ProcessDetails {
                    exec_id: exec_id.clone(),
                    ..Default::default()
                };
                info.info = MessageField::some(Any {
                    type_url: "containerd.runc.v1.ProcessDetails".into(),
                    value: details
                        .write_to_bytes()
                        .map_err(|e| RpcError::internal(e.to_string()))?,
                    ..Default::default()
                });
            }
            processes.push(info);
        }
        Ok(PidsResponse {
            processes,
            ..Default::default()
        })
    }

    fn pause_or_resume(&self, id: &str, pause: bool) -> RpcResult<()> {
        let c = self.tasks.get(id)?;
        c.runtime
            .pause_or_resume(&self.tasks.reaper, id, &c.bundle, pause)?;
        c.lock().paused = pause;
        if pause {
            let event = TaskPaused {
                container_id: id.to_owned(),
                ..Default::default()
            };
            self.tasks.events.send(TASK_PAUSED_EVENT_TOPIC, event);
        } else {
            let event = TaskResumed {
                container_id: id.to_owned(),
                ..Default::default()
            };
            self.tasks.events.send(TASK_RESUMED_EVENT_TOPIC, event);
        }
        Ok(())
    }

    fn with_io(
        &self,
        id: &str,
        exec_id: &str,
        f: impl FnOnce(&crate::io::ProcessIo) -> RpcResult<()>,
    ) -> RpcResult<()> {
        let c = self.tasks.get(id)?;
        let state = c.lock();
        let p = state
            .process(exec_id)
            .ok_or_else(|| RpcError::not_found(format!("process {exec_id} does not exist")))?;
        match &p.io {
            Some(io) => f(io),
            None => Ok(()),
        }
    }
}

impl Task for TaskService {
    fn state(&self, _ctx: &TtrpcContext, req: StateRequest) -> TtrpcResult<StateResponse> {
        reply("state", self.state(&req))
    }

    fn create(
        &self,
        _ctx: &TtrpcContext,
        req: CreateTaskRequest,
    ) -> TtrpcResult<CreateTaskResponse> {
        crate::info!("create {} in {}", req.id, req.bundle);
        let pid = reply("create", self.tasks.create(&req))?;
        Ok(CreateTaskResponse {
            pid,
            ..Default::default()
        })
    }

    fn start(&self, _ctx: &TtrpcContext, req: StartRequest) -> TtrpcResult<StartResponse> {
        let pid = reply("start", self.tasks.start(&req.id, &req.exec_id))?;
        Ok(StartResponse {
            pid,
            ..Default::default()
        })
    }

    fn delete(&self, _ctx: &TtrpcContext, req: DeleteRequest) -> TtrpcResult<DeleteResponse> {
        let (pid, exit_status, exited_at) =
            reply("delete", self.tasks.delete(&req.id, &req.exec_id))?;
        Ok(DeleteResponse {
            pid,
            exit_status,
            exited_at: exited_at.map(timestamp).into(),
            ..Default::default()
        })
    }

    fn pids(&self, _ctx: &TtrpcContext, req: PidsRequest) -> TtrpcResult<PidsResponse> {
        reply("pids", self.pids(&req))
    }

    fn pause(&self, _ctx: &TtrpcContext, req: PauseRequest) -> TtrpcResult<Empty> {
        reply("pause", self.pause_or_resume(&req.id, true))?;
        Ok(Empty::new())
    }

    fn resume(&self, _ctx: &TtrpcContext, req: ResumeRequest) -> TtrpcResult<Empty> {
        reply("resume", self.pause_or_resume(&req.id, false))?;
        Ok(Empty::new())
    }

    fn checkpoint(
        &self,
        _ctx: &TtrpcContext,
        _req: containerd_shim::api::CheckpointTaskRequest,
    ) -> TtrpcResult<Empty> {
        Err(ttrpc::Error::RpcStatus(ttrpc::get_status(
            Code::UNIMPLEMENTED,
            "checkpoint is not implemented by corten",
        )))
    }

    fn kill(&self, _ctx: &TtrpcContext, req: KillRequest) -> TtrpcResult<Empty> {
        reply(
            "kill",
            self.tasks.kill(&req.id, &req.exec_id, req.signal, req.all),
        )?;
        Ok(Empty::new())
    }

    fn exec(&self, _ctx: &TtrpcContext, req: ExecProcessRequest) -> TtrpcResult<Empty> {
        reply("exec", self.tasks.add_exec(&req))?;
        Ok(Empty::new())
    }

    fn resize_pty(&self, _ctx: &TtrpcContext, req: ResizePtyRequest) -> TtrpcResult<Empty> {
        reply(
            "resize_pty",
            self.with_io(&req.id, &req.exec_id, |io| {
                io.resize(req.width, req.height)
                    .map_err(|e| RpcError::internal(format!("resize: {e}")))
            }),
        )?;
        Ok(Empty::new())
    }

    fn close_io(&self, _ctx: &TtrpcContext, req: CloseIORequest) -> TtrpcResult<Empty> {
        if req.stdin {
            reply(
                "close_io",
                self.with_io(&req.id, &req.exec_id, |io| {
                    io.close_stdin();
                    Ok(())
                }),
            )?;
        }
        Ok(Empty::new())
    }

    fn update(&self, _ctx: &TtrpcContext, req: UpdateTaskRequest) -> TtrpcResult<Empty> {
        let result = self.tasks.get(&req.id).and_then(|c| {
            let resources = req
                .resources
                .as_ref()
                .map(|r| r.value.as_slice())
                .unwrap_or(b"{}");
            c.runtime
                .update(&self.tasks.reaper, &c.id, &c.bundle, resources)
                .map_err(RpcError::from)
        });
        reply("update", result)?;
        Ok(Empty::new())
    }

    fn wait(&self, _ctx: &TtrpcContext, req: WaitRequest) -> TtrpcResult<WaitResponse> {
        let c = reply("wait", self.tasks.get(&req.id))?;
        let (_, exit_status, exited_at) = c.wait(&req.exec_id).ok_or_else(|| {
            ttrpc::Error::from(RpcError::not_found(format!(
                "process {} does not exist",
                req.exec_id
            )))
        })?;
        Ok(WaitResponse {
            exit_status,
            exited_at: exited_at.map(timestamp).into(),
            ..Default::default()
        })
    }

    fn stats(&self, _ctx: &TtrpcContext, req: StatsRequest) -> TtrpcResult<StatsResponse> {
        let result = self.tasks.get(&req.id).and_then(|c| {
            let raw = c.runtime.stats(&self.tasks.reaper, &c.id, &c.bundle)?;
            stats::to_any(&raw, stats::unified_host())
                .map_err(|e| RpcError::internal(format!("encode the stats: {e}")))
        });
        let any = reply("stats", result)?;
        Ok(StatsResponse {
            stats: MessageField::some(any),
            ..Default::default()
        })
    }

    fn connect(&self, _ctx: &TtrpcContext, req: ConnectRequest) -> TtrpcResult<ConnectResponse> {
        let task_pid = self
            .tasks
            .get(&req.id)
            .map(|c| c.lock().init.pid)
            .unwrap_or(0);
        Ok(ConnectResponse {
            shim_pid: std::process::id(),
            task_pid,
            version: env!("CARGO_PKG_VERSION").into(),
            ..Default::default()
        })
    }

    fn shutdown(&self, _ctx: &TtrpcContext, req: ShutdownRequest) -> TtrpcResult<Empty> {
        if req.now || self.tasks.is_empty() {
            crate::info!("shutting down");
            self.tasks.events.flush(std::time::Duration::from_secs(2));
            self.tasks.exit.signal();
        }
        Ok(Empty::new())
    }
}
