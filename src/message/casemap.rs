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
pub fn fold(text: &str) -> String {
    if text.is_ascii() {
        // Titlecase is upper case, and NFKD changes nothing, in ASCII.
        return text.to_ascii_uppercase();
    }
    text.chars().map(titlecase).nfkd().collect()
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
}
