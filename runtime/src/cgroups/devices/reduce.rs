//! The rule list reduced as the v1 controller ends up with it: a default
//! verdict, exceptions and holes (the semantics in the module documentation
//! of [`super`]).

use super::{DeviceKind, DeviceRule, ACC_MKNOD, ACC_READ, ACC_WRITE};

/// What an exception names: a type (`c` or `b`) and two numbers or wildcards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Key {
    pub(super) block: bool,
    pub(super) major: Option<i64>,
    pub(super) minor: Option<i64>,
}

impl Key {
    /// Whether `self` names every device `other` names, and more.
    pub(super) fn strictly_wider(&self, other: &Key) -> bool {
        self != other
            && self.block == other.block
            && (self.major.is_none() || self.major == other.major)
            && (self.minor.is_none() || self.minor == other.minor)
    }
}

/// Access bits for the devices a key names: an exception (the verdict
/// opposite to the default) or a hole (back to the default, inside a wider
/// exception).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Entry {
    pub(super) key: Key,
    pub(super) bits: u8,
}

/// The reduced rule list: a default verdict, exceptions, and holes.
#[derive(Debug, Clone, Default)]
pub(super) struct Reduced {
    pub(super) default_allow: bool,
    pub(super) exceptions: Vec<Entry>,
    pub(super) holes: Vec<Entry>,
}

pub(super) fn access_bits(access: &str) -> u8 {
    access.chars().fold(0, |acc, c| match c {
        'r' => acc | ACC_READ,
        'w' => acc | ACC_WRITE,
        'm' => acc | ACC_MKNOD,
        _ => acc,
    })
}

/// Adds `bits` to the entry for exactly `key` in `list`, creating it.
pub(super) fn merge(list: &mut Vec<Entry>, key: Key, bits: u8) {
    match list.iter_mut().find(|e| e.key == key) {
        Some(e) => e.bits |= bits,
        None => list.push(Entry { key, bits }),
    }
}

/// Reduces `rules` as described in the module documentation.
pub(super) fn reduce(rules: &[DeviceRule]) -> Reduced {
    let mut r = Reduced::default();
    for rule in rules {
        let block = match rule.kind {
            DeviceKind::All => {
                r = Reduced {
                    default_allow: rule.allow,
                    ..Reduced::default()
                };
                continue;
            }
            DeviceKind::Char => false,
            DeviceKind::Block => true,
        };
        let key = Key {
            block,
            major: rule.major,
            minor: rule.minor,
        };
        let bits = access_bits(&rule.access);
        if rule.allow == r.default_allow {
            r.withdraw(key, bits);
        } else {
            r.grant(key, bits);
        }
    }
    r
}

impl Reduced {
    /// Adds `bits` to the exception for `key`, as v1 does, and closes them in
    /// the holes that `key` covers.
    pub(super) fn grant(&mut self, key: Key, bits: u8) {
        if bits == 0 {
            return;
        }
        merge(&mut self.exceptions, key, bits);
        for h in self
            .holes
            .iter_mut()
            .filter(|h| h.key == key || key.strictly_wider(&h.key))
        {
            h.bits &= !bits;
        }
        self.holes.retain(|h| h.bits != 0);
    }

    /// Takes `bits` from the exception for exactly `key`, as v1 does; where a
    /// wider exception still grants some of them, opens a hole.
    pub(super) fn withdraw(&mut self, key: Key, bits: u8) {
        if let Some(e) = self.exceptions.iter_mut().find(|e| e.key == key) {
            e.bits &= !bits;
        }
        self.exceptions.retain(|e| e.bits != 0);
        let wider: u8 = self
            .exceptions
            .iter()
            .filter(|e| e.key.strictly_wider(&key))
            .fold(0, |acc, e| acc | e.bits);
        if wider & bits != 0 {
            merge(&mut self.holes, key, wider & bits);
        }
    }
}
