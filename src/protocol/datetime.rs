//! IMAP dates and times: the `date-time` of APPEND and INTERNALDATE
//! (`"17-Jul-1996 02:44:25 -0700"`), SEARCH dates (`1-Feb-1994`), and the
//! proleptic Gregorian calendar arithmetic behind them.
//!
//! Times are Unix seconds (`i64`); offsets are seconds east of UTC. This module
//! only converts; it must not decide which zone a mailbox's dates are shown in
//! (the caller passes the offset, usually from [`local_offset`]).

use super::command::Date;

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Days from 1970-01-01 that keep years well inside `i32` (about ±1.9 million
/// years); out-of-range times from broken files are clamped rather than panicking.
const MAX_DAYS: i64 = 700_000_000;

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// `days_from_civil`). `m` is 1–12, `d` 1–31.
pub fn days_from_civil(y: i32, m: u32, d: u32) -> i64 {
    let (m, d) = (i64::from(m), i64::from(d));
    let y = i64::from(y) - i64::from(m <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian date `(year, month, day)` of a day count since
/// 1970-01-01 (H. Hinnant's `civil_from_days`).
pub fn civil_from_days(days: i64) -> (i32, u32, u32) {
    let z = days.clamp(-MAX_DAYS, MAX_DAYS) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    // The clamp above keeps `y` within i32; the fallback is unreachable.
    (i32::try_from(y).unwrap_or(i32::MAX), m as u32, d as u32)
}

fn is_leap(y: i32) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i32, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        2 => 28,
        _ => 0,
    }
}

fn month_number(s: &[u8]) -> Option<u32> {
    MONTHS
        .iter()
        .position(|m| m.as_bytes().eq_ignore_ascii_case(s))
        .map(|i| i as u32 + 1)
}

fn digits(s: &[u8]) -> Option<u32> {
    if s.is_empty() || s.len() > 9 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0, |acc, &b| acc * 10 + u32::from(b - b'0')))
}

/// Parses `d-Mon-yyyy` (day of one or two digits, or space-padded) into a
/// validated date.
fn parse_date_part(s: &[u8]) -> Option<Date> {
    let mut parts = s.splitn(3, |&b| b == b'-');
    let day_text = parts.next()?;
    let day_text = day_text.strip_prefix(b" ").unwrap_or(day_text);
    let month_text = parts.next()?;
    let year_text = parts.next()?;
    if day_text.is_empty() || day_text.len() > 2 || year_text.len() != 4 {
        return None;
    }
    let day = digits(day_text)?;
    let month = month_number(month_text)?;
    let year = digits(year_text)? as i32;
    if day == 0 || day > days_in_month(year, month) {
        return None;
    }
    Some(Date { year, month, day })
}

/// A SEARCH date (`1-Feb-1994`, `01-feb-1994`), without quotes.
pub fn parse_search_date(s: &[u8]) -> Option<Date> {
    // A space-padded day is not date-text in SEARCH; only APPEND's fixed form has it.
    if s.first() == Some(&b' ') {
        return None;
    }
    parse_date_part(s)
}

/// An IMAP `date-time` without the surrounding quotes,
/// `dd-Mon-yyyy hh:mm:ss +zzzz`, as Unix seconds.
pub fn parse_date_time(s: &[u8]) -> Option<i64> {
    // The day may be space-padded, so split on the last two spaces.
    let zone_sp = s.iter().rposition(|&b| b == b' ')?;
    let time_sp = s.get(..zone_sp)?.iter().rposition(|&b| b == b' ')?;
    let date = parse_date_part(s.get(..time_sp)?)?;
    let time = s.get(time_sp + 1..zone_sp)?;
    let zone = s.get(zone_sp + 1..)?;

    let [h1, h2, b':', m1, m2, b':', s1, s2] = *time else {
        return None;
    };
    let hour = digits(&[h1, h2])?;
    let minute = digits(&[m1, m2])?;
    let second = digits(&[s1, s2])?;
    // 60 admits a leap second; it simply counts as the next second.
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }

    let [sign, z1, z2, z3, z4] = *zone else {
        return None;
    };
    let zone_hours = digits(&[z1, z2])?;
    let zone_minutes = digits(&[z3, z4])?;
    if zone_minutes > 59 {
        return None;
    }
    let offset = i64::from(zone_hours * 3600 + zone_minutes * 60);
    let offset = match sign {
        b'+' => offset,
        b'-' => -offset,
        _ => return None,
    };

    let days = days_from_civil(date.year, date.month, date.day);
    let local = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second);
    Some(local - offset)
}

/// Formats `unix` seen at `offset_secs` east of UTC as an IMAP date-time
/// without quotes: `" 7-Jan-2024 10:00:00 +0100"` (day space-padded to two).
pub fn format_date_time(unix: i64, offset_secs: i32) -> String {
    // The grammar has four-digit years: a file time outside 0000-9999 (a
    // `touch -d` far off) is shown as the nearest date that can be said.
    const FIRST: i64 = -62_167_219_200; // 0000-01-01T00:00:00Z
    const LAST: i64 = 253_402_300_799; // 9999-12-31T23:59:59Z
    let unix = unix.clamp(FIRST + 86_400, LAST - 86_400);
    let local = unix.saturating_add(i64::from(offset_secs));
    let (year, month, day) = civil_from_days(local.div_euclid(86_400));
    let secs = local.rem_euclid(86_400);
    let month_name = MONTHS
        .get((month as usize).wrapping_sub(1))
        .copied()
        .unwrap_or("Jan");
    let sign = if offset_secs < 0 { '-' } else { '+' };
    let off = offset_secs.unsigned_abs();
    format!(
        "{day:2}-{month_name}-{year:04} {:02}:{:02}:{:02} {sign}{:02}{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        off / 3600,
        off / 60 % 60
    )
}

/// The calendar date of `unix` at `offset_secs` east of UTC (for SEARCH
/// BEFORE/ON/SINCE, which compare dates only).
pub fn date_of(unix: i64, offset_secs: i32) -> Date {
    let local = unix.saturating_add(i64::from(offset_secs));
    let (year, month, day) = civil_from_days(local.div_euclid(86_400));
    Date { year, month, day }
}

/// The server's local UTC offset (seconds east) in force at `unix`, from the
/// C library's zone rules (`TZ`, `/etc/localtime`). 0 if the time cannot be
/// converted.
pub fn local_offset(unix: i64) -> i32 {
    let Some(t) = libc::time_t::try_from(unix).ok() else {
        return 0;
    };
    // SAFETY: `tm` is plain old data that localtime_r fills in; both pointers
    // are valid for the duration of the call.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let result = unsafe { libc::localtime_r(&t, &mut tm) };
    if result.is_null() {
        return 0;
    }
    i32::try_from(tm.tm_gmtoff).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn far_dates_keep_four_digit_years() {
        assert!(format_date_time(i64::MAX, 0).contains("-9999 "));
        assert!(format_date_time(i64::MIN, 0).contains("-0000 "));
        assert!(format_date_time(-1_000_000_000_000, 3600).contains("-0000 "));
    }

    #[test]
    fn rfc3501_example() {
        // RFC 3501 §6.3.11 uses "17-Jul-1996 02:44:25 -0700".
        assert_eq!(
            parse_date_time(b"17-Jul-1996 02:44:25 -0700"),
            Some(837_596_665)
        );
        assert_eq!(
            format_date_time(837_596_665, -7 * 3600),
            "17-Jul-1996 02:44:25 -0700"
        );
    }

    #[test]
    fn space_padded_and_single_digit_day() {
        let t = parse_date_time(b" 7-Jan-2024 10:00:00 +0100").unwrap();
        assert_eq!(t, 1_704_618_000);
        assert_eq!(parse_date_time(b"7-jan-2024 10:00:00 +0100"), Some(t));
        assert_eq!(parse_date_time(b"07-JAN-2024 09:00:00 +0000"), Some(t));
        assert_eq!(format_date_time(t, 3600), " 7-Jan-2024 10:00:00 +0100");
        assert_eq!(format_date_time(t, 0), " 7-Jan-2024 09:00:00 +0000");
        assert_eq!(format_date_time(0, 19800), " 1-Jan-1970 05:30:00 +0530");
        assert_eq!(format_date_time(0, -34200), "31-Dec-1969 14:30:00 -0930");
    }

    #[test]
    fn bad_date_times() {
        for bad in [
            &b"32-Jan-2024 10:00:00 +0100"[..],
            b"29-Feb-2023 10:00:00 +0100",
            b"1-Foo-2024 10:00:00 +0100",
            b"1-Jan-24 10:00:00 +0100",
            b"1-Jan-2024 24:00:00 +0100",
            b"1-Jan-2024 10:00 +0100",
            b"1-Jan-2024 10:00:00 0100",
            b"1-Jan-2024 10:00:00 +01000",
            b"1-Jan-2024 10:00:00 +0160",
            b"1-Jan-2024  10:00:00 +0100",
            b"",
            b"1-Jan-2024",
        ] {
            assert_eq!(
                parse_date_time(bad),
                None,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(parse_date_time(b"29-Feb-2024 10:00:00 +0100").is_some());
    }

    #[test]
    fn search_dates() {
        assert_eq!(
            parse_search_date(b"1-Feb-1994"),
            Some(Date {
                year: 1994,
                month: 2,
                day: 1
            })
        );
        assert_eq!(
            parse_search_date(b"01-fEb-1994"),
            Some(Date {
                year: 1994,
                month: 2,
                day: 1
            })
        );
        assert_eq!(
            parse_search_date(b"31-Dec-2000"),
            Some(Date {
                year: 2000,
                month: 12,
                day: 31
            })
        );
        for bad in [
            &b"0-Feb-1994"[..],
            b"30-Feb-2000",
            b"1-Feb-94",
            b"1 Feb 1994",
            b" 1-Feb-1994",
            b"123-Feb-1994",
        ] {
            assert_eq!(parse_search_date(bad), None);
        }
    }

    #[test]
    fn civil_round_trip() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(days_from_civil(1600, 2, 29), -135_081);
        for d in (-800_000..800_000).step_by(997) {
            let (y, m, dd) = civil_from_days(d);
            assert_eq!(days_from_civil(y, m, dd), d);
        }
        // Extreme inputs clamp rather than panic.
        let _ = civil_from_days(i64::MAX);
        let _ = format_date_time(i64::MIN, -3600);
    }

    #[test]
    fn date_of_offsets() {
        // 1996-07-17 09:44:25 UTC is still the 17th at -0700 but the 16th at -1000.
        assert_eq!(
            date_of(837_596_665, -7 * 3600),
            Date {
                year: 1996,
                month: 7,
                day: 17
            }
        );
        assert_eq!(
            date_of(837_596_665, -10 * 3600),
            Date {
                year: 1996,
                month: 7,
                day: 16
            }
        );
    }

    #[test]
    fn local_offset_is_sane() {
        let off = local_offset(1_700_000_000);
        assert!((-14 * 3600..=14 * 3600).contains(&off));
    }
}
