//! The few XAPI calls the watcher makes, on the [`Client`]: the client logs in again on
//! `SESSION_INVALID` and follows the master by itself, so the watcher only sees errors that
//! outlived those retries.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};

use super::record::{Record, TypedRecord};
use crate::client::{Client, Error};
use crate::model::{visit_class, ClassVisitor, Value, XapiRecord};
use crate::rpc::{Call, DecodeError};

/// `event.inject(class, ref)`: touches the object and returns a token from just before.
pub(crate) fn inject(client: &Client, class: &str, r: &str) -> Result<String, Error> {
    let call = Call::<String>::new("event.inject", vec![class.into(), r.into()]);
    client.call(call)
}

/// `<class>.get_all_records()`: every object of the class as `(ref, record)`. Known
/// classes are decoded straight from the reply into their record type (no dynamic value in
/// between); if that fails (a newer host's shape), the listing is decoded record by record.
pub(crate) fn get_all_records(
    client: &Client,
    class: &str,
    typed: bool,
) -> Result<Vec<(String, Record)>, Error> {
    struct Typed<'a>(&'a Client, &'a str);
    impl ClassVisitor for Typed<'_> {
        type Output = Result<Vec<(String, Record)>, Error>;
        fn visit<T: XapiRecord>(self) -> Self::Output {
            let call = Call::<Pairs<T>>::new(format!("{}.get_all_records", self.1), vec![]);
            let pairs = self.0.call(call)?.0;
            let wrap = |(r, t)| (r, Record::Typed(TypedRecord::new(t)));
            Ok(pairs.into_iter().map(wrap).collect())
        }
    }
    if !typed {
        return get_all_dynamic(client, class, false);
    }
    match visit_class(class, Typed(client, class)) {
        Some(Err(Error::Protocol { .. })) | None => get_all_dynamic(client, class, true),
        Some(result) => result,
    }
}

fn get_all_dynamic(
    client: &Client,
    class: &str,
    typed: bool,
) -> Result<Vec<(String, Record)>, Error> {
    let method = format!("{class}.get_all_records");
    match client.call_value(&method, vec![])? {
        Value::Struct(s) => Ok(s
            .0
            .into_iter()
            .map(|(r, v)| (r, record(class, v, typed)))
            .collect()),
        other => Err(unexpected(&method, &other)),
    }
}

/// `<class>.get_record(ref)`; `None` when the object is gone (`HANDLE_INVALID`).
pub(crate) fn get_record(
    client: &Client,
    class: &str,
    r: &str,
    typed: bool,
) -> Result<Option<Record>, Error> {
    let method = format!("{class}.get_record");
    match client.call_value(&method, vec![r.into()]) {
        Ok(v @ Value::Struct(_)) => Ok(Some(record(class, v, typed))),
        Ok(other) => Err(unexpected(&method, &other)),
        Err(e) if e.api_code() == Some("HANDLE_INVALID") => Ok(None),
        Err(e) => Err(e),
    }
}

/// `v` decoded as `class`'s type when `typed`, else as sent.
pub(crate) fn record(class: &str, v: Value, typed: bool) -> Record {
    if typed {
        Record::decode(class, v)
    } else {
        Record::Dynamic(v)
    }
}

/// A `ref → record` map decoded into a list (order kept, no hashing).
struct Pairs<T>(Vec<(String, T)>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Pairs<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Pairs<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of refs to records")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Pairs<T>, A::Error> {
                let mut out = Vec::with_capacity(map.size_hint().unwrap_or(0).min(1 << 16));
                while let Some(pair) = map.next_entry::<String, T>()? {
                    out.push(pair);
                }
                Ok(Pairs(out))
            }
        }
        d.deserialize_map(V(PhantomData))
    }
}

/// The pool's ref (`pool.get_all`, first entry).
pub(crate) fn pool_ref(client: &Client) -> Result<String, Error> {
    let pools = client.call(Call::<Vec<String>>::new("pool.get_all", vec![]))?;
    pools.into_iter().next().ok_or_else(|| Error::Protocol {
        method: "pool.get_all".into(),
        source: DecodeError::new("no pool object"),
    })
}

/// `event.from(classes, token, timeout)`: the raw batch struct.
pub(crate) fn event_from(
    client: &Client,
    classes: &[String],
    token: &str,
    timeout: f64,
) -> Result<Value, Error> {
    let classes = Value::Array(classes.iter().map(|c| Value::from(c.as_str())).collect());
    let params = vec![classes, token.into(), Value::Double(timeout)];
    client.call_value("event.from", params)
}

fn unexpected(method: &str, v: &Value) -> Error {
    Error::Protocol {
        method: method.to_owned(),
        source: DecodeError::new(format!("unexpected {}", v.kind())),
    }
}

/// Shortens server text before it goes into an error message.
pub(crate) fn clip(s: &str) -> impl fmt::Display + '_ {
    struct Clip<'a>(&'a str);
    impl fmt::Display for Clip<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self.0.char_indices().nth(80) {
                Some((i, _)) => write!(f, "{:?}…", &self.0[..i]),
                None => write!(f, "{:?}", self.0),
            }
        }
    }
    Clip(s)
}
