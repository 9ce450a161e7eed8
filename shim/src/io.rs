//! Process IO: the stdio fifos containerd gives (`stdin`, `stdout`,
//! `stderr` paths) joined to the container process through pipes, or to its
//! terminal (the pty master received on the console socket).
//!
//! # No output lost
//! The container writes into a pipe the shim created before `create`, so
//! what a process writes before it exits stays in the pipe until the copy
//! thread has read it; the copy thread reads to end of file, which comes only
//! once every writer (the process and its children) is gone. The fifo is
//! opened for writing with a blocking open, which waits for containerd's
//! reader, so nothing is written into a fifo no one reads yet. When the
//! reader goes away, writes fail with `EPIPE` and the data is dropped rather
//! than blocking the container.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;
use nix::unistd::pipe2;

use crate::runtime::ProcessStdio;

/// The size of each copy buffer: a quarter of a pipe's default capacity.
const COPY_BUFFER: usize = 16 * 1024;

/// The stdio of one process as containerd gave it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct StdioPaths {
    pub(crate) stdin: String,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
    pub(crate) terminal: bool,
}

/// Where one output stream goes, from the URI containerd gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// A fifo (a plain path, containerd's default), written by a copy thread.
    Fifo(PathBuf),
    /// `file:///path`: appended to by a copy thread.
    File(PathBuf),
    /// `binary:///path?arg=value`: a logging program that reads the pipes
    /// itself (see `logger.rs`).
    Binary(crate::logger::LoggerSpec),
}

impl Target {
    pub(crate) fn parse(uri: &str) -> Target {
        if let Some(rest) = uri.strip_prefix("file://") {
            return Target::File(PathBuf::from(rest));
        }
        if let Some(rest) = uri.strip_prefix("binary://") {
            return Target::Binary(crate::logger::LoggerSpec::parse(rest));
        }
        Target::Fifo(PathBuf::from(uri.strip_prefix("fifo://").unwrap_or(uri)))
    }

    /// Opens the destination for writing (a fifo: once its reader is there).
    fn open(&self) -> io::Result<File> {
        match self {
            Target::Fifo(path) => OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_CLOEXEC)
                .open(path),
            Target::File(path) => {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                OpenOptions::new()
                    .append(true)
                    .create(true)
                    .custom_flags(libc::O_CLOEXEC)
                    .open(path)
            }
            Target::Binary(_) => Err(io::Error::other("a logging binary reads the pipes itself")),
        }
    }
}

/// The shim's ends of the pipes of a process not yet started.
#[derive(Debug)]
pub(crate) struct Pipes {
    stdin: Option<OwnedFd>,
    stdout: Option<OwnedFd>,
    stderr: Option<OwnedFd>,
}

/// Creates one pipe per non-empty path: the process's ends go to the
/// runtime (and the process), the shim's ends are returned.
pub(crate) fn pipes(paths: &StdioPaths) -> io::Result<(ProcessStdio, Pipes)> {
    let pipe = || pipe2(OFlag::O_CLOEXEC).map_err(io::Error::from);
    let mut child = ProcessStdio::default();
    let mut shim = Pipes {
        stdin: None,
        stdout: None,
        stderr: None,
    };
    if !paths.stdin.is_empty() {
        let (r, w) = pipe()?;
        child.stdin = Some(r);
        shim.stdin = Some(w);
    }
    if !paths.stdout.is_empty() {
        let (r, w) = pipe()?;
        child.stdout = Some(w);
        shim.stdout = Some(r);
    }
    if !paths.stderr.is_empty() {
        let (r, w) = pipe()?;
        child.stderr = Some(w);
        shim.stderr = Some(r);
    }
    Ok((child, shim))
}

/// The running copies of one process's IO.
#[derive(Debug)]
pub(crate) struct ProcessIo {
    /// Where stdin data goes (the pipe, or the pty master); `None` once closed.
    stdin: Arc<Mutex<Option<File>>>,
    stdin_thread: Option<StdinCopy>,
    /// The pty master, for resizing.
    console: Option<Arc<File>>,
    /// The output copies and where each writes.
    outputs: Vec<(Target, JoinHandle<()>)>,
    /// The logging program of a `binary://` URI.
    logger: Option<crate::logger::Logger>,
}

impl ProcessIo {
    /// Starts copying between the fifos (or files, or a logging program)
    /// and the pipes of a created process.
    pub(crate) fn from_pipes(
        paths: &StdioPaths,
        pipes: Pipes,
        logging: &crate::logger::LogContext<'_>,
    ) -> io::Result<ProcessIo> {
        let stdin = Arc::new(Mutex::new(pipes.stdin.map(File::from)));
        let mut io = ProcessIo {
            stdin: Arc::clone(&stdin),
            stdin_thread: None,
            console: None,
            outputs: Vec::new(),
            logger: None,
        };
        if io.stdin.lock().unwrap_or_else(|e| e.into_inner()).is_some() {
            io.stdin_thread = spawn_stdin(Path::new(&paths.stdin), stdin)?;
        }
        if let Target::Binary(spec) = Target::parse(&paths.stdout) {
            io.logger = Some(crate::logger::Logger::start(
                &spec,
                pipes.stdout,
                pipes.stderr,
                logging,
            )?);
            return Ok(io);
        }
        for (fd, uri) in [(pipes.stdout, &paths.stdout), (pipes.stderr, &paths.stderr)] {
            if let Some(fd) = fd {
                let target = Target::parse(uri);
                let thread = spawn_output(File::from(fd), target.clone())?;
                io.outputs.push((target, thread));
            }
        }
        Ok(io)
    }

    /// Starts copying between the fifos and the pty master of a process.
    pub(crate) fn from_console(paths: &StdioPaths, master: OwnedFd) -> io::Result<ProcessIo> {
        let master = File::from(master);
        let reader = master.try_clone()?;
        let writer = master.try_clone()?;
        let stdin = Arc::new(Mutex::new(Some(writer)));
        let mut io = ProcessIo {
            stdin: Arc::clone(&stdin),
            stdin_thread: None,
            console: Some(Arc::new(master)),
            outputs: Vec::new(),
            logger: None,
        };
        if !paths.stdin.is_empty() {
            io.stdin_thread = spawn_stdin(Path::new(&paths.stdin), stdin)?;
        }
        if !paths.stdout.is_empty() {
            let target = Target::parse(&paths.stdout);
            let thread = spawn_output(reader, target.clone())?;
            io.outputs.push((target, thread));
        }
        Ok(io)
    }

    /// Closes the process's stdin (`CloseIO`): the pipe's end of file, or an
    /// end-of-transmission character on a terminal. What the client wrote
    /// into the fifo before is delivered first: the copy thread drains the
    /// fifo, then closes (a client such as `ctr` sends CloseIO as soon as
    /// its own input ends, often before the copy has read all of it).
    pub(crate) fn close_stdin(&self) {
        match &self.stdin_thread {
            Some(copy) => copy.stop(),
            None => end_stdin(&self.stdin),
        }
    }

    /// Sets the terminal size (`ResizePty`).
    pub(crate) fn resize(&self, width: u32, height: u32) -> io::Result<()> {
        let Some(console) = &self.console else {
            return Err(io::Error::other("the process has no terminal"));
        };
        crate::sys::set_window_size(console.as_fd(), width, height)
    }

    /// Whether every output copy reached end of file.
    pub(crate) fn outputs_done(&self) -> bool {
        self.outputs.iter().all(|(_, t)| t.is_finished())
    }

    /// Waits up to `timeout` for the output copies to reach end of file, then
    /// unblocks whatever still waits for a fifo to be opened, so that no copy
    /// thread outlives its process forever.
    pub(crate) fn finish(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !self.outputs_done() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        for (target, thread) in &self.outputs {
            if let (Target::Fifo(path), false) = (target, thread.is_finished()) {
                unblock_writer_open(path);
            }
        }
        if let Some(logger) = self.logger.as_mut() {
            logger.finish(deadline.saturating_duration_since(Instant::now()));
        }
        self.stdin.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(copy) = &self.stdin_thread {
            if !copy.thread.is_finished() {
                copy.stop();
            }
        }
    }
}

/// The stdin copy thread and the pipe that tells it to stop. The read end
/// stays open here too, so a stop after the thread ended never meets a pipe
/// without readers (`EPIPE`, `SIGPIPE`); both ends are non-blocking.
#[derive(Debug)]
struct StdinCopy {
    thread: JoinHandle<()>,
    stop: File,
    _stop_reader: Arc<OwnedFd>,
}

impl StdinCopy {
    /// Asks the thread to drain the fifo, end the process's stdin and return.
    fn stop(&self) {
        let _ = (&self.stop).write_all(&[1]);
    }
}

/// The end of the process's input: end of file on a pipe (the shim's end is
/// closed), an end-of-transmission character on a terminal.
fn end_stdin(dest: &Mutex<Option<File>>) {
    let mut dest = dest.lock().unwrap_or_else(|e| e.into_inner());
    match dest.as_mut() {
        Some(f) if is_tty(f) => {
            let _ = f.write_all(&[4]);
        }
        _ => {
            dest.take();
        }
    }
}

/// Writes `data` to the process's stdin; false once that is closed or fails.
fn forward(dest: &Mutex<Option<File>>, data: &[u8]) -> bool {
    let mut dest = dest.lock().unwrap_or_else(|e| e.into_inner());
    dest.as_mut().is_some_and(|out| out.write_all(data).is_ok())
}

/// stdin fifo → process: copy until end of file, or until
/// [`StdinCopy::stop`]: then what is left in the fifo is copied and the
/// process's stdin ended. The fifo is opened without blocking: Linux
/// reports no hang-up on a reader opened before any writer until a writer
/// has come and gone, so `poll` waits for containerd's writer.
fn spawn_stdin(path: &Path, dest: Arc<Mutex<Option<File>>>) -> io::Result<Option<StdinCopy>> {
    let mut fifo = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)
    {
        Ok(f) => f,
        Err(e) => {
            crate::warn!("open stdin {}: {e}", path.display());
            return Ok(None);
        }
    };
    let (stop_r, stop_w) = pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK).map_err(io::Error::from)?;
    let stop_r = Arc::new(stop_r);
    let reader = Arc::clone(&stop_r);
    let thread = std::thread::Builder::new()
        .name("stdin".into())
        .stack_size(crate::SMALL_STACK)
        .spawn(move || copy_stdin(&mut fifo, &reader, &dest))?;
    Ok(Some(StdinCopy {
        thread,
        stop: File::from(stop_w),
        _stop_reader: stop_r,
    }))
}

fn copy_stdin(fifo: &mut File, stop: &OwnedFd, dest: &Mutex<Option<File>>) {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let mut buf = vec![0u8; COPY_BUFFER];
    loop {
        let mut fds = [
            PollFd::new(stop.as_fd(), PollFlags::POLLIN),
            PollFd::new(fifo.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return,
            Ok(_) => {}
        }
        if fds[0].revents().is_some_and(|r| !r.is_empty()) {
            // Stop: drain what the client already wrote, then end stdin.
            while let Ok(n @ 1..) = fifo.read(&mut buf) {
                if !forward(dest, &buf[..n]) {
                    return;
                }
            }
            end_stdin(dest);
            return;
        }
        let n = match fifo.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock
                ) =>
            {
                continue
            }
            Err(_) => break,
        };
        if !forward(dest, &buf[..n]) {
            return;
        }
    }
    // End of file from the client: the process sees it too (pipes only; a
    // terminal gets no end of file from a closed fifo).
    let mut dest = dest.lock().unwrap_or_else(|e| e.into_inner());
    if dest.as_ref().is_some_and(|f| !is_tty(f)) {
        dest.take();
    }
}

/// process → stdout/stderr fifo (or file): read the pipe (or pty master)
/// to end of file; write into the fifo once containerd's reader has opened it.
fn spawn_output(mut source: File, target: Target) -> io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("output".into())
        .stack_size(crate::SMALL_STACK)
        .spawn(move || {
            let mut dest = match target.open() {
                Ok(f) => Some(f),
                Err(e) => {
                    crate::warn!("open output {target:?}: {e}");
                    None
                }
            };
            let mut buf = vec![0u8; COPY_BUFFER];
            loop {
                let n = match source.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    // EIO: the terminal's last user is gone.
                    Err(_) => break,
                };
                if let Some(f) = dest.as_mut() {
                    // EPIPE: no reader any more; keep draining the process.
                    let _ = f.write_all(&buf[..n]);
                }
            }
        })
}

fn is_tty(f: &File) -> bool {
    nix::unistd::isatty(f.as_raw_fd()).unwrap_or(false)
}

/// Lets a thread blocked opening `path` for writing proceed (a reader appears
/// and goes away at once, so its writes fail with `EPIPE`).
fn unblock_writer_open(path: &Path) {
    let _ = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path);
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::stat::Mode;
    use nix::unistd::mkfifo;

    fn tmpdir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("corten-shim-io-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn output_written_before_the_reader_opens_is_not_lost() {
        let dir = tmpdir("out");
        let fifo = dir.join("stdout");
        mkfifo(&fifo, Mode::from_bits_truncate(0o600)).unwrap();
        let paths = StdioPaths {
            stdout: fifo.to_string_lossy().into_owned(),
            ..Default::default()
        };
        let (child, pipes) = pipes(&paths).unwrap();
        let mut io =
            ProcessIo::from_pipes(&paths, pipes, &crate::logger::LogContext::default()).unwrap();
        // The "process" writes and exits before anyone reads the fifo.
        let mut w = File::from(child.stdout.unwrap());
        w.write_all(b"hello\n").unwrap();
        drop(w);
        std::thread::sleep(Duration::from_millis(50));
        let mut got = String::new();
        File::open(&fifo).unwrap().read_to_string(&mut got).unwrap();
        assert_eq!(got, "hello\n");
        io.finish(Duration::from_secs(5));
        assert!(io.outputs_done());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A process's stdin fed from a new fifo: the directory, the fifo, the
    /// copies, and the process's end of the pipe.
    fn stdin_io(name: &str) -> (PathBuf, PathBuf, ProcessIo, File) {
        let dir = tmpdir(name);
        let fifo = dir.join("stdin");
        mkfifo(&fifo, Mode::from_bits_truncate(0o600)).unwrap();
        let paths = StdioPaths {
            stdin: fifo.to_string_lossy().into_owned(),
            ..Default::default()
        };
        let (child, pipes) = pipes(&paths).unwrap();
        let io =
            ProcessIo::from_pipes(&paths, pipes, &crate::logger::LogContext::default()).unwrap();
        (dir, fifo, io, File::from(child.stdin.unwrap()))
    }

    #[test]
    fn stdin_reaches_the_process_and_close_gives_eof() {
        let (dir, fifo, io, mut r) = stdin_io("in");
        let mut client = OpenOptions::new().write(true).open(&fifo).unwrap();
        client.write_all(b"abc").unwrap();
        let mut buf = [0u8; 3];
        r.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"abc");
        // CloseIO while the client still holds the fifo open.
        io.close_stdin();
        let mut rest = Vec::new();
        r.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty());
        drop(client);
        // A second CloseIO, after the copy thread ended, is harmless.
        std::thread::sleep(Duration::from_millis(20));
        io.close_stdin();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn close_io_right_after_the_input_still_delivers_it() {
        for round in 0..20 {
            let (dir, fifo, io, mut r) = stdin_io(&format!("in-close-{round}"));
            // As ctr does: write everything, close the fifo, send CloseIO.
            let mut client = OpenOptions::new().write(true).open(&fifo).unwrap();
            client.write_all(b"line one\nline two\n").unwrap();
            drop(client);
            io.close_stdin();
            let mut got = Vec::new();
            r.read_to_end(&mut got).unwrap();
            assert_eq!(got, b"line one\nline two\n", "round {round}");
            std::fs::remove_dir_all(&dir).unwrap();
        }
    }

    #[test]
    fn close_io_before_any_client_ends_stdin() {
        let (dir, _fifo, io, mut r) = stdin_io("in-noclient");
        io.close_stdin();
        let mut got = Vec::new();
        r.read_to_end(&mut got).unwrap();
        assert!(got.is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn uris_name_their_targets() {
        assert_eq!(
            Target::parse("/run/x/fifo"),
            Target::Fifo("/run/x/fifo".into())
        );
        assert_eq!(
            Target::parse("file:///var/log/c.log"),
            Target::File("/var/log/c.log".into())
        );
        assert!(matches!(
            Target::parse("binary:///bin/log?a=b"),
            Target::Binary(_)
        ));
    }

    #[test]
    fn file_uri_output_is_appended() {
        let dir = tmpdir("file");
        let log = dir.join("sub/c.log");
        std::fs::create_dir_all(log.parent().unwrap()).unwrap();
        std::fs::write(&log, "before\n").unwrap();
        let uri = format!("file://{}", log.display());
        let paths = StdioPaths {
            stdout: uri.clone(),
            stderr: uri,
            ..Default::default()
        };
        let (child, pipes) = pipes(&paths).unwrap();
        let mut io =
            ProcessIo::from_pipes(&paths, pipes, &crate::logger::LogContext::default()).unwrap();
        File::from(child.stdout.unwrap())
            .write_all(b"out\n")
            .unwrap();
        drop(child.stderr);
        io.finish(Duration::from_secs(5));
        assert!(io.outputs_done());
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "before\nout\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn finish_unblocks_an_output_fifo_nobody_opens() {
        let dir = tmpdir("unblock");
        let fifo = dir.join("stdout");
        mkfifo(&fifo, Mode::from_bits_truncate(0o600)).unwrap();
        let paths = StdioPaths {
            stdout: fifo.to_string_lossy().into_owned(),
            ..Default::default()
        };
        let (child, pipes) = pipes(&paths).unwrap();
        let mut io =
            ProcessIo::from_pipes(&paths, pipes, &crate::logger::LogContext::default()).unwrap();
        drop(child);
        io.finish(Duration::from_millis(50));
        let deadline = Instant::now() + Duration::from_secs(5);
        while !io.outputs_done() {
            assert!(Instant::now() < deadline, "output thread still blocked");
            std::thread::sleep(Duration::from_millis(5));
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
