//! RFC 5322 header blocks: where a block ends, its fields (with folding kept
//! as raw bytes), and unfolded values. Nothing here decodes encoded words or
//! interprets a field's structure; that belongs to the callers.

/// One header field as it appears in the block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Field<'a> {
    /// Where the field starts in its header block.
    pub start: usize,
    /// The name before the colon, without trailing whitespace.
    pub name: &'a [u8],
    /// The whole field: name, colon, value, every folded line and the final line end.
    pub raw: &'a [u8],
    /// Everything after the colon up to (not including) the final line end; folds kept.
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

/// Where the body starts: just past the empty line that ends the header block
/// starting at `start`, or `end` when there is no empty line (all header).
pub(crate) fn header_end(data: &[u8], start: usize, end: usize) -> usize {
    let mut pos = start;
    while pos < end {
        let next = line_end(data, pos, end);
        if is_blank_line(data.get(pos..next).unwrap_or_default()) {
            return next;
        }
        pos = next;
    }
    end
}

/// Strips one trailing CRLF or LF.
fn strip_line_end(s: &[u8]) -> &[u8] {
    s.strip_suffix(b"\r\n")
        .or_else(|| s.strip_suffix(b"\n"))
        .unwrap_or(s)
}

/// The fields of a header block, in order, one at a time: walking a hostile
/// header of millions of fields holds nothing, where a `Vec` of them cost
/// 48 bytes a field. Lines that are neither a field nor a continuation
/// (no colon, empty name) are skipped with their continuations.
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
        while self.pos < end {
            let start = self.pos;
            let next = line_end(header, start, end);
            let line = header.get(start..next).unwrap_or_default();
            if is_blank_line(line) {
                self.pos = end;
                return None;
            }
            self.pos = next;
            let continuation = matches!(line.first(), Some(b' ' | b'\t'));
            let colon = match memchr::memchr(b':', line) {
                Some(c) if !continuation && starts_with_field(line) => start + c,
                // Not a field, or a continuation of one that was not.
                _ => continue,
            };
            while self.pos < end && matches!(header.get(self.pos), Some(b' ' | b'\t')) {
                self.pos = line_end(header, self.pos, end);
            }
            let upto = self.pos;
            let raw = header.get(start..upto).unwrap_or_default();
            let name = header
                .get(start..colon)
                .unwrap_or_default()
                .trim_ascii_end();
            let value = strip_line_end(header.get(colon + 1..upto).unwrap_or_default());
            return Some(Field {
                start,
                name,
                raw,
                value,
            });
        }
        None
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

/// Does `line` begin a header field (`name:` with a printable name)?
pub(crate) fn starts_with_field(line: &[u8]) -> bool {
    memchr::memchr(b':', line).is_some_and(|c| {
        let name = line.get(..c).unwrap_or_default().trim_ascii_end();
        !name.is_empty() && name.iter().all(|&b| b > 0x20 && b < 0x7f)
    })
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
    fn finds_end_of_header_block() {
        let end = header_end(H, 0, H.len());
        assert_eq!(&H[end..], b"body\r\n");
        assert_eq!(header_end(b"\r\nbody", 0, 6), 2);
        assert_eq!(header_end(b"A: b\r\n", 0, 6), 6);
        assert_eq!(header_end(b"A: b\n\nx", 0, 7), 6);
    }

    #[test]
    fn splits_fields_keeping_folds() {
        let end = header_end(H, 0, H.len());
        let f: Vec<Field> = fields(&H[..end]).collect();
        let names: Vec<&[u8]> = f.iter().map(|f| f.name).collect();
        assert_eq!(
            names,
            vec![&b"From"[..], b"Subject", b"X-Empty", b"SUBJECT"]
        );
        assert_eq!(f[1].raw, b"Subject: hello\r\n  world\r\n");
        assert_eq!(f[1].value, b" hello\r\n  world");
        assert_eq!(f[2].value, b"");
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
        let end = header_end(H, 0, H.len());
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
