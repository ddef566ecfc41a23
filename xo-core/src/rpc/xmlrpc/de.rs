//! Typed decoding: a serde `Deserializer` straight over the token stream, no `Value` tree.
//!
//! xapi sends ints untagged, so the type hints (`deserialize_i64`, `deserialize_f64`,
//! `deserialize_bool`) also parse text; `deserialize_any` follows the wire tags.

use std::borrow::Cow;
use std::marker::PhantomData;

use serde::de::value::{BorrowedStrDeserializer, StringDeserializer};
use serde::de::{self, DeserializeSeed, IgnoredAny, Visitor};
use serde::forward_to_deserialize_any;

use super::lex::{Head, Item, Lexer, Tag};
use super::prefix_path;
use super::reader::{decode_base64, member_name, parse_bool, parse_double, parse_int};
use crate::rpc::DecodeError;

type Result<T, E = DecodeError> = std::result::Result<T, E>;

/// What the target type asked for; decides how scalar text is read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Hint {
    Any,
    I64,
    U64,
    F64,
    Bool,
    Str,
    Unit,
    Ignore,
}

/// Deserializes one `<value>` whose start tag (or `<value/>`) was just consumed.
pub(crate) struct ValueDe<'l, 'a> {
    lx: &'l mut Lexer<'a>,
    head: Option<Head<'a>>,
    pos: u64,
}

impl<'l, 'a> ValueDe<'l, 'a> {
    pub(crate) fn new(lx: &'l mut Lexer<'a>, empty: bool) -> Self {
        let pos = lx.pos();
        let head = empty.then_some(Head::Text(Cow::Borrowed("")));
        ValueDe { lx, head, pos }
    }

    fn take_head(&mut self) -> Result<Head<'a>> {
        match self.head.take() {
            Some(h) => Ok(h),
            None => self.lx.value_head(),
        }
    }

    fn run<V: Visitor<'a>>(mut self, hint: Hint, v: V) -> Result<V::Value> {
        let pos = self.pos;
        let r = match self.take_head() {
            Ok(Head::Text(s)) if hint == Hint::Ignore => {
                drop(s);
                v.visit_unit()
            }
            Ok(Head::Text(s)) => scalar(Tag::String, hint, s, v),
            Ok(Head::Typed(tag, empty)) => self.typed(tag, empty, hint, v),
            Err(e) => Err(e),
        };
        r.map_err(|e| e.at(pos))
    }

    fn typed<V: Visitor<'a>>(self, tag: Tag, empty: bool, hint: Hint, v: V) -> Result<V::Value> {
        let lx = self.lx;
        if hint == Hint::Ignore {
            if !empty {
                lx.skip(tag)?;
            }
            lx.end_value()?;
            return v.visit_unit();
        }
        match tag {
            Tag::Array => {
                lx.enter()?;
                let mut seq = Seq {
                    lx,
                    i: 0,
                    done: empty,
                };
                if !empty {
                    seq.open()?;
                }
                let r = v.visit_seq(&mut seq)?;
                seq.drain()?;
                let lx = seq.lx;
                lx.leave();
                lx.end_value()?;
                Ok(r)
            }
            Tag::Struct => {
                lx.enter()?;
                let mut map = Map {
                    lx,
                    key: None,
                    done: empty,
                };
                let r = v.visit_map(&mut map)?;
                map.drain()?;
                let lx = map.lx;
                lx.leave();
                lx.end_value()?;
                Ok(r)
            }
            Tag::Nil => {
                nil_body(lx, empty)?;
                lx.end_value()?;
                v.visit_unit()
            }
            _ => {
                let text = if empty {
                    Cow::Borrowed("")
                } else {
                    lx.text(tag)?
                };
                lx.end_value()?;
                scalar(tag, hint, text, v)
            }
        }
    }
}

fn nil_body(lx: &mut Lexer<'_>, empty: bool) -> Result<()> {
    if !empty && !lx.text(Tag::Nil)?.trim().is_empty() {
        return Err(lx.err("<nil> must be empty"));
    }
    Ok(())
}

fn visit_text<'a, V: Visitor<'a>>(s: Cow<'a, str>, v: V) -> Result<V::Value> {
    match s {
        Cow::Borrowed(b) => v.visit_borrowed_str(b),
        Cow::Owned(o) => v.visit_string(o),
    }
}

/// A scalar's text, read as the hint asks when the wire form allows it, else by its tag.
fn scalar<'a, V: Visitor<'a>>(tag: Tag, hint: Hint, text: Cow<'a, str>, v: V) -> Result<V::Value> {
    use Tag::*;
    let textual = matches!(tag, String | Int | I4 | I8);
    match hint {
        Hint::Str if !matches!(tag, Base64 | DateTime) => return visit_text(text, v),
        Hint::I64 if textual => return v.visit_i64(parse_int(&text).map_err(DecodeError::new)?),
        Hint::U64 if textual => {
            let n = text.trim().parse::<u64>();
            return v.visit_u64(n.map_err(|_| {
                DecodeError::new(format!(
                    "expected unsigned int, found {}",
                    super::lex::snippet(&text)
                ))
            })?);
        }
        Hint::F64 if textual || tag == Double => {
            return v.visit_f64(parse_double(&text).map_err(DecodeError::new)?)
        }
        Hint::Bool if tag == String || tag == Boolean => {
            return v.visit_bool(parse_bool(&text).map_err(DecodeError::new)?)
        }
        Hint::Unit if tag == String && text.is_empty() => return v.visit_unit(),
        _ => {}
    }
    match tag {
        Int | I4 | I8 => v.visit_i64(parse_int(&text).map_err(DecodeError::new)?),
        Boolean => v.visit_bool(parse_bool(&text).map_err(DecodeError::new)?),
        Double => v.visit_f64(parse_double(&text).map_err(DecodeError::new)?),
        Base64 => v.visit_byte_buf(decode_base64(&text).map_err(DecodeError::new)?),
        DateTime => {
            // Checked here so a bad datetime fails even when the target is a plain string.
            crate::model::DateTime::parse(&text).map_err(|e| DecodeError::new(e.to_string()))?;
            visit_text(text, v)
        }
        _ => visit_text(text, v),
    }
}

macro_rules! hinted {
    ($($method:ident => $hint:ident),* $(,)?) => {
        $(fn $method<V: Visitor<'a>>(self, v: V) -> Result<V::Value> {
            self.run(Hint::$hint, v)
        })*
    };
}

impl<'a> de::Deserializer<'a> for ValueDe<'_, 'a> {
    type Error = DecodeError;

    hinted! {
        deserialize_any => Any,
        deserialize_i8 => I64, deserialize_i16 => I64, deserialize_i32 => I64, deserialize_i64 => I64,
        deserialize_u8 => U64, deserialize_u16 => U64, deserialize_u32 => U64, deserialize_u64 => U64,
        deserialize_f32 => F64, deserialize_f64 => F64,
        deserialize_bool => Bool,
        deserialize_char => Str, deserialize_str => Str, deserialize_string => Str,
        deserialize_identifier => Str,
        deserialize_unit => Unit,
        deserialize_ignored_any => Ignore,
        deserialize_bytes => Any, deserialize_byte_buf => Any,
        deserialize_seq => Any, deserialize_map => Any,
    }

    fn deserialize_option<V: Visitor<'a>>(mut self, v: V) -> Result<V::Value> {
        let pos = self.pos;
        match self.take_head().map_err(|e| e.at(pos))? {
            Head::Typed(Tag::Nil, empty) => {
                nil_body(self.lx, empty)?;
                self.lx.end_value()?;
                v.visit_none()
            }
            head => {
                self.head = Some(head);
                v.visit_some(self)
            }
        }
    }

    fn deserialize_unit_struct<V: Visitor<'a>>(self, _: &'static str, v: V) -> Result<V::Value> {
        self.run(Hint::Unit, v)
    }

    fn deserialize_newtype_struct<V: Visitor<'a>>(self, _: &'static str, v: V) -> Result<V::Value> {
        v.visit_newtype_struct(self)
    }

    fn deserialize_tuple<V: Visitor<'a>>(self, _: usize, v: V) -> Result<V::Value> {
        self.run(Hint::Any, v)
    }

    fn deserialize_tuple_struct<V: Visitor<'a>>(
        self,
        _: &'static str,
        _: usize,
        v: V,
    ) -> Result<V::Value> {
        self.run(Hint::Any, v)
    }

    fn deserialize_struct<V: Visitor<'a>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        v: V,
    ) -> Result<V::Value> {
        self.run(Hint::Any, v)
    }

    /// Unit variants from text (xapi enums are plain strings).
    fn deserialize_enum<V: Visitor<'a>>(
        mut self,
        _: &'static str,
        _: &'static [&'static str],
        v: V,
    ) -> Result<V::Value> {
        let pos = self.pos;
        let text = match self.take_head().map_err(|e| e.at(pos))? {
            Head::Text(s) => s,
            Head::Typed(Tag::String, empty) => {
                let s = if empty {
                    Cow::Borrowed("")
                } else {
                    self.lx.text(Tag::String)?
                };
                self.lx.end_value()?;
                s
            }
            head => {
                self.head = Some(head);
                return self.run(Hint::Any, v);
            }
        };
        let r = match text {
            Cow::Borrowed(b) => v.visit_enum(BorrowedStrDeserializer::<DecodeError>::new(b)),
            Cow::Owned(o) => v.visit_enum(StringDeserializer::<DecodeError>::new(o)),
        };
        r.map_err(|e| e.at(pos))
    }
}

/// Array elements; `done` once `</array>` was consumed.
struct Seq<'l, 'a> {
    lx: &'l mut Lexer<'a>,
    i: usize,
    done: bool,
}

impl Seq<'_, '_> {
    /// Reads `<data>` (or the empty forms) after a non-empty `<array>`.
    fn open(&mut self) -> Result<()> {
        match self.lx.item(Tag::Data, Tag::Array)? {
            Item::Start => Ok(()),
            Item::Empty => {
                self.done = true;
                self.lx.expect_end(Tag::Array)
            }
            Item::End => {
                self.done = true;
                Ok(())
            }
        }
    }

    /// Skips elements the visitor did not read.
    fn drain(&mut self) -> Result<()> {
        while de::SeqAccess::next_element_seed(self, PhantomData::<IgnoredAny>)?.is_some() {}
        Ok(())
    }
}

impl<'a> de::SeqAccess<'a> for Seq<'_, 'a> {
    type Error = DecodeError;

    fn next_element_seed<T: DeserializeSeed<'a>>(&mut self, seed: T) -> Result<Option<T::Value>> {
        if self.done {
            return Ok(None);
        }
        let empty = match self.lx.item(Tag::Value, Tag::Data)? {
            Item::Start => false,
            Item::Empty => true,
            Item::End => {
                self.done = true;
                self.lx.expect_end(Tag::Array)?;
                return Ok(None);
            }
        };
        let i = self.i;
        self.i += 1;
        seed.deserialize(ValueDe::new(self.lx, empty))
            .map(Some)
            .map_err(|e| prefix_path(e, &format!("[{i}]")))
    }
}

/// Struct members; `key` is the current member name, kept for error paths.
struct Map<'l, 'a> {
    lx: &'l mut Lexer<'a>,
    key: Option<Cow<'a, str>>,
    done: bool,
}

impl Map<'_, '_> {
    fn drain(&mut self) -> Result<()> {
        while de::MapAccess::next_key_seed(self, PhantomData::<IgnoredAny>)?.is_some() {
            de::MapAccess::next_value_seed(self, PhantomData::<IgnoredAny>)?;
        }
        Ok(())
    }
}

impl<'a> de::MapAccess<'a> for Map<'_, 'a> {
    type Error = DecodeError;

    fn next_key_seed<K: DeserializeSeed<'a>>(&mut self, seed: K) -> Result<Option<K::Value>> {
        if self.done {
            return Ok(None);
        }
        match self.lx.item(Tag::Member, Tag::Struct)? {
            Item::Start => {}
            Item::End => {
                self.done = true;
                return Ok(None);
            }
            Item::Empty => return Err(self.lx.empty_member()),
        }
        let pos = self.lx.pos();
        let name = member_name(self.lx)?;
        self.key = Some(name.clone());
        seed.deserialize(KeyDe { key: name })
            .map(Some)
            .map_err(|e| e.at(pos))
    }

    fn next_value_seed<V: DeserializeSeed<'a>>(&mut self, seed: V) -> Result<V::Value> {
        let key = self.key.take().unwrap_or_default();
        let with_path = |e| prefix_path(e, &format!(".{key}"));
        let empty = self.lx.expect_start(Tag::Value).map_err(with_path)?;
        let v = seed
            .deserialize(ValueDe::new(self.lx, empty))
            .map_err(with_path)?;
        self.lx.expect_end(Tag::Member)?;
        Ok(v)
    }
}

/// A member name as a map key: a string, or an int / float / bool / enum when the key type
/// asks (xapi stringifies int keys: `{"0": 1.5}` for `BTreeMap<i64, f64>`).
struct KeyDe<'a> {
    key: Cow<'a, str>,
}

impl<'a> de::Deserializer<'a> for KeyDe<'a> {
    type Error = DecodeError;

    fn deserialize_any<V: Visitor<'a>>(self, v: V) -> Result<V::Value> {
        visit_text(self.key, v)
    }
    fn deserialize_i64<V: Visitor<'a>>(self, v: V) -> Result<V::Value> {
        scalar(Tag::String, Hint::I64, self.key, v)
    }
    fn deserialize_i32<V: Visitor<'a>>(self, v: V) -> Result<V::Value> {
        self.deserialize_i64(v)
    }
    fn deserialize_i16<V: Visitor<'a>>(self, v: V) -> Result<V::Value> {
        self.deserialize_i64(v)
    }
    fn deserialize_i8<V: Visitor<'a>>(self, v: V) -> Result<V::Value> {
        self.deserialize_i64(v)
    }
    fn deserialize_u64<V: Visitor<'a>>(self, v: V) -> Result<V::Value> {
        scalar(Tag::String, Hint::U64, self.key, v)
    }
    fn deserialize_u32<V: Visitor<'a>>(self, v: V) -> Result<V::Value> {
        self.deserialize_u64(v)
    }
    fn deserialize_u16<V: Visitor<'a>>(self, v: V) -> Result<V::Value> {
        self.deserialize_u64(v)
    }
    fn deserialize_u8<V: Visitor<'a>>(self, v: V) -> Result<V::Value> {
        self.deserialize_u64(v)
    }
    fn deserialize_f64<V: Visitor<'a>>(self, v: V) -> Result<V::Value> {
        scalar(Tag::String, Hint::F64, self.key, v)
    }
    fn deserialize_f32<V: Visitor<'a>>(self, v: V) -> Result<V::Value> {
        self.deserialize_f64(v)
    }
    fn deserialize_bool<V: Visitor<'a>>(self, v: V) -> Result<V::Value> {
        scalar(Tag::String, Hint::Bool, self.key, v)
    }
    fn deserialize_option<V: Visitor<'a>>(self, v: V) -> Result<V::Value> {
        v.visit_some(self)
    }
    fn deserialize_newtype_struct<V: Visitor<'a>>(self, _: &'static str, v: V) -> Result<V::Value> {
        v.visit_newtype_struct(self)
    }
    fn deserialize_enum<V: Visitor<'a>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        v: V,
    ) -> Result<V::Value> {
        match self.key {
            Cow::Borrowed(b) => v.visit_enum(BorrowedStrDeserializer::<DecodeError>::new(b)),
            Cow::Owned(o) => v.visit_enum(StringDeserializer::<DecodeError>::new(o)),
        }
    }
    fn deserialize_ignored_any<V: Visitor<'a>>(self, v: V) -> Result<V::Value> {
        v.visit_unit()
    }

    forward_to_deserialize_any! {
        <W: Visitor<'a>>
        char str string bytes byte_buf unit unit_struct seq tuple tuple_struct map struct
        identifier i128 u128
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;
    use crate::rpc::Limits;

    #[test]
    fn borrows_text_that_needs_no_unescaping() {
        #[derive(Deserialize)]
        struct W<'a> {
            #[serde(borrow)]
            a: Cow<'a, str>,
            #[serde(borrow)]
            b: Cow<'a, str>,
        }
        let xml = "<value><struct><member><name>a</name><value>plain</value></member>\
                   <member><name>b</name><value>x&amp;y</value></member></struct></value>";
        let mut lx = Lexer::new(xml.as_bytes(), Limits::default()).unwrap();
        let empty = lx.expect_start(Tag::Value).unwrap();
        let w = W::deserialize(ValueDe::new(&mut lx, empty)).unwrap();
        assert!(matches!(w.a, Cow::Borrowed("plain")));
        assert!(matches!(w.b, Cow::Owned(ref s) if s == "x&y"));
    }
}
