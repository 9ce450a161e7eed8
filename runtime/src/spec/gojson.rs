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

use serde::de::{
    self, value::StringDeserializer, DeserializeOwned, DeserializeSeed, IntoDeserializer,
    MapAccess, SeqAccess, Visitor,
};
use serde_json::Value;

/// Parses `bytes` as Go would decode them into `T`.
pub fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, serde_json::Error> {
    from_value(serde_json::from_slice(bytes)?)
}

/// Decodes `v` into `T` with Go's key matching.
pub fn from_value<T: DeserializeOwned>(v: Value) -> Result<T, serde_json::Error> {
    T::deserialize(Go(v))
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

/// A JSON value read with Go's rules (see the module docs).
#[derive(Debug)]
pub struct Go(pub Value);

impl<'de> de::Deserializer<'de> for Go {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Array(items) => visitor.visit_seq(Seq(items.into_iter())),
            Value::Object(map) => visitor.visit_map(Map {
                entries: map.into_iter().collect::<Vec<_>>().into_iter(),
                value: None,
            }),
            scalar => de::Deserializer::deserialize_any(scalar, visitor),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            v => visitor.visit_some(Go(v)),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Object(map) => visitor.visit_map(Map {
                entries: struct_entries(map, fields).into_iter(),
                value: None,
            }),
            // serde_json would fill a struct from an array, field by field;
            // Go refuses (`cannot unmarshal array into Go value of type …`).
            Value::Array(_) => Err(serde::de::Error::invalid_type(
                serde::de::Unexpected::Seq,
                &visitor,
            )),
            other => other.deserialize_struct(name, fields, visitor),
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

struct Seq(std::vec::IntoIter<Value>);

impl<'de> SeqAccess<'de> for Seq {
    type Error = serde_json::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Self::Error> {
        self.0.next().map(|v| seed.deserialize(Go(v))).transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

struct Map {
    entries: std::vec::IntoIter<(String, Value)>,
    value: Option<Value>,
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
        self.value = Some(value);
        let key: StringDeserializer<serde_json::Error> = key.into_deserializer();
        seed.deserialize(key).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, Self::Error> {
        seed.deserialize(Go(self.value.take().unwrap_or(Value::Null)))
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
    fn type_errors_still_fail() {
        assert!(from_slice::<Spec>(br#"{"process": {"args": "sh"}}"#).is_err());
        assert!(from_slice::<Spec>(b"{").is_err());
    }
}
