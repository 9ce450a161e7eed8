//! `process.user`: ids, supplementary groups, umask, and user-name lookup in
//! the container's `/etc/passwd`.

use nix::unistd::{setgroups, setresgid, setresuid, Gid, Uid};

use crate::spec::User;

/// Errors from switching user.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// The name is not in the container's `/etc/passwd`.
    #[error("unable to find user {0}: no matching entries in passwd file")]
    NotFound(String),
    /// A set*id call failed.
    #[error("{op}: {source}")]
    Set {
        /// The call.
        op: &'static str,
        /// Cause.
        source: nix::Error,
    },
}

/// Looks `name` up in `passwd` content; returns (uid, gid).
pub fn lookup(passwd: &str, name: &str) -> Option<(u32, u32)> {
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 4 && f[0] == name).then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))?
    })
}

/// The name of `uid` in `passwd` content.
pub fn name_of(passwd: &str, uid: u32) -> Option<String> {
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 3 && f[2].parse() == Ok(uid)).then(|| f[0].to_string())
    })
}

/// The home directory of `uid` in `passwd` content.
pub fn home(passwd: &str, uid: u32) -> Option<String> {
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 6 && f[2].parse() == Ok(uid)).then(|| f[5].to_string())
    })
}

/// The container's `/etc/passwd` (empty when missing or unreadable). The
/// image is not trusted: only a regular file is read, opened without
/// blocking (a fifo there would stop the init for good) and at most
/// 16 MiB of it (not a symlink to `/dev/zero`'s endless bytes).
fn read_passwd() -> String {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let Ok(f) = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("/etc/passwd")
    else {
        return String::new();
    };
    if !f.metadata().is_ok_and(|m| m.is_file()) {
        return String::new();
    }
    let mut bytes = Vec::new();
    let _ = f.take(16 << 20).read_to_end(&mut bytes);
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The process environment, with `HOME` added from the container's
/// `/etc/passwd` (or `/`) when the config does not set it, as runc does.
pub fn env_with_home(env: &[String], uid: u32) -> Vec<String> {
    let mut env = env.to_vec();
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        let passwd = read_passwd();
        let home = home(&passwd, uid)
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "/".into());
        env.push(format!("HOME={home}"));
    }
    env
}

/// Resolves the user's uid and gid (by name when `username` is set).
pub fn resolve(user: &User) -> Result<(u32, u32), UserError> {
    match user.username.as_deref().filter(|n| !n.is_empty()) {
        None => Ok((user.uid, user.gid)),
        Some(name) => {
            let passwd = read_passwd();
            lookup(&passwd, name).ok_or_else(|| UserError::NotFound(name.to_string()))
        }
    }
}

/// Switches to the user: groups, gid, then uid.
pub fn switch(uid: u32, gid: u32, additional: &[u32], userns: bool) -> Result<(), UserError> {
    let set = |op| move |source| UserError::Set { op, source };
    let groups: Vec<Gid> = additional.iter().map(|g| Gid::from_raw(*g)).collect();
    // In a user namespace whose gid map is written without `setgroups deny`,
    // setgroups works; it fails with EPERM only when denied, and then an
    // empty list is what the namespace has anyway.
    match setgroups(&groups) {
        Err(nix::Error::EPERM) if userns && groups.is_empty() => {}
        r => r.map_err(set("setgroups"))?,
    }
    let g = Gid::from_raw(gid);
    setresgid(g, g, g).map_err(set("setresgid"))?;
    let u = Uid::from_raw(uid);
    setresuid(u, u, u).map_err(set("setresuid"))?;
    Ok(())
}

/// Gives the process's stdio to the user it is about to become, as runc
/// does before the switch: each of fds 0-2 whose owner is not already `uid`
/// and that is not `/dev/null` is chowned to `uid` (its group kept; a pty
/// from a `gid=5` devpts stays in group tty). Refusals the kernel makes for
/// ids not mapped in a user namespace or a read-only filesystem are ignored.
pub fn fix_stdio_owner(uid: u32) -> Result<(), UserError> {
    use std::os::fd::{AsFd, BorrowedFd};
    let null = nix::sys::stat::stat("/dev/null").map_err(|source| UserError::Set {
        op: "stat /dev/null",
        source,
    })?;
    let (stdin, stdout, stderr) = (std::io::stdin(), std::io::stdout(), std::io::stderr());
    let stdio: [BorrowedFd<'_>; 3] = [stdin.as_fd(), stdout.as_fd(), stderr.as_fd()];
    for fd in stdio {
        let Ok(st) = nix::sys::stat::fstat(std::os::fd::AsRawFd::as_raw_fd(&fd)) else {
            continue;
        };
        if st.st_uid == uid || st.st_rdev == null.st_rdev {
            continue;
        }
        match nix::unistd::fchown(
            std::os::fd::AsRawFd::as_raw_fd(&fd),
            Some(Uid::from_raw(uid)),
            Some(Gid::from_raw(st.st_gid)),
        ) {
            Ok(()) | Err(nix::Error::EINVAL | nix::Error::EPERM | nix::Error::EROFS) => {}
            Err(source) => {
                return Err(UserError::Set {
                    op: "chown stdio",
                    source,
                })
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups() {
        let p = "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1001::/home/u:/bin/sh\n";
        assert_eq!(lookup(p, "user"), Some((1000, 1001)));
        assert_eq!(lookup(p, "root"), Some((0, 0)));
        assert_eq!(lookup(p, "nobody"), None);
        assert_eq!(home(p, 1000).as_deref(), Some("/home/u"));
        assert_eq!(home(p, 5), None);
    }
}
