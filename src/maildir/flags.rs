//! What a message file name says: its base name (up to the first `:`), its info flags
//! after `:2,` (spec/maildir.md §1.2) and its `,S=` size (§1.3).
//!
//! Must not parse anything else out of the unique part of a name.

/// Message flags as the maildir info letters after `:2,`, kept sorted and unique
/// (D F R S T, plus any unknown letters preserved).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InfoFlags(pub Vec<u8>);

impl InfoFlags {
    /// True if the letter is set.
    pub fn has(&self, letter: u8) -> bool {
        self.0.binary_search(&letter).is_ok()
    }

    /// Sets or clears a letter. Only ASCII letters and digits are flags; anything else would
    /// corrupt the file name and is ignored.
    pub fn set(&mut self, letter: u8, on: bool) {
        if !letter.is_ascii_alphanumeric() {
            return;
        }
        match (self.0.binary_search(&letter), on) {
            (Err(at), true) => self.0.insert(at, letter),
            (Ok(at), false) => {
                self.0.remove(at);
            }
            _ => {}
        }
    }

    /// Flags of a file name: the letters after the last `:` if it reads `:2,`; none for a
    /// name in `new/` or with the experimental `:1,` info.
    pub fn from_filename(name: &str) -> InfoFlags {
        let mut flags = InfoFlags::default();
        if let Some((_, info)) = name.rsplit_once(':')
            && let Some(letters) = info.strip_prefix("2,")
        {
            for letter in letters.bytes() {
                flags.set(letter, true);
            }
        }
        flags
    }

    /// The letters as text, for building a file name.
    pub fn letters(&self) -> String {
        self.0.iter().map(|b| char::from(*b)).collect()
    }
}

/// The base name of a message file: everything before the first `:`.
pub fn basename_of(filename: &str) -> &str {
    filename.split_once(':').map_or(filename, |(base, _)| base)
}

/// The `,S=<n>` size in a file name (the last one before the info), if present.
pub fn size_from_name(filename: &str) -> Option<u64> {
    let base = basename_of(filename);
    let at = base.rfind(",S=")?;
    let digits = base.get(at + 3..)?;
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    digits.get(..end).filter(|d| !d.is_empty())?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_from_names() {
        assert_eq!(InfoFlags::from_filename("123.M1P2.host,S=5:2,FS").0, b"FS");
        assert_eq!(InfoFlags::from_filename("123.M1P2.host:2,").0, b"");
        assert_eq!(InfoFlags::from_filename("123.M1P2.host").0, b"");
        assert_eq!(InfoFlags::from_filename("123.M1P2.host:1,S").0, b"");
        // Unknown letters (Dovecot keyword letters, P) are kept, sorted, unique.
        assert_eq!(InfoFlags::from_filename("x:2,TSaPSR").0, b"PRSTa");
    }

    #[test]
    fn set_and_has() {
        let mut f = InfoFlags::default();
        f.set(b'T', true);
        f.set(b'D', true);
        f.set(b'S', true);
        f.set(b'S', true);
        f.set(b',', true);
        assert_eq!(f.letters(), "DST");
        assert!(f.has(b'S') && !f.has(b'F'));
        f.set(b'S', false);
        assert_eq!(f.letters(), "DT");
    }

    #[test]
    fn names() {
        assert_eq!(basename_of("a,S=120:2,S"), "a,S=120");
        assert_eq!(size_from_name("1.M2P3V4I5_1.vm,S=120:2,S"), Some(120));
        assert_eq!(size_from_name("1.M2P3.vm,S=120,W=128:2,S"), Some(120));
        assert_eq!(size_from_name("1.M2P3.vm:2,S"), None);
        assert_eq!(size_from_name("1.M2P3.vm,S=:2,"), None);
    }
}
