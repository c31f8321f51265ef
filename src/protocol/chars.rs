//! The character classes of the RFC 3501 grammar (§9): which bytes may stand in an atom,
//! an astring, a tag or a LIST pattern without quoting.
//!
//! One definition of each, shared by the framing (which reads a tag for its error
//! replies), the parser and the response encoder (which writes an astring bare only when
//! the parser would read it back as the same atom). This module decides membership only;
//! it knows nothing of commands or of where a class is used.

/// atom-specials: `(` `)` `{` SP CTL `list-wildcards` `quoted-specials` `resp-specials`.
/// SP and CTL are left to [`is_atom_char`]'s range test.
fn is_atom_special(b: u8) -> bool {
    matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
}

/// ATOM-CHAR: any 7-bit CHAR except CTL, SP and atom-specials.
pub fn is_atom_char(b: u8) -> bool {
    b > 0x20 && b < 0x7f && !is_atom_special(b)
}

/// ASTRING-CHAR: ATOM-CHAR or `]` (resp-specials).
pub fn is_astring_char(b: u8) -> bool {
    is_atom_char(b) || b == b']'
}

/// A tag character: ASTRING-CHAR except `+`.
pub fn is_tag_char(b: u8) -> bool {
    is_astring_char(b) && b != b'+'
}

/// list-char: ATOM-CHAR, the list-wildcards `%` and `*`, or resp-specials `]`.
pub fn is_list_char(b: u8) -> bool {
    is_astring_char(b) || b == b'%' || b == b'*'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_nest_as_the_grammar_says() {
        for b in 0..=255u8 {
            if is_atom_char(b) {
                assert!(is_astring_char(b), "{b:#04x}");
            }
            if is_tag_char(b) {
                assert!(is_astring_char(b), "{b:#04x}");
            }
            if is_astring_char(b) {
                assert!(is_list_char(b), "{b:#04x}");
            }
        }
    }

    #[test]
    fn members() {
        for b in b"()\"{\\%*] \x00\x7f\x80\xff" {
            assert!(!is_atom_char(*b), "{b:#04x}");
        }
        assert!(is_atom_char(b'a') && is_atom_char(b'[') && is_atom_char(b'+'));
        assert!(is_astring_char(b']') && !is_astring_char(b'%'));
        assert!(!is_tag_char(b'+') && is_tag_char(b'a'));
        assert!(is_list_char(b'%') && is_list_char(b'*') && !is_list_char(b'('));
    }
}
