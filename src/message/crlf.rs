//! Line-end normalisation: maildir files usually end lines with a bare LF,
//! IMAP counts and sends CRLF. This module owns only that conversion and its
//! length; every offset elsewhere in `message/` is in the CRLF form.

use std::borrow::Cow;

/// Positions of LFs that have no CR right before them.
fn bare_lfs(raw: &[u8]) -> impl Iterator<Item = usize> + '_ {
    memchr::memchr_iter(b'\n', raw).filter(move |&i| i == 0 || raw.get(i - 1) != Some(&b'\r'))
}

/// Bare LF -> CRLF (a CR already before the LF stays single). Borrowed when
/// nothing has to change, so CRLF files cost no copy.
pub fn to_crlf(raw: &[u8]) -> Cow<'_, [u8]> {
    let extra = bare_lfs(raw).count();
    if extra == 0 {
        return Cow::Borrowed(raw);
    }
    let mut out = Vec::with_capacity(raw.len() + extra);
    let mut copied = 0;
    for lf in bare_lfs(raw) {
        out.extend_from_slice(raw.get(copied..lf).unwrap_or_default());
        out.extend_from_slice(b"\r\n");
        copied = lf + 1;
    }
    out.extend_from_slice(raw.get(copied..).unwrap_or_default());
    Cow::Owned(out)
}

/// Length `to_crlf(raw)` would have, without allocating (this is RFC822.SIZE).
pub fn crlf_len(raw: &[u8]) -> u64 {
    raw.len() as u64 + bare_lfs(raw).count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_bare_lf_only() {
        assert_eq!(&*to_crlf(b"a\nb\r\nc\n"), b"a\r\nb\r\nc\r\n");
        assert_eq!(&*to_crlf(b"\n\n"), b"\r\n\r\n");
        assert_eq!(&*to_crlf(b"x\ry"), b"x\ry");
    }

    #[test]
    fn borrowed_when_already_crlf() {
        assert!(matches!(to_crlf(b"a\r\nb\r\n"), Cow::Borrowed(_)));
        assert!(matches!(to_crlf(b""), Cow::Borrowed(_)));
    }

    #[test]
    fn length_matches_conversion() {
        // rfcs.md item 1: a 120-byte, 8-line LF file is RFC822.SIZE 128.
        let mut file = Vec::new();
        for _ in 0..8 {
            file.extend_from_slice(&[b'x'; 14]);
            file.push(b'\n');
        }
        assert_eq!(file.len(), 120);
        assert_eq!(crlf_len(&file), 128);
        assert_eq!(to_crlf(&file).len(), 128);
        assert_eq!(crlf_len(b"a\r\nb\n"), 6);
    }
}
