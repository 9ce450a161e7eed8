//! The v1 `devices` controller: device rules applied as the smallest set
//! of writes that takes the cgroup from what it allows now (its
//! `devices.list`) to what the rules allow, as runc does.
//!
//! The kernel keeps a default (allow all, or deny all) and a list of
//! exceptions to it. Writing `a` to `devices.allow` or `devices.deny` sets
//! the default and drops every exception, and the kernel refuses it (EINVAL)
//! in a cgroup that has children; so it is written only when the default
//! must change, or when the cgroup allows everything now (its exceptions
//! are then deny rules `devices.list` does not show). A rule list is read
//! as runc reads it: starting from "deny all", each rule applied in turn.

use std::collections::BTreeMap;
use std::path::Path;

use crate::cgroups::{write, CgroupError};

/// A device, or a class of them (`*` is -1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Node {
    typ: char,
    major: i64,
    minor: i64,
}

const READ: u8 = 1;
const WRITE: u8 = 2;
const MKNOD: u8 = 4;

fn perms_of(s: &str) -> Option<u8> {
    s.chars().try_fold(0, |p, c| match c {
        'r' => Some(p | READ),
        'w' => Some(p | WRITE),
        'm' => Some(p | MKNOD),
        _ => None,
    })
}

fn perms_str(p: u8) -> String {
    [(READ, 'r'), (WRITE, 'w'), (MKNOD, 'm')]
        .iter()
        .filter(|(bit, _)| p & bit != 0)
        .map(|(_, c)| c)
        .collect()
}

/// Whether [`apply`] can parse `rule`.
pub(super) fn well_formed(rule: &str) -> bool {
    parse(rule).is_some()
}

/// Parses `c 1:3 rwm` (numbers or `*`).
fn parse(rule: &str) -> Option<(Node, u8)> {
    let mut it = rule.split_whitespace();
    let typ = it.next()?.chars().next()?;
    let (major, minor) = it.next()?.split_once(':')?;
    let num = |s: &str| if s == "*" { Some(-1) } else { s.parse().ok() };
    let perms = perms_of(it.next()?)?;
    Some((
        Node {
            typ,
            major: num(major)?,
            minor: num(minor)?,
        },
        perms,
    ))
}

fn format(n: Node, p: u8) -> String {
    let num = |v: i64| {
        if v < 0 {
            "*".to_string()
        } else {
            v.to_string()
        }
    };
    format!(
        "{} {}:{} {}",
        n.typ,
        num(n.major),
        num(n.minor),
        perms_str(p)
    )
}

/// What a devices cgroup allows: a default and its exceptions.
#[derive(Debug, Default, PartialEq, Eq)]
struct State {
    allow_all: bool,
    exceptions: BTreeMap<Node, u8>,
}

impl State {
    /// The state `devices.list` shows: `a *:* rwm` means allow all (with
    /// exceptions it cannot show); otherwise the allowed devices.
    fn from_list(list: &str) -> State {
        let mut s = State::default();
        for (node, perms) in list.lines().filter_map(parse) {
            if node.typ == 'a' {
                return State {
                    allow_all: true,
                    exceptions: BTreeMap::new(),
                };
            }
            *s.exceptions.entry(node).or_default() |= perms;
        }
        s
    }

    /// Applies one rule as the kernel does.
    fn apply(&mut self, allow: bool, node: Node, perms: u8) {
        if node.typ == 'a' {
            self.allow_all = allow;
            self.exceptions.clear();
        } else if allow != self.allow_all {
            // An exception to the default.
            *self.exceptions.entry(node).or_default() |= perms;
        } else if let Some(p) = self.exceptions.get_mut(&node) {
            *p &= !perms;
            if *p == 0 {
                self.exceptions.remove(&node);
            }
        }
    }

    /// The writes (`allow`, rule) that take `self` to `target`.
    fn transition(&self, target: &State) -> Vec<(bool, String)> {
        let mut out = Vec::new();
        let empty = BTreeMap::new();
        let old = if self.allow_all || self.allow_all != target.allow_all {
            out.push((target.allow_all, "a *:* rwm".to_string()));
            &empty
        } else {
            &self.exceptions
        };
        for (node, perms) in old {
            let dropped = perms & !target.exceptions.get(node).copied().unwrap_or(0);
            if dropped != 0 {
                out.push((target.allow_all, format(*node, dropped)));
            }
        }
        for (node, perms) in &target.exceptions {
            let gained = perms & !old.get(node).copied().unwrap_or(0);
            if gained != 0 {
                out.push((!target.allow_all, format(*node, gained)));
            }
        }
        out
    }
}

/// Brings the devices cgroup `dir` to what `rules` (`(allow, "c 1:3 rw")`,
/// in order, from "deny all") allow, with the fewest writes, and checks
/// the result.
pub fn apply(dir: &Path, rules: &[(bool, String)]) -> Result<(), CgroupError> {
    let list_path = dir.join("devices.list");
    let read_list = || {
        std::fs::read_to_string(&list_path).map_err(|source| CgroupError::Read {
            path: list_path.clone(),
            source,
        })
    };
    let current = State::from_list(&read_list()?);
    let mut target = State::default();
    for (allow, rule) in rules {
        let (node, perms) = parse(rule)
            .ok_or_else(|| CgroupError::Unsupported(format!("invalid device rule {rule:?}")))?;
        target.apply(*allow, node, perms);
    }
    for (allow, rule) in current.transition(&target) {
        let file = if allow {
            "devices.allow"
        } else {
            "devices.deny"
        };
        write(&dir.join(file), &rule)?;
    }
    let after = State::from_list(&read_list()?);
    let matches = if target.allow_all {
        after.allow_all
    } else {
        after == target
    };
    if !matches {
        return Err(CgroupError::Unsupported(
            "resulting devices cgroup doesn't precisely match target".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(list: &[(bool, &str)]) -> State {
        let mut s = State::default();
        for (allow, r) in list {
            let (n, p) = parse(r).unwrap();
            s.apply(*allow, n, p);
        }
        s
    }

    #[test]
    fn a_fresh_cgroup_gets_the_disruptive_rule_first() {
        let current = State::from_list("a *:* rwm\n");
        let target = rules(&[(false, "a *:* rwm"), (true, "c 1:3 rwm"), (true, "c *:* m")]);
        assert_eq!(
            current.transition(&target),
            vec![
                (false, "a *:* rwm".to_string()),
                (true, "c *:* m".to_string()),
                (true, "c 1:3 rwm".to_string()),
            ]
        );
    }

    #[test]
    fn an_allow_list_changes_without_the_disruptive_rule() {
        let current = State::from_list("c 1:3 rwm\nc 1:5 rw\nc *:* m\n");
        let target = rules(&[
            (true, "c 1:3 rw"),
            (true, "c *:* m"),
            (true, "c 10:200 rwm"),
        ]);
        assert_eq!(
            current.transition(&target),
            vec![
                (false, "c 1:3 m".to_string()),
                (false, "c 1:5 rw".to_string()),
                (true, "c 10:200 rwm".to_string()),
            ]
        );
        // Nothing to do when it already matches.
        assert!(target.transition(&target).is_empty());
    }

    #[test]
    fn rules_read_from_deny_all_as_runc_reads_them() {
        // No rule at all: deny everything (not the kernel's allow-all).
        assert_eq!(rules(&[]), State::default());
        let s = rules(&[(true, "a *:* rwm"), (false, "c 5:1 w")]);
        assert!(s.allow_all);
        assert_eq!(s.exceptions.len(), 1);
        assert_eq!(
            format(
                Node {
                    typ: 'c',
                    major: 136,
                    minor: -1
                },
                READ | MKNOD
            ),
            "c 136:* rm"
        );
    }
}
