//! Type check of a `linux.resources` object.
//!
//! The resources are kept as JSON ([`serde_json::Value`]) so that `update`
//! can merge its flags into them and the writers can tell "absent" from
//! "zero". That leniency must not reach the user: runc decodes the object
//! into typed Go structs and refuses a string where a number belongs (in
//! config.json and in `update --resources`), and so does corten, with the
//! field's path. As in Go, `null` means "not set" and unknown keys are
//! ignored.

use serde_json::Value;

/// What a field holds.
#[derive(Debug, Clone, Copy)]
enum Ty {
    Bool,
    Str,
    /// A signed integer of this many bits.
    Int(u32),
    /// An unsigned integer of this many bits.
    Uint(u32),
    /// An object with these fields.
    Obj(&'static [(&'static str, Ty)]),
    /// An array of these.
    Arr(&'static Ty),
    /// An object whose every value is of this type (`rdma`, `unified`).
    Map(&'static Ty),
}

use Ty::{Arr, Bool, Int, Map, Obj, Str, Uint};

const DEVICE: Ty = Obj(&[
    ("allow", Bool),
    ("type", Str),
    ("major", Int(64)),
    ("minor", Int(64)),
    ("access", Str),
]);
const WEIGHT_DEVICE: Ty = Obj(&[
    ("major", Int(64)),
    ("minor", Int(64)),
    ("weight", Uint(16)),
    ("leafWeight", Uint(16)),
]);
const THROTTLE_DEVICE: Ty = Obj(&[("major", Int(64)), ("minor", Int(64)), ("rate", Uint(64))]);

/// config-linux.md's `linux.resources`.
const RESOURCES: Ty = Obj(&[
    ("devices", Arr(&DEVICE)),
    (
        "memory",
        Obj(&[
            ("limit", Int(64)),
            ("reservation", Int(64)),
            ("swap", Int(64)),
            ("kernel", Int(64)),
            ("kernelTCP", Int(64)),
            ("swappiness", Uint(64)),
            ("disableOOMKiller", Bool),
            ("useHierarchy", Bool),
            ("checkBeforeUpdate", Bool),
        ]),
    ),
    (
        "cpu",
        Obj(&[
            ("shares", Uint(64)),
            ("quota", Int(64)),
            ("burst", Uint(64)),
            ("period", Uint(64)),
            ("realtimeRuntime", Int(64)),
            ("realtimePeriod", Uint(64)),
            ("cpus", Str),
            ("mems", Str),
            ("idle", Int(64)),
        ]),
    ),
    ("pids", Obj(&[("limit", Int(64))])),
    (
        "blockIO",
        Obj(&[
            ("weight", Uint(16)),
            ("leafWeight", Uint(16)),
            ("weightDevice", Arr(&WEIGHT_DEVICE)),
            ("throttleReadBpsDevice", Arr(&THROTTLE_DEVICE)),
            ("throttleWriteBpsDevice", Arr(&THROTTLE_DEVICE)),
            ("throttleReadIOPSDevice", Arr(&THROTTLE_DEVICE)),
            ("throttleWriteIOPSDevice", Arr(&THROTTLE_DEVICE)),
        ]),
    ),
    (
        "hugepageLimits",
        Arr(&Obj(&[("pageSize", Str), ("limit", Uint(64))])),
    ),
    (
        "network",
        Obj(&[
            ("classID", Uint(32)),
            (
                "priorities",
                Arr(&Obj(&[("name", Str), ("priority", Uint(32))])),
            ),
        ]),
    ),
    (
        "rdma",
        Map(&Obj(&[("hcaHandles", Uint(32)), ("hcaObjects", Uint(32))])),
    ),
    ("unified", Map(&Str)),
]);

/// Renames the keys of `res` (a `linux.resources` value) to the spec's
/// field names as Go's decoding matches them (exactly, else ignoring ASCII
/// case: runc takes `"CPU": {"Shares": 512}`), and drops `null` fields
/// (Go leaves them unset). Keys of maps (`unified`, `rdma`) stay as they
/// are, and so do unknown keys.
pub fn normalise(res: &mut Value) {
    fold(res, RESOURCES);
}

fn fold(v: &mut Value, ty: Ty) {
    match (ty, v) {
        (Obj(fields), Value::Object(map)) => {
            let old = std::mem::take(map);
            for (key, mut value) in old {
                if value.is_null() {
                    continue;
                }
                let known = fields
                    .iter()
                    .find(|(n, _)| *n == key)
                    .or_else(|| fields.iter().find(|(n, _)| n.eq_ignore_ascii_case(&key)));
                let key = match known {
                    Some((name, t)) => {
                        fold(&mut value, *t);
                        (*name).to_string()
                    }
                    None => key,
                };
                // Go keeps the last value of a field given twice.
                map.insert(key, value);
            }
        }
        (Arr(t), Value::Array(items)) => items.iter_mut().for_each(|x| fold(x, *t)),
        (Map(t), Value::Object(map)) => map.values_mut().for_each(|x| fold(x, *t)),
        _ => {}
    }
}

/// Checks `res` (a `linux.resources` value) against the spec's types.
/// The error names the field: `linux.resources.memory.limit: expected an
/// int64, got the string "lots"`.
pub fn check(res: &Value) -> Result<(), String> {
    walk(res, RESOURCES, "linux.resources")
}

fn walk(v: &Value, ty: Ty, path: &str) -> Result<(), String> {
    if v.is_null() {
        return Ok(());
    }
    let ok = match ty {
        Bool => v.is_boolean(),
        Str => v.is_string(),
        Int(bits) => v.as_i64().is_some_and(|n| {
            bits == 64 || (n >= -(1i64 << (bits - 1)) && n < (1i64 << (bits - 1)))
        }),
        Uint(bits) => v.as_u64().is_some_and(|n| bits == 64 || n < (1u64 << bits)),
        Obj(fields) => {
            let Some(o) = v.as_object() else {
                return Err(mismatch(path, "an object", v));
            };
            for (name, t) in fields {
                if let Some(x) = o.get(*name) {
                    walk(x, *t, &format!("{path}.{name}"))?;
                }
            }
            true
        }
        Arr(t) => {
            let Some(a) = v.as_array() else {
                return Err(mismatch(path, "an array", v));
            };
            for (i, x) in a.iter().enumerate() {
                walk(x, *t, &format!("{path}[{i}]"))?;
            }
            true
        }
        Map(t) => {
            let Some(o) = v.as_object() else {
                return Err(mismatch(path, "an object", v));
            };
            for (k, x) in o {
                // A key is data: escaped, so the message stays one line.
                walk(x, *t, &format!("{path}.{}", crate::logging::one_line(k)))?;
            }
            true
        }
    };
    if ok {
        return Ok(());
    }
    let want = match ty {
        Bool => "a boolean".to_string(),
        Str => "a string".to_string(),
        Int(b) => format!("an int{b}"),
        Uint(b) => format!("a uint{b}"),
        Obj(_) | Arr(_) | Map(_) => unreachable!("containers return early"),
    };
    Err(mismatch(path, &want, v))
}

fn mismatch(path: &str, want: &str, got: &Value) -> String {
    let got = match got {
        Value::Null => "null".to_string(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string {s:?}"),
        Value::Array(_) => "an array".to_string(),
        Value::Object(_) => "an object".to_string(),
    };
    format!("{path}: expected {want}, got {got}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn well_typed_resources_pass() {
        let r = json!({
            "devices": [{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rw"}],
            "memory": {"limit": -1, "swap": 1_i64 << 40, "swappiness": null, "disableOOMKiller": true},
            "cpu": {"shares": 1024, "quota": -1, "cpus": "0-1"},
            "pids": {"limit": 10},
            "blockIO": {"weight": 500, "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1}]},
            "hugepageLimits": [{"pageSize": "2MB", "limit": 0}],
            "rdma": {"mlx5_1": {"hcaHandles": 3}},
            "unified": {"memory.high": "max"},
            "someFutureField": {"anything": "goes"}
        });
        assert_eq!(check(&r), Ok(()));
        assert_eq!(check(&json!({})), Ok(()));
        assert_eq!(check(&Value::Null), Ok(()));
    }

    #[test]
    fn a_wrong_type_names_the_field() {
        let e = check(&json!({"memory": {"limit": "lots"}})).unwrap_err();
        assert_eq!(
            e,
            r#"linux.resources.memory.limit: expected an int64, got the string "lots""#
        );
        let e = check(&json!({"devices": [{"allow": "yes"}]})).unwrap_err();
        assert_eq!(
            e,
            r#"linux.resources.devices[0].allow: expected a boolean, got the string "yes""#
        );
        let e = check(&json!({"unified": {"cpu.max": 5}})).unwrap_err();
        assert!(
            e.starts_with("linux.resources.unified.cpu.max: expected a string"),
            "{e}"
        );
        // A map key with a line break (found by the fuzz target): escaped.
        let e = check(&json!({"rdma": {"x\ny": {"hcaHandles": -1}}})).unwrap_err();
        assert!(
            e.starts_with(r"linux.resources.rdma.x\ny.hcaHandles: "),
            "{e}"
        );
        let e = check(&json!({"cpu": 3})).unwrap_err();
        assert_eq!(
            e,
            "linux.resources.cpu: expected an object, got the number 3"
        );
        assert!(check(&json!([1])).is_err());
    }

    #[test]
    fn keys_fold_to_the_field_names_as_go_matches_them() {
        let mut r = json!({"CPU": {"Shares": 512, "quota": null}, "Memory": {"LIMIT": 5},
            "unified": {"Memory.Max": "1"}, "devices": [{"Allow": true}], "Other": 1});
        normalise(&mut r);
        assert_eq!(
            r,
            json!({"cpu": {"shares": 512}, "memory": {"limit": 5},
                "unified": {"Memory.Max": "1"}, "devices": [{"allow": true}], "Other": 1})
        );
    }

    #[test]
    fn numbers_must_fit_their_width_and_sign() {
        assert!(check(&json!({"cpu": {"shares": -1}})).is_err());
        assert!(check(&json!({"cpu": {"shares": 1.5}})).is_err());
        assert!(check(&json!({"blockIO": {"weight": 65535}})).is_ok());
        assert!(check(&json!({"blockIO": {"weight": 65536}})).is_err());
        assert!(check(&json!({"network": {"classID": 4_294_967_296_u64}})).is_err());
        assert!(check(&json!({"memory": {"limit": u64::MAX}})).is_err());
    }
}
