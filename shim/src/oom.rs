//! `TaskOOM`: one thread per container watches its memory cgroup and
//! publishes an event for each OOM kill.
//! - cgroup v1: an eventfd registered on `memory.oom_control` through
//!   `cgroup.event_control`; the kernel also signals it when the cgroup is
//!   removed, which ends the thread.
//! - cgroup v2: inotify on `memory.events`; an increase of `oom_kill` is an
//!   OOM; the watch goes away (`IN_IGNORED`) with the cgroup.
//!
//! The cgroup is found from `/proc/<init pid>/cgroup` (read from the shim's
//! cgroup namespace) and the host's cgroup mounts.

use std::fs;
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use containerd_shim::protos::events::task::TaskOOM;
use containerd_shim::protos::topics::TASK_OOM_EVENT_TOPIC;
use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

use crate::events::Events;

/// The memory cgroup of a process.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum MemoryCgroup {
    V1(PathBuf),
    V2(PathBuf),
}

/// Where the memory controller of `pid` lives, from the texts of
/// `/proc/<pid>/cgroup` and `/proc/self/mountinfo`.
pub(crate) fn memory_cgroup(proc_cgroup: &str, mountinfo: &str) -> Option<MemoryCgroup> {
    let mut unified = None;
    for line in proc_cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if controllers.split(',').any(|c| c == "memory") {
            let mount = cgroup_mount(mountinfo, Some("memory"))?;
            return Some(MemoryCgroup::V1(join(&mount, path)));
        }
        if id == "0" && controllers.is_empty() {
            unified = Some(path.to_owned());
        }
    }
    let path = unified?;
    let mount = cgroup_mount(mountinfo, None)?;
    let dir = join(&mount, &path);
    dir.join("memory.events")
        .exists()
        .then_some(MemoryCgroup::V2(dir))
}

fn join(mount: &Path, path: &str) -> PathBuf {
    mount.join(path.trim_start_matches('/'))
}

/// The mount point of the v1 hierarchy with `controller`, or (`None`) of the
/// cgroup v2 hierarchy.
fn cgroup_mount(mountinfo: &str, controller: Option<&str>) -> Option<PathBuf> {
    mountinfo.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        let mount_point = left.split(' ').nth(4)?;
        let mut right = right.split(' ');
        let fstype = right.next()?;
        let super_options = right.nth(1).unwrap_or("");
        let matches = match controller {
            Some(c) => fstype == "cgroup" && super_options.split(',').any(|o| o == c),
            None => fstype == "cgroup2",
        };
        matches.then(|| PathBuf::from(mount_point.replace("\\040", " ")))
    })
}

/// Starts watching the memory cgroup of the init `pid` of `container_id`.
pub(crate) fn watch(container_id: &str, pid: u32, events: &Events) {
    let found = fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .ok()
        .and_then(|c| memory_cgroup(&c, &fs::read_to_string("/proc/self/mountinfo").ok()?));
    let Some(cgroup) = found else {
        crate::debug!("no memory cgroup for {container_id}: no OOM events");
        return;
    };
    let id = container_id.to_owned();
    let events = events.clone();
    let spawned = std::thread::Builder::new()
        .name("oom".into())
        .stack_size(crate::SMALL_STACK)
        .spawn(move || {
            let result = match &cgroup {
                MemoryCgroup::V1(dir) => watch_v1(dir, &id, &events),
                MemoryCgroup::V2(dir) => watch_v2(dir, &id, &events),
            };
            if let Err(e) = result {
                crate::warn!("OOM events of {id}: {e:#}");
            }
        });
    if let Err(e) = spawned {
        crate::warn!("OOM events of {container_id}: {e}");
    }
}

fn publish(id: &str, events: &Events) {
    crate::info!("OOM in {id}");
    events.send(
        TASK_OOM_EVENT_TOPIC,
        TaskOOM {
            container_id: id.to_owned(),
            ..Default::default()
        },
    );
}

fn watch_v1(dir: &Path, id: &str, events: &Events) -> Result<()> {
    let efd = EventFd::from_value_and_flags(0, EfdFlags::EFD_CLOEXEC).context("eventfd")?;
    let control = dir.join("memory.oom_control");
    let ofd = fs::File::open(&control).with_context(|| format!("open {}", control.display()))?;
    let register = dir.join("cgroup.event_control");
    fs::write(
        &register,
        format!("{} {}", efd.as_fd().as_raw_fd(), ofd.as_raw_fd()),
    )
    .with_context(|| format!("write {}", register.display()))?;
    loop {
        efd.read().context("read the OOM eventfd")?;
        // Also signalled when the cgroup goes away.
        if !dir.exists() {
            return Ok(());
        }
        publish(id, events);
    }
}

fn oom_kills(dir: &Path) -> u64 {
    fs::read_to_string(dir.join("memory.events"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("oom_kill ")?.trim().parse().ok())
        .unwrap_or(0)
}

fn watch_v2(dir: &Path, id: &str, events: &Events) -> Result<()> {
    let inotify = Inotify::init(InitFlags::IN_CLOEXEC).context("inotify_init")?;
    inotify
        .add_watch(&dir.join("memory.events"), AddWatchFlags::IN_MODIFY)
        .with_context(|| format!("watch {}/memory.events", dir.display()))?;
    let mut last = oom_kills(dir);
    loop {
        let read = inotify.read_events().context("read inotify events")?;
        if read
            .iter()
            .any(|e| e.mask.contains(AddWatchFlags::IN_IGNORED))
        {
            return Ok(());
        }
        let now = oom_kills(dir);
        if now > last {
            publish(id, events);
        }
        last = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
25 30 0:22 / /sys rw,nosuid - sysfs sysfs rw
33 25 0:28 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw,nsdelegate
40 25 0:35 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory
41 25 0:36 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct
";

    #[test]
    fn v1_memory_cgroup_on_a_hybrid_host() {
        let proc_cgroup = "12:cpu,cpuacct:/default/c1\n9:memory:/default/c1\n0::/default/c1\n";
        assert_eq!(
            memory_cgroup(proc_cgroup, MOUNTINFO),
            Some(MemoryCgroup::V1("/sys/fs/cgroup/memory/default/c1".into()))
        );
    }

    #[test]
    fn no_memory_controller_no_cgroup() {
        // A v2 path whose directory does not exist here.
        assert_eq!(memory_cgroup("0::/corten-test-none/x\n", MOUNTINFO), None);
        assert_eq!(memory_cgroup("", MOUNTINFO), None);
    }
}
