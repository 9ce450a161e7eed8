//! One container served by the shim: its init process and its execs, their
//! states and exit statuses, and the ordering of their events.
//!
//! # Event order
//! containerd expects `TaskCreate`/`TaskStart`/`TaskExecStarted` before the
//! `TaskExit` of the same process, and the init's `TaskExit` after those of
//! the execs. An exit that arrives while `create`, `start` or `exec` is
//! still running (the process can exit before the runtime returns) is
//! *held* ([`State::hold`]) and applied once that operation has published its
//! own event. The init's exit waits for every running exec to exit.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use containerd_shim::api::Status;
use containerd_shim::protos::events::task::TaskExit;
use containerd_shim::protos::topics::TASK_EXIT_EVENT_TOPIC;

use crate::events::{timestamp, Events};
use crate::io::{ProcessIo, StdioPaths};
use crate::reaper::Exit;
use crate::runtime::Runtime;

/// One process: the init (`exec_id` "") or an exec.
#[derive(Debug)]
pub(crate) struct Process {
    pub(crate) exec_id: String,
    pub(crate) pid: u32,
    pub(crate) status: Status,
    pub(crate) exit: Option<(u32, SystemTime)>,
    pub(crate) stdio: StdioPaths,
    pub(crate) io: Option<ProcessIo>,
    /// An exec's OCI process, as JSON (until it is started).
    pub(crate) spec: Vec<u8>,
}

impl Process {
    pub(crate) fn new(exec_id: &str, stdio: StdioPaths) -> Process {
        Process {
            exec_id: exec_id.to_owned(),
            pid: 0,
            status: Status::CREATED,
            exit: None,
            stdio,
            io: None,
            spec: Vec::new(),
        }
    }

    pub(crate) fn exit_status(&self) -> u32 {
        self.exit.map_or(0, |(status, _)| status)
    }

    pub(crate) fn exited_at(&self) -> Option<SystemTime> {
        self.exit.map(|(_, at)| at)
    }
}

/// The mutable part of a container.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) init: Process,
    pub(crate) execs: HashMap<String, Process>,
    pub(crate) paused: bool,
    /// Operations in progress whose event must precede any exit.
    hold: u32,
    held: Vec<(String, Exit)>,
    /// The init's exit, waiting for the running execs to exit.
    init_exit: Option<Exit>,
}

impl State {
    pub(crate) fn process(&self, exec_id: &str) -> Option<&Process> {
        if exec_id.is_empty() {
            Some(&self.init)
        } else {
            self.execs.get(exec_id)
        }
    }

    pub(crate) fn process_mut(&mut self, exec_id: &str) -> Option<&mut Process> {
        if exec_id.is_empty() {
            Some(&mut self.init)
        } else {
            self.execs.get_mut(exec_id)
        }
    }

    fn running_execs(&self) -> usize {
        self.execs
            .values()
            .filter(|p| matches!(p.status, Status::RUNNING | Status::PAUSED))
            .count()
    }
}

/// A container.
#[derive(Debug)]
pub(crate) struct Container {
    pub(crate) id: String,
    pub(crate) bundle: PathBuf,
    pub(crate) runtime: Runtime,
    /// Whether the shim mounted `<bundle>/rootfs` (and must unmount it).
    pub(crate) rootfs_mounted: bool,
    /// Whether the container has its own pid namespace: if not, its other
    /// processes are killed when the init exits.
    pub(crate) own_pid_ns: bool,
    state: Mutex<State>,
    changed: Condvar,
}

/// What to do after an exit was applied, outside the state lock.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum AfterExit {
    Nothing,
    /// The init of a container without its own pid namespace exited: kill
    /// the rest.
    KillAll,
}

impl Container {
    /// A container whose init is being created: exits are held until
    /// [`Container::release`].
    pub(crate) fn new(
        id: &str,
        bundle: PathBuf,
        runtime: Runtime,
        stdio: StdioPaths,
        rootfs_mounted: bool,
        own_pid_ns: bool,
    ) -> Container {
        Container {
            id: id.to_owned(),
            bundle,
            runtime,
            rootfs_mounted,
            own_pid_ns,
            state: Mutex::new(State {
                init: Process::new("", stdio),
                execs: HashMap::new(),
                paused: false,
                hold: 1,
                held: Vec::new(),
                init_exit: None,
            }),
            changed: Condvar::new(),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes every `Wait`, e.g. after a process was removed.
    pub(crate) fn notify(&self) {
        self.changed.notify_all();
    }

    /// Holds exits until the matching [`Container::release`].
    pub(crate) fn hold(&self) {
        self.lock().hold += 1;
    }

    /// Ends a hold, applying the exits that arrived meanwhile. Call it with
    /// the state lock held (`state`), after publishing the operation's event.
    pub(crate) fn release(&self, state: &mut State, events: &Events) -> AfterExit {
        state.hold -= 1;
        let mut after = AfterExit::Nothing;
        if state.hold == 0 {
            for (exec_id, exit) in std::mem::take(&mut state.held) {
                if self.apply_exit(state, &exec_id, exit, events) == AfterExit::KillAll {
                    after = AfterExit::KillAll;
                }
            }
        }
        after
    }

    /// A process of this container exited (from the reaper).
    pub(crate) fn on_exit(&self, exec_id: &str, exit: Exit, events: &Events) -> AfterExit {
        let mut state = self.lock();
        if state.hold > 0 {
            state.held.push((exec_id.to_owned(), exit));
            return AfterExit::Nothing;
        }
        self.apply_exit(&mut state, exec_id, exit, events)
    }

    fn apply_exit(
        &self,
        state: &mut State,
        exec_id: &str,
        exit: Exit,
        events: &Events,
    ) -> AfterExit {
        if exec_id.is_empty() {
            if state.running_execs() > 0 {
                state.init_exit = Some(exit);
                return if self.own_pid_ns {
                    AfterExit::Nothing
                } else {
                    AfterExit::KillAll
                };
            }
            self.finish(state, "", exit, events);
            return if self.own_pid_ns {
                AfterExit::Nothing
            } else {
                AfterExit::KillAll
            };
        }
        self.finish(state, exec_id, exit, events);
        if state.running_execs() == 0 {
            if let Some(init_exit) = state.init_exit.take() {
                self.finish(state, "", init_exit, events);
            }
        }
        AfterExit::Nothing
    }

    /// Records the exit of a process and publishes its `TaskExit`.
    fn finish(&self, state: &mut State, exec_id: &str, exit: Exit, events: &Events) {
        let Some(process) = state.process_mut(exec_id) else {
            return;
        };
        // Everything the process wrote must reach containerd's fifos before
        // its exit is published: a client such as `ctr run --rm` closes its
        // readers once it sees TaskExit. Bounded, because a child that
        // inherited stdout may keep the pipe open.
        if let Some(io) = process.io.as_ref() {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            while !io.outputs_done() && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        }
        process.status = Status::STOPPED;
        process.exit = Some((exit.status, exit.at));
        let id = if exec_id.is_empty() {
            &self.id
        } else {
            exec_id
        };
        events.send(
            TASK_EXIT_EVENT_TOPIC,
            TaskExit {
                container_id: self.id.clone(),
                id: id.to_owned(),
                pid: process.pid,
                exit_status: exit.status,
                exited_at: Some(timestamp(exit.at)).into(),
                ..Default::default()
            },
        );
        if exec_id.is_empty() {
            state.paused = false;
        }
        self.changed.notify_all();
    }

    /// Waits until process `exec_id` stopped (or is gone); `None` when it
    /// does not exist.
    pub(crate) fn wait(&self, exec_id: &str) -> Option<(u32, u32, Option<SystemTime>)> {
        let mut state = self.lock();
        loop {
            let process = state.process(exec_id)?;
            if process.status == Status::STOPPED {
                return Some((process.pid, process.exit_status(), process.exited_at()));
            }
            state = self.changed.wait(state).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Like [`Container::wait`], giving up after `timeout`.
    pub(crate) fn wait_timeout(&self, exec_id: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut state = self.lock();
        loop {
            match state.process(exec_id) {
                Some(p) if p.status != Status::STOPPED => {}
                _ => return true,
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            state = self
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use containerd_shim::protos::protobuf::Message;

    fn container(own_pid_ns: bool) -> Container {
        let runtime = Runtime {
            binary: "corten".into(),
            root: "/nonexistent".into(),
            systemd_cgroup: false,
            no_pivot: false,
            no_new_keyring: false,
        };
        Container::new(
            "c",
            "/nonexistent".into(),
            runtime,
            StdioPaths::default(),
            false,
            own_pid_ns,
        )
    }

    /// (topic, process id, exit status) of each event sent so far.
    fn drain(
        rx: &std::sync::mpsc::Receiver<(
            &'static str,
            containerd_shim::protos::protobuf::well_known_types::timestamp::Timestamp,
            containerd_shim::protos::protobuf::well_known_types::any::Any,
        )>,
    ) -> Vec<(&'static str, String, u32)> {
        rx.try_iter()
            .map(|(topic, _, any)| {
                let exit = TaskExit::parse_from_bytes(&any.value).unwrap_or_default();
                (topic, exit.id, exit.exit_status)
            })
            .collect()
    }

    #[test]
    fn an_exit_during_create_waits_for_the_release() {
        let (events, rx) = Events::for_test();
        let c = container(true);
        // `new` holds: an exit now (the init died before create returned)...
        assert_eq!(
            c.on_exit("", Exit::for_test(10, 7), &events),
            AfterExit::Nothing
        );
        assert!(drain(&rx).is_empty());
        assert_eq!(c.lock().init.status, Status::CREATED);
        // ...is applied when create released its hold.
        let mut state = c.lock();
        c.release(&mut state, &events);
        drop(state);
        assert_eq!(drain(&rx), [(TASK_EXIT_EVENT_TOPIC, "c".to_owned(), 7)]);
        assert_eq!(c.wait(""), Some((0, 7, c.lock().init.exited_at())));
    }

    #[test]
    fn the_init_exit_waits_for_running_execs() {
        let (events, rx) = Events::for_test();
        let c = container(true);
        c.release(&mut c.lock(), &events);
        {
            let mut state = c.lock();
            state.init.status = Status::RUNNING;
            let mut exec = Process::new("e1", StdioPaths::default());
            exec.status = Status::RUNNING;
            state.execs.insert("e1".into(), exec);
        }
        c.on_exit("", Exit::for_test(10, 0), &events);
        assert!(
            drain(&rx).is_empty(),
            "init exit published before the exec's"
        );
        assert!(!c.wait_timeout("", Duration::from_millis(10)));
        c.on_exit("e1", Exit::for_test(11, 137), &events);
        assert_eq!(
            drain(&rx),
            [
                (TASK_EXIT_EVENT_TOPIC, "e1".to_owned(), 137),
                (TASK_EXIT_EVENT_TOPIC, "c".to_owned(), 0)
            ]
        );
        assert!(c.wait_timeout("", Duration::ZERO));
    }

    #[test]
    fn without_a_pid_namespace_the_init_exit_kills_the_rest() {
        let (events, _rx) = Events::for_test();
        let c = container(false);
        c.release(&mut c.lock(), &events);
        c.lock().init.status = Status::RUNNING;
        assert_eq!(
            c.on_exit("", Exit::for_test(10, 0), &events),
            AfterExit::KillAll
        );
        let own = container(true);
        own.release(&mut own.lock(), &events);
        assert_eq!(
            own.on_exit("", Exit::for_test(10, 0), &events),
            AfterExit::Nothing
        );
    }
}
