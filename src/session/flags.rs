//! IMAP flags ⇄ the store's representation: system flags are maildir info
//! letters, everything else is a keyword kept in `courierimapkeywords/`.

use crate::maildir::InfoFlags;
use crate::protocol::response::Code;

/// System flags and their maildir letters, in the order FLAGS lists them.
pub const SYSTEM_FLAGS: [(&str, u8); 5] = [
    ("\\Answered", b'R'),
    ("\\Flagged", b'F'),
    ("\\Deleted", b'T'),
    ("\\Seen", b'S'),
    ("\\Draft", b'D'),
];

/// Flags a client named in STORE or APPEND, split into letters and keywords.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FlagChange {
    pub letters: Vec<u8>,
    pub keywords: Vec<String>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum FlagError {
    /// `\Recent`, `\*` or an unknown `\Name`: RFC 3501 says these cannot be stored.
    NotStorable(String),
    /// A keyword with characters Courier's keyword file cannot hold.
    BadKeyword(String),
}

impl FlagChange {
    pub fn from_names(names: &[String]) -> Result<FlagChange, FlagError> {
        let mut change = FlagChange::default();
        for name in names {
            if let Some(stripped) = name.strip_prefix('\\') {
                let letter = SYSTEM_FLAGS
                    .iter()
                    .find(|(n, _)| n[1..].eq_ignore_ascii_case(stripped))
                    .map(|&(_, l)| l)
                    .ok_or_else(|| FlagError::NotStorable(name.clone()))?;
                if !change.letters.contains(&letter) {
                    change.letters.push(letter);
                }
            } else {
                if !valid_keyword(name) {
                    return Err(FlagError::BadKeyword(name.clone()));
                }
                if !change.keywords.iter().any(|k| k.eq_ignore_ascii_case(name)) {
                    change.keywords.push(name.clone());
                }
            }
        }
        Ok(change)
    }

    pub fn info_flags(&self) -> InfoFlags {
        let mut f = InfoFlags::default();
        for &l in &self.letters {
            f.set(l, true);
        }
        f
    }
}

/// The flags of a STORE or APPEND, or the response refusing them: `\Recent`
/// and unknown system flags are a client error, keywords may be switched
/// off by IMAP_KEYWORDS=0.
pub fn parse_for_store(
    names: &[String],
    keywords_allowed: bool,
) -> Result<FlagChange, super::Completion> {
    let change = match FlagChange::from_names(names) {
        Ok(c) => c,
        Err(FlagError::NotStorable(f)) => {
            return Err(super::Completion::bad(format!(
                "Flag {f} cannot be stored."
            )));
        }
        Err(FlagError::BadKeyword(k)) => {
            return Err(super::Completion::bad(format!("Invalid keyword {k}.")));
        }
    };
    if !keywords_allowed && !change.keywords.is_empty() {
        return Err(super::Completion::no_code(
            Code::Cannot,
            "Keywords are disabled on this server (IMAP_KEYWORDS=0).",
        ));
    }
    Ok(change)
}

/// A keyword is an atom; Courier additionally keeps it on one line of a file.
pub fn valid_keyword(k: &str) -> bool {
    !k.is_empty() && k.len() <= 128 && k.bytes().all(crate::protocol::chars::is_atom_char)
}

/// Appends `(\Seen \Recent $Label)` for one message.
pub fn write_flag_list(out: &mut Vec<u8>, flags: &InfoFlags, keywords: &[String], recent: bool) {
    out.push(b'(');
    let mut first = true;
    let mut sep = |out: &mut Vec<u8>| {
        if !first {
            out.push(b' ');
        }
        first = false;
    };
    for (name, letter) in SYSTEM_FLAGS {
        if flags.has(letter) {
            sep(out);
            out.extend_from_slice(name.as_bytes());
        }
    }
    if recent {
        sep(out);
        out.extend_from_slice(b"\\Recent");
    }
    for k in keywords {
        sep(out);
        out.extend_from_slice(k.as_bytes());
    }
    out.push(b')');
}

/// Merges keyword lists case-insensitively, keeping the first spelling.
pub fn merge_keywords(into: &mut Vec<String>, add: &[String]) {
    for k in add {
        if !into.iter().any(|e| e.eq_ignore_ascii_case(k)) {
            into.push(k.clone());
        }
    }
}

pub fn remove_keywords(from: &mut Vec<String>, remove: &[String]) {
    from.retain(|e| !remove.iter().any(|k| k.eq_ignore_ascii_case(e)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_system_flags_and_keywords() {
        let names = ["\\Seen", "\\deleted", "$Label1", "Seen"].map(String::from);
        let c = FlagChange::from_names(&names).unwrap();
        assert_eq!(c.letters, b"ST".to_vec());
        // RFC 3501: "Seen" without a backslash is a keyword, not \Seen.
        assert_eq!(c.keywords, vec!["$Label1".to_string(), "Seen".to_string()]);
    }

    #[test]
    fn refuses_recent_and_wildcard() {
        assert!(FlagChange::from_names(&["\\Recent".into()]).is_err());
        assert!(FlagChange::from_names(&["\\*".into()]).is_err());
        assert!(FlagChange::from_names(&["bad(kw".into()]).is_err());
    }
}
