//! Timestamps and durations, without a clock.
//!
//! The core never reads the time: every decision takes `now` from its input, so the same input always gives the
//! same answer. This module parses RFC 3339 timestamps into seconds since the Unix epoch, formats them back in the
//! one canonical form the project writes (`YYYY-MM-DDTHH:MM:SSZ`), and parses Go-style durations (`90s`, `15m`,
//! `1h30m`), the syntax Kubernetes and Kratix users already know.

use crate::text::shorten;
use std::fmt;

/// Seconds since 1970-01-01T00:00:00Z. Sub-second precision is dropped: no rule needs it, and whole seconds keep
/// the written status stable across hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

/// Why a timestamp or duration did not parse. The message is written to be shown after the field name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TimeError(String);

impl Timestamp {
    /// The earliest and latest instants accepted (years 1970 to 9999).
    const MIN: i64 = 0;
    const MAX: i64 = 253_402_300_799;

    /// Builds a timestamp from Unix seconds; `None` outside the years 1970 to 9999.
    pub fn from_unix(secs: i64) -> Option<Self> {
        (Self::MIN..=Self::MAX).contains(&secs).then_some(Self(secs))
    }

    /// Builds a timestamp from Unix seconds, clamped to the years 1970 to 9999 (for clocks).
    pub fn from_unix_clamped(secs: i64) -> Self {
        Self(secs.clamp(Self::MIN, Self::MAX))
    }

    /// Seconds since the Unix epoch.
    pub fn unix(self) -> i64 {
        self.0
    }

    /// Parses an RFC 3339 date-time such as `2026-11-22T18:30:00Z` or `2026-11-22T19:30:00.5+01:00`.
    pub fn parse(text: &str) -> Result<Self, TimeError> {
        let bad = || {
            TimeError(format!(
                "`{}` is not an RFC 3339 timestamp (expected e.g. `2026-11-22T18:30:00Z`)",
                shorten(text)
            ))
        };
        let b = text.as_bytes();
        if b.len() < 20 || b.len() > 40 {
            return Err(bad());
        }
        let num = |from: usize, to: usize| -> Result<i64, TimeError> {
            let part = b.get(from..to).ok_or_else(bad)?;
            if part.iter().all(u8::is_ascii_digit) {
                Ok(part.iter().fold(0i64, |acc, d| acc * 10 + i64::from(d - b'0')))
            } else {
                Err(bad())
            }
        };
        let sep = |at: usize, allowed: &[u8]| -> Result<(), TimeError> {
            match b.get(at) {
                Some(c) if allowed.contains(c) => Ok(()),
                _ => Err(bad()),
            }
        };
        let year = num(0, 4)?;
        sep(4, b"-")?;
        let month = num(5, 7)?;
        sep(7, b"-")?;
        let day = num(8, 10)?;
        sep(10, b"Tt ")?;
        let hour = num(11, 13)?;
        sep(13, b":")?;
        let minute = num(14, 16)?;
        sep(16, b":")?;
        let second = num(17, 19)?;
        let mut at = 19;
        if b.get(at) == Some(&b'.') {
            at += 1;
            let start = at;
            while b.get(at).is_some_and(u8::is_ascii_digit) {
                at += 1;
            }
            if at == start {
                return Err(bad());
            }
        }
        let offset = match b.get(at) {
            Some(b'Z' | b'z') if at + 1 == b.len() => 0,
            Some(sign @ (b'+' | b'-')) if at + 6 == b.len() => {
                sep(at + 3, b":")?;
                let oh = num(at + 1, at + 3)?;
                let om = num(at + 4, at + 6)?;
                if oh > 23 || om > 59 {
                    return Err(bad());
                }
                let secs = oh * 3600 + om * 60;
                if *sign == b'+' { secs } else { -secs }
            }
            _ => return Err(bad()),
        };
        if !(1..=12).contains(&month)
            || day < 1
            || day > days_in_month(year, month)
            || hour > 23
            || minute > 59
            || second > 60
        {
            return Err(bad());
        }
        // A leap second is folded onto the next second: no rule needs that precision.
        let secs = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset;
        Self::from_unix(secs).ok_or_else(|| TimeError(format!("`{}` is before 1970", shorten(text))))
    }

    /// Adds seconds, saturating at the accepted range.
    pub fn plus(self, secs: u64) -> Self {
        let secs = i64::try_from(secs).unwrap_or(i64::MAX);
        Self(self.0.saturating_add(secs).min(Self::MAX))
    }

    /// Seconds from `earlier` to `self`; zero when `earlier` is later.
    pub fn seconds_since(self, earlier: Timestamp) -> u64 {
        u64::try_from(self.0.saturating_sub(earlier.0)).unwrap_or(0)
    }
}

impl fmt::Display for Timestamp {
    /// The canonical form: UTC, whole seconds, `Z` suffix.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.0.div_euclid(86_400);
        let rem = self.0.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        write!(f, "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, (rem % 3600) / 60, rem % 60)
    }
}

/// A length of time in whole seconds, written like Go's `time.Duration` (`45s`, `10m`, `1h30m`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Duration(u64);

impl Duration {
    /// The longest duration accepted: 366 days.
    pub const MAX_SECONDS: u64 = 366 * 86_400;

    /// Parses `<number><unit>` groups, units `h`, `m`, `s` (e.g. `1h30m`, `90s`).
    pub fn parse(text: &str) -> Result<Self, TimeError> {
        let bad = || {
            TimeError(format!(
                "`{}` is not a duration (use whole numbers with units h, m, s, e.g. `15m` or `1h30m`)",
                shorten(text)
            ))
        };
        if text.is_empty() || text.len() > 32 {
            return Err(bad());
        }
        let mut total: u64 = 0;
        let mut digits: Option<u64> = None;
        for c in text.chars() {
            if let Some(d) = c.to_digit(10) {
                let n = digits.unwrap_or(0);
                digits = Some(n.checked_mul(10).and_then(|n| n.checked_add(u64::from(d))).ok_or_else(bad)?);
                continue;
            }
            let unit = match c {
                'h' => 3600,
                'm' => 60,
                's' => 1,
                _ => return Err(bad()),
            };
            let n = digits.take().ok_or_else(bad)?;
            total = n.checked_mul(unit).and_then(|v| total.checked_add(v)).ok_or_else(bad)?;
        }
        if digits.is_some() {
            return Err(bad());
        }
        if total > Self::MAX_SECONDS {
            return Err(TimeError(format!("`{}` is longer than the maximum of 366 days", shorten(text))));
        }
        Ok(Self(total))
    }

    /// Whole seconds.
    pub fn seconds(self) -> u64 {
        self.0
    }

    /// Builds a duration from seconds.
    pub fn from_seconds(secs: u64) -> Self {
        Self(secs)
    }
}

impl fmt::Display for Duration {
    /// Writes the shortest `XhYmZs` form (`0s` for zero).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (h, m, s) = (self.0 / 3600, (self.0 % 3600) / 60, self.0 % 60);
        if h > 0 {
            write!(f, "{h}h")?;
        }
        if m > 0 {
            write!(f, "{m}m")?;
        }
        if s > 0 || self.0 == 0 {
            write!(f, "{s}s")?;
        }
        Ok(())
    }
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_and_formats_rfc3339() {
        let t = Timestamp::parse("2026-11-22T18:30:05Z").unwrap();
        assert_eq!(t.to_string(), "2026-11-22T18:30:05Z");
        let t = Timestamp::parse("2026-11-22T19:30:05.123+01:00").unwrap();
        assert_eq!(t.to_string(), "2026-11-22T18:30:05Z");
        assert_eq!(Timestamp::parse("1970-01-01T00:00:00Z").unwrap().unix(), 0);
        assert_eq!(Timestamp::parse("2024-02-29T00:00:00Z").unwrap().to_string(), "2024-02-29T00:00:00Z");
    }

    #[test]
    fn rejects_bad_timestamps() {
        for bad in [
            "",
            "2026-11-22",
            "2026-13-01T00:00:00Z",
            "2025-02-29T00:00:00Z",
            "2026-11-22T24:00:00Z",
            "2026-11-22T10:00:00",
            "2026-11-22T10:00:00+1:00",
            "1969-12-31T23:59:59Z",
            "２０２６-11-22T10:00:00Z",
            "2026-11-22T10:00:00.Z",
        ] {
            assert!(Timestamp::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn parses_durations() {
        assert_eq!(Duration::parse("90s").unwrap().seconds(), 90);
        assert_eq!(Duration::parse("1h30m").unwrap().seconds(), 5400);
        assert_eq!(Duration::parse("15m").unwrap().to_string(), "15m");
        assert_eq!(Duration::parse("0s").unwrap().to_string(), "0s");
        for bad in ["", "15", "m", "1d", "1.5h", "-5m", "99999999999999999999h", "367h0m99999999s"] {
            assert!(Duration::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    proptest! {
        #[test]
        fn format_then_parse_round_trips(secs in Timestamp::MIN..=Timestamp::MAX) {
            let t = Timestamp::from_unix(secs).unwrap();
            prop_assert_eq!(Timestamp::parse(&t.to_string()).unwrap(), t);
        }

        #[test]
        fn duration_display_round_trips(secs in 0u64..=Duration::MAX_SECONDS) {
            let d = Duration::from_seconds(secs);
            prop_assert_eq!(Duration::parse(&d.to_string()).unwrap(), d);
        }
    }
}
