//! Deserializes a `serde_json::Value` into the raw config types while keeping
//! track of where a problem is, so that every error names its key path
//! (`downstream.keys[1].alg`). serde_json's own errors only carry a line and
//! column; this walker prefixes the key of each level as an error unwinds.
//!
//! Error texts never include the offending value: a secret typed into the
//! wrong field must not end up in a log line.

use std::fmt;

use serde::de::value::StrDeserializer;
use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Expected, IntoDeserializer, MapAccess, SeqAccess,
    Unexpected, Visitor,
};
use serde::forward_to_deserialize_any;
use serde_json::Value;

/// One step of a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Key(String),
    Index(usize),
}

/// A deserialization problem and the key path it happened at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathError {
    /// Outermost segment first.
    segments: Vec<Segment>,
    problem: String,
}

impl PathError {
    fn at(segment: Segment, problem: String) -> Self {
        PathError {
            segments: vec![segment],
            problem,
        }
    }

    fn prefixed(mut self, segment: Segment) -> Self {
        self.segments.insert(0, segment);
        self
    }

    /// Dotted key path (`idp.client_id`, `downstream.keys[0].kid`); empty for the root.
    pub fn path(&self) -> String {
        let mut out = String::new();
        for segment in &self.segments {
            match segment {
                Segment::Key(key) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    // An empty key is written as `""`, so the error still names it.
                    out.push_str(if key.is_empty() { "\"\"" } else { key });
                }
                Segment::Index(i) => out.push_str(&format!("[{i}]")),
            }
        }
        out
    }

    pub fn problem(&self) -> &str {
        &self.problem
    }
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path(), self.problem)
    }
}

impl std::error::Error for PathError {}

/// Names a JSON kind without its value.
fn kind(unexp: &Unexpected<'_>) -> &'static str {
    match unexp {
        Unexpected::Bool(_) => "a boolean",
        Unexpected::Unsigned(_) | Unexpected::Signed(_) => "an integer",
        Unexpected::Float(_) => "a number with a fraction",
        Unexpected::Str(_) | Unexpected::Char(_) => "a string",
        Unexpected::Unit => "null",
        Unexpected::Seq => "an array",
        Unexpected::Map => "an object",
        _ => "another value",
    }
}

/// Rewrites serde's Rust-flavoured expectations in JSON terms.
fn expected(exp: &dyn Expected) -> String {
    let text = exp.to_string();
    match text.as_str() {
        "u8" | "u16" | "u32" | "u64" | "usize" => "a non-negative integer".to_string(),
        "a sequence" => "an array".to_string(),
        "a map" => "an object".to_string(),
        _ => text,
    }
}

impl de::Error for PathError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        PathError {
            segments: Vec::new(),
            problem: msg.to_string(),
        }
    }

    fn invalid_type(unexp: Unexpected<'_>, exp: &dyn Expected) -> Self {
        Self::custom(format_args!(
            "expected {}, found {}",
            expected(exp),
            kind(&unexp)
        ))
    }

    fn invalid_value(unexp: Unexpected<'_>, exp: &dyn Expected) -> Self {
        Self::custom(format_args!(
            "invalid {}: expected {}",
            kind(&unexp),
            expected(exp)
        ))
    }

    fn unknown_variant(_variant: &str, expected: &'static [&'static str]) -> Self {
        Self::custom(format_args!("expected one of {}", quoted_list(expected)))
    }

    // Raised while the key itself is deserialized: `next_key_seed` adds it.
    fn unknown_field(_field: &str, expected: &'static [&'static str]) -> Self {
        Self::custom(format_args!(
            "unknown key (expected one of {})",
            quoted_list(expected)
        ))
    }

    fn missing_field(field: &'static str) -> Self {
        PathError::at(
            Segment::Key(field.to_string()),
            "required key missing".to_string(),
        )
    }
}

fn quoted_list(items: &[&str]) -> String {
    items
        .iter()
        .map(|item| format!("`{item}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Deserializes `value` as `T`, reporting problems with their key path.
pub fn from_value<T: DeserializeOwned>(value: &Value) -> Result<T, PathError> {
    T::deserialize(ValueDe(value))
}

struct ValueDe<'a>(&'a Value);

impl<'de> de::Deserializer<'de> for ValueDe<'de> {
    type Error = PathError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, PathError> {
        match self.0 {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Number(n) => {
                if let Some(u) = n.as_u64() {
                    visitor.visit_u64(u)
                } else if let Some(i) = n.as_i64() {
                    visitor.visit_i64(i)
                } else {
                    visitor.visit_f64(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            Value::String(s) => visitor.visit_borrowed_str(s),
            Value::Array(items) => visitor.visit_seq(Items {
                iter: items.iter().enumerate(),
            }),
            Value::Object(map) => visitor.visit_map(Entries {
                iter: map.iter(),
                pending: None,
            }),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, PathError> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    // Structs only from objects: serde would otherwise accept an array
    // positionally, which no operator means.
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, PathError> {
        match self.0 {
            Value::Object(_) => self.deserialize_any(visitor),
            other => Err(de::Error::invalid_type(unexpected(other), &"an object")),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, PathError> {
        match self.0 {
            Value::String(s) => {
                let variant: StrDeserializer<'_, PathError> = s.as_str().into_deserializer();
                visitor.visit_enum(variant)
            }
            other => Err(de::Error::invalid_type(unexpected(other), &"a string")),
        }
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct newtype_struct seq tuple
        tuple_struct map identifier ignored_any
    }
}

fn unexpected(value: &Value) -> Unexpected<'static> {
    match value {
        Value::Null => Unexpected::Unit,
        Value::Bool(b) => Unexpected::Bool(*b),
        Value::Number(_) => Unexpected::Unsigned(0),
        Value::String(_) => Unexpected::Str(""),
        Value::Array(_) => Unexpected::Seq,
        Value::Object(_) => Unexpected::Map,
    }
}

struct Items<'a> {
    iter: std::iter::Enumerate<std::slice::Iter<'a, Value>>,
}

impl<'de> SeqAccess<'de> for Items<'de> {
    type Error = PathError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, PathError> {
        match self.iter.next() {
            None => Ok(None),
            Some((i, item)) => seed
                .deserialize(ValueDe(item))
                .map(Some)
                .map_err(|e| e.prefixed(Segment::Index(i))),
        }
    }
}

struct Entries<'a> {
    iter: serde_json::map::Iter<'a>,
    pending: Option<(&'a String, &'a Value)>,
}

impl<'de> MapAccess<'de> for Entries<'de> {
    type Error = PathError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, PathError> {
        match self.iter.next() {
            None => Ok(None),
            Some((key, value)) => {
                self.pending = Some((key, value));
                let key_de: StrDeserializer<'_, PathError> = key.as_str().into_deserializer();
                seed.deserialize(key_de)
                    .map(Some)
                    .map_err(|e| e.prefixed(Segment::Key(key.clone())))
            }
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, PathError> {
        match self.pending.take() {
            Some((key, value)) => seed
                .deserialize(ValueDe(value))
                .map_err(|e| e.prefixed(Segment::Key(key.clone()))),
            None => Err(de::Error::custom("value requested before its key")),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Deserialize;
    use serde_json::json;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Outer {
        name: Option<String>,
        count: Option<u64>,
        inner: Option<Inner>,
        list: Option<Vec<Inner>>,
        map: Option<BTreeMap<String, String>>,
        mode: Option<Mode>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        flag: Option<bool>,
        required: String,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "snake_case")]
    enum Mode {
        Allow,
        Deny,
    }

    fn err(value: Value) -> (String, String) {
        let e = from_value::<Outer>(&value).unwrap_err();
        (e.path(), e.problem().to_string())
    }

    #[test]
    fn decodes_valid_input() {
        let outer: Outer = from_value(&json!({
            "name": "n", "count": 3, "inner": {"flag": true, "required": "r"},
            "list": [{"required": "a"}], "map": {"k": "v"}, "mode": "deny"
        }))
        .unwrap();
        assert_eq!(outer.name.as_deref(), Some("n"));
        assert_eq!(outer.count, Some(3));
        assert_eq!(outer.inner.unwrap().flag, Some(true));
        assert_eq!(outer.list.unwrap()[0].required, "a");
        assert_eq!(outer.map.unwrap()["k"], "v");
        assert_eq!(outer.mode, Some(Mode::Deny));
    }

    #[test]
    fn unknown_keys_name_their_path() {
        assert_eq!(err(json!({"nmae": "x"})).0, "nmae");
        let (path, problem) = err(json!({"inner": {"required": "r", "flga": true}}));
        assert_eq!(path, "inner.flga");
        assert!(problem.starts_with("unknown key"), "{problem}");
        assert_eq!(
            err(json!({"list": [{"required": "a"}, {"required": "b", "x": 1}]})).0,
            "list[1].x"
        );
    }

    #[test]
    fn type_errors_name_the_key_but_not_the_value() {
        let (path, problem) = err(json!({"count": "hunter2-secret"}));
        assert_eq!(path, "count");
        assert_eq!(problem, "expected a non-negative integer, found a string");
        let (path, problem) = err(json!({"inner": {"required": 12}}));
        assert_eq!(path, "inner.required");
        assert!(problem.contains("found an integer"), "{problem}");
        assert_eq!(err(json!({"count": -1})).0, "count");
        assert_eq!(err(json!({"count": 1.5})).0, "count");
        assert_eq!(err(json!({"map": {"k": 1}})).0, "map.k");
    }

    #[test]
    fn missing_required_field_names_it() {
        let (path, problem) = err(json!({"inner": {}}));
        assert_eq!(path, "inner.required");
        assert_eq!(problem, "required key missing");
    }

    #[test]
    fn structs_only_from_objects_and_enums_only_from_known_strings() {
        let (path, problem) = err(json!({"inner": ["r"]}));
        assert_eq!(path, "inner");
        assert_eq!(problem, "expected an object, found an array");
        let (path, problem) = err(json!({"mode": "maybe-secret"}));
        assert_eq!(path, "mode");
        assert!(!problem.contains("maybe-secret"));
        assert!(problem.contains("`allow`"));
        assert_eq!(err(json!({"mode": 1})).0, "mode");
        assert_eq!(err(json!([])).0, "");
    }
}
