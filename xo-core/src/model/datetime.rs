//! XAPI datetimes: `20240101T00:00:00Z` (xapi's own form), `+hh:mm` offsets, no zone at all
//! (a host-local time), and the dashed RFC 3339 form, with optional fractional seconds.

use std::fmt;

/// A point in time as XAPI wrote it. The text is kept so a value prints back as it came.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct DateTime {
    /// Seconds since the Unix epoch; for zone-less values, as if the local time were UTC.
    unix: i64,
    nanos: u32,
    /// Minutes east of UTC; `None` when the text carried no zone.
    offset_minutes: Option<i16>,
    text: Box<str>,
}

/// Why a datetime text was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DateTimeError(pub String);

impl fmt::Display for DateTimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid datetime {:?}", self.0)
    }
}
impl std::error::Error for DateTimeError {}

impl DateTime {
    /// The Unix epoch as xapi writes its default: `19700101T00:00:00Z`.
    pub fn epoch() -> Self {
        Self::from_unix(0)
    }

    /// A UTC time from Unix seconds, written in xapi's form.
    pub fn from_unix(unix: i64) -> Self {
        let (y, mo, d, h, mi, s) = civil_from_unix(unix);
        let text = format!("{y:04}{mo:02}{d:02}T{h:02}:{mi:02}:{s:02}Z");
        DateTime {
            unix,
            nanos: 0,
            offset_minutes: Some(0),
            text: text.into(),
        }
    }

    /// The current time, UTC.
    pub fn now() -> Self {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        Self::from_unix(secs)
    }

    /// Parses any of the forms xapi reads or writes.
    pub fn parse(text: &str) -> Result<Self, DateTimeError> {
        parse(text).ok_or_else(|| DateTimeError(text.chars().take(64).collect()))
    }

    /// Seconds since the Unix epoch (UTC; zone-less values are taken as UTC).
    pub fn unix(&self) -> i64 {
        self.unix
    }

    pub fn nanos(&self) -> u32 {
        self.nanos
    }

    /// Minutes east of UTC, or `None` for a zone-less (host-local) time.
    pub fn offset_minutes(&self) -> Option<i16> {
        self.offset_minutes
    }

    /// The text as received (or as generated for constructed values).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// RFC 3339 with dashes, UTC (`1970-01-01T00:00:00Z`), for JSON payloads.
    pub fn to_rfc3339(&self) -> String {
        let (y, mo, d, h, mi, s) = civil_from_unix(self.unix);
        if self.nanos == 0 {
            format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
        } else {
            let ms = self.nanos / 1_000_000;
            format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ms:03}Z")
        }
    }
}

impl Default for DateTime {
    fn default() -> Self {
        Self::epoch()
    }
}

impl PartialOrd for DateTime {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for DateTime {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.unix, self.nanos, &self.text).cmp(&(other.unix, other.nanos, &other.text))
    }
}

impl fmt::Display for DateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}
impl fmt::Debug for DateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DateTime({})", self.text)
    }
}

impl std::str::FromStr for DateTime {
    type Err = DateTimeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DateTime::parse(s)
    }
}

fn digits(b: &[u8], at: usize, n: usize) -> Option<u32> {
    let part = b.get(at..at + n)?;
    let mut v = 0u32;
    for &c in part {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(c - b'0');
    }
    Some(v)
}

fn parse(text: &str) -> Option<DateTime> {
    let b = text.trim().as_bytes();
    let (y, mo, d, mut i) = if b.get(4) == Some(&b'-') {
        // 2024-01-01T…
        if b.get(7) != Some(&b'-') {
            return None;
        }
        (digits(b, 0, 4)?, digits(b, 5, 2)?, digits(b, 8, 2)?, 10)
    } else {
        (digits(b, 0, 4)?, digits(b, 4, 2)?, digits(b, 6, 2)?, 8)
    };
    if !matches!(b.get(i), Some(b'T') | Some(b't') | Some(b' ')) {
        return None;
    }
    i += 1;
    let h = digits(b, i, 2)?;
    let (mi, s);
    if b.get(i + 2) == Some(&b':') {
        mi = digits(b, i + 3, 2)?;
        if b.get(i + 5) != Some(&b':') {
            return None;
        }
        s = digits(b, i + 6, 2)?;
        i += 8;
    } else {
        mi = digits(b, i + 2, 2)?;
        s = digits(b, i + 4, 2)?;
        i += 6;
    }
    let mut nanos = 0u32;
    if b.get(i) == Some(&b'.') || b.get(i) == Some(&b',') {
        i += 1;
        let start = i;
        let mut scale = 100_000_000u32;
        while let Some(c) = b.get(i).filter(|c| c.is_ascii_digit()) {
            nanos += u32::from(c - b'0') * scale;
            scale /= 10;
            i += 1;
        }
        if i == start {
            return None;
        }
    }
    let offset = match b.get(i) {
        None => None,
        Some(b'Z') | Some(b'z') if i + 1 == b.len() => Some(0i32),
        Some(&sign @ (b'+' | b'-')) => {
            let oh = digits(b, i + 1, 2)? as i32;
            let om = match b.get(i + 3) {
                Some(b':') => digits(b, i + 4, 2)?,
                None => 0,
                _ => digits(b, i + 3, 2)?,
            } as i32;
            let end = if b.get(i + 3) == Some(&b':') {
                i + 6
            } else if b.len() == i + 3 {
                i + 3
            } else {
                i + 5
            };
            if end != b.len() || oh > 23 || om > 59 {
                return None;
            }
            let m = oh * 60 + om;
            Some(if sign == b'-' { -m } else { m })
        }
        _ => return None,
    };
    if !(1..=12).contains(&mo) || d == 0 || d > days_in_month(y, mo) || h > 23 || mi > 59 || s > 60
    {
        return None;
    }
    let days = days_from_civil(y as i64, mo, d);
    let unix = days * 86400 + i64::from(h) * 3600 + i64::from(mi) * 60 + i64::from(s)
        - i64::from(offset.unwrap_or(0)) * 60;
    Some(DateTime {
        unix,
        nanos,
        offset_minutes: offset.map(|m| m as i16),
        text: text.trim().into(),
    })
}

fn days_in_month(y: u32, m: u32) -> u32 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

// Howard Hinnant's civil-date algorithms (public domain arithmetic).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

fn civil_from_unix(unix: i64) -> (i64, u32, u32, u32, u32, u32) {
    let days = unix.div_euclid(86400);
    let rem = unix.rem_euclid(86400);
    let z = days + 719468;
    let era = if z >= 0 { z } else { z - 146096 } / 146097;
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y,
        m,
        d,
        (rem / 3600) as u32,
        ((rem % 3600) / 60) as u32,
        (rem % 60) as u32,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xapi_forms() {
        let z = DateTime::parse("20240101T00:00:00Z").unwrap();
        assert_eq!(z.unix(), 1704067200);
        assert_eq!(z.offset_minutes(), Some(0));
        let dashed = DateTime::parse("2024-01-01T01:00:00+01:00").unwrap();
        assert_eq!(dashed.unix(), 1704067200);
        assert_eq!(dashed.offset_minutes(), Some(60));
        let local = DateTime::parse("20240101T00:00:00").unwrap();
        assert_eq!(local.offset_minutes(), None);
        assert_eq!(local.as_str(), "20240101T00:00:00");
        let frac = DateTime::parse("2024-01-01T00:00:00.250Z").unwrap();
        assert_eq!(frac.nanos(), 250_000_000);
        assert_eq!(DateTime::epoch().as_str(), "19700101T00:00:00Z");
        assert_eq!(
            DateTime::from_unix(1704067200).as_str(),
            "20240101T00:00:00Z"
        );
        assert_eq!(
            DateTime::from_unix(1704067200).to_rfc3339(),
            "2024-01-01T00:00:00Z"
        );
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "2024",
            "20241301T00:00:00Z",
            "20240230T00:00:00Z",
            "20240101X00:00:00Z",
            "20240101T00:00:00Q",
            "20240101T00:00:00+0",
        ] {
            assert!(DateTime::parse(bad).is_err(), "{bad}");
        }
    }
}
