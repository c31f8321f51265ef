//! Standard base64 (RFC 4648 §4, alphabet `A–Z a–z 0–9 + /`, `=` padding) for
//! SASL exchanges (AUTHENTICATE initial responses and continuations).
//!
//! This module only converts bytes; it must not interpret SASL payloads.
//! Decoding is deliberately a little lenient where no ambiguity results:
//! missing final padding and nonzero unused low bits are accepted, because some
//! clients produce them and rejecting them would only break logins.

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Encodes `data` with padding.
pub fn encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b0 = chunk.first().copied().unwrap_or(0);
        let b1 = chunk.get(1).copied().unwrap_or(0);
        let b2 = chunk.get(2).copied().unwrap_or(0);
        let n = (u32::from(b0) << 16) | (u32::from(b1) << 8) | u32::from(b2);
        let sextet = |shift: u32| char::from(ALPHABET[((n >> shift) & 63) as usize]);
        out.push(sextet(18));
        out.push(sextet(12));
        out.push(if chunk.len() > 1 { sextet(6) } else { '=' });
        out.push(if chunk.len() > 2 { sextet(0) } else { '=' });
    }
    out
}

fn value(c: u8) -> Option<u32> {
    sextet(c, b'/')
}

/// The 6-bit value of a base64 character. The alphabets of RFC 4648 and of
/// modified UTF-7 (RFC 3501 §5.1.3) differ only in the character for 63.
pub(crate) fn sextet(c: u8, char63: u8) -> Option<u32> {
    let v = match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        _ if c == char63 => 63,
        _ => return None,
    };
    Some(u32::from(v))
}

/// Decodes base64; `None` on characters outside the alphabet, misplaced
/// padding or an impossible length. The empty input decodes to no bytes.
pub fn decode(text: &[u8]) -> Option<Vec<u8>> {
    // Padding may only end the input: strip at most two `=` and require
    // the remainder to be pure alphabet.
    let mut body = text;
    let mut padding = 0;
    while let Some(rest) = body.strip_suffix(b"=") {
        body = rest;
        padding += 1;
    }
    if padding > 2 || (padding > 0 && !(body.len() + padding).is_multiple_of(4)) {
        return None;
    }
    // A lone sextet in the last group cannot encode a whole byte.
    if body.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(body.len() / 4 * 3 + 2);
    for group in body.chunks(4) {
        let mut n = 0u32;
        for &c in group {
            n = (n << 6) | value(c)?;
        }
        match group.len() {
            4 => out.extend_from_slice(&[(n >> 16) as u8, (n >> 8) as u8, n as u8]),
            3 => out.extend_from_slice(&[(n >> 10) as u8, (n >> 2) as u8]),
            _ => out.push((n >> 4) as u8),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 4648 §10 test vectors.
    const VECTORS: &[(&str, &str)] = &[
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
    ];

    #[test]
    fn rfc4648_vectors() {
        for (plain, coded) in VECTORS {
            assert_eq!(encode(plain.as_bytes()), *coded);
            assert_eq!(decode(coded.as_bytes()).unwrap(), plain.as_bytes());
        }
    }

    #[test]
    fn sasl_plain() {
        // RFC 4616 style: "\0tim\0tanstaaftanstaaf"
        assert_eq!(
            decode(b"AHRpbQB0YW5zdGFhZnRhbnN0YWFm").unwrap(),
            b"\0tim\0tanstaaftanstaaf"
        );
        assert_eq!(encode(&[0xff, 0xfe, 0xfd]), "//79");
    }

    #[test]
    fn lenient_and_rejects() {
        assert_eq!(decode(b"Zm8").unwrap(), b"fo");
        assert_eq!(decode(b"Zg").unwrap(), b"f");
        for bad in [
            &b"Z"[..],
            b"Zg=",
            b"Z===",
            b"Zm=v",
            b"Zm9v!",
            b"=",
            b"Zm9vY",
        ] {
            assert!(decode(bad).is_none(), "{bad:?}");
        }
    }
}
