//! Modified UTF-7 for mailbox names (RFC 3501 §5.1.3).
//!
//! Printable US-ASCII except `&` stands for itself, `&` is written `&-`, and
//! everything else is UTF-16 in a modified base64 (`,` for `/`, no padding)
//! between `&` and `-`. Decoding is strict: only the one canonical spelling of
//! a name is accepted, so that two different wire names can never map to the
//! same folder. This module converts names only; it must not apply folder
//! naming rules (hierarchy separator, forbidden characters).

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

fn value(c: u8) -> Option<u32> {
    super::base64::sextet(c, b',')
}

fn is_printable(c: u32) -> bool {
    (0x20..=0x7e).contains(&c)
}

/// Decodes a modified UTF-7 name. `None` if it is not the canonical encoding
/// of some Unicode string: 8-bit or control bytes, bad base64, encoded
/// printable ASCII, an unterminated `&` run, two adjacent encoded runs,
/// nonzero padding bits, or unpaired surrogates.
pub fn decode(s: &[u8]) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    // True right after an encoded run closed: another run may not follow
    // immediately, since the encoder would have merged them.
    let mut after_run = false;
    while let Some(&b) = s.get(i) {
        if b != b'&' {
            if !is_printable(u32::from(b)) {
                return None;
            }
            out.push(char::from(b));
            i += 1;
            after_run = false;
            continue;
        }
        // `&` starts either `&-` or an encoded run.
        let run_start = i + 1;
        let run_len = s.get(run_start..)?.iter().position(|&c| c == b'-')?;
        let run = s.get(run_start..run_start + run_len)?;
        i = run_start + run_len + 1;
        if run.is_empty() {
            out.push('&');
            after_run = false;
            continue;
        }
        if after_run {
            return None;
        }
        decode_run(run, &mut out)?;
        after_run = true;
    }
    Some(out)
}

/// Decodes the base64 between `&` and `-` as UTF-16BE and appends it.
fn decode_run(run: &[u8], out: &mut String) -> Option<()> {
    let mut bits = 0u32;
    let mut nbits = 0u32;
    let mut units = Vec::with_capacity(run.len() * 6 / 16);
    for &c in run {
        bits = (bits << 6) | value(c)?;
        nbits += 6;
        if nbits >= 16 {
            nbits -= 16;
            units.push((bits >> nbits) as u16);
            bits &= (1 << nbits) - 1;
        }
    }
    // Canonical base64 leaves fewer than 6 unused bits, all zero.
    if nbits >= 6 || bits != 0 || units.is_empty() {
        return None;
    }
    for c in char::decode_utf16(units) {
        let c = c.ok()?;
        if is_printable(u32::from(c)) {
            return None;
        }
        out.push(c);
    }
    Some(())
}

/// Encodes a Unicode name in modified UTF-7.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut pending: Vec<u16> = Vec::new();
    for c in s.chars() {
        if is_printable(u32::from(c)) {
            flush_run(&mut pending, &mut out);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut buf = [0u16; 2];
            pending.extend_from_slice(c.encode_utf16(&mut buf));
        }
    }
    flush_run(&mut pending, &mut out);
    out
}

fn flush_run(units: &mut Vec<u16>, out: &mut String) {
    if units.is_empty() {
        return;
    }
    out.push('&');
    let mut bits = 0u32;
    let mut nbits = 0u32;
    for &u in units.iter() {
        bits = (bits << 16) | u32::from(u);
        nbits += 16;
        while nbits >= 6 {
            nbits -= 6;
            out.push(char::from(ALPHABET[((bits >> nbits) & 63) as usize]));
        }
        bits &= (1 << nbits) - 1;
    }
    if nbits > 0 {
        out.push(char::from(ALPHABET[((bits << (6 - nbits)) & 63) as usize]));
    }
    out.push('-');
    units.clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    const KNOWN: &[(&str, &str)] = &[
        ("&-", "&"),
        ("R&AOk-sum&AOk-", "Résumé"),
        // RFC 3501 §5.1.3 example.
        ("~peter/mail/&U,BTFw-/&ZeVnLIqe-", "~peter/mail/台北/日本語"),
        ("&Jjo-!", "☺!"),
        ("INBOX.Sent", "INBOX.Sent"),
        ("", ""),
        ("A&-B", "A&B"),
        // A character outside the BMP is a surrogate pair.
        ("&2D3eAA-", "😀"),
        ("&AAk-", "\t"),
    ];

    #[test]
    fn known_answers() {
        for (wire, name) in KNOWN {
            assert_eq!(decode(wire.as_bytes()).as_deref(), Some(*name), "{wire}");
            assert_eq!(encode(name), *wire, "{name}");
        }
    }

    #[test]
    fn rejects_non_canonical() {
        for bad in [
            &b"&"[..],      // unterminated
            b"&AOk",        // unterminated run
            b"&AGE-",       // encoded printable ASCII "a"
            b"&AOk-&AOk-",  // two adjacent runs
            b"&AOl-",       // nonzero padding bits
            b"&AOkA-",      // 6 leftover bits
            b"&AA-",        // no whole unit
            b"&2D0-",       // lone high surrogate
            b"&3gA-",       // lone low surrogate
            b"&AO!-",       // bad base64 character
            b"&AO/-",       // '/' is not in the modified alphabet
            "é".as_bytes(), // 8-bit
            b"a\tb",        // control byte
        ] {
            assert_eq!(decode(bad), None, "{}", String::from_utf8_lossy(bad));
        }
        // A literal & directly after a run is fine.
        assert_eq!(decode(b"&AOk-&-").as_deref(), Some("é&"));
    }

    #[test]
    fn round_trip() {
        for name in [
            "Entwürfe",
            "Корзина",
            "a&b&",
            "日本語 ok",
            "x\u{7f}y",
            "😀😀a😀",
        ] {
            assert_eq!(decode(encode(name).as_bytes()).as_deref(), Some(name));
        }
    }
}
