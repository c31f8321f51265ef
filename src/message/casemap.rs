//! The i;unicode-casemap collation (RFC 5051), which I18NLEVEL=1 (RFC 5255
//! §4.1) asks SEARCH to match with and SORT and THREAD (RFC 5256) to compare
//! with: each character to its titlecase, then the text to Unicode
//! Normalization Form KD. `Café`, `CAFÉ` and `cafe\u{301}` fold alike, and
//! an accented letter sorts beside its base letter; Dovecot folds the same
//! way, so both servers agree on the answers.
//!
//! Pure text work; it knows nothing of messages.

use unicode_normalization::UnicodeNormalization;

/// `text` folded: equal folds mean equal under the collation, and folds
/// compare byte by byte in the collation's order (RFC 5051 §2.3).
///
/// Mail text is mostly ASCII with a few other letters, so the text is
/// folded run by run: a run of ASCII is upper-cased as bytes (titlecase is
/// upper case, and NFKD changes nothing, in ASCII), and only the runs
/// between go through the Unicode tables. That is the same fold as the
/// whole text's: every ASCII character is a starter (canonical combining
/// class 0), so NFKD's reordering of combining marks never crosses it, and
/// the titlecase mapping is per character.
pub fn fold(text: &str) -> String {
    // All ASCII, as most header fields and many bodies are: one word-at-a-time check.
    if text.is_ascii() {
        return text.to_ascii_uppercase();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        let ascii = rest
            .bytes()
            .position(|b| !b.is_ascii())
            .unwrap_or(rest.len());
        let (run, tail) = rest.split_at(ascii);
        let from = out.len();
        out.push_str(run);
        out[from..].make_ascii_uppercase();
        let other = tail
            .bytes()
            .position(|b| b.is_ascii())
            .unwrap_or(tail.len());
        // `other` is at a character boundary: an ASCII byte never lies
        // inside a UTF-8 sequence.
        let (run, tail) = tail.split_at(other);
        out.extend(run.chars().map(titlecase).nfkd());
        rest = tail;
    }
    out
}

/// The simple titlecase mapping (UnicodeData.txt field 14). It is the
/// simple upper case mapping but for the Latin digraphs, whose titlecase is
/// their middle form, and Georgian Mkhedruli, which titlecases to itself.
fn titlecase(c: char) -> char {
    match c {
        '\u{1C4}'..='\u{1C6}' => '\u{1C5}',
        '\u{1C7}'..='\u{1C9}' => '\u{1C8}',
        '\u{1CA}'..='\u{1CC}' => '\u{1CB}',
        '\u{1F1}'..='\u{1F3}' => '\u{1F2}',
        '\u{10D0}'..='\u{10FA}' | '\u{10FD}'..='\u{10FF}' => c,
        _ => {
            let mut upper = c.to_uppercase();
            match (upper.next(), upper.next()) {
                (Some(u), None) => u,
                // Only a full mapping has several characters (ß → SS);
                // the simple mapping keeps the character.
                _ => c,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc5051_examples_and_order() {
        // RFC 5051 §2.4's point: case and canonical equivalents compare equal.
        assert_eq!(fold("Café"), fold("CAFE\u{301}"));
        assert_eq!(fold("café"), "CAFE\u{301}");
        // Compatibility forms too (NFKD): the ligature is its letters.
        assert_eq!(fold("\u{FB01}le"), "fiLE");
        // The digraph titlecases to its middle form, which NFKD spells out.
        assert_eq!(fold("ǆemal"), "Dz\u{30C}EMAL");
        assert_eq!(fold("ß"), "ß");
        // É sorts between E and F; `_` after the letters, as in ASCII.
        assert!(fold("Eve") < fold("Émilie") && fold("Émilie") < fold("Frank"));
        assert!(fold("a_") > fold("ab"));
        assert_eq!(fold("Straße 5"), "STRAßE 5");
    }

    /// Folding run by run gives what folding the whole text at once gives,
    /// where runs meet combining marks, compatibility forms and digraphs.
    #[test]
    fn runs_fold_as_the_whole_text() {
        let whole = |t: &str| -> String { t.chars().map(titlecase).nfkd().collect() };
        for t in [
            "",
            "plain ascii only",
            "café",
            "cafe\u{301} au lait",
            "e\u{301}\u{316}x\u{316}\u{301}",
            "\u{FB01}le \u{FF3A}anzibar",
            "ǆemal, Ǉ and ǉ",
            "Ünïcödé at the end: ß",
            "\u{1E69}\u{323}q",
            "日本語 text 中文",
            "\u{10D0}\u{10D1} Georgian",
        ] {
            assert_eq!(fold(t), whole(t), "{t:?}");
        }
    }
}
