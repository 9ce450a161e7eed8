//! The tests' cgroups: one parent, `/corten-it-<pid>`, per test process,
//! removed when the last [`crate::Bundle`] or [`crate::Runtime`] is gone.

use std::sync::Mutex;
use std::time::Duration;

use corten_testkit::{CgroupParent, Removal};

/// Number of live [`crate::Bundle`]s and [`crate::Runtime`]s. The per-process
/// parent cgroup is removed only when it drops to zero, under the lock, so a
/// runtime never finds its parent removed between its `mkdir -p` steps.
static LIVE: Mutex<usize> = Mutex::new(0);

fn parent() -> CgroupParent {
    CgroupParent::for_process("corten-it")
}

/// The parent of every test cgroup of this process: `/corten-it-<pid>`.
pub fn cgroup_parent() -> String {
    parent().path().to_owned()
}

/// Register a live owner of test cgroups.
pub(crate) fn register_owner() {
    *LIVE.lock().unwrap_or_else(|e| e.into_inner()) += 1;
}

/// Unregister an owner: remove the given test cgroups (each must lie under
/// [`cgroup_parent`]) and, when no owner is left, the parent itself. With
/// `patient`, kill (by pid) what is left in each cgroup and wait up to 2 s
/// for it to go; without, leave a busy cgroup to the runtime that uses it.
pub(crate) fn release_owner(cgroups: &[String], patient: bool) {
    let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
    let how = if patient {
        Removal::Kill(crate::scaled(Duration::from_secs(2)))
    } else {
        Removal::Once
    };
    let parent = parent();
    for path in cgroups {
        parent.remove_child(path, how);
    }
    *live = live.saturating_sub(1);
    if *live == 0 {
        // Leaves a parent that a leaked, busy child keeps.
        parent.remove(Removal::Once);
    }
}
