//! One scan over the input before serde_json sees it: size, UTF-8 and depth limits, and the
//! rewrite of xapi's bare `NaN` / `Infinity` / `-Infinity` into sentinel strings.
//!
//! The scan jumps over string contents with memchr, so it costs little next to the parse.
//! Input without non-finite floats (nearly all of it) is passed on without a copy.

use std::borrow::Cow;

use crate::rpc::{DecodeError, Limits};

/// JSON text of the sentinels in `model::float_sentinel` (a string starting with NUL).
const NAN: &[u8] = b"\"\\u0000xo:NaN\"";
const INF: &[u8] = b"\"\\u0000xo:Infinity\"";
const NEG_INF: &[u8] = b"\"\\u0000xo:-Infinity\"";

/// Nesting the envelope adds around the values: the envelope object and the params array.
const ENVELOPE_LEVELS: usize = 2;

/// The input ready for serde_json, plus what is needed to map offsets back.
pub(super) struct Prepared<'a> {
    pub bytes: Cow<'a, [u8]>,
    /// For each rewrite: (its end in the rewritten bytes, bytes added so far).
    shifts: Vec<(usize, usize)>,
}

impl Prepared<'_> {
    /// Maps an offset in the rewritten bytes back to the caller's input.
    pub fn original_offset(&self, at: usize) -> usize {
        let i = self.shifts.partition_point(|&(end, _)| end <= at);
        let before = if i == 0 { 0 } else { self.shifts[i - 1].1 };
        at.saturating_sub(before)
    }
}

/// Bytes that need a look outside strings.
static SPECIAL: [bool; 256] = {
    let mut t = [false; 256];
    t[b'"' as usize] = true;
    t[b'[' as usize] = true;
    t[b'{' as usize] = true;
    t[b']' as usize] = true;
    t[b'}' as usize] = true;
    t[b'N' as usize] = true;
    t[b'I' as usize] = true;
    t
};

/// Checks limits and rewrites non-finite float literals.
pub(super) fn prepare(input: &[u8], limits: Limits) -> Result<Prepared<'_>, DecodeError> {
    if input.len() > limits.max_size {
        return Err(DecodeError::new(format!(
            "document of {} bytes exceeds the limit of {} bytes",
            input.len(),
            limits.max_size
        )));
    }
    if let Err(e) = std::str::from_utf8(input) {
        return Err(DecodeError::new("invalid UTF-8").at(e.valid_up_to() as u64));
    }
    let max_depth = limits.max_depth.saturating_add(ENVELOPE_LEVELS);
    let n = input.len();
    let mut rewrites: Vec<(usize, usize, &'static [u8])> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < n {
        while i < n && !SPECIAL[input[i] as usize] {
            i += 1;
        }
        let Some(&b) = input.get(i) else { break };
        match b {
            b'"' => {
                i = skip_string(input, i + 1);
                continue;
            }
            b'[' | b'{' => {
                depth += 1;
                if depth > max_depth {
                    return Err(DecodeError::new(format!(
                        "nesting deeper than {} levels ({} for values, {ENVELOPE_LEVELS} for the envelope)",
                        max_depth, limits.max_depth
                    ))
                    .at(i as u64));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            b'N' if is_token(input, i, b"NaN") => {
                rewrites.push((i, 3, NAN));
                i += 3;
                continue;
            }
            b'I' if is_token(input, i, b"Infinity") => {
                if i > 0 && input[i - 1] == b'-' {
                    rewrites.push((i - 1, 9, NEG_INF));
                } else {
                    rewrites.push((i, 8, INF));
                }
                i += 8;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    if rewrites.is_empty() {
        return Ok(Prepared {
            bytes: Cow::Borrowed(input),
            shifts: Vec::new(),
        });
    }
    let mut out = Vec::with_capacity(n + rewrites.len() * 12);
    let mut shifts = Vec::with_capacity(rewrites.len());
    let mut copied = 0;
    for (start, len, with) in rewrites {
        out.extend_from_slice(&input[copied..start]);
        out.extend_from_slice(with);
        copied = start + len;
        shifts.push((out.len(), out.len() - copied));
    }
    out.extend_from_slice(&input[copied..]);
    Ok(Prepared {
        bytes: Cow::Owned(out),
        shifts,
    })
}

/// The index just past the string's closing quote (`from` is just past the opening one), or
/// the end of input for an unterminated string (serde_json reports that).
fn skip_string(input: &[u8], mut from: usize) -> usize {
    loop {
        match memchr::memchr2(b'"', b'\\', input.get(from..).unwrap_or_default()) {
            None => return input.len(),
            Some(k) if input[from + k] == b'\\' => from += k + 2,
            Some(k) => return from + k + 1,
        }
    }
}

/// `tok` at `i`, not followed by more of an identifier (`NaNa` is left for serde_json to refuse).
fn is_token(input: &[u8], i: usize, tok: &[u8]) -> bool {
    input[i..].starts_with(tok)
        && !input
            .get(i + tok.len())
            .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(s: &str) -> String {
        let p = prepare(s.as_bytes(), Limits::default()).unwrap();
        String::from_utf8(p.bytes.into_owned()).unwrap()
    }

    #[test]
    fn rewrites_only_bare_literals() {
        assert_eq!(run(r#"[1,"NaN",2]"#), r#"[1,"NaN",2]"#);
        assert_eq!(
            run(r#"[NaN,Infinity,-Infinity]"#),
            r#"["\u0000xo:NaN","\u0000xo:Infinity","\u0000xo:-Infinity"]"#
        );
        assert_eq!(run(r#"{"a\"NaN":NaN}"#), r#"{"a\"NaN":"\u0000xo:NaN"}"#);
        assert_eq!(run(r#"["\\",NaN]"#), r#"["\\","\u0000xo:NaN"]"#);
        assert_eq!(run("[NaNx]"), "[NaNx]");
        assert!(matches!(
            prepare(b"[1,2]", Limits::default()).unwrap().bytes,
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn maps_offsets_back() {
        let p = prepare(b"[NaN,NaN,x]", Limits::default()).unwrap();
        let text = std::str::from_utf8(&p.bytes).unwrap();
        let x = text.rfind('x').unwrap();
        assert_eq!(p.original_offset(x), 9);
        assert_eq!(p.original_offset(0), 0);
    }

    #[test]
    fn limits() {
        let tight = Limits {
            max_depth: 2,
            max_size: 100,
        };
        assert!(prepare(b"[[[[1]]]]", tight).is_ok());
        let e = prepare(b"[[[[[1]]]]]", tight).err().unwrap();
        assert_eq!(e.offset, Some(4));
        // Brackets inside strings do not count.
        assert!(prepare(br#"["[[[[[[[["]"#, tight).is_ok());
        assert!(prepare(&[b' '; 101], tight)
            .err()
            .unwrap()
            .message
            .contains("exceeds"));
        let e = prepare(b"[\"a\xff\"]", tight).err().unwrap();
        assert_eq!((e.message.as_str(), e.offset), ("invalid UTF-8", Some(3)));
    }
}
