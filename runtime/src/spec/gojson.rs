//! Decoding JSON as Go's `encoding/json` decodes it into runc's structs,
//! so that every config.json (and `exec --process` file) runc accepts,
//! corten accepts too:
//!
//! - an object key matches a struct field exactly or, failing that, with
//!   ASCII case folded (`"Process"`, `"CWD"` and `"cwd"` are one field);
//! - `null` for a struct field leaves the field as if it were absent;
//! - unknown keys are ignored (serde's default already).
//!
//! Maps (`annotations`, `sysctl`) keep their keys as written. The syntax is
//! checked by serde_json first (its errors carry line and column); the
//! value is then fed to the target type through [`Go`], a deserializer over
//! [`Value`] that renames keys by the field names serde's derive asks for.
//! A type error names the field where it happened, as a path in the spec's
//! own names: `linux.resources.memory.limit: invalid type: string "x",
//! expected i64` (map keys, being data, are escaped onto one line).

use serde::de::{
    self, value::StrDeserializer, DeserializeOwned, DeserializeSeed, MapAccess, SeqAccess, Visitor,
};
use serde_json::Value;

/// Parses `bytes` as Go would decode them into `T`.
pub fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, serde_json::Error> {
    from_value(serde_json::from_slice(bytes)?)
}

/// Decodes `v` into `T` with Go's key matching.
pub fn from_value<T: DeserializeOwned>(v: Value) -> Result<T, serde_json::Error> {
    let trail = Trail::default();
    T::deserialize(Go(v, trail.clone())).map_err(|e| named(e, &trail, None))
}

/// [`from_value`] for a value found at `path` of a larger document (errors
/// name the field from there: `linux.resources.memory.limit: …`).
pub fn from_value_at<T: DeserializeOwned>(v: Value, path: &str) -> Result<T, serde_json::Error> {
    let trail = Trail::default();
    T::deserialize(Go(v, trail.clone())).map_err(|e| named(e, &trail, Some(path)))
}

/// The fields a type error passed through, innermost first: each map entry
/// and array element adds its step as the error unwinds, so a document that
/// decodes costs nothing for it.
type Trail = std::rc::Rc<std::cell::RefCell<Vec<String>>>;

/// `e` prefixed with the path of the field where it happened (below `root`,
/// when the document is part of a larger one). Integer types are named as
/// in Go (`int64`, `uint16`), as runc's messages name them.
fn named(e: serde_json::Error, trail: &Trail, root: Option<&str>) -> serde_json::Error {
    let steps = trail.borrow();
    if steps.is_empty() && root.is_none() {
        return e;
    }
    let mut path = root.unwrap_or_default().to_string();
    for step in steps.iter().rev() {
        if !path.is_empty() && !step.starts_with('[') {
            path.push('.');
        }
        path.push_str(step);
    }
    let mut msg = e.to_string();
    for (rust, go) in [
        ("i64", "int64"),
        ("u64", "uint64"),
        ("i32", "int32"),
        ("u32", "uint32"),
        ("u16", "uint16"),
        ("u8", "uint8"),
    ] {
        if let Some(head) = msg.strip_suffix(&format!("expected {rust}")) {
            msg = format!("{head}expected {go}");
            break;
        }
    }
    de::Error::custom(format!("{path}: {msg}"))
}

/// The field of `fields` that `key` names: exact, else case-folded.
fn canonical(key: String, fields: &'static [&'static str]) -> String {
    if fields.contains(&key.as_str()) {
        return key;
    }
    fields
        .iter()
        .find(|f| f.eq_ignore_ascii_case(&key))
        .map_or(key, |f| (*f).to_string())
}

/// An object's entries for a struct with `fields`, as Go assigns them:
/// keys renamed to the field they match, `null`s skipped (they leave a
/// field as it was), and of a field given twice the last value kept.
fn struct_entries(
    map: serde_json::Map<String, Value>,
    fields: &'static [&'static str],
) -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = Vec::with_capacity(map.len());
    for (key, value) in map {
        if value.is_null() {
            continue;
        }
        let key = canonical(key, fields);
        out.retain(|(k, _)| *k != key);
        out.push((key, value));
    }
    out
}

/// What `v` is, for a type error.
fn unexpected(v: &Value) -> de::Unexpected<'_> {
    match v {
        Value::Null => de::Unexpected::Unit,
        Value::Bool(b) => de::Unexpected::Bool(*b),
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => de::Unexpected::Unsigned(u),
            (_, Some(i)) => de::Unexpected::Signed(i),
            _ => de::Unexpected::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => de::Unexpected::Str(s),
        Value::Array(_) => de::Unexpected::Seq,
        Value::Object(_) => de::Unexpected::Map,
    }
}

/// A JSON value read with Go's rules (see the module docs).
#[derive(Debug)]
pub struct Go(Value, Trail);

impl<'de> de::Deserializer<'de> for Go {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Array(items) => visitor.visit_seq(Seq {
                items: items.into_iter().enumerate(),
                trail: self.1,
            }),
            Value::Object(map) => visitor.visit_map(Map {
                entries: map.into_iter().collect::<Vec<_>>().into_iter(),
                value: None,
                trail: self.1,
                data_keys: true,
            }),
            // Scalars visited here rather than through `Value`'s own
            // deserializer, which would be instantiated once more for
            // every visitor type (the typed config made that 90 KB).
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(b),
            Value::String(s) => visitor.visit_string(s),
            Value::Number(n) => {
                if let Some(u) = n.as_u64() {
                    visitor.visit_u64(u)
                } else if let Some(i) = n.as_i64() {
                    visitor.visit_i64(i)
                } else {
                    visitor.visit_f64(n.as_f64().unwrap_or(f64::NAN))
                }
            }
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            v => visitor.visit_some(Go(v, self.1)),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Object(map) => visitor.visit_map(Map {
                entries: struct_entries(map, fields).into_iter(),
                value: None,
                trail: self.1,
                data_keys: false,
            }),
            // serde_json would fill a struct from an array, field by field;
            // Go refuses (`cannot unmarshal array into Go value of type …`).
            Value::Array(_) => Err(serde::de::Error::invalid_type(
                serde::de::Unexpected::Seq,
                &visitor,
            )),
            other => Err(de::Error::invalid_type(unexpected(&other), &visitor)),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_enum(name, variants, visitor)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map identifier
        ignored_any
    }
}

struct Seq {
    items: std::iter::Enumerate<std::vec::IntoIter<Value>>,
    trail: Trail,
}

impl<'de> SeqAccess<'de> for Seq {
    type Error = serde_json::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Self::Error> {
        let Some((i, v)) = self.items.next() else {
            return Ok(None);
        };
        seed.deserialize(Go(v, self.trail.clone()))
            .map(Some)
            .inspect_err(|_| self.trail.borrow_mut().push(format!("[{i}]")))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct Map {
    entries: std::vec::IntoIter<(String, Value)>,
    /// The entry whose value is next, with its key for an error's path.
    value: Option<(String, Value)>,
    trail: Trail,
    /// The keys are data (a map), not field names (a struct).
    data_keys: bool,
}

impl<'de> MapAccess<'de> for Map {
    type Error = serde_json::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Self::Error> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        let k = seed.deserialize(StrDeserializer::<serde_json::Error>::new(&key));
        self.value = Some((key, value));
        k.map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, Self::Error> {
        let (key, value) = self.value.take().unwrap_or_default();
        seed.deserialize(Go(value, self.trail.clone()))
            .inspect_err(|_| {
                let step = if self.data_keys {
                    crate::logging::one_line(&key)
                } else {
                    key
                };
                self.trail.borrow_mut().push(step);
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Spec;

    #[test]
    fn keys_match_fields_case_insensitively() {
        let s: Spec = from_slice(
            br#"{"OCIVERSION": "1.0.2", "Process": {"ARGS": ["sh"], "Cwd": "/", "user": {"UID": 5}},
                "root": {"Path": "rootfs"}, "annotations": {"Keep.Case": "x"},
                "linux": {"Namespaces": [{"Type": "pid"}], "cgroupsPATH": "/a"}}"#,
        )
        .unwrap();
        let p = s.process.unwrap();
        assert_eq!(s.oci_version, "1.0.2");
        assert_eq!(
            (p.args, p.cwd, p.user.uid),
            (vec!["sh".to_string()], "/".into(), 5)
        );
        assert_eq!(s.root.unwrap().path.to_str(), Some("rootfs"));
        // Map keys are data, not field names.
        assert_eq!(s.annotations["Keep.Case"], "x");
        let l = s.linux.unwrap();
        assert_eq!(l.namespaces[0].typ, "pid");
        assert_eq!(l.cgroups_path.as_deref(), Some("/a"));
    }

    #[test]
    fn an_exact_match_wins_and_null_means_absent() {
        let s: Spec = from_slice(
            br#"{"hostname": "exact", "HOSTNAME": "folded", "mounts": null,
                "process": {"args": ["a"], "cwd": "/", "env": null}}"#,
        )
        .unwrap();
        assert!(s.mounts.is_empty());
        assert!(s.process.unwrap().env.is_empty());
        // Go keeps the last value of a field given twice.
        assert_eq!(s.hostname.as_deref(), Some("folded"));
    }

    #[test]
    fn an_array_is_no_struct() {
        let e = from_value::<crate::spec::Spec>(serde_json::json!([1, 2, 3])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid type: sequence, expected struct Spec"
        );
    }

    #[test]
    fn a_type_error_names_the_innermost_field() {
        let e = |json: &str| from_slice::<Spec>(json.as_bytes()).unwrap_err().to_string();
        assert_eq!(
            e(r#"{"process": {"args": 5}}"#),
            "process.args: invalid type: integer `5`, expected a sequence"
        );
        assert_eq!(
            e(r#"{"Process": {"Args": ["sh", 1]}}"#),
            "process.args[1]: invalid type: integer `1`, expected a string"
        );
        assert_eq!(
            e(r#"{"annotations": {"a\nb": 1}}"#),
            r"annotations.a\nb: invalid type: integer `1`, expected a string"
        );
        assert_eq!(
            e(r#"{"linux": {"namespaces": [{"type": "pid"}, {"type": 7}]}}"#),
            "linux.namespaces[1].type: invalid type: integer `7`, expected a string"
        );
    }

    #[test]
    fn type_errors_still_fail() {
        assert!(from_slice::<Spec>(br#"{"process": {"args": "sh"}}"#).is_err());
        assert!(from_slice::<Spec>(b"{").is_err());
    }
}
