//! The few XAPI calls the watcher makes, on the [`Client`]: the client logs in again on
//! `SESSION_INVALID` and follows the master by itself, so the watcher only sees errors that
//! outlived those retries.

use std::fmt;

use crate::client::{Client, Error};
use crate::model::Value;
use crate::rpc::{Call, DecodeError};

/// `event.inject(class, ref)`: touches the object and returns a token from just before.
pub(crate) fn inject(client: &Client, class: &str, r: &str) -> Result<String, Error> {
    let call = Call::<String>::new("event.inject", vec![class.into(), r.into()]);
    client.call(call)
}

/// `<class>.get_all_records()`: every object of the class as `(ref, record)`.
pub(crate) fn get_all_records(client: &Client, class: &str) -> Result<Vec<(String, Value)>, Error> {
    let method = format!("{class}.get_all_records");
    match client.call_value(&method, vec![])? {
        Value::Struct(s) => Ok(s.0),
        other => Err(unexpected(&method, &other)),
    }
}

/// `<class>.get_record(ref)`; `None` when the object is gone (`HANDLE_INVALID`).
pub(crate) fn get_record(client: &Client, class: &str, r: &str) -> Result<Option<Value>, Error> {
    let method = format!("{class}.get_record");
    match client.call_value(&method, vec![r.into()]) {
        Ok(v @ Value::Struct(_)) => Ok(Some(v)),
        Ok(other) => Err(unexpected(&method, &other)),
        Err(e) if e.api_code() == Some("HANDLE_INVALID") => Ok(None),
        Err(e) => Err(e),
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
