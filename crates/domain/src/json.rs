//! An exact JSON tree: numbers keep their source text so `0.6` becomes six tenths, never a binary
//! float, and objects keep key order and reveal duplicate keys. Built on serde_json's `RawValue`, so
//! the workspace's serde_json needs no global `arbitrary_precision` feature.
//!
//! [`Node`] walks the tree with the dotted field path of every value, which every validation error
//! carries.

use crate::error::{InvalidInput, Problem};
use crate::quantity::parse_exact_decimal;
use rust_decimal::Decimal;
use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use std::fmt;

/// Deepest nesting accepted. A case is about 6 levels deep; serde_json does not bound the depth of
/// a captured `RawValue`, and this parser recurses once per level, so the bound keeps the stack safe.
pub const MAX_DEPTH: usize = 64;

/// A JSON value whose numbers are kept as their exact source text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Json {
    Null,
    Bool(bool),
    /// The number's source text, e.g. `"0.6"` or `"6e-1"`.
    Number(String),
    String(String),
    Array(Vec<Json>),
    /// Key-value pairs in source order, duplicates kept (and rejected by [`Node::object`]).
    Object(Vec<(String, Json)>),
}

impl Json {
    /// Parses one JSON document. The error text is serde_json's (line and column included).
    pub fn parse(text: &str) -> Result<Json, String> {
        let raw: &RawValue = serde_json::from_str(text).map_err(|error| error.to_string())?;
        Self::from_raw(raw, 0)
    }

    fn from_raw(raw: &RawValue, depth: usize) -> Result<Json, String> {
        if depth > MAX_DEPTH {
            return Err(format!("nested deeper than {MAX_DEPTH} levels"));
        }
        let text = raw.get().trim_start();
        let parsed = match text.as_bytes().first() {
            Some(b'{') => {
                let entries: RawEntries<'_> =
                    serde_json::from_str(text).map_err(|e| e.to_string())?;
                Json::Object(
                    entries
                        .0
                        .into_iter()
                        .map(|(key, value)| Ok((key, Self::from_raw(value, depth + 1)?)))
                        .collect::<Result<_, String>>()?,
                )
            }
            Some(b'[') => {
                let items: Vec<&RawValue> =
                    serde_json::from_str(text).map_err(|e| e.to_string())?;
                Json::Array(
                    items
                        .into_iter()
                        .map(|item| Self::from_raw(item, depth + 1))
                        .collect::<Result<_, String>>()?,
                )
            }
            Some(b'"') => Json::String(serde_json::from_str(text).map_err(|e| e.to_string())?),
            Some(b't') => Json::Bool(true),
            Some(b'f') => Json::Bool(false),
            Some(b'n') => Json::Null,
            _ => Json::Number(text.trim_end().to_string()),
        };
        Ok(parsed)
    }

    /// The JSON type name, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "a boolean",
            Json::Number(_) => "a number",
            Json::String(_) => "a string",
            Json::Array(_) => "an array",
            Json::Object(_) => "an object",
        }
    }
}

/// Object entries in order, duplicates included, values still raw.
struct RawEntries<'a>(Vec<(String, &'a RawValue)>);

impl<'de: 'a, 'a> serde::Deserialize<'de> for RawEntries<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntriesVisitor;
        impl<'de> Visitor<'de> for EntriesVisitor {
            type Value = RawEntries<'de>;
            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry::<String, &'de RawValue>()? {
                    entries.push(entry);
                }
                Ok(RawEntries(entries))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, _seq: A) -> Result<Self::Value, A::Error> {
                Err(serde::de::Error::custom("expected a JSON object"))
            }
        }
        deserializer.deserialize_map(EntriesVisitor)
    }
}

/// A JSON value together with its dotted field path.
#[derive(Debug, Clone)]
pub struct Node<'a> {
    pub value: &'a Json,
    pub path: String,
}

/// A JSON object whose keys were checked against the allowed set, with its path.
#[derive(Debug, Clone)]
pub struct ObjectNode<'a> {
    entries: &'a [(String, Json)],
    pub path: String,
}

impl<'a> Node<'a> {
    /// The root of a document, with an empty path.
    pub fn root(value: &'a Json) -> Self {
        Self {
            value,
            path: String::new(),
        }
    }

    /// An error at this node.
    pub fn error(&self, problem: Problem) -> InvalidInput {
        InvalidInput::at(self.path.clone(), problem)
    }

    /// An error saying this node has the wrong JSON type.
    pub fn wrong_type(&self, expected: &str) -> InvalidInput {
        self.error(Problem::WrongType {
            expected: expected.to_string(),
            found: self.value.kind().to_string(),
        })
    }

    /// The value as an object whose keys must all be among `allowed`.
    pub fn object(&self, allowed: &[&str]) -> Result<ObjectNode<'a>, InvalidInput> {
        let Json::Object(entries) = self.value else {
            return Err(self.wrong_type("an object"));
        };
        for (index, (key, _)) in entries.iter().enumerate() {
            if !allowed.contains(&key.as_str()) {
                return Err(InvalidInput::at(
                    join(&self.path, key),
                    Problem::UnknownKey {
                        key: key.clone(),
                        allowed: allowed.join(", "),
                    },
                ));
            }
            if entries[..index].iter().any(|(earlier, _)| earlier == key) {
                return Err(InvalidInput::at(
                    join(&self.path, key),
                    Problem::DuplicateKey { key: key.clone() },
                ));
            }
        }
        Ok(ObjectNode {
            entries,
            path: self.path.clone(),
        })
    }

    /// The elements of an array value, each with its path `path[i]`.
    pub fn elements(&self) -> Result<Vec<Node<'a>>, InvalidInput> {
        match self.value {
            Json::Array(items) => Ok(items
                .iter()
                .enumerate()
                .map(|(index, value)| Node {
                    value,
                    path: format!("{}[{index}]", self.path),
                })
                .collect()),
            _ => Err(self.wrong_type("an array")),
        }
    }

    /// The value as an exact decimal.
    pub fn decimal(&self) -> Result<Decimal, InvalidInput> {
        match self.value {
            Json::Number(text) => parse_exact_decimal(text).map_err(|problem| self.error(problem)),
            _ => Err(self.wrong_type("a number")),
        }
    }

    /// The value as a string.
    pub fn string(&self) -> Result<&'a str, InvalidInput> {
        match self.value {
            Json::String(text) => Ok(text),
            _ => Err(self.wrong_type("a string")),
        }
    }

    /// The value as a boolean.
    pub fn boolean(&self) -> Result<bool, InvalidInput> {
        match self.value {
            Json::Bool(flag) => Ok(*flag),
            _ => Err(self.wrong_type("true or false")),
        }
    }

    /// True for JSON `null`.
    pub fn is_null(&self) -> bool {
        matches!(self.value, Json::Null)
    }
}

impl<'a> ObjectNode<'a> {
    /// The value under `key`, if present; `null` counts as present (callers decide what it means).
    pub fn get(&self, key: &str) -> Option<Node<'a>> {
        self.entries
            .iter()
            .find(|(candidate, _)| candidate == key)
            .map(|(_, value)| Node {
                value,
                path: join(&self.path, key),
            })
    }

    /// The value under `key`, treating `null` as absent.
    pub fn get_present(&self, key: &str) -> Option<Node<'a>> {
        self.get(key).filter(|node| !node.is_null())
    }

    /// The value under `key`, which must be present and not null.
    pub fn require(&self, key: &str, expected: &str) -> Result<Node<'a>, InvalidInput> {
        self.get_present(key).ok_or_else(|| {
            InvalidInput::at(
                join(&self.path, key),
                Problem::Missing {
                    expected: expected.to_string(),
                },
            )
        })
    }

    /// The entries in source order, each as a node.
    pub fn entries(&self) -> impl Iterator<Item = (&'a str, Node<'a>)> + '_ {
        self.entries.iter().map(|(key, value)| {
            (
                key.as_str(),
                Node {
                    value,
                    path: join(&self.path, key),
                },
            )
        })
    }

    /// An error about the object as a whole.
    pub fn error(&self, problem: Problem) -> InvalidInput {
        InvalidInput::at(self.path.clone(), problem)
    }
}

/// Appends a key to a dotted path.
pub fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, expected: Result<Json, ()>) {
        assert_eq!(Json::parse(text).map_err(|_| ()), expected, "{text}");
    }

    #[test]
    fn parses_numbers_exactly_and_keeps_duplicates() {
        let number = |text: &str| Json::Number(text.to_string());
        check("0.6", Ok(number("0.6")));
        check(" 6e-1 ", Ok(number("6e-1")));
        check(
            "[1, 2.50]",
            Ok(Json::Array(vec![number("1"), number("2.50")])),
        );
        check(
            r#"{"a": 1, "a": null}"#,
            Ok(Json::Object(vec![
                ("a".into(), number("1")),
                ("a".into(), Json::Null),
            ])),
        );
        check(
            r#"{"s": "x", "t": true, "f": false}"#,
            Ok(Json::Object(vec![
                ("s".into(), Json::String("x".into())),
                ("t".into(), Json::Bool(true)),
                ("f".into(), Json::Bool(false)),
            ])),
        );
        check("NaN", Err(()));
        check("Infinity", Err(()));
        check("{\"a\": 1", Err(()));
        check("1 2", Err(()));
    }
}
