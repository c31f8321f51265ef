//! Dovecot's own maildir files, read only: `dovecot-uidlist` (versions 1 and 3),
//! `dovecot-keywords`, the keyword letters in message file names, the root's
//! `subscriptions` file (with or without its version-2 header) and the modified
//! UTF-7 in which Dovecot names folder directories by default.
//!
//! Owns the parsing of those formats and nothing else: it must not touch the
//! disk, know Courier's files, or decide what a migration does with what it
//! reads. The formats are described from Dovecot's documentation
//! (doc.dovecot.org, "Maildir Mailbox Format") and checked against what
//! Dovecot 2.3 writes; nothing here is taken from Dovecot's code.

use crate::protocol::mutf7;

/// Name of the UID list in every folder.
pub const UIDLIST_NAME: &str = "dovecot-uidlist";
/// Dovecot's lock of the UID list; a fresh one means Dovecot is at work on the folder.
pub const UIDLIST_LOCK_NAME: &str = "dovecot-uidlist.lock";
/// Letter-to-keyword table of every folder.
pub const KEYWORDS_NAME: &str = "dovecot-keywords";
/// Subscriptions, in the maildir root.
pub const SUBSCRIPTIONS_NAME: &str = "subscriptions";
/// Keywords have the letters `a`..`z` in file names, so a folder has at most 26 of them
/// on disk (Dovecot keeps any further ones in its binary index only).
pub const LETTER_SLOTS: usize = 26;

/// A parsed `dovecot-uidlist`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UidList {
    pub version: u8,
    pub uidvalidity: u32,
    /// The `N` (version 3) or third header field (version 1). Dovecot appends records
    /// without rewriting the header, so records may be at or above it: see `next_uid`.
    pub header_next_uid: u32,
    /// `(uid, base name)` in ascending UID order, one record per base name.
    pub records: Vec<(u32, String)>,
}

impl UidList {
    /// The UID Dovecot would give the next message: above the header's value and above
    /// every record (listed UIDs were handed out even if their files are gone).
    pub fn next_uid(&self) -> u32 {
        let above_records = self
            .records
            .iter()
            .map(|(uid, _)| uid.saturating_add(1))
            .max()
            .unwrap_or(1);
        self.header_next_uid.max(above_records)
    }
}

/// Parses `dovecot-uidlist`. The error says what is wrong, for a sentence naming the file.
///
/// Version 1 (Dovecot up to 1.0, the same format as Courier's `courierimapuiddb`):
/// header `1 <uidvalidity> <nextuid>`, records `<uid> <filename>`.
/// Version 3 (Dovecot 1.1 and later): header `3` then space-separated fields, each a
/// key letter and its value (`V` UIDVALIDITY, `N` next UID, `G` mailbox GUID; others are
/// ignored); records `<uid> [<key><value> ...] :<filename>`, the extension fields (`W`
/// virtual size, `S`, `G`, ...) ending at the `:`. The file name is the last one
/// Dovecot knew, flags included; only its base name (up to the first `:`) identifies
/// the message. Version 2 only ever came from development snapshots and is refused.
pub fn parse_uidlist(bytes: &[u8]) -> Result<UidList, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "it is not UTF-8 text".to_string())?;
    let mut lines = text.split('\n');
    let header = lines.next().unwrap_or_default();
    let (version, fields) = match header.split_once(' ') {
        Some(("1", fields)) => (1u8, fields),
        Some(("3", fields)) => (3u8, fields),
        Some((v, _)) if v.len() == 1 && v.as_bytes()[0].is_ascii_digit() => {
            return Err(format!("its version {v} is not one Dovecot releases write"));
        }
        _ => return Err("its first line is not a Dovecot UID list header".to_string()),
    };
    let (uidvalidity, header_next_uid) = if version == 1 {
        let mut numbers = fields.split_ascii_whitespace().map(str::parse::<u32>);
        match (numbers.next(), numbers.next()) {
            (Some(Ok(v)), Some(Ok(n))) => (v, n),
            _ => return Err("its version-1 header is not `1 <uidvalidity> <nextuid>`".into()),
        }
    } else {
        let (mut v, mut n) = (None, None);
        for field in fields.split(' ').filter(|f| !f.is_empty()) {
            let (key, value) = field.split_at(1.min(field.len()));
            let slot = match key {
                "V" => &mut v,
                "N" => &mut n,
                _ => continue,
            };
            *slot = Some(
                value
                    .parse::<u32>()
                    .map_err(|_| format!("its header field {field:?} is not a number"))?,
            );
        }
        (v.unwrap_or(0), n.unwrap_or(0))
    };
    if uidvalidity == 0 || header_next_uid == 0 {
        return Err("its header lacks a UIDVALIDITY or a next UID".to_string());
    }

    let mut records: Vec<(u32, String)> = Vec::new();
    let mut previous = 0u32;
    for (index, line) in lines.enumerate() {
        if line.is_empty() {
            continue;
        }
        let at = || format!("line {}", index + 2);
        let digits = line
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(line.len());
        let uid: u32 = line[..digits]
            .parse()
            .map_err(|_| format!("{} does not start with a UID", at()))?;
        let rest = line[digits..]
            .strip_prefix(' ')
            .ok_or_else(|| format!("{} does not start with a UID and a space", at()))?;
        if uid == 0 || uid == u32::MAX {
            return Err(format!("{} has the impossible UID {uid}", at()));
        }
        // Dovecot itself treats a list whose UIDs do not ascend as broken.
        if uid <= previous {
            return Err(format!("{} has UID {uid}, not above {previous}", at()));
        }
        previous = uid;
        let rest = rest.trim_start_matches(' ');
        let filename = if version == 3 {
            // Skip the extension fields; the file name follows the first `:` that starts
            // a field.
            let mut rest = rest;
            while !rest.is_empty() && !rest.starts_with(':') {
                let end = rest.find(' ').unwrap_or(rest.len());
                rest = rest[end..].trim_start_matches(' ');
            }
            rest.strip_prefix(':').unwrap_or(rest)
        } else {
            rest
        };
        if filename.is_empty() || filename.contains(['/', '\0']) {
            return Err(format!("{} has no usable file name", at()));
        }
        let base = filename.split_once(':').map_or(filename, |(b, _)| b);
        // A base name listed twice (an expunged file restored from a backup) belongs to
        // the later UID, as in Dovecot.
        records.retain(|(_, b)| b != base);
        records.push((uid, base.to_string()));
    }
    Ok(UidList {
        version,
        uidvalidity,
        header_next_uid,
        records,
    })
}

/// Parses `dovecot-keywords`: lines `<index> <keyword>`, index 0 standing for the letter
/// `a` in file names, 1 for `b`, up to 25 for `z`. Lines that do not fit, and a name
/// already given to a lower line (Dovecot compares them without regard to case), are
/// skipped as Dovecot skips them.
pub fn parse_keywords(bytes: &[u8]) -> [Option<String>; LETTER_SLOTS] {
    let mut table: [Option<String>; LETTER_SLOTS] = Default::default();
    for line in String::from_utf8_lossy(bytes).split('\n') {
        let Some((index, name)) = line.split_once(' ') else {
            continue;
        };
        let Ok(index) = index.parse::<usize>() else {
            continue;
        };
        if index >= LETTER_SLOTS || name.is_empty() || name.contains(['\r', '\0']) {
            continue;
        }
        let taken = table.iter().flatten().any(|k| k.eq_ignore_ascii_case(name));
        if !taken {
            table[index] = Some(name.to_string());
        }
    }
    table
}

/// The keyword slots (0 for `a` ... 25 for `z`) set in a file name. Dovecot's flags are the
/// letters after the last `:` when it reads `:2,`, up to a `,` (after which Dovecot allows
/// fields of its own); upper-case letters are the standard flags.
pub fn keyword_slots(filename: &str) -> Vec<usize> {
    let Some((_, info)) = filename.rsplit_once(':') else {
        return Vec::new();
    };
    let Some(letters) = info.strip_prefix("2,") else {
        return Vec::new();
    };
    let letters = letters.split(',').next().unwrap_or_default();
    let mut slots: Vec<usize> = letters
        .bytes()
        .filter(u8::is_ascii_lowercase)
        .map(|b| usize::from(b - b'a'))
        .collect();
    slots.sort_unstable();
    slots.dedup();
    slots
}

/// One subscription line, as Dovecot's hierarchy components (not yet mapped to a folder).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub components: Vec<String>,
}

/// The header of a version-2 subscriptions file (Dovecot 2.2 and later).
const SUBSCRIPTIONS_V2_HEADER: &[u8] = b"V\t2\n\n";

/// Parses the root's `subscriptions` file. Version 2 starts with `V<TAB>2` and an empty
/// line; each line then holds one name, its hierarchy levels separated by TABs, each
/// level escaped with byte 1 (`\x01t` TAB, `\x01r` CR, `\x01n` LF, `\x011` byte 1, `\x010`
/// NUL). Without the header (older Dovecot) a line is the name itself, its levels
/// separated by the folder layout's `.` or, in files from Dovecot 1, by the namespace's
/// separator, which for a Maildir++ store can only be `/` besides `.` (`/` cannot occur in a
/// directory name). A trailing separator is dropped (Dovecot does too). Lines that are
/// not UTF-8 are returned as errors (the raw text, lossily) so the caller can report them.
pub fn parse_subscriptions(bytes: &[u8]) -> Vec<Result<Subscription, String>> {
    let (v2, body) = match bytes.strip_prefix(SUBSCRIPTIONS_V2_HEADER) {
        Some(body) => (true, body),
        None => (false, bytes),
    };
    let mut out = Vec::new();
    for line in body.split(|b| *b == b'\n') {
        if line.is_empty() {
            continue;
        }
        let Ok(line) = std::str::from_utf8(line) else {
            out.push(Err(String::from_utf8_lossy(line).into_owned()));
            continue;
        };
        let mut components: Vec<String> = if v2 {
            line.split('\t').map(tab_unescape).collect()
        } else {
            line.split(['.', '/']).map(str::to_string).collect()
        };
        if components.len() > 1 && components.last().is_some_and(String::is_empty) {
            components.pop();
        }
        out.push(Ok(Subscription { components }));
    }
    out
}

fn tab_unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\u{1}' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('0') => out.push('\0'),
            Some('1') => out.push('\u{1}'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('n') => out.push('\n'),
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

/// A folder name as Dovecot stored it, in UTF-8. Dovecot's Maildir++ layout keeps names in
/// modified UTF-7 (`.R&AOk-sum&AOk-`) unless `mail_location` says `:UTF-8`, while Courier 5
/// and mdimap keep UTF-8 (`.Résumé`). A name that is the canonical modified UTF-7 of
/// something else is decoded; any other (plain ASCII, raw UTF-8 from a `:UTF-8` site, an
/// `&` that does not start a valid encoded run) is already UTF-8 and is returned as is.
pub fn decode_name(stored: &str) -> String {
    if !stored.contains('&') {
        return stored.to_string();
    }
    mutf7::decode(stored.as_bytes()).unwrap_or_else(|| stored.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_3_list_as_dovecot_2_3_writes_it() {
        // The header was written before the last records were appended: N is stale.
        let list = parse_uidlist(
            b"3 V1796344444 N5 G8126d31c7a0a126bd550000083ecc375\n\
1 :1796344525.M177407P23661.vm,S=49,W=54\n\
2 W2481 :1796344525.M182480P23661.vm:2,Sab\n\
5 :1796344525.M190276P23661.vm,S=49,W=54\n\
6 :1796344600.M1P1.vm\n",
        )
        .unwrap();
        assert_eq!(list.version, 3);
        assert_eq!(list.uidvalidity, 1796344444);
        assert_eq!(list.header_next_uid, 5);
        assert_eq!(list.next_uid(), 7);
        assert_eq!(
            list.records,
            vec![
                (1, "1796344525.M177407P23661.vm,S=49,W=54".to_string()),
                (2, "1796344525.M182480P23661.vm".to_string()),
                (5, "1796344525.M190276P23661.vm,S=49,W=54".to_string()),
                (6, "1796344600.M1P1.vm".to_string()),
            ]
        );
    }

    #[test]
    fn version_1_list_is_courier_shaped() {
        let list =
            parse_uidlist(b"1 1275660208 25022\n25006 1276528487.M364837P9451.kurkku,S=1355:2,S\n")
                .unwrap();
        assert_eq!(list.version, 1);
        assert_eq!((list.uidvalidity, list.next_uid()), (1275660208, 25022));
        assert_eq!(
            list.records,
            vec![(25006, "1276528487.M364837P9451.kurkku,S=1355".to_string())]
        );
    }

    #[test]
    fn header_fields_in_any_order_and_unknown_ones() {
        let list = parse_uidlist(b"3 G00 N9 X1 V77\n").unwrap();
        assert_eq!((list.uidvalidity, list.next_uid()), (77, 9));
        assert!(list.records.is_empty());
    }

    #[test]
    fn a_base_name_listed_twice_keeps_the_later_uid() {
        let list = parse_uidlist(b"3 V1 N1\n3 :a:2,S\n8 :a:2,\n9 :b\n").unwrap();
        assert_eq!(
            list.records,
            vec![(8, "a".to_string()), (9, "b".to_string())]
        );
        assert_eq!(list.next_uid(), 10);
    }

    #[test]
    fn broken_lists_are_refused() {
        for bad in [
            &b""[..],
            b"garbage\n",
            b"2 1 2\n",
            b"1 5\n",
            b"3 N4\n",
            b"3 V0 N4\n",
            b"3 Vx N4\n",
            b"3 V1 N4\n2 :a\n2 :b\n",
            b"3 V1 N4\n3 :a\n2 :b\n",
            b"3 V1 N4\nx :a\n",
            b"3 V1 N4\n2:a\n",
            b"3 V1 N4\n2 W3 :\n",
            b"3 V1 N4\n2 :../a\n",
            b"1 1 4\n0 a\n",
            b"\xff 1 4\n",
        ] {
            assert!(
                parse_uidlist(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn keyword_table() {
        let table =
            parse_keywords(b"0 $Forwarded\n1 Junk\n3 junk\n2 Custom1\nnoindex\n26 z\n25 Last\n");
        assert_eq!(table[0].as_deref(), Some("$Forwarded"));
        assert_eq!(table[1].as_deref(), Some("Junk"));
        assert_eq!(table[2].as_deref(), Some("Custom1"));
        assert_eq!(table[3], None, "a name given twice keeps its first slot");
        assert_eq!(table[25].as_deref(), Some("Last"));
    }

    #[test]
    fn letters_in_names() {
        assert_eq!(keyword_slots("1.M2P3.vm,S=49,W=54:2,Sabc"), vec![0, 1, 2]);
        assert_eq!(keyword_slots("1.M2P3.vm:2,FRSTln"), vec![11, 13]);
        assert_eq!(keyword_slots("1.M2P3.vm:2,Sa,xyz"), vec![0]);
        assert_eq!(keyword_slots("1.M2P3.vm:1,ab"), Vec::<usize>::new());
        assert_eq!(keyword_slots("1.M2P3.vm"), Vec::<usize>::new());
    }

    #[test]
    fn subscriptions_version_2_and_older() {
        let parsed =
            parse_subscriptions(b"V\t2\n\nWork\nR&AOk-sum&AOk-\nWork\tReports\nINBOX\na\x01tb\n");
        let names: Vec<Vec<String>> = parsed.into_iter().map(|s| s.unwrap().components).collect();
        assert_eq!(
            names,
            vec![
                vec!["Work".to_string()],
                vec!["R&AOk-sum&AOk-".to_string()],
                vec!["Work".to_string(), "Reports".to_string()],
                vec!["INBOX".to_string()],
                vec!["a\tb".to_string()],
            ]
        );
        let parsed = parse_subscriptions(b"Work.Reports\nWork/Old/\nINBOX\n");
        let names: Vec<Vec<String>> = parsed.into_iter().map(|s| s.unwrap().components).collect();
        assert_eq!(
            names,
            vec![
                vec!["Work".to_string(), "Reports".to_string()],
                vec!["Work".to_string(), "Old".to_string()],
                vec!["INBOX".to_string()],
            ]
        );
        assert!(parse_subscriptions(b"\xffx\n")[0].is_err());
    }

    #[test]
    fn folder_names_in_modified_utf7() {
        assert_eq!(decode_name("R&AOk-sum&AOk-"), "Résumé");
        assert_eq!(decode_name("Work.Reports"), "Work.Reports");
        assert_eq!(
            decode_name("Q&A"),
            "Q&A",
            "not modified UTF-7: a :UTF-8 site's name"
        );
        assert_eq!(decode_name("Résumé"), "Résumé");
        assert_eq!(decode_name("Tom &- Jerry"), "Tom & Jerry");
    }
}
