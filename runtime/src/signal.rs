//! Signal names and numbers, as `kill` accepts them.

use nix::sys::signal::Signal;

/// An unknown signal.
#[derive(Debug, thiserror::Error)]
#[error("unknown signal {0:?}")]
pub struct UnknownSignal(pub String);

/// Parses `9`, `KILL`, `SIGKILL` or `sigkill`, as runc does: any integer
/// is taken as it is (`0` checks that the process exists; one the kernel
/// does not know fails when sent, with `EINVAL`), and real-time signals are
/// accepted by number only.
pub fn parse_signal(s: &str) -> Result<i32, UnknownSignal> {
    if let Ok(n) = s.parse::<i64>() {
        // Go passes the number to kill(2) as a machine word; the kernel
        // reads its low 32 bits.
        #[allow(clippy::cast_possible_truncation)]
        return Ok(n as i32);
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse::<Signal>()
        .map(|sig| sig as i32)
        .map_err(|_| UnknownSignal(s.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        assert_eq!(parse_signal("9").unwrap(), 9);
        assert_eq!(parse_signal("KILL").unwrap(), 9);
        assert_eq!(parse_signal("SIGTERM").unwrap(), 15);
        assert_eq!(parse_signal("hup").unwrap(), 1);
        assert_eq!(parse_signal("40").unwrap(), 40);
        assert!(parse_signal("SIGNOPE").is_err());
        assert!(parse_signal(" 9").is_err());
        assert!(parse_signal("SIGRTMIN+1").is_err());
        // Numbers are runc's too: 0 probes, others fail at kill(2).
        assert_eq!(parse_signal("0").unwrap(), 0);
        assert_eq!(parse_signal("65").unwrap(), 65);
        assert_eq!(parse_signal("-1").unwrap(), -1);
    }
}
