//! What the property-based fuzz targets (`make fuzz`) share: the proptest
//! configuration, JSON strategies and the checks on error messages.
//!
//! The targets are ordinary `#[test]`s in modules named `fuzz` (so that
//! `cargo test fuzz` picks exactly them): `spec::fuzz` (config.json and
//! `exec --process`), `seccomp::tests::fuzz` (the compiler against a
//! reference model), `cgroups::fuzz` (`linux.resources` into cgroup writes).
//! Each runs a small number of cases by default so that `cargo test` stays
//! fast; `PROPTEST_CASES` overrides it (`make fuzz` sets 20000). A failing
//! case is shrunk and its seed saved under `runtime/proptest-regressions/`,
//! which every later run replays first.

use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{Map, Number, Value};

/// proptest's configuration (which reads `PROPTEST_*` from the environment)
/// with `cases` cases unless `PROPTEST_CASES` is set; an eighth of them
/// under a user-mode emulator (`make test-arm64-unit`).
pub(crate) fn config(cases: u32) -> ProptestConfig {
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = if crate::test_support::emulator().is_some() {
            (cases / 8).max(16)
        } else {
            cases
        };
    }
    config
}

/// `msg` is an error message fit for one log line: not empty, no line break.
pub(crate) fn one_line(msg: &str) -> Result<(), TestCaseError> {
    prop_assert!(!msg.trim().is_empty(), "empty error message");
    prop_assert!(
        !msg.contains('\n') && !msg.contains('\r'),
        "error message on more than one line: {msg:?}"
    );
    Ok(())
}

/// Strings that mean something somewhere in a config, and some that are
/// known to break naive handling (separators, line breaks, NUL, `..`).
const WORDS: &[&str] = &[
    "",
    " ",
    "/",
    "//",
    ".",
    "..",
    "../x",
    "a/b",
    "/a/../b",
    "\n",
    "x\ny",
    "x\r\n",
    "\0",
    "é",
    "\u{202e}",
    "rootfs",
    "sh",
    "/bin/sh",
    "/dev/null",
    "/dev/x",
    "/proc",
    "/tmp",
    "A=b",
    "=",
    "pid",
    "network",
    "net",
    "mount",
    "user",
    "uts",
    "ipc",
    "cgroup",
    "time",
    "RLIMIT_NOFILE",
    "RLIMIT_BOGUS",
    "CAP_KILL",
    "CAP_BOGUS",
    "rprivate",
    "shared",
    "slave",
    "c",
    "b",
    "u",
    "p",
    "a",
    "rwm",
    "monotonic",
    "boottime",
    "realtime",
    "kernel.hostname",
    "kernel.domainname",
    "kernel.msgmax",
    "fs.mqueue.msg_max",
    "net.ipv4.ip_forward",
    "SCHED_FIFO",
    "SCHED_OTHER",
    "SCHED_FLAG_RESET_ON_FORK",
    "IOPRIO_CLASS_RT",
    "LINUX",
    "LINUX32",
    "MPOL_BIND",
    "MPOL_F_STATIC_NODES",
    "0",
    "0-1",
    "0,2",
    "1-0",
    "0-99999",
    "max",
    "2MB",
    "1GB",
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_KILL",
    "SCMP_ACT_NOTIFY",
    "SCMP_ARCH_X86_64",
    "SCMP_ARCH_AARCH64",
    "SCMP_CMP_EQ",
    "SCMP_CMP_MASKED_EQ",
    "SECCOMP_FILTER_FLAG_LOG",
    "read",
    "write",
    "clone",
    "no_such_call",
];

/// Integers around every boundary the runtime cares about (signed and
/// unsigned widths, `-1` for "unlimited", zero for "unset"), any integer,
/// and now and then a float.
pub(crate) fn number() -> BoxedStrategy<Value> {
    const EDGES: &[i64] = &[
        0,
        1,
        -1,
        2,
        5,
        7,
        10,
        99,
        100,
        1000,
        1024,
        4096,
        65_535,
        65_536,
        100_000,
        262_144,
        (1 << 31) - 1,
        1 << 31,
        (1 << 32) - 1,
        1 << 32,
        i64::MAX,
        i64::MIN,
    ];
    prop_oneof![
        6 => prop::sample::select(EDGES).prop_map(Value::from),
        2 => any::<i64>().prop_map(Value::from),
        2 => any::<u64>().prop_map(Value::from),
        1 => Just(Value::from(u64::MAX)),
        1 => any::<f64>().prop_map(|f| Number::from_f64(f).map_or(Value::Null, Value::Number)),
        1 => Just(Value::from(1.5)),
    ]
    .boxed()
}

/// A string: mostly from [`WORDS`], else short random text (any `char`,
/// line breaks and control characters included).
pub(crate) fn text() -> BoxedStrategy<String> {
    prop_oneof![
        4 => prop::sample::select(WORDS).prop_map(str::to_string),
        2 => "[a-zA-Z0-9_./=:-]{0,12}",
        1 => prop::collection::vec(any::<char>(), 0..8).prop_map(|c| c.into_iter().collect()),
    ]
    .boxed()
}

/// An object key: one of `keys` as written, with its case changed (Go's
/// decoding matches keys case-insensitively), or any text.
pub(crate) fn key(keys: &'static [&'static str]) -> BoxedStrategy<String> {
    prop_oneof![
        6 => prop::sample::select(keys).prop_map(str::to_string),
        1 => prop::sample::select(keys).prop_map(str::to_ascii_uppercase),
        1 => text(),
    ]
    .boxed()
}

/// A JSON scalar.
pub(crate) fn scalar() -> BoxedStrategy<Value> {
    prop_oneof![
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::Bool),
        3 => number(),
        3 => text().prop_map(Value::String),
    ]
    .boxed()
}

/// Any JSON value, a few levels deep, whose object keys are mostly `keys`.
pub(crate) fn json(keys: &'static [&'static str]) -> BoxedStrategy<Value> {
    scalar()
        .prop_recursive(4, 48, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec((key(keys), inner), 0..6)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
            ]
        })
        .boxed()
}

/// An object with some of `fields` (each present or not; names sometimes
/// in another case, as Go accepts them).
pub(crate) fn object(fields: Vec<(&'static str, BoxedStrategy<Value>)>) -> BoxedStrategy<Value> {
    let entries: Vec<_> = fields
        .into_iter()
        .map(|(name, value)| {
            let name = prop_oneof![
                8 => Just(name.to_string()),
                1 => Just(name.to_ascii_uppercase()),
            ];
            prop::option::weighted(0.6, (name, value))
        })
        .collect();
    entries
        .prop_map(|kv| Value::Object(kv.into_iter().flatten().collect()))
        .boxed()
}

/// One change to a JSON document, at a node chosen by an [`Index`] into
/// all its nodes (depth first).
#[derive(Debug, Clone)]
pub(crate) enum Mutation {
    /// A string node becomes this text, a number this number, a boolean
    /// the other: the config keeps its shape, so it gets past decoding.
    Tweak(String, Value),
    /// The node becomes this value.
    Replace(Value),
    /// The node is removed from its object or array.
    Remove,
    /// Into an object: this key; into an array: this element; else replaces.
    Insert(String, Value),
    /// The node's key, in its object, in upper case.
    Upcase,
    /// The node appears twice in its array.
    Duplicate,
}

/// A [`Mutation`] whose new values come from `values`.
pub(crate) fn mutation(
    keys: &'static [&'static str],
    values: BoxedStrategy<Value>,
) -> BoxedStrategy<(Index, Mutation)> {
    let m = prop_oneof![
        6 => (text(), number()).prop_map(|(t, n)| Mutation::Tweak(t, n)),
        3 => values.clone().prop_map(Mutation::Replace),
        2 => Just(Mutation::Remove),
        3 => (key(keys), values).prop_map(|(k, v)| Mutation::Insert(k, v)),
        1 => Just(Mutation::Upcase),
        1 => Just(Mutation::Duplicate),
    ];
    (any::<Index>(), m).boxed()
}

#[derive(Debug, Clone)]
enum Step {
    Key(String),
    At(usize),
}

fn paths(v: &Value, here: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
    out.push(here.clone());
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                here.push(Step::Key(k.clone()));
                paths(x, here, out);
                here.pop();
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                here.push(Step::At(i));
                paths(x, here, out);
                here.pop();
            }
        }
        _ => {}
    }
}

fn node<'a>(mut v: &'a mut Value, path: &[Step]) -> Option<&'a mut Value> {
    for step in path {
        v = match (step, v) {
            (Step::Key(k), Value::Object(m)) => m.get_mut(k)?,
            (Step::At(i), Value::Array(a)) => a.get_mut(*i)?,
            _ => return None,
        };
    }
    Some(v)
}

/// Applies `m` at the node `at` picks.
pub(crate) fn mutate(doc: &mut Value, at: &Index, m: Mutation) {
    let mut all = Vec::new();
    paths(doc, &mut Vec::new(), &mut all);
    let path = at.get(&all).clone();
    let (parent, last) = match path.split_last() {
        Some((last, parent)) => (parent, Some(last)),
        None => (&[][..], None),
    };
    match m {
        Mutation::Tweak(t, n) => match node(doc, &path) {
            Some(Value::String(s)) => *s = t,
            Some(x @ Value::Number(_)) => *x = n,
            Some(Value::Bool(b)) => *b = !*b,
            _ => {}
        },
        Mutation::Replace(v) => {
            if let Some(n) = node(doc, &path) {
                *n = v;
            }
        }
        Mutation::Insert(k, v) => match node(doc, &path) {
            Some(Value::Object(o)) => {
                o.insert(k, v);
            }
            Some(Value::Array(a)) => a.push(v),
            Some(n) => *n = v,
            None => {}
        },
        Mutation::Remove => match (node(doc, parent), last) {
            (Some(Value::Object(o)), Some(Step::Key(k))) => {
                o.shift_remove(k);
            }
            (Some(Value::Array(a)), Some(Step::At(i))) => {
                a.remove(*i);
            }
            _ => {}
        },
        Mutation::Upcase => {
            if let (Some(Value::Object(o)), Some(Step::Key(k))) = (node(doc, parent), last) {
                if let Some(v) = o.shift_remove(k) {
                    o.insert(k.to_ascii_uppercase(), v);
                }
            }
        }
        Mutation::Duplicate => {
            if let (Some(Value::Array(a)), Some(Step::At(i))) = (node(doc, parent), last) {
                let copy = a[*i].clone();
                a.insert(*i, copy);
            }
        }
    }
}

/// Byte-level damage to a serialised document: bytes overwritten, then
/// the end cut off.
pub(crate) type Damage = (Vec<(Index, u8)>, Option<Index>);

/// Random [`Damage`].
pub(crate) fn damage() -> BoxedStrategy<Damage> {
    (
        prop::collection::vec((any::<Index>(), any::<u8>()), 0..4),
        prop::option::of(any::<Index>()),
    )
        .boxed()
}

/// Applies [`damage`] to `bytes`.
pub(crate) fn damaged(mut bytes: Vec<u8>, damage: &Damage) -> Vec<u8> {
    if bytes.is_empty() {
        return bytes;
    }
    for (at, b) in &damage.0 {
        let i = at.index(bytes.len());
        bytes[i] = *b;
    }
    if let Some(cut) = &damage.1 {
        bytes.truncate(cut.index(bytes.len()));
    }
    bytes
}
