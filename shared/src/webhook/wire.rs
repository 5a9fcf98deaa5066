//! Reading a webhook body without building a JSON tree: the few fields a normalizer needs are
//! deserialized straight from the bytes, borrowed where no escape forces a copy, and everything
//! else is skipped (it travels on untouched as the [`Payload`](crate::event::Payload)).

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

/// A field read the way `str_field` reads a tree: a non-empty string, or a number's digits;
/// anything else (null, a boolean, an object, an array) is no value.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Scalar<'a>(pub Option<Cow<'a, str>>);

impl Scalar<'_> {
    pub(crate) fn into_string(self) -> Option<String> {
        self.0.map(Cow::into_owned)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Scalar<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor)
    }
}

struct ScalarVisitor;

fn text<'a, E>(s: Cow<'a, str>) -> Result<Scalar<'a>, E> {
    Ok(Scalar((!s.is_empty()).then_some(s)))
}

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        text(Cow::Borrowed(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        text(Cow::Owned(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        text(Cow::Owned(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Scalar(Some(Cow::Owned(v.to_string()))))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Scalar(Some(Cow::Owned(v.to_string()))))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        // As a tree's `Number` prints it, so both readings agree.
        Ok(Scalar(
            serde_json::Number::from_f64(v).map(|n| Cow::Owned(n.to_string())),
        ))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Scalar(None))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Scalar(None))
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Scalar(None))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Scalar(None))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Scalar(None))
    }
}

/// An object key, borrowed unless it holds an escape.
#[derive(Deserialize)]
#[serde(transparent)]
pub(crate) struct Key<'a>(#[serde(borrow)] pub Cow<'a, str>);

/// An object read as `T`, or `T::default()` when the value is not an object (read like a tree's
/// missing fields, which is how the tree-reading normalizers treat it).
#[derive(Default)]
pub(crate) struct ObjectOr<T>(pub T);

impl<'de, T: Deserialize<'de> + Default> Deserialize<'de> for ObjectOr<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de> + Default> Visitor<'de> for V<T> {
            type Value = ObjectOr<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(ObjectOr)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(ObjectOr(T::default()))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(ObjectOr(T::default()))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(ObjectOr(T::default()))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(ObjectOr(T::default()))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(ObjectOr(T::default()))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok(ObjectOr(T::default()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(ObjectOr(T::default()))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize, Default, Debug)]
    struct Probe<'a> {
        #[serde(borrow, default)]
        a: Scalar<'a>,
    }

    fn read(json: &str) -> Option<String> {
        serde_json::from_str::<ObjectOr<Probe>>(json)
            .unwrap()
            .0
            .a
            .into_string()
    }

    #[test]
    fn fields_read_as_a_tree_reads_them() {
        assert_eq!(
            read(r#"{"a": "x", "b": {"c": [1, 2]}}"#).as_deref(),
            Some("x")
        );
        assert_eq!(read(r#"{"a": 35436}"#).as_deref(), Some("35436"));
        assert_eq!(read(r#"{"a": -1.5}"#).as_deref(), Some("-1.5"));
        assert_eq!(read(r#"{"a": "caf\u00e9"}"#).as_deref(), Some("café"));
        for none in [
            r#"{"a": ""}"#,
            r#"{"a": null}"#,
            r#"{"a": true}"#,
            r#"{"a": [1]}"#,
            r#"{"a": {"b": 1}}"#,
            "{}",
            "[1, 2]",
            "\"a\"",
            "7",
            "null",
        ] {
            assert_eq!(read(none), None, "{none}");
        }
    }

    #[test]
    fn unescaped_strings_are_borrowed() {
        let json = r#"{"a": "plain"}"#;
        let p: Probe = serde_json::from_str(json).unwrap();
        assert!(matches!(p.a.0, Some(Cow::Borrowed("plain"))));
    }
}
