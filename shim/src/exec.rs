//! Exec processes: `Exec` records one, `Start` runs it with
//! `corten exec --detach`, `Kill` signals it, `Delete` forgets it.

use containerd_shim::api::{ExecProcessRequest, Status};
use containerd_shim::protos::events::task::{TaskExecAdded, TaskExecStarted};
use containerd_shim::protos::topics::{TASK_EXEC_ADDED_EVENT_TOPIC, TASK_EXEC_STARTED_EVENT_TOPIC};
use containerd_shim::protos::ttrpc::Code;
use nix::sys::signal::Signal;

use anyhow::Context;

use crate::container::{Container, Process};
use crate::error::{RpcError, RpcResult};
use crate::io::{ProcessIo, StdioPaths};
use crate::reaper::ProcessKey;
use crate::runtime::ExecOpts;
use crate::tasks::{prepare_io, read_pid, start_io, Exited, Tasks, IO_DRAIN_TIMEOUT};

impl Tasks {
    /// `Exec`: records the process (its OCI process JSON and stdio).
    pub(crate) fn add_exec(&self, req: &ExecProcessRequest) -> RpcResult<()> {
        let c = self.get(&req.id)?;
        let mut state = c.lock();
        if state.init.status == Status::STOPPED {
            return Err(RpcError::precondition(format!(
                "container {} is stopped",
                req.id
            )));
        }
        if req.exec_id.is_empty() || state.execs.contains_key(&req.exec_id) {
            return Err(RpcError::new(
                Code::ALREADY_EXISTS,
                format!("exec {} already exists", req.exec_id),
            ));
        }
        let stdio = StdioPaths {
            stdin: req.stdin.clone(),
            stdout: req.stdout.clone(),
            stderr: req.stderr.clone(),
            terminal: req.terminal,
        };
        let mut process = Process::new(&req.exec_id, stdio);
        process.spec = req
            .spec
            .as_ref()
            .map(|s| s.value.clone())
            .unwrap_or_default();
        state.execs.insert(req.exec_id.clone(), process);
        self.events.send(
            TASK_EXEC_ADDED_EVENT_TOPIC,
            TaskExecAdded {
                container_id: req.id.clone(),
                exec_id: req.exec_id.clone(),
                ..Default::default()
            },
        );
        Ok(())
    }

    /// `Start` of an exec. Its exit, however early, is applied after
    /// `TaskExecStarted` is published.
    pub(crate) fn start_exec(&self, c: &Container, exec_id: &str) -> RpcResult<u32> {
        let (spec, stdio) = {
            let state = c.lock();
            let p = state
                .execs
                .get(exec_id)
                .ok_or_else(|| RpcError::not_found(format!("exec {exec_id} does not exist")))?;
            if p.status != Status::CREATED {
                return Err(RpcError::precondition(format!(
                    "exec {exec_id} is not in the created state"
                )));
            }
            (p.spec.clone(), p.stdio.clone())
        };
        c.hold();
        let started = self.run_exec(c, exec_id, &spec, &stdio);
        let mut state = c.lock();
        let outcome = started.map(|(pid, io)| {
            if let Some(p) = state.execs.get_mut(exec_id) {
                p.pid = pid;
                p.status = Status::RUNNING;
                p.io = io;
            }
            self.events.send(
                TASK_EXEC_STARTED_EVENT_TOPIC,
                TaskExecStarted {
                    container_id: c.id.clone(),
                    exec_id: exec_id.to_owned(),
                    pid,
                    ..Default::default()
                },
            );
            pid
        });
        if outcome.is_err() {
            // Never ran: stopped at once (exit status 255, as `corten exec`
            // answers a failed set-up), so that a Wait on it returns, as with
            // runc's shim. containerd's ExecSync waits for the exec before
            // deleting it, and waited a minute for its context to expire.
            // No exit event: no process existed.
            if let Some(p) = state.execs.get_mut(exec_id) {
                p.status = Status::STOPPED;
                p.exit = Some((255, std::time::SystemTime::now()));
            }
        }
        let after = c.release(&mut state, &self.events);
        drop(state);
        c.notify();
        self.after_exit(c, after);
        outcome
    }

    /// `corten exec --detach`, then watch the process and start its IO.
    fn run_exec(
        &self,
        c: &Container,
        exec_id: &str,
        spec: &[u8],
        stdio: &StdioPaths,
    ) -> RpcResult<(u32, Option<ProcessIo>)> {
        let process_file = c.bundle.join(format!("exec-{exec_id}.json"));
        std::fs::write(&process_file, spec)
            .with_context(|| format!("write {}", process_file.display()))?;
        let pid_file = c.bundle.join(format!("{exec_id}.pid"));
        let (child_stdio, pending) = prepare_io(stdio)?;
        let mark = self.reaper.mark();
        let result = c
            .runtime
            .exec(
                &self.reaper,
                &c.id,
                &c.bundle,
                ExecOpts {
                    process: &process_file,
                    pid_file: &pid_file,
                    console_socket: pending.console_path().as_deref(),
                    stdio: child_stdio,
                },
            )
            .map_err(RpcError::from)
            .and_then(|()| read_pid(&pid_file));
        let _ = std::fs::remove_file(&process_file);
        let pid = result?;
        let key = ProcessKey {
            container: c.id.clone(),
            exec: exec_id.to_owned(),
        };
        self.reaper
            .watch(i32::try_from(pid).unwrap_or(0), mark, key);
        // The process runs: an IO failure is logged, not returned.
        let io = start_io(stdio, pending, &self.log_context(&c.id))
            .map_err(|e| crate::warn!("exec {exec_id}: {e}"))
            .ok();
        Ok((pid, io))
    }

    /// `Kill` of an exec: signalled directly; it is the shim's child, so its
    /// pid stays reserved until the reaper reaps it.
    pub(crate) fn kill_exec(&self, c: &Container, exec_id: &str, signal: u32) -> RpcResult<()> {
        let (status, pid) = {
            let state = c.lock();
            let p = state
                .execs
                .get(exec_id)
                .ok_or_else(|| RpcError::not_found(format!("exec {exec_id} does not exist")))?;
            (p.status, p.pid)
        };
        if status != Status::RUNNING {
            return Err(RpcError::not_found("process already finished"));
        }
        let signal = Signal::try_from(i32::try_from(signal).unwrap_or(0))
            .map_err(|e| RpcError::new(Code::INVALID_ARGUMENT, e.to_string()))?;
        match self
            .reaper
            .signal_watched(i32::try_from(pid).unwrap_or(0), signal)
        {
            Ok(true) => Ok(()),
            Ok(false) | Err(nix::errno::Errno::ESRCH) => {
                Err(RpcError::not_found("process already finished"))
            }
            Err(e) => Err(RpcError::internal(format!("kill {pid}: {e}"))),
        }
    }

    /// `Delete` of an exec that is not running.
    pub(crate) fn delete_exec(&self, c: &Container, exec_id: &str) -> RpcResult<Exited> {
        let mut state = c.lock();
        let p = state
            .execs
            .get(exec_id)
            .ok_or_else(|| RpcError::not_found(format!("exec {exec_id} does not exist")))?;
        if matches!(p.status, Status::RUNNING | Status::PAUSED) {
            return Err(RpcError::precondition(format!("exec {exec_id} is running")));
        }
        let mut p = state.execs.remove(exec_id).expect("checked above");
        drop(state);
        // A Wait on a never-started exec ends (NotFound) with it.
        c.notify();
        if let Some(io) = p.io.as_mut() {
            io.finish(IO_DRAIN_TIMEOUT);
        }
        let _ = std::fs::remove_file(c.bundle.join(format!("{exec_id}.pid")));
        Ok((p.pid, p.exit_status(), p.exited_at()))
    }
}
