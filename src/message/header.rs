//! RFC 5322 header blocks: where a block ends, its fields (with folding kept
//! as raw bytes), and unfolded values. Nothing here decodes encoded words or
//! interprets a field's structure; that belongs to the callers.

/// One header field as it appears in the block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Field<'a> {
    /// Where the field starts in its header block.
    pub start: usize,
    /// The name before the colon, without trailing whitespace; empty for
    /// a line without a colon.
    pub name: &'a [u8],
    /// The whole field: name, colon, value, every folded line and the final line end.
    pub raw: &'a [u8],
    /// Everything after the colon (the whole line when there is none) up
    /// to, not including, the final line end; folds kept.
    pub value: &'a [u8],
}

/// Index just past the line that starts at `pos` (past its LF, or `end`).
pub(crate) fn line_end(data: &[u8], pos: usize, end: usize) -> usize {
    match data.get(pos..end).and_then(|s| memchr::memchr(b'\n', s)) {
        Some(i) => pos + i + 1,
        None => end,
    }
}

fn is_blank_line(line: &[u8]) -> bool {
    line == b"\r\n" || line == b"\n"
}

/// Strips one trailing CRLF or LF.
fn strip_line_end(s: &[u8]) -> &[u8] {
    s.strip_suffix(b"\r\n")
        .or_else(|| s.strip_suffix(b"\n"))
        .unwrap_or(s)
}

/// RFC 5322 header names are at most 998 octets; Dovecot reads a line
/// whose name is longer as a value without name, and so does this.
const NAME_MAX_LEN: usize = 1000;

/// The fields of a header block, in order, one at a time: walking a hostile
/// header of millions of fields holds nothing, where a `Vec` of them cost
/// 48 bytes a field. Every line is part of a field, as Dovecot reads them:
/// a line that starts with a space or tab continues the one before (unless
/// it is the first), and a line without a colon is a field with an empty
/// name, so that HEADER.FIELDS.NOT keeps it. The walk stops at the empty
/// line that ends the block.
#[derive(Debug, Clone)]
pub(crate) struct Fields<'h> {
    header: &'h [u8],
    pos: usize,
}

impl<'h> Iterator for Fields<'h> {
    type Item = Field<'h>;

    fn next(&mut self) -> Option<Field<'h>> {
        let header = self.header;
        let end = header.len();
        let start = self.pos;
        if start >= end {
            return None;
        }
        let next = line_end(header, start, end);
        let line = header.get(start..next).unwrap_or_default();
        if is_blank_line(line) {
            self.pos = end;
            return None;
        }
        self.pos = next;
        while self.pos < end && matches!(header.get(self.pos), Some(b' ' | b'\t')) {
            self.pos = line_end(header, self.pos, end);
        }
        let upto = self.pos;
        let raw = header.get(start..upto).unwrap_or_default();
        let first = strip_line_end(line);
        let (name, value_start) = match memchr::memchr(b':', first) {
            Some(colon) => {
                let name = first.get(..colon).unwrap_or_default();
                let name = name
                    .iter()
                    .rposition(|&b| b != b' ' && b != b'\t')
                    .map_or(&name[..0], |last| &name[..=last]);
                if name.len() > NAME_MAX_LEN {
                    (&first[..0], start)
                } else {
                    (name, start + colon + 1)
                }
            }
            None => (&first[..0], start),
        };
        let value = strip_line_end(header.get(value_start..upto).unwrap_or_default());
        Some(Field {
            start,
            name,
            raw,
            value,
        })
    }
}

impl Field<'_> {
    /// The value as Dovecot hands it to its ENVELOPE and BODYSTRUCTURE
    /// code: the first line's value without the blanks after the colon
    /// (only one if it is all blank), then each continuation line after a
    /// bare LF, every line without its line end.
    pub fn full_value(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.value.len());
        let mut lines = self.value.split(|&b| b == b'\n');
        let first = lines.next().unwrap_or_default();
        let first = first.strip_suffix(b"\r").unwrap_or(first);
        let blanks = first
            .iter()
            .take_while(|&&b| b == b' ' || b == b'\t')
            .count();
        let skip = if blanks == first.len() {
            blanks.min(1)
        } else {
            blanks
        };
        out.extend_from_slice(first.get(skip..).unwrap_or_default());
        for line in lines {
            out.push(b'\n');
            out.extend_from_slice(line.strip_suffix(b"\r").unwrap_or(line));
        }
        out
    }
}

/// Walks the fields of a header block (see [`Fields`]).
pub(crate) fn fields(header: &[u8]) -> Fields<'_> {
    Fields { header, pos: 0 }
}

/// The field that starts at `start` (a [`Field::start`]), read again.
pub(crate) fn field_at(header: &[u8], start: usize) -> Option<Field<'_>> {
    Fields { header, pos: start }.next()
}

/// Does the header block end with the empty line that closes it (rather
/// than at the end of the data or at a MIME delimiter)?
pub(crate) fn has_end_line(header: &[u8]) -> bool {
    header == b"\r\n" || header == b"\n" || header.ends_with(b"\n\r\n") || header.ends_with(b"\n\n")
}

/// Unfolds a field value: removes the line ends (folding is CRLF before WSP)
/// and the whitespace around the whole value.
pub(crate) fn unfold(value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len());
    let mut i = 0;
    while let Some(&b) = value.get(i) {
        if b == b'\r' && value.get(i + 1) == Some(&b'\n') {
            i += 2;
            continue;
        }
        if b != b'\n' {
            out.push(b);
        }
        i += 1;
    }
    out.trim_ascii().to_vec()
}

/// Unfolded values of every field called `name` (case-insensitive), in order.
pub(crate) fn values(header: &[u8], name: &[u8]) -> Vec<Vec<u8>> {
    fields(header)
        .filter(|f| f.name.eq_ignore_ascii_case(name))
        .map(|f| unfold(f.value))
        .collect()
}

/// Unfolded value of the first field called `name`.
pub(crate) fn first_value(header: &[u8], name: &[u8]) -> Option<Vec<u8>> {
    fields(header)
        .find(|f| f.name.eq_ignore_ascii_case(name))
        .map(|f| unfold(f.value))
}

/// Counts lines the way BODYSTRUCTURE reports them, as Dovecot, Courier
/// and Cyrus do: the line ends in the body. A last line without one — in a
/// MIME part, the line before the boundary, whose CRLF belongs to the
/// boundary (RFC 2046 §5.1.1) — is not counted.
pub(crate) fn count_lines(body: &[u8]) -> usize {
    memchr::memchr_iter(b'\n', body).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: &[u8] = b"From: a@b\r\nSubject: hello\r\n  world\r\nbogus line\r\n cont\r\nX-Empty:\r\nSUBJECT : again\r\n\r\nbody\r\n";

    #[test]
    fn splits_fields_keeping_folds() {
        let end = H.len() - 6;
        let f: Vec<Field> = fields(&H[..end]).collect();
        let names: Vec<&[u8]> = f.iter().map(|f| f.name).collect();
        // `bogus line` (no colon) is a field without name.
        assert_eq!(
            names,
            vec![&b"From"[..], b"Subject", b"", b"X-Empty", b"SUBJECT"]
        );
        assert_eq!(f[1].raw, b"Subject: hello\r\n  world\r\n");
        assert_eq!(f[1].value, b" hello\r\n  world");
        assert_eq!(f[1].full_value(), b"hello\n  world");
        assert_eq!(f[2].raw, b"bogus line\r\n cont\r\n");
        assert_eq!(f[2].value, b"bogus line\r\n cont");
        assert_eq!(f[3].value, b"");
    }

    #[test]
    fn unfolds_values() {
        assert_eq!(
            values(H, b"subject"),
            vec![b"hello  world".to_vec(), b"again".to_vec()]
        );
        assert_eq!(first_value(H, b"x-empty"), Some(Vec::new()));
        assert_eq!(first_value(H, b"to"), None);
    }

    #[test]
    fn counts_lines() {
        assert_eq!(count_lines(b""), 0);
        assert_eq!(count_lines(b"a\r\nb\r\n"), 2);
        // imaptest's case: a part `Hello Bob,\r\nhere are the numbers.`
        // before `\r\n--boundary` has one line.
        assert_eq!(count_lines(b"Hello Bob,\r\nhere are the numbers."), 1);
        assert_eq!(count_lines(b"a\r\nb"), 1);
    }

    #[test]
    fn fields_are_found_again_where_they_start() {
        let end = H.len() - 6;
        for f in fields(&H[..end]) {
            assert_eq!(&H[f.start..f.start + f.raw.len()], f.raw);
            assert_eq!(field_at(&H[..end], f.start), Some(f));
        }
        // Walked lazily: the first field of a huge header costs one line.
        let mut huge = b"A: 1\r\n".to_vec();
        huge.extend(std::iter::repeat_n(b'b', 1 << 20));
        assert_eq!(fields(&huge).next().map(|f| f.value), Some(&b" 1"[..]));
    }
}
