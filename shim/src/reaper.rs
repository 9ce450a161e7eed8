//! The subreaper: every child of the shim (the `corten` commands it runs, and
//! the container processes re-parented to it) is reaped here, by one thread,
//! and each exit status goes to exactly one owner.
//!
//! # Why no exit is lost or mis-assigned
//! - The reaper thread first waits with `WNOWAIT`, so the zombie (and with it
//!   its pid) stays reserved; only then, holding the lock, does it reap that
//!   one pid. A pid therefore cannot be reused while its exit is being
//!   dispatched, and a command registered under the lock is never confused
//!   with an older process that had the same pid.
//! - Commands are spawned *and registered* under the same lock, so a command
//!   that exits at once is still found by pid.
//! - A container process becomes known only after `corten create`/`exec`
//!   returns its pid, possibly after it already exited. Exits of unknown pids
//!   are kept (tagged with a sequence number) and claimed by [`Reaper::watch`],
//!   which only accepts exits that happened after the caller's
//!   [`Reaper::mark`], so a stale exit of an earlier process with the same pid
//!   is never taken for the new one.

use std::collections::{HashMap, VecDeque};
use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, ExitStatus};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::SystemTime;

use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitid, waitpid, Id, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

/// How many exits of not (yet) known pids are remembered.
const UNCLAIMED_LIMIT: usize = 1024;

/// One reaped child.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Exit {
    pub(crate) pid: i32,
    /// The exit code, or 128 + the signal that killed it (as runc's shim).
    pub(crate) status: u32,
    pub(crate) at: SystemTime,
    seq: u64,
}

impl Exit {
    /// An exit made up by a test.
    #[cfg(test)]
    pub(crate) fn for_test(pid: i32, status: u32) -> Exit {
        Exit {
            pid,
            status,
            at: SystemTime::now(),
            seq: 0,
        }
    }
}

/// The owner of a container process: container id and exec id ("" for init).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ProcessKey {
    pub(crate) container: String,
    pub(crate) exec: String,
}

/// An exit of a watched container process, sent to the exit handler.
#[derive(Debug)]
pub(crate) struct ProcessExit {
    pub(crate) key: ProcessKey,
    pub(crate) exit: Exit,
}

/// A point in the sequence of reaped exits, see [`Reaper::mark`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mark(u64);

/// What a finished command produced.
#[derive(Debug)]
pub(crate) struct Output {
    pub(crate) status: ExitStatus,
    pub(crate) stdout: Vec<u8>,
    pub(crate) stderr: Vec<u8>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Sequence number of the last exit reaped.
    seq: u64,
    /// Incremented for every command spawned, so the reaper thread knows
    /// children may exist again after it saw none.
    spawns: u64,
    commands: HashMap<i32, Sender<Exit>>,
    watched: HashMap<i32, ProcessKey>,
    unclaimed: VecDeque<Exit>,
}

/// The shim's subreaper. Create it with [`Reaper::start`].
#[derive(Debug)]
pub(crate) struct Reaper {
    inner: Mutex<Inner>,
    spawned: Condvar,
    exits: Sender<ProcessExit>,
}

impl Reaper {
    /// Starts the reaper thread. Container process exits arrive on the
    /// returned receiver, in the order they were reaped.
    pub(crate) fn start() -> std::io::Result<(Arc<Reaper>, Receiver<ProcessExit>)> {
        let (tx, rx) = mpsc::channel();
        let reaper = Arc::new(Reaper {
            inner: Mutex::new(Inner::default()),
            spawned: Condvar::new(),
            exits: tx,
        });
        let thread_reaper = Arc::clone(&reaper);
        std::thread::Builder::new()
            .name("reaper".into())
            .stack_size(crate::SMALL_STACK)
            .spawn(move || thread_reaper.run())?;
        Ok((reaper, rx))
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn run(&self) {
        loop {
            let spawns = self.lock().spawns;
            match waitid(Id::All, WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT) {
                Ok(status) => {
                    if let Some(pid) = status.pid() {
                        self.reap(pid);
                    }
                }
                Err(Errno::EINTR) => {}
                Err(Errno::ECHILD) => {
                    // No children: sleep until the next command is spawned.
                    // Container processes only arrive as orphans of those.
                    let mut inner = self.lock();
                    while inner.spawns == spawns {
                        inner = self.spawned.wait(inner).unwrap_or_else(|e| e.into_inner());
                    }
                }
                Err(e) => {
                    crate::warn!("waitid: {e}");
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
            }
        }
    }

    /// Reaps `pid` (a zombie found with `WNOWAIT`) and hands its exit to its owner.
    fn reap(&self, pid: Pid) {
        let mut inner = self.lock();
        let status = match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, code)) => u32::try_from(code).unwrap_or(255),
            Ok(WaitStatus::Signaled(_, signal, _)) => 128 + signal as u32,
            // Reaped by someone else (a failed spawn), or not a zombie after all.
            Ok(_) | Err(_) => return,
        };
        inner.seq += 1;
        let exit = Exit {
            pid: pid.as_raw(),
            status,
            at: SystemTime::now(),
            seq: inner.seq,
        };
        if let Some(waiter) = inner.commands.remove(&exit.pid) {
            let _ = waiter.send(exit);
        } else if let Some(key) = inner.watched.remove(&exit.pid) {
            let _ = self.exits.send(ProcessExit { key, exit });
        } else {
            if inner.unclaimed.len() == UNCLAIMED_LIMIT {
                inner.unclaimed.pop_front();
            }
            inner.unclaimed.push_back(exit);
        }
    }

    /// The current point in the exit sequence: take it before running the
    /// command that creates a process, pass it to [`Reaper::watch`].
    pub(crate) fn mark(&self) -> Mark {
        Mark(self.lock().seq)
    }

    /// Watches container process `pid` for `key`. If it already exited
    /// (after `since`), its exit is delivered at once.
    pub(crate) fn watch(&self, pid: i32, since: Mark, key: ProcessKey) {
        let mut inner = self.lock();
        let claimed = inner
            .unclaimed
            .iter()
            .rposition(|e| e.pid == pid && e.seq > since.0);
        match claimed {
            Some(index) => {
                let exit = inner.unclaimed.remove(index).expect("index from rposition");
                let _ = self.exits.send(ProcessExit { key, exit });
            }
            None => {
                inner.watched.insert(pid, key);
            }
        }
    }

    /// Sends `signal` to `pid` if it is a watched process that has not been
    /// reaped yet (so the pid cannot belong to anything else). Returns whether
    /// it was sent.
    pub(crate) fn signal_watched(&self, pid: i32, signal: Signal) -> nix::Result<bool> {
        let inner = self.lock();
        if !inner.watched.contains_key(&pid) {
            return Ok(false);
        }
        kill(Pid::from_raw(pid), signal).map(|()| true)
    }

    /// Sends `signal` to `pid` if it is a command spawned by [`Reaper::spawn`]
    /// that has not been reaped yet. Returns whether it was sent.
    pub(crate) fn signal_command(&self, pid: i32, signal: Signal) -> nix::Result<bool> {
        let inner = self.lock();
        if !inner.commands.contains_key(&pid) {
            return Ok(false);
        }
        kill(Pid::from_raw(pid), signal).map(|()| true)
    }

    /// Spawns `command`; its exit arrives on the returned receiver (never
    /// wait for the child any other way: the reaper reaps it).
    pub(crate) fn spawn(&self, command: &mut Command) -> std::io::Result<(Child, Receiver<Exit>)> {
        let (tx, rx) = mpsc::channel();
        let mut inner = self.lock();
        let child = command.spawn()?;
        let pid = i32::try_from(child.id()).expect("pid fits in i32");
        inner.commands.insert(pid, tx);
        inner.spawns += 1;
        self.spawned.notify_all();
        Ok((child, rx))
    }

    /// Spawns `command` (with piped stdout and stderr, unless the caller set
    /// them) and waits for it to exit, collecting its output. `stdin` is
    /// written to its stdin when given.
    pub(crate) fn run_command(
        &self,
        command: &mut Command,
        stdin: Option<&[u8]>,
    ) -> std::io::Result<Output> {
        let (mut child, rx) = self.spawn(command)?;
        let (stdout, stderr) = collect_output(&mut child, stdin);
        let exit = rx
            .recv()
            .map_err(|_| std::io::Error::other("reaper thread is gone"))?;
        // `child` is dropped without waiting: the reaper reaped it.
        let raw = if exit.status > 128 {
            // Re-encode as a wait status so ExitStatus::signal() works.
            i32::try_from(exit.status - 128).unwrap_or(0)
        } else {
            i32::try_from(exit.status).unwrap_or(255) << 8
        };
        Ok(Output {
            status: ExitStatus::from_raw(raw),
            stdout,
            stderr,
        })
    }
}

/// Writes `stdin` to the child and reads its stdout and stderr to the end
/// (stderr on a second thread, so neither pipe can fill and block the child).
fn collect_output(child: &mut Child, stdin: Option<&[u8]>) -> (Vec<u8>, Vec<u8>) {
    if let Some(mut pipe) = child.stdin.take() {
        if let Some(data) = stdin {
            use std::io::Write;
            let _ = pipe.write_all(data);
        }
    }
    let stderr_pipe = child.stderr.take();
    let stdout_pipe = child.stdout.take();
    std::thread::scope(|scope| {
        let stderr = scope.spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut pipe) = stderr_pipe {
                let _ = pipe.read_to_end(&mut buf);
            }
            buf
        });
        let mut stdout = Vec::new();
        if let Some(mut pipe) = stdout_pipe {
            let _ = pipe.read_to_end(&mut stdout);
        }
        (stdout, stderr.join().unwrap_or_default())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Stdio;
    use std::time::Duration;

    fn sh(script: &str) -> Command {
        let mut c = Command::new("/bin/sh");
        c.args(["-c", script])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    /// One reaper per test process: two would steal each other's children.
    fn shared() -> &'static (Arc<Reaper>, Mutex<Receiver<ProcessExit>>) {
        static SHARED: std::sync::OnceLock<(Arc<Reaper>, Mutex<Receiver<ProcessExit>>)> =
            std::sync::OnceLock::new();
        SHARED.get_or_init(|| {
            let (reaper, exits) = Reaper::start().unwrap();
            (reaper, Mutex::new(exits))
        })
    }

    #[test]
    fn commands_get_their_own_status_and_output() {
        let reaper = &shared().0;
        let out = reaper
            .run_command(&mut sh("echo out; echo err >&2; exit 7"), None)
            .unwrap();
        assert_eq!(out.status.code(), Some(7));
        assert_eq!(out.stdout, b"out\n");
        assert_eq!(out.stderr, b"err\n");
        let out = reaper.run_command(&mut sh("kill -9 $$"), None).unwrap();
        assert_eq!(out.status.signal(), Some(9));
        let out = reaper
            .run_command(sh("cat").stdin(Stdio::piped()), Some(b"in"))
            .unwrap();
        assert_eq!(out.stdout, b"in");
    }

    #[test]
    fn many_concurrent_commands_never_mix_statuses() {
        let reaper = &shared().0;
        std::thread::scope(|s| {
            for i in 0..16 {
                s.spawn(move || {
                    for _ in 0..4 {
                        let out = reaper
                            .run_command(&mut sh(&format!("exit {i}")), None)
                            .unwrap();
                        assert_eq!(out.status.code(), Some(i));
                    }
                });
            }
        });
    }

    #[test]
    fn an_exit_before_watch_is_claimed_and_an_old_one_is_not() {
        // Only subreapers receive orphans; in this test the processes are
        // direct children (started with std and never waited by std).
        let (reaper, exits) = shared();
        let exits = exits.lock().unwrap();
        let since = reaper.mark();
        let child = {
            let _guard = reaper.lock();
            sh("exit 3").spawn().unwrap()
        };
        {
            let mut inner = reaper.lock();
            inner.spawns += 1;
            reaper.spawned.notify_all();
        }
        let pid = i32::try_from(child.id()).unwrap();
        // Wait until the reaper has it as unclaimed.
        for _ in 0..500 {
            if reaper.lock().unclaimed.iter().any(|e| e.pid == pid) {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let late = reaper.mark();
        let key = ProcessKey {
            container: "c".into(),
            exec: String::new(),
        };
        // A watch that started after the exit must not claim it.
        reaper.watch(pid, late, key.clone());
        assert!(exits.try_recv().is_err());
        reaper.lock().watched.clear();
        reaper.watch(pid, since, key.clone());
        let got = exits.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(got.key, key);
        assert_eq!(got.exit.status, 3);
        assert_eq!(got.exit.pid, pid);
    }
}
