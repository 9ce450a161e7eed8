//! Fuzz target: `linux.resources` into cgroup file writes, for v1 and v2,
//! as `create` (config.json) and `update` (`--resources`) take them: Go's
//! decoding into the typed [`Resources`] (key folding, the type check with
//! the field's path), then [`resources::plan`].
//!
//! Properties: nothing panics; an error is one line; a planned write names
//! a plain file of the cgroup directory (no `/`, not `.`/`..`, nothing
//! hidden) and holds one line; and whatever `apply` checks only after the
//! writes (the device rules) already holds when the plan succeeds, so that
//! a refusal always comes before the first write.

use proptest::prelude::*;
use serde_json::Value;

use super::{devices, resources, Version};
use crate::fuzz_support::{self as fz, json, number, object, one_line, scalar};
use crate::spec::Resources;

/// Keys of `linux.resources`, at any depth.
const KEYS: &[&str] = &[
    "devices",
    "allow",
    "type",
    "major",
    "minor",
    "access",
    "memory",
    "limit",
    "reservation",
    "swap",
    "kernel",
    "kernelTCP",
    "swappiness",
    "disableOOMKiller",
    "useHierarchy",
    "checkBeforeUpdate",
    "cpu",
    "shares",
    "quota",
    "burst",
    "period",
    "realtimeRuntime",
    "realtimePeriod",
    "cpus",
    "mems",
    "idle",
    "pids",
    "blockIO",
    "weight",
    "leafWeight",
    "weightDevice",
    "throttleReadBpsDevice",
    "throttleWriteBpsDevice",
    "throttleReadIOPSDevice",
    "throttleWriteIOPSDevice",
    "rate",
    "hugepageLimits",
    "pageSize",
    "network",
    "classID",
    "priorities",
    "name",
    "priority",
    "rdma",
    "hcaHandles",
    "hcaObjects",
    "unified",
];

/// Now and then a value of the wrong type or out of range, which
/// validation must refuse; rare, or hardly any object would pass.
fn wrong() -> BoxedStrategy<Value> {
    prop_oneof![number(), scalar()].boxed()
}

/// An `int64` field: around the edges (0 unset, -1 unlimited), or any.
fn signed() -> BoxedStrategy<Value> {
    const EDGES: &[i64] = &[
        0,
        1,
        -1,
        -2,
        2,
        10,
        1000,
        4096,
        100_000,
        1 << 20,
        1 << 31,
        1 << 32,
        i64::MAX,
        i64::MIN,
    ];
    prop_oneof![
        40 => prop::sample::select(EDGES).prop_map(Value::from),
        20 => any::<i64>().prop_map(Value::from),
        1 => wrong(),
    ]
    .boxed()
}

/// A `uint` field of `bits` bits.
fn unsigned(bits: u32) -> BoxedStrategy<Value> {
    let max = if bits == 64 {
        u64::MAX
    } else {
        (1 << bits) - 1
    };
    let edges: Vec<u64> = [
        0,
        1,
        2,
        5,
        10,
        100,
        1000,
        1024,
        65_535,
        262_144,
        1 << 32,
        u64::MAX,
    ]
    .into_iter()
    .filter(|e| *e <= max)
    .chain([max])
    .collect();
    prop_oneof![
        40 => prop::sample::select(edges).prop_map(Value::from),
        20 => (0..=max).prop_map(Value::from),
        1 => wrong(),
    ]
    .boxed()
}

/// Mostly a boolean.
fn boolean() -> BoxedStrategy<Value> {
    prop_oneof![60 => any::<bool>().prop_map(Value::Bool), 1 => scalar()].boxed()
}

/// Mostly one of the `good` words, sometimes one of the `bad` ones or
/// any text, rarely another type.
fn string(good: &'static [&'static str], bad: &'static [&'static str]) -> BoxedStrategy<Value> {
    prop_oneof![
        40 => prop::sample::select(good).prop_map(Value::from),
        3 => prop::sample::select(bad).prop_map(Value::from),
        3 => fz::text().prop_map(Value::String),
        1 => scalar(),
    ]
    .boxed()
}

fn list(item: BoxedStrategy<Value>) -> BoxedStrategy<Value> {
    prop_oneof![
        60 => prop::collection::vec(item, 0..4).prop_map(Value::Array),
        1 => scalar(),
    ]
    .boxed()
}

/// An object keyed mostly by `good` keys (else `bad` ones or any text)
/// with values from `value`.
fn map(
    good: &'static [&'static str],
    bad: &'static [&'static str],
    value: BoxedStrategy<Value>,
) -> BoxedStrategy<Value> {
    let key = prop_oneof![
        20 => prop::sample::select(good).prop_map(str::to_string),
        2 => prop::sample::select(bad).prop_map(str::to_string),
        1 => fz::text(),
    ];
    prop::collection::vec((key, value), 0..4)
        .prop_map(|kv| Value::Object(kv.into_iter().collect()))
        .boxed()
}

fn throttle() -> BoxedStrategy<Value> {
    list(object(vec![
        ("major", signed()),
        ("minor", signed()),
        ("rate", unsigned(64)),
    ]))
}

/// A `linux.resources` object: every field of the spec, values mostly of
/// the right type and around the edges, now and then anything at all.
/// A third of them have only what cgroup v2 can express, a third only
/// what v1 can, so that both plans succeed often enough.
pub(crate) fn resources() -> BoxedStrategy<Value> {
    prop_oneof![
        resources_for(None),
        resources_for(Some(false)),
        resources_for(Some(true))
    ]
    .boxed()
}

/// [`resources`] with every field (`None`), or those of cgroup v1
/// (`Some(false)`) or v2 (`Some(true)`) only.
fn resources_for(only: Option<bool>) -> BoxedStrategy<Value> {
    let v1 = only != Some(true);
    let v2 = only != Some(false);
    // The fields of `fields` whose version is wanted.
    let keep = move |fields: Vec<(&'static str, BoxedStrategy<Value>, bool)>| -> Vec<_> {
        fields
            .into_iter()
            .filter(|(_, _, v1_only)| v1 || !v1_only)
            .map(|(k, s, _)| (k, s))
            .collect()
    };
    let device = object(vec![
        ("allow", boolean()),
        ("type", string(&["a", "b", "c"], &["u", "p", "", "cc"])),
        ("major", signed()),
        ("minor", signed()),
        (
            "access",
            string(&["rwm", "r", "rw", "m", "", "mmm"], &["x", "rwmx"]),
        ),
    ]);
    let memory = object(keep(vec![
        ("limit", signed(), false),
        ("reservation", signed(), false),
        ("swap", signed(), false),
        ("kernel", signed(), false),
        ("kernelTCP", signed(), false),
        ("swappiness", unsigned(64), true),
        ("disableOOMKiller", boolean(), true),
        ("useHierarchy", boolean(), false),
        ("checkBeforeUpdate", boolean(), false),
    ]));
    let (lists, bad_lists) = (
        &["0", "0-1", "0,2", "", "1-0", "a"][..],
        &["0\n1", "0 1", "0\0"][..],
    );
    let cpu = object(keep(vec![
        ("shares", unsigned(64), false),
        ("quota", signed(), false),
        ("burst", unsigned(64), false),
        ("period", unsigned(64), false),
        ("realtimeRuntime", signed(), true),
        ("realtimePeriod", unsigned(64), true),
        ("cpus", string(lists, bad_lists), false),
        ("mems", string(lists, bad_lists), false),
        ("idle", signed(), false),
    ]));
    let block_io = object(keep(vec![
        ("weight", unsigned(16), false),
        ("leafWeight", unsigned(16), true),
        (
            "weightDevice",
            list(object(vec![
                ("major", signed()),
                ("minor", signed()),
                ("weight", unsigned(16)),
                ("leafWeight", unsigned(16)),
            ])),
            false,
        ),
        ("throttleReadBpsDevice", throttle(), false),
        ("throttleWriteBpsDevice", throttle(), false),
        ("throttleReadIOPSDevice", throttle(), false),
        ("throttleWriteIOPSDevice", throttle(), false),
    ]));
    let hugepages = list(object(vec![
        (
            "pageSize",
            string(
                &["2MB", "1GB", "64KB", ""],
                &["..", "../x", "a/b", "2MB\n", "/", ".max"],
            ),
        ),
        ("limit", unsigned(64)),
    ]));
    let network = object(vec![
        ("classID", unsigned(32)),
        (
            "priorities",
            list(object(vec![
                (
                    "name",
                    string(&["eth0", "lo", ""], &["a b", "x\ny", "eth0\n"]),
                ),
                ("priority", unsigned(32)),
            ])),
        ),
    ]);
    let rdma = map(
        &["mlx5_1", "mlx4_0", ""],
        &["a b", "x\ny"],
        object(vec![
            ("hcaHandles", unsigned(32)),
            ("hcaObjects", unsigned(32)),
        ]),
    );
    let unified = map(
        &["memory.high", "cpu.max", "io.max", "pids.max"],
        &["../x", "a/b", ".x", "..", "", "x\ny"],
        string(
            &["max", "1", "", "10 100000", "8:0 rbps=1", "max\n"],
            &["1\n2", "\0"],
        ),
    );
    let mut fields = vec![
        ("devices", list(device)),
        ("memory", memory),
        ("cpu", cpu),
        ("pids", object(vec![("limit", signed())])),
        ("blockIO", block_io),
        ("hugepageLimits", hugepages),
        ("rdma", rdma),
        ("someFutureField", json(KEYS)),
    ];
    if v1 {
        fields.push(("network", network));
    }
    if v2 {
        fields.push(("unified", unified));
    }
    object(fields)
}

/// A file name the runtime may join to a cgroup directory: one of the
/// directory's own (no `/`, not `.` or `..`, nothing hidden), printable.
/// `apply` turns the plan's marker for "memsw if the kernel has it" into
/// the file's name.
fn plain_file(name: &str) -> bool {
    let name = if name == "memory.memsw.limit_in_bytes?" {
        "memory.memsw.limit_in_bytes"
    } else {
        name
    };
    !name.is_empty()
        && !name.starts_with('.')
        && !name.contains(|c: char| c == '/' || c.is_control())
}

/// A line of v1's `devices.allow`/`devices.deny` the kernel parses
/// (`devcgroup_update_access`): `a`, or `b|c MAJOR:MINOR ACCESS` with
/// `*` or a 32-bit number on each side and up to three of `rwm`.
fn v1_device_line(line: &str) -> bool {
    let num = |s: &str| s == "*" || (!s.starts_with('+') && s.parse::<u32>().is_ok());
    let words: Vec<&str> = line.split(' ').collect();
    match words.as_slice() {
        ["a", ..] => true,
        [t, numbers, access] if matches!(*t, "b" | "c") => {
            numbers
                .split_once(':')
                .is_some_and(|(a, b)| num(a) && num(b))
                && access.len() <= 3
                && access.chars().all(|c| "rwm".contains(c))
        }
        _ => false,
    }
}

/// The properties (see the module docs) for one `linux.resources` value.
fn check(res: Value) -> Result<(), TestCaseError> {
    let res: Resources = match crate::spec::gojson::from_value_at(res, "linux.resources") {
        Ok(r) => r,
        // Decoding refuses it: `create` and `update` stop before planning.
        Err(e) => return one_line(&e.to_string()),
    };
    check_typed(&res)
}

/// The properties for decoded resources.
fn check_typed(res: &Resources) -> Result<(), TestCaseError> {
    for version in [Version::V1, Version::V2] {
        let v2 = version == Version::V2;
        let writes = match resources::plan(res, version) {
            Ok(w) => w,
            Err(e) => {
                one_line(&e.to_string())?;
                continue;
            }
        };
        for w in &writes {
            prop_assert!(plain_file(&w.file), "v2={v2}: write to {:?}", w.file);
            prop_assert!(
                !w.value.contains(['\n', '\0']),
                "v2={v2}: {} gets {:?}",
                w.file,
                w.value
            );
        }
        let Some(devices) = &res.devices else {
            continue;
        };
        if v2 {
            prop_assert!(
                devices::rules_from_spec(devices).is_ok(),
                "planned, but the device rules fail after the writes: {devices:?}"
            );
        } else {
            for (_, line) in devices::device_rules(devices) {
                prop_assert!(v1_device_line(&line), "v1 device rule {line:?}");
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(fz::config(256))]

    /// Structured resources: every field, odd values.
    #[test]
    fn resources_plan(res in resources()) {
        check(res)?;
    }

    /// Any JSON at all as `linux.resources` (mostly with its keys).
    #[test]
    fn arbitrary_resources(res in json(KEYS)) {
        check(res)?;
    }

    /// `update --resources`: any text, decoded as `update` decodes it, then
    /// the same checks on what it would apply.
    #[test]
    fn update_resources(res in resources(), text in fz::text(), raw in any::<bool>()) {
        let input = if raw { text } else { res.to_string() };
        match crate::cli::update::decode_resources(&input) {
            Ok(r) => check_typed(&r)?,
            Err(e) => one_line(&format!("{e:#}"))?,
        }
    }

    /// `update`'s size flags (`--memory 1g`): any text.
    #[test]
    fn update_size(s in fz::text()) {
        match crate::cli::update::parse_size(&s) {
            Ok(n) => prop_assert!(n >= -1),
            Err(e) => one_line(&e.to_string())?,
        }
    }
}
