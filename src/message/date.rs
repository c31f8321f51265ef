//! RFC 5322 §3.3 date-time parsing for the Date: header, including the
//! obsolete forms of §4.3 (two- and three-digit years, named zones, missing
//! seconds or day of week, comments, extra whitespace). Used by SENTBEFORE/
//! SENTON/SENTSINCE and SORT DATE.

/// Days since 1970-01-01 of a proleptic Gregorian date.
pub(crate) fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn month_number(name: &[u8]) -> Option<u32> {
    const MONTHS: [&[u8]; 12] = [
        b"jan", b"feb", b"mar", b"apr", b"may", b"jun", b"jul", b"aug", b"sep", b"oct", b"nov",
        b"dec",
    ];
    let prefix = name.get(..3)?;
    MONTHS
        .iter()
        .position(|m| m.eq_ignore_ascii_case(prefix))
        .map(|i| i as u32 + 1)
}

/// Zone offset in seconds east of UTC.
fn zone_offset(token: &[u8]) -> Option<i32> {
    if let (Some(&sign @ (b'+' | b'-')), Some(digits)) = (token.first(), token.get(1..)) {
        if digits.len() != 4 || !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let n: i32 = std::str::from_utf8(digits).ok()?.parse().ok()?;
        let (h, m) = (n / 100, n % 100);
        if m >= 60 {
            return None;
        }
        let secs = h * 3600 + m * 60;
        return Some(if sign == b'-' { -secs } else { secs });
    }
    let hours = match token.to_ascii_uppercase().as_slice() {
        b"UT" | b"UTC" | b"GMT" | b"Z" => 0,
        b"EDT" => -4,
        b"EST" | b"CDT" => -5,
        b"CST" | b"MDT" => -6,
        b"MST" | b"PDT" => -7,
        b"PST" => -8,
        // RFC 5322 §4.3: military zones other than Z are unreliable; treat as -0000.
        [c] if c.is_ascii_alphabetic() => 0,
        _ => return None,
    };
    Some(hours * 3600)
}

/// Splits the value into words, dropping comments and treating `,` as a separator.
fn words(value: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut cur = Vec::new();
    let mut depth = 0usize;
    for &b in value {
        match b {
            b'(' => {
                depth += 1;
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            b')' if depth > 0 => depth -= 1,
            _ if depth > 0 => {}
            b' ' | b'\t' | b'\r' | b'\n' | b',' => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            _ => cur.push(b),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn number(s: &[u8]) -> Option<u32> {
    if s.is_empty() || s.len() > 4 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse().ok()
}

/// Parses a Date: value into (unix time UTC, the header's own zone offset in seconds).
pub fn parse_date(value: &[u8]) -> Option<(i64, i32)> {
    let mut w = words(value);
    // Optional day of week; the comma after it was already a separator.
    if w.first()
        .is_some_and(|d| d.first().is_some_and(u8::is_ascii_alphabetic))
    {
        w.remove(0);
    }
    // day month year time [zone], in that order (RFC 5322 §3.3).
    let mut it = w.iter();
    let day = number(it.next()?)?;
    let month = month_number(it.next()?)?;
    let year_word = it.next()?;
    let mut year = i64::from(number(year_word)?);
    // RFC 5322 §4.3: two digits 00-49 are 20xx, 50-99 are 19xx; three digits add 1900.
    if year_word.len() == 2 {
        year += if year < 50 { 2000 } else { 1900 };
    } else if year_word.len() == 3 {
        year += 1900;
    }
    let time = it.next()?;
    let mut hms = time.split(|&b| b == b':');
    let hour = number(hms.next()?)?;
    let minute = number(hms.next()?)?;
    let second = match hms.next() {
        Some(s) => number(s)?,
        None => 0,
    };
    if hms.next().is_some() || hour > 23 || minute > 59 || second > 60 || !(1..=31).contains(&day) {
        return None;
    }
    // A missing or unknown zone is taken as UTC (-0000: "no information").
    let offset = it.next().and_then(|z| zone_offset(z)).unwrap_or(0);
    let days = days_from_civil(year, month, day);
    let unix = days * 86_400 + i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second)
        - i64::from(offset);
    Some((unix, offset))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
    }

    #[test]
    fn rfc5322_examples() {
        // A.1.1: Fri, 21 Nov 1997 09:55:06 -0600 = 1997-11-21T15:55:06Z = 880127706.
        assert_eq!(
            parse_date(b"Fri, 21 Nov 1997 09:55:06 -0600"),
            Some((880_127_706, -21_600))
        );
        // A.5: comments and folding whitespace.
        assert_eq!(
            parse_date(b"Thu,\r\n      13\r\n        Feb\r\n          1969\r\n      23:32\r\n               -0330 (Newfoundland Time)"),
            Some((days_from_civil(1969, 2, 14) * 86_400 + 3 * 3600 + 2 * 60, -12_600))
        );
        // A.6.3 obsolete: 2-digit year, named zone, missing day of week.
        assert_eq!(
            parse_date(b"21 Nov 97 09:55:06 GMT"),
            Some((880_106_106, 0))
        );
        assert_eq!(
            parse_date(b"Fri, 21 Nov 1997 09:55:06 CST"),
            Some((880_127_706, -21_600))
        );
        assert_eq!(
            parse_date(b"Fri, 21 Nov 1997 08:55:06 PDT"),
            Some((880_127_706, -25_200))
        );
        assert_eq!(
            parse_date(b"1 Jan 05 00:00 EST"),
            Some((1_104_555_600, -18_000))
        );
        assert_eq!(
            parse_date(b"1 Jan 105 00:00:00 +0000"),
            Some((1_104_537_600, 0))
        );
    }

    #[test]
    fn lenient_and_invalid() {
        assert_eq!(
            parse_date(b"Wed, 17 Jul 1996 02:23:25 -0700 (PDT)"),
            Some((837_595_405, -25_200))
        );
        assert_eq!(parse_date(b"17 July 1996 02:23:25"), Some((837_570_205, 0)));
        assert_eq!(parse_date(b"garbage"), None);
        assert_eq!(parse_date(b""), None);
        assert_eq!(parse_date(b"32 Jan 2000 00:00 +0000"), None);
        assert_eq!(parse_date(b"1 Foo 2000 00:00 +0000"), None);
    }
}
