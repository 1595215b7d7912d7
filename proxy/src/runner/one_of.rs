//! Tables that hold exactly one of several keys: a step's kind (`sleep`,
//! `http`, ...) beside its `name`; a fault step's operation (`add`,
//! `clear`, ...) beside its `proxy`.
//!
//! The choices are the variants of an enum, and the enum's own serde
//! parser (its externally tagged form: the key names the variant, the
//! value is its content) reads the chosen key, so each choice is written
//! once, in its enum. What this adds is the table around it, with
//! messages that say what is wrong: no choice or more than one (at the
//! table's line, naming the choices it has), or a key that is neither a
//! choice nor a field (at the key's line).

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, IntoDeserializer, MapAccess, VariantAccess,
    Visitor,
};
use serde::{Deserialize, forward_to_deserialize_any};

/// What a table is, for messages, and the keys it has beside the choice.
pub struct Shape {
    /// "step", "fault step".
    pub table: &'static str,
    /// "kind", "operation".
    pub choice: &'static str,
    /// The other keys, each holding a string: `name`, `proxy`.
    pub fields: &'static [&'static str],
}

/// A table as read: the other keys given, and the one choice.
pub struct OneOf<E> {
    pub fields: BTreeMap<&'static str, String>,
    pub chosen: E,
}

impl Shape {
    /// Reads a table of this shape whose choices are the variants of `E`.
    pub fn deserialize<'de, D, E>(&'static self, deserializer: D) -> Result<OneOf<E>, D::Error>
    where
        D: Deserializer<'de>,
        E: Deserialize<'de>,
    {
        deserializer.deserialize_map(TableVisitor {
            shape: self,
            choices: variants::<E>(),
            marker: PhantomData,
        })
    }
}

/// The variant names of an enum as its serde parser spells them: the
/// parser hands them to `deserialize_enum`, where this deserializer keeps
/// them and stops.
pub fn variants<'de, E: Deserialize<'de>>() -> &'static [&'static str] {
    let mut names: &'static [&'static str] = &[];
    let _ = E::deserialize(VariantNames(&mut names));
    names
}

struct VariantNames<'a>(&'a mut &'static [&'static str]);

impl<'de> Deserializer<'de> for VariantNames<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("not an enum"))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = variants;
        Err(de::Error::custom("variant names read"))
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct identifier ignored_any
    }
}

struct TableVisitor<E> {
    shape: &'static Shape,
    choices: &'static [&'static str],
    marker: PhantomData<E>,
}

impl<'de, E: Deserialize<'de>> Visitor<'de> for TableVisitor<E> {
    type Value = OneOf<E>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "a {} table with one {} of: {}",
            self.shape.table,
            self.shape.choice,
            self.choices.join(", ")
        )
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let shape = self.shape;
        let mut fields = BTreeMap::new();
        let mut chosen = None;
        // Every choice in the table, in the order read, for the message
        // when there is more than one.
        let mut seen = Vec::new();
        let key_seed = KeySeed {
            shape,
            choices: self.choices,
        };
        while let Some(key) = map.next_key_seed(&key_seed)? {
            match key {
                Key::Field(name) => {
                    fields.insert(name, map.next_value::<String>()?);
                }
                Key::Choice(name) if seen.is_empty() => {
                    seen.push(name);
                    chosen = Some(map.next_value_seed(ChoiceSeed {
                        name,
                        marker: PhantomData::<E>,
                    })?);
                }
                Key::Choice(name) => {
                    seen.push(name);
                    map.next_value::<de::IgnoredAny>()?;
                }
            }
        }
        let list = self.choices.join(", ");
        match (chosen, seen.len()) {
            (Some(chosen), 1) => Ok(OneOf { fields, chosen }),
            (None, _) => Err(de::Error::custom(format!(
                "this {} does nothing: give it one {}, one of: {list}",
                shape.table, shape.choice
            ))),
            (Some(_), n) => Err(de::Error::custom(format!(
                "this {} has {n} {}s, {}: give it one, one of: {list}",
                shape.table,
                shape.choice,
                in_words(&seen)
            ))),
        }
    }
}

/// "a", "a and b", "a, b and c".
fn in_words(names: &[&str]) -> String {
    match names.split_last() {
        Some((last, [])) => (*last).to_owned(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
        None => String::new(),
    }
}

enum Key {
    Field(&'static str),
    Choice(&'static str),
}

/// Reads one key of the table: an unknown one is refused here, so that the
/// message points at its line.
struct KeySeed {
    shape: &'static Shape,
    choices: &'static [&'static str],
}

impl<'de> DeserializeSeed<'de> for &KeySeed {
    type Value = Key;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Key, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for &KeySeed {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a key of a {}", self.shape.table)
    }

    fn visit_str<Error: de::Error>(self, key: &str) -> Result<Key, Error> {
        let shape = self.shape;
        if let Some(field) = shape.fields.iter().find(|f| **f == key) {
            return Ok(Key::Field(field));
        }
        if let Some(choice) = self.choices.iter().find(|c| **c == key) {
            return Ok(Key::Choice(choice));
        }
        let fields: Vec<String> = shape.fields.iter().map(|f| format!("`{f}`")).collect();
        Err(Error::custom(format!(
            "unknown field `{key}`: a {} has {} and one {}, one of: {}",
            shape.table,
            fields.join(", "),
            shape.choice,
            self.choices.join(", ")
        )))
    }
}

/// Reads the chosen key's value with the enum's own parser, handing it the
/// key as the variant's name.
struct ChoiceSeed<E> {
    name: &'static str,
    marker: PhantomData<E>,
}

impl<'de, E: Deserialize<'de>> DeserializeSeed<'de> for ChoiceSeed<E> {
    type Value = E;

    fn deserialize<D: Deserializer<'de>>(self, value: D) -> Result<E, D::Error> {
        E::deserialize(Tagged {
            name: self.name,
            value,
        })
    }
}

/// A variant's name and its content, as a deserializer of the enum.
struct Tagged<D> {
    name: &'static str,
    value: D,
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Tagged<D> {
    type Error = D::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        visitor.visit_enum(self)
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

impl<'de, D: Deserializer<'de>> EnumAccess<'de> for Tagged<D> {
    type Error = D::Error;
    type Variant = Content<D>;

    fn variant_seed<S: DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, Content<D>), D::Error> {
        let variant = seed.deserialize(self.name.into_deserializer())?;
        Ok((variant, Content(self.value)))
    }
}

/// The chosen key's value, as the content of its variant.
struct Content<D>(D);

impl<'de, D: Deserializer<'de>> VariantAccess<'de> for Content<D> {
    type Error = D::Error;

    fn unit_variant(self) -> Result<(), D::Error> {
        de::IgnoredAny::deserialize(self.0).map(drop)
    }

    fn newtype_variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<S::Value, D::Error> {
        seed.deserialize(self.0)
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_seq(visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_map(visitor)
    }
}
