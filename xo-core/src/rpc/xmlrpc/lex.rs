//! The token layer shared by the `Value` reader and the serde deserializer: quick-xml events
//! over the input slice, reduced to the XML-RPC tags, with text borrowed from the input.

use std::borrow::Cow;

use quick_xml::events::{BytesRef, Event};
use quick_xml::Reader;

use crate::rpc::{DecodeError, Limits};

/// Every element XML-RPC uses; anything else is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tag {
    MethodCall,
    MethodName,
    MethodResponse,
    Params,
    Param,
    Fault,
    Value,
    String,
    Int,
    I4,
    I8,
    Boolean,
    Double,
    DateTime,
    Base64,
    Nil,
    Array,
    Data,
    Struct,
    Member,
    Name,
}

impl Tag {
    /// Byte-wise slice patterns compile to a decision tree, cheaper than a chain of memcmp
    /// calls; this runs for every start tag.
    #[inline(always)]
    fn from_name(name: &[u8]) -> Option<Tag> {
        Some(match *name {
            [b'v', b'a', b'l', b'u', b'e'] => Tag::Value,
            [b'm', b'e', b'm', b'b', b'e', b'r'] => Tag::Member,
            [b'n', b'a', b'm', b'e'] => Tag::Name,
            [b's', b't', b'r', b'u', b'c', b't'] => Tag::Struct,
            [b'a', b'r', b'r', b'a', b'y'] => Tag::Array,
            [b'd', b'a', b't', b'a'] => Tag::Data,
            [b's', b't', b'r', b'i', b'n', b'g'] => Tag::String,
            [b'i', b'n', b't'] => Tag::Int,
            [b'i', b'4'] => Tag::I4,
            [b'i', b'8'] => Tag::I8,
            [b'b', b'o', b'o', b'l', b'e', b'a', b'n'] => Tag::Boolean,
            [b'd', b'o', b'u', b'b', b'l', b'e'] => Tag::Double,
            [b'd', b'a', b't', b'e', b'T', b'i', b'm', b'e', b'.', b'i', b's', b'o', b'8', b'6', b'0', b'1'] => {
                Tag::DateTime
            }
            [b'b', b'a', b's', b'e', b'6', b'4'] => Tag::Base64,
            [b'n', b'i', b'l'] => Tag::Nil,
            [b'm', b'e', b't', b'h', b'o', b'd', b'C', b'a', b'l', b'l'] => Tag::MethodCall,
            [b'm', b'e', b't', b'h', b'o', b'd', b'N', b'a', b'm', b'e'] => Tag::MethodName,
            [b'm', b'e', b't', b'h', b'o', b'd', b'R', b'e', b's', b'p', b'o', b'n', b's', b'e'] => {
                Tag::MethodResponse
            }
            [b'p', b'a', b'r', b'a', b'm', b's'] => Tag::Params,
            [b'p', b'a', b'r', b'a', b'm'] => Tag::Param,
            [b'f', b'a', b'u', b'l', b't'] => Tag::Fault,
            _ => return None,
        })
    }

    #[inline(always)]
    pub(crate) fn name(self) -> &'static str {
        match self {
            Tag::MethodCall => "methodCall",
            Tag::MethodName => "methodName",
            Tag::MethodResponse => "methodResponse",
            Tag::Params => "params",
            Tag::Param => "param",
            Tag::Fault => "fault",
            Tag::Value => "value",
            Tag::String => "string",
            Tag::Int => "int",
            Tag::I4 => "i4",
            Tag::I8 => "i8",
            Tag::Boolean => "boolean",
            Tag::Double => "double",
            Tag::DateTime => "dateTime.iso8601",
            Tag::Base64 => "base64",
            Tag::Nil => "nil",
            Tag::Array => "array",
            Tag::Data => "data",
            Tag::Struct => "struct",
            Tag::Member => "member",
            Tag::Name => "name",
        }
    }

    /// Tags that may appear directly inside `<value>`.
    #[inline(always)]
    fn is_type(self) -> bool {
        matches!(
            self,
            Tag::String
                | Tag::Int
                | Tag::I4
                | Tag::I8
                | Tag::Boolean
                | Tag::Double
                | Tag::DateTime
                | Tag::Base64
                | Tag::Nil
                | Tag::Array
                | Tag::Struct
        )
    }
}

/// A structural event: text between elements is checked and dropped by [`Lexer::next`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ev {
    Start(Tag),
    Empty(Tag),
    End(Tag),
    Eof,
}

impl Ev {
    fn describe(self) -> String {
        match self {
            Ev::Start(t) => format!("<{}>", t.name()),
            Ev::Empty(t) => format!("<{}/>", t.name()),
            Ev::End(t) => format!("</{}>", t.name()),
            Ev::Eof => "end of document".into(),
        }
    }
}

/// What [`Lexer::item`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Item {
    /// `<member>` / `<value>`
    Start,
    /// `<value/>` (`<member/>` is refused by the caller)
    Empty,
    /// `</struct>` / `</data>`
    End,
}

/// `<tag>` without attributes: the form every xapi element has.
#[inline(always)]
fn is_plain(e: &quick_xml::events::BytesStart<'_>, tag: Tag) -> bool {
    e.name().as_ref() == tag.name().as_bytes() && e.attributes_raw().is_empty()
}

/// What a `<value>` holds, once its start tag is read.
pub(crate) enum Head<'a> {
    /// Untagged text; `</value>` has been consumed.
    Text(Cow<'a, str>),
    /// A typed child; its start tag (or empty tag when the flag is set) has been consumed.
    Typed(Tag, bool),
}

pub(crate) struct Lexer<'a> {
    src: &'a str,
    rd: Reader<&'a [u8]>,
    depth: usize,
    max_depth: usize,
    /// Open elements while skipping an ignored subtree (reused between skips).
    skipping: Vec<Tag>,
}

/// Text made of one borrowed piece in the common case, owned once it needs joining.
#[derive(Default)]
struct Acc<'a>(Option<Cow<'a, str>>);

impl<'a> Acc<'a> {
    /// Appends a piece. `left` bounds the bytes still to come; it is asked once, when the
    /// text stops being a single borrowed piece, so joining allocates once.
    fn push(&mut self, s: Cow<'a, str>, left: impl FnOnce() -> usize) {
        if self.0.is_none() {
            self.0 = Some(s);
        } else {
            self.owned(|| left() + s.len()).push_str(&s);
        }
    }

    fn push_char(&mut self, ch: char, left: impl FnOnce() -> usize) {
        self.owned(|| left() + ch.len_utf8()).push(ch);
    }

    fn owned(&mut self, more: impl FnOnce() -> usize) -> &mut String {
        let c = self.0.get_or_insert(Cow::Borrowed(""));
        if let Cow::Borrowed(b) = *c {
            let mut s = String::with_capacity(b.len() + more());
            s.push_str(b);
            *c = Cow::Owned(s);
        }
        c.to_mut()
    }

    fn is_blank(&self) -> bool {
        self.0.as_deref().is_none_or(|s| s.bytes().all(is_ws))
    }
    fn finish(self) -> Cow<'a, str> {
        self.0.unwrap_or(Cow::Borrowed(""))
    }
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// A short, printable excerpt of offending text for error messages.
pub(crate) fn snippet(s: &str) -> String {
    let t: String = s.chars().take(40).collect();
    if t.len() < s.len() {
        format!("{t:?}…")
    } else {
        format!("{t:?}")
    }
}

impl<'a> Lexer<'a> {
    /// Checks size and UTF-8 once, up front; everything later borrows from `src`.
    pub(crate) fn new(bytes: &'a [u8], limits: Limits) -> Result<Self, DecodeError> {
        if bytes.len() > limits.max_size {
            return Err(DecodeError::new(format!(
                "document is {} bytes, over the limit of {}",
                bytes.len(),
                limits.max_size
            )));
        }
        let src = std::str::from_utf8(bytes)
            .map_err(|e| DecodeError::new("invalid UTF-8").at(e.valid_up_to() as u64))?;
        let mut rd = Reader::from_str(src);
        let cfg = rd.config_mut();
        cfg.trim_text(false);
        // End tags are checked by the decoders, which always know which element is open;
        // quick-xml's own name stack would only duplicate that work.
        cfg.check_end_names = false;
        cfg.expand_empty_elements = false;
        cfg.allow_dangling_amp = false;
        cfg.allow_unmatched_ends = false;
        // `</value >` is legal XML but nobody writes it: the fast paths compare the raw name
        // and the slow path trims (`end_tag`), instead of quick-xml trimming every end tag.
        cfg.trim_markup_names_in_closing_tags = false;
        let mut lx = Lexer {
            src,
            rd,
            depth: 0,
            max_depth: limits.max_depth,
            skipping: Vec::new(),
        };
        // The declaration may only open the document: consume it here, so that every later
        // read can treat a declaration as an error without tracking where it is.
        if src
            .strip_prefix('\u{feff}')
            .unwrap_or(src)
            .starts_with("<?xml")
        {
            match lx.raw()? {
                Event::Decl(_) | Event::PI(_) => {}
                Event::DocType(_) => return Err(lx.doctype()),
                _ => return Err(lx.err("malformed XML declaration")),
            }
        }
        Ok(lx)
    }

    pub(crate) fn pos(&self) -> u64 {
        self.rd.buffer_position()
    }

    pub(crate) fn err(&self, msg: impl Into<String>) -> DecodeError {
        DecodeError::new(msg).at(self.pos())
    }

    #[cold]
    fn doctype(&self) -> DecodeError {
        self.err("DOCTYPE is not allowed (entities are never expanded)")
    }

    #[cold]
    fn malformed(&self, e: quick_xml::Error) -> DecodeError {
        DecodeError::new(format!("malformed XML: {e}")).at(self.rd.error_position())
    }

    /// One quick-xml event. The fast paths below match the events a xapi reply is made of
    /// and hand anything else to [`Lexer::classify`].
    #[inline(always)]
    fn raw(&mut self) -> Result<Event<'a>, DecodeError> {
        match self.rd.read_event() {
            Ok(ev) => Ok(ev),
            Err(e) => Err(self.malformed(e)),
        }
    }

    /// Any event reduced to a structural one: `None` for what may sit between elements
    /// (whitespace, comments, processing instructions), an error for anything else.
    #[inline(never)]
    fn classify(&self, ev: Event<'a>) -> Result<Option<Ev>, DecodeError> {
        match ev {
            Event::Start(e) => self
                .tag(e.name().as_ref(), e.attributes_raw())
                .map(|t| Some(Ev::Start(t))),
            Event::Empty(e) => self
                .tag(e.name().as_ref(), e.attributes_raw())
                .map(|t| Some(Ev::Empty(t))),
            Event::End(e) => self.end_tag(e.name().as_ref()).map(|t| Some(Ev::End(t))),
            Event::Text(t) => {
                if t.iter().all(|&b| is_ws(b)) {
                    Ok(None)
                } else {
                    let text = String::from_utf8_lossy(&t);
                    Err(self.err(format!("unexpected text {}", snippet(text.trim()))))
                }
            }
            Event::CData(_) | Event::GeneralRef(_) => {
                Err(self.err("unexpected text between elements"))
            }
            Event::Comment(_) | Event::PI(_) => Ok(None),
            Event::Decl(_) => Err(self.err("XML declaration is only allowed at the start")),
            Event::DocType(_) => Err(self.doctype()),
            Event::Eof => Ok(Some(Ev::Eof)),
        }
    }

    /// The structural event after `ev` and whatever may be skipped behind it.
    #[inline(never)]
    fn settle(&mut self, mut ev: Event<'a>) -> Result<Ev, DecodeError> {
        loop {
            match self.classify(ev)? {
                Some(found) => return Ok(found),
                None => ev = self.raw()?,
            }
        }
    }

    /// The text of an event, borrowed from the input when quick-xml handed out a sub-slice.
    #[inline(always)]
    fn text_of(&self, raw: Cow<'a, [u8]>) -> Result<Cow<'a, str>, DecodeError> {
        match raw {
            Cow::Borrowed(b) => {
                let start = (b.as_ptr() as usize).wrapping_sub(self.src.as_ptr() as usize);
                match start
                    .checked_add(b.len())
                    .and_then(|end| self.src.get(start..end))
                {
                    Some(s) => Ok(Cow::Borrowed(s)),
                    None => std::str::from_utf8(b)
                        .map(|s| Cow::Owned(s.to_owned()))
                        .map_err(|_| self.err("invalid UTF-8")),
                }
            }
            Cow::Owned(v) => String::from_utf8(v)
                .map(Cow::Owned)
                .map_err(|_| self.err("invalid UTF-8")),
        }
    }

    /// Bytes up to the next `<`: what is left of the current text at most, so a text that
    /// must be joined from pieces (entity references) is allocated once.
    fn text_left(&self) -> usize {
        let rest = self
            .src
            .as_bytes()
            .get(self.pos() as usize..)
            .unwrap_or_default();
        memchr::memchr(b'<', rest).unwrap_or(rest.len())
    }

    fn resolve(&self, r: &BytesRef<'_>) -> Result<char, DecodeError> {
        if r.is_char_ref() {
            return match r.resolve_char_ref() {
                Ok(Some(c)) => Ok(c),
                _ => Err(self.err(format!(
                    "invalid character reference &{};",
                    String::from_utf8_lossy(r)
                ))),
            };
        }
        Ok(match &**r {
            b"lt" => '<',
            b"gt" => '>',
            b"amp" => '&',
            b"apos" => '\'',
            b"quot" => '"',
            other => {
                let name = String::from_utf8_lossy(other);
                return Err(self.err(format!(
                    "unknown entity &{};",
                    snippet(&name).trim_matches('"')
                )));
            }
        })
    }

    fn tag(&self, name: &[u8], attrs: &[u8]) -> Result<Tag, DecodeError> {
        let tag = Tag::from_name(name)
            .ok_or_else(|| self.err(format!("unknown tag <{}>", String::from_utf8_lossy(name))))?;
        if !attrs.iter().all(|&b| is_ws(b)) {
            return Err(self.err(format!("unexpected attributes on <{}>", tag.name())));
        }
        Ok(tag)
    }

    fn end_tag(&self, name: &[u8]) -> Result<Tag, DecodeError> {
        let name = name.trim_ascii_end();
        Tag::from_name(name).ok_or_else(|| {
            self.err(format!(
                "unexpected end tag </{}>",
                String::from_utf8_lossy(name)
            ))
        })
    }

    /// The next structural event; whitespace, comments and processing instructions between
    /// elements are skipped, any other text is an error.
    pub(crate) fn next(&mut self) -> Result<Ev, DecodeError> {
        let ev = self.raw()?;
        self.settle(ev)
    }

    pub(crate) fn unexpected(&self, found: Ev, wanted: &str) -> DecodeError {
        let msg = match found {
            Ev::Eof => format!("truncated document: expected {wanted}, found end of document"),
            f => format!("expected {wanted}, found {}", f.describe()),
        };
        self.err(msg)
    }

    /// Expects `<tag>` or `<tag/>`; returns true for the empty form.
    #[inline(always)]
    pub(crate) fn expect_start(&mut self, tag: Tag) -> Result<bool, DecodeError> {
        match self.raw()? {
            Event::Start(e) if is_plain(&e, tag) => Ok(false),
            ev => self.expect_start_slow(ev, tag),
        }
    }

    #[inline(never)]
    fn expect_start_slow(&mut self, ev: Event<'a>, tag: Tag) -> Result<bool, DecodeError> {
        match self.settle(ev)? {
            Ev::Start(t) if t == tag => Ok(false),
            Ev::Empty(t) if t == tag => Ok(true),
            other => Err(self.unexpected(other, &format!("<{}>", tag.name()))),
        }
    }

    #[inline(always)]
    pub(crate) fn expect_end(&mut self, tag: Tag) -> Result<(), DecodeError> {
        match self.raw()? {
            Event::End(e) if e.name().as_ref() == tag.name().as_bytes() => Ok(()),
            ev => self.expect_end_slow(ev, tag),
        }
    }

    #[inline(never)]
    fn expect_end_slow(&mut self, ev: Event<'a>, tag: Tag) -> Result<(), DecodeError> {
        match self.settle(ev)? {
            Ev::End(t) if t == tag => Ok(()),
            other => Err(self.unexpected(other, &format!("</{}>", tag.name()))),
        }
    }

    /// The next item of a list (`<member>` in a struct, `<value>` in `<data>`) or the end
    /// of the list (`</struct>`, `</data>`).
    #[inline(always)]
    pub(crate) fn item(&mut self, open: Tag, close: Tag) -> Result<Item, DecodeError> {
        match self.raw()? {
            Event::Start(e) if is_plain(&e, open) => Ok(Item::Start),
            Event::End(e) if e.name().as_ref() == close.name().as_bytes() => Ok(Item::End),
            ev => self.item_slow(ev, open, close),
        }
    }

    #[inline(never)]
    fn item_slow(&mut self, ev: Event<'a>, open: Tag, close: Tag) -> Result<Item, DecodeError> {
        match self.settle(ev)? {
            Ev::Start(t) if t == open => Ok(Item::Start),
            Ev::Empty(t) if t == open => Ok(Item::Empty),
            Ev::End(t) if t == close => Ok(Item::End),
            other => {
                Err(self.unexpected(other, &format!("<{}> or </{}>", open.name(), close.name())))
            }
        }
    }

    /// `<member/>`, which [`Lexer::item`] reports as [`Item::Empty`].
    #[cold]
    pub(crate) fn empty_member(&self) -> DecodeError {
        self.unexpected(Ev::Empty(Tag::Member), "<member> or </struct>")
    }

    /// After the root element closed: only whitespace, comments and PIs may follow.
    pub(crate) fn expect_eof(&mut self) -> Result<(), DecodeError> {
        match self.next() {
            Ok(Ev::Eof) => Ok(()),
            Ok(other) => Err(self.err(format!(
                "trailing {} after the root element",
                other.describe()
            ))),
            Err(mut e) => {
                e.message = format!("trailing content after the root element: {}", e.message);
                Err(e)
            }
        }
    }

    /// Collects text pieces, starting with `acc` and the event `ev`, until an element
    /// event; returns the text and that event.
    #[inline(never)]
    fn gather(
        &mut self,
        mut acc: Acc<'a>,
        mut ev: Event<'a>,
    ) -> Result<(Acc<'a>, Ev), DecodeError> {
        loop {
            match ev {
                Event::Text(t) => {
                    let piece = self.text_of(t.into_inner())?;
                    acc.push(piece, || self.text_left());
                }
                Event::CData(t) => {
                    let piece = self.text_of(t.into_inner())?;
                    acc.push(piece, || self.text_left());
                }
                Event::GeneralRef(r) => {
                    let ch = self.resolve(&r)?;
                    acc.push_char(ch, || self.text_left());
                }
                Event::Comment(_) | Event::PI(_) => {}
                ev => {
                    let found = self.settle(ev)?;
                    return Ok((acc, found));
                }
            }
            ev = self.raw()?;
        }
    }

    /// The text content of a leaf element whose start tag was just read, through its end tag.
    #[inline(always)]
    pub(crate) fn text(&mut self, tag: Tag) -> Result<Cow<'a, str>, DecodeError> {
        match self.raw()? {
            Event::Text(t) => {
                let s = self.text_of(t.into_inner())?;
                match self.raw()? {
                    Event::End(e) if e.name().as_ref() == tag.name().as_bytes() => Ok(s),
                    ev => self.text_slow(Acc(Some(s)), ev, tag),
                }
            }
            Event::End(e) if e.name().as_ref() == tag.name().as_bytes() => Ok(Cow::Borrowed("")),
            ev => self.text_slow(Acc::default(), ev, tag),
        }
    }

    #[inline(never)]
    fn text_slow(
        &mut self,
        acc: Acc<'a>,
        ev: Event<'a>,
        tag: Tag,
    ) -> Result<Cow<'a, str>, DecodeError> {
        match self.gather(acc, ev)? {
            (acc, Ev::End(t)) if t == tag => Ok(acc.finish()),
            (_, other) => Err(self.unexpected(other, &format!("text or </{}>", tag.name()))),
        }
    }

    /// Reads what follows `<value>`: untagged text (through `</value>`) or a typed child's
    /// start tag. Whitespace around a typed child is ignored; other text is an error.
    #[inline(always)]
    pub(crate) fn value_head(&mut self) -> Result<Head<'a>, DecodeError> {
        match self.raw()? {
            Event::Text(t) => {
                let s = self.text_of(t.into_inner())?;
                match self.raw()? {
                    Event::End(e) if e.name().as_ref() == b"value" => Ok(Head::Text(s)),
                    ev => self.value_head_slow(Acc(Some(s)), ev),
                }
            }
            Event::Start(e) => match Tag::from_name(e.name().as_ref()) {
                Some(t) if t.is_type() && e.attributes_raw().is_empty() => {
                    Ok(Head::Typed(t, false))
                }
                _ => self.value_head_slow(Acc::default(), Event::Start(e)),
            },
            Event::End(e) if e.name().as_ref() == b"value" => Ok(Head::Text(Cow::Borrowed(""))),
            ev => self.value_head_slow(Acc::default(), ev),
        }
    }

    #[inline(never)]
    fn value_head_slow(&mut self, acc: Acc<'a>, ev: Event<'a>) -> Result<Head<'a>, DecodeError> {
        let (acc, ev) = self.gather(acc, ev)?;
        match ev {
            Ev::End(Tag::Value) => Ok(Head::Text(acc.finish())),
            Ev::Start(t) | Ev::Empty(t) if t.is_type() => {
                if !acc.is_blank() {
                    return Err(self.err(format!(
                        "text {} mixed with <{}> inside <value>",
                        snippet(acc.finish().trim()),
                        t.name()
                    )));
                }
                Ok(Head::Typed(t, matches!(ev, Ev::Empty(_))))
            }
            other => Err(self.unexpected(other, "a typed value, text or </value>")),
        }
    }

    /// Skips whitespace after a typed child and consumes `</value>`.
    #[inline(always)]
    pub(crate) fn end_value(&mut self) -> Result<(), DecodeError> {
        self.expect_end(Tag::Value)
    }

    /// Skips the rest of an element whose start tag was just read (unknown record fields).
    /// Tags, nesting and entity references are still checked; scalar text is not parsed.
    pub(crate) fn skip(&mut self, tag: Tag) -> Result<(), DecodeError> {
        let limit = 3 * self.max_depth + 8;
        let mut open = std::mem::take(&mut self.skipping);
        open.clear();
        open.push(tag);
        let r = loop {
            match self.raw()? {
                Event::Start(e) => {
                    let t = self.tag(e.name().as_ref(), e.attributes_raw())?;
                    if open.len() >= limit {
                        break Err(self.err(format!(
                            "values nested deeper than the limit of {}",
                            self.max_depth
                        )));
                    }
                    open.push(t);
                }
                Event::Empty(e) => {
                    self.tag(e.name().as_ref(), e.attributes_raw())?;
                }
                Event::End(e) => {
                    let t = self.end_tag(e.name().as_ref())?;
                    let want = open.pop();
                    if want != Some(t) {
                        let want = want.map_or("", Tag::name);
                        break Err(self.err(format!("expected </{want}>, found </{}>", t.name())));
                    }
                    if open.is_empty() {
                        break Ok(());
                    }
                }
                Event::GeneralRef(r) => {
                    self.resolve(&r)?;
                }
                Event::Eof => break Err(self.err("truncated document: unexpected end of document")),
                Event::Decl(_) => {
                    break Err(self.err("XML declaration is only allowed at the start"))
                }
                Event::DocType(_) => break Err(self.doctype()),
                Event::Text(_) | Event::CData(_) | Event::Comment(_) | Event::PI(_) => {}
            }
        };
        self.skipping = open;
        r
    }

    /// Enters an array or struct, enforcing the depth limit.
    pub(crate) fn enter(&mut self) -> Result<(), DecodeError> {
        self.depth += 1;
        if self.depth > self.max_depth {
            return Err(self.err(format!(
                "values nested deeper than the limit of {}",
                self.max_depth
            )));
        }
        Ok(())
    }

    pub(crate) fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }
}
