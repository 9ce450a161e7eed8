//! What a runtime command did, as the cases read it.

use std::time::Duration;

use corten_testkit::driver::describe;
use corten_testkit::Ran;

/// How long any runtime command may take.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// What a command did.
#[derive(Debug, Clone)]
pub struct CmdOut {
    /// Exit code, `128 + signal` when killed, `-1` when it timed out.
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl CmdOut {
    /// Exit code 0.
    pub fn ok(&self) -> bool {
        self.code == 0
    }

    /// One line describing the result, for failure messages.
    pub fn describe(&self) -> String {
        describe(
            (self.code != -1).then_some(self.code),
            TIMEOUT,
            &self.stderr,
        )
    }
}

impl From<Ran> for CmdOut {
    fn from(ran: Ran) -> CmdOut {
        CmdOut {
            code: ran.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&ran.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&ran.stderr).into_owned(),
        }
    }
}
