//! config.md#process (`terminal`, `consoleSize`) and
//! config-linux.md#default-devices (`/dev/console`): the runtime hands the
//! pseudoterminal master to `--console-socket`; the checker's report is
//! read from it.

use std::io::{IoSliceMut, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use corten_conformance::expect::{Check, FileKind};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use serde_json::json;

use super::{case, Case};
use crate::bundle::Bundle;
use crate::command::CmdOut;
use crate::ctx::{checker_verdict, ensure_ok, Ctx};

pub fn cases() -> Vec<Case> {
    vec![
        case(
            "config.process.terminal",
            "config.md#process (terminal), config-linux.md#default-devices (/dev/console)",
            terminal,
        ),
        case(
            "config.process.console-size",
            "config.md#process (consoleSize)",
            console_size,
        ),
    ]
}

fn terminal(cx: &mut Ctx) -> Result<()> {
    let mut b = cx.bundle()?;
    for fd in 0..3 {
        b.expect(
            &format!("fd {fd} is a terminal"),
            Check::IsTty { fd, tty: true },
        );
    }
    b.expect(
        "/dev/console exists",
        Check::Exists {
            path: "/dev/console".into(),
            kind: Some(FileKind::Char),
        },
    );
    b.expect(
        "/dev/console is the process's terminal",
        Check::LinkOrSame {
            path: "/dev/console".into(),
            target: "/proc/self/fd/0".into(),
        },
    );
    run_on_terminal(cx, &mut b)
}

fn console_size(cx: &mut Ctx) -> Result<()> {
    let mut b = cx.bundle()?;
    b.set(
        "/process/consoleSize",
        json!({ "height": 37, "width": 111 }),
    );
    b.expect(
        "window size",
        Check::WinSize {
            rows: 37,
            cols: 111,
        },
    );
    run_on_terminal(cx, &mut b)
}

/// Create with `--console-socket`, start, and judge what the checker wrote
/// on the terminal.
fn run_on_terminal(cx: &mut Ctx, b: &mut Bundle) -> Result<()> {
    b.set("/process/terminal", json!(true));
    let id = cx.new_id();
    let master = create_on_console(cx, b, &id)?;
    cx.start_ok(&id)?;
    let text = read_until_closed(&master, Duration::from_secs(15))?;
    let out = CmdOut {
        code: 0,
        stdout: text.replace('\r', ""),
        stderr: String::new(),
    };
    checker_verdict(&out)
}

/// Save `b` and `create --console-socket` it as `id`; the pty master the
/// runtime sent.
pub(super) fn create_on_console(cx: &mut Ctx, b: &Bundle, id: &str) -> Result<OwnedFd> {
    let socket = ConsoleSocket::listen(cx.dir.join(format!("console-{id}.sock")))?;
    b.save()?;
    cx.track(id);
    let mut cmd = cx.command();
    cmd.arg("create")
        .arg("--bundle")
        .arg(b.path())
        .arg("--console-socket")
        .arg(&socket.path)
        .arg(id);
    let created = cx.exec(cmd)?;
    socket.master(&created, "create --console-socket")
}

/// A `--console-socket` whose listener waits, in a thread, for the one
/// pseudoterminal master the runtime sends.
#[derive(Debug)]
pub(super) struct ConsoleSocket {
    /// The socket's path.
    pub path: PathBuf,
    receiver: JoinHandle<Result<OwnedFd>>,
}

impl ConsoleSocket {
    /// Bind `path` and start waiting.
    pub fn listen(path: PathBuf) -> Result<ConsoleSocket> {
        let listener =
            UnixListener::bind(&path).with_context(|| format!("bind {}", path.display()))?;
        let receiver = std::thread::spawn(move || receive_master(&listener));
        Ok(ConsoleSocket { path, receiver })
    }

    /// The master received while the runtime command `out` (`what`) ran,
    /// or the command's failure.
    pub fn master(self, out: &CmdOut, what: &str) -> Result<OwnedFd> {
        if !out.ok() {
            // Unblock the receiver: connect once so accept returns.
            let _ = UnixStream::connect(&self.path);
        }
        let master = self
            .receiver
            .join()
            .map_err(|_| anyhow!("console receiver panicked"))?;
        ensure_ok(out, what)?;
        master
    }
}

/// Accept one connection and receive one descriptor (the pty master).
fn receive_master(listener: &UnixListener) -> Result<OwnedFd> {
    listener.set_nonblocking(true)?;
    let deadline = Instant::now() + Duration::from_secs(20);
    let stream = loop {
        match listener.accept() {
            Ok((s, _)) => break s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => bail!("accept on the console socket: {e}"),
        }
    };
    stream.set_nonblocking(false)?;
    let mut data = [0u8; 4096];
    let mut iov = [IoSliceMut::new(&mut data)];
    let mut space = nix::cmsg_space!([RawFd; 2]);
    let msg = recvmsg::<()>(
        stream.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .context("recvmsg on the console socket")?;
    for c in msg.cmsgs().context("control messages")? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(fd) = fds.first() {
                // SAFETY: SCM_RIGHTS gave us a fresh descriptor we now own;
                // any others in the message are closed below.
                let owned = unsafe { OwnedFd::from_raw_fd(*fd) };
                for extra in &fds[1..] {
                    let _ = nix::unistd::close(*extra);
                }
                return Ok(owned);
            }
        }
    }
    bail!("the runtime sent no descriptor on the console socket")
}

/// Read the terminal until the other side is closed (EIO) or `timeout`.
pub(super) fn read_until_closed(master: &OwnedFd, timeout: Duration) -> Result<String> {
    let mut file = std::fs::File::from(master.try_clone()?);
    let mut text = Vec::new();
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            bail!(
                "the terminal stayed open; read so far: {:?}",
                String::from_utf8_lossy(&text)
            );
        }
        let ms = u16::try_from(left.as_millis().min(1000)).unwrap_or(1000);
        let mut fds = [PollFd::new(
            std::os::fd::AsFd::as_fd(&file),
            PollFlags::POLLIN,
        )];
        if poll(&mut fds, PollTimeout::from(ms)).context("poll the terminal")? == 0 {
            continue;
        }
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => text.extend_from_slice(&buf[..n]),
            Err(e) if e.raw_os_error() == Some(libc::EIO) => break,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e).context("read the terminal"),
        }
    }
    Ok(String::from_utf8_lossy(&text).into_owned())
}
