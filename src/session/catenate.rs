//! CATENATE (RFC 4469): an APPENDed message made of TEXT literals and parts
//! of messages already in this account's mailboxes, named by IMAP URLs
//! (RFC 5092) of the form `/mailbox[;UIDVALIDITY=n]/;UID=n[/;SECTION=s]
//! [/;PARTIAL=o[.l]]`, relative (`/;UID=n...` is the selected mailbox) or
//! absolute (`imap://user@host/...`, the user being the one logged in).
//!
//! A URL that cannot be resolved is `NO [BADURL "url"]`. The parts are
//! joined in memory, within the APPEND size limit, and the message then
//! goes the way of any APPENDed one.

use std::os::unix::fs::FileExt;

use super::{Completion, Session};
use crate::maildir::acl::right;
use crate::message::{Message, decode, to_crlf_into};
use crate::protocol::command::{CatPart, CommandBody, FetchItem, MessageData};
use crate::protocol::framing::Fragment;
use crate::protocol::parser::parse_command;
use crate::protocol::response::Code;

/// A URL taken apart.
#[derive(Debug, Default, PartialEq)]
struct ImapUrl {
    /// The mailbox as the client would send it; `None`: the selected one.
    mailbox: Option<Vec<u8>>,
    uidvalidity: Option<u32>,
    uid: u32,
    section: Option<Vec<u8>>,
    partial: Option<(u64, Option<u64>)>,
}

/// Parses `url`; `login` is the user an absolute URL must name.
fn parse_url(url: &[u8], login: &str) -> Option<ImapUrl> {
    let mut path = url;
    if path.len() >= 7 && path[..7].eq_ignore_ascii_case(b"imap://") {
        let rest = &path[7..];
        let end = rest.iter().position(|&b| b == b'/')?;
        let authority = &rest[..end];
        if let Some(at) = authority.iter().rposition(|&b| b == b'@') {
            let user = authority[..at].split(|&b| b == b';').next()?;
            if decode::percent(user) != login.as_bytes() {
                return None;
            }
        }
        path = &rest[end..];
    }
    let path = path.strip_prefix(b"/")?;
    let mut out = ImapUrl::default();
    let mut segments = path.split(|&b| b == b'/');
    let first = segments.next()?;
    let mut pending = Vec::new();
    if first.starts_with(b";") {
        pending.push(first);
    } else {
        let mut fields = first.split(|&b| b == b';');
        out.mailbox = Some(decode::percent(fields.next()?));
        for f in fields {
            let (k, v) = split_key(f)?;
            if !k.eq_ignore_ascii_case(b"UIDVALIDITY") {
                return None;
            }
            out.uidvalidity = Some(number(v)? as u32);
        }
    }
    let mut uid = None;
    for segment in pending.into_iter().chain(segments) {
        let f = segment.strip_prefix(b";")?;
        let (k, v) = split_key(f)?;
        let k = k.to_ascii_uppercase();
        match k.as_slice() {
            b"UID" if uid.is_none() => uid = Some(u32::try_from(number(v)?).ok()?),
            b"SECTION" if uid.is_some() && out.section.is_none() => {
                out.section = Some(decode::percent(v))
            }
            b"PARTIAL" if uid.is_some() && out.partial.is_none() => {
                let mut p = v.splitn(2, |&b| b == b'.');
                let origin = number(p.next()?)?;
                let length = match p.next() {
                    Some(l) => Some(number(l)?),
                    None => None,
                };
                out.partial = Some((origin, length));
            }
            _ => return None,
        }
    }
    out.uid = uid.filter(|&u| u > 0)?;
    Some(out)
}

fn split_key(f: &[u8]) -> Option<(&[u8], &[u8])> {
    let eq = f.iter().position(|&b| b == b'=')?;
    Some((&f[..eq], &f[eq + 1..]))
}

fn number(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

fn bad_url(url: &[u8], why: &str) -> Completion {
    // The URL goes back quoted; one with a quote or backslash is not
    // repeated (it could not be a valid URL anyway).
    let shown = String::from_utf8_lossy(url)
        .chars()
        .filter(|c| !matches!(c, '"' | '\\' | '\r' | '\n'))
        .collect::<String>();
    Completion::no_code(Code::BadUrl(shown), why)
}

impl Session<'_> {
    /// Joins the parts of a CATENATE into the message's bytes (CRLF line
    /// ends, as a literal would have them), at most `limit` of them.
    pub(super) fn catenate(
        &mut self,
        parts: Vec<CatPart>,
        limit: usize,
    ) -> Result<Vec<u8>, Completion> {
        let mut out = Vec::new();
        for part in parts {
            match part {
                CatPart::Text(MessageData::Memory(data)) => out.extend_from_slice(&data),
                CatPart::Text(MessageData::Spooled(spool)) => {
                    let start = out.len();
                    out.resize(start + spool.len as usize, 0);
                    if let Err(e) = spool.file.read_exact_at(&mut out[start..], 0) {
                        log::error!("reading a spooled CATENATE part: {e}");
                        return Err(Completion::no_code(
                            Code::ServerBug,
                            "Cannot read the message text.",
                        ));
                    }
                }
                CatPart::Url(url) => {
                    let bytes = self.url_bytes(&url)?;
                    out.extend_from_slice(&bytes);
                }
            }
            if out.len() > limit {
                return Err(Completion::no_code(Code::TooBig, "Message too large."));
            }
        }
        Ok(out)
    }

    /// The bytes an IMAP URL names, in CRLF form.
    fn url_bytes(&mut self, url: &[u8]) -> Result<Vec<u8>, Completion> {
        let login = self.settings.accessor.login().to_string();
        let Some(parsed) = parse_url(url, &login) else {
            return Err(bad_url(url, "Not an IMAP URL of this account."));
        };
        let name = match &parsed.mailbox {
            Some(raw) => self
                .mailbox_name(raw)
                .map_err(|_| bad_url(url, "Invalid mailbox name."))?,
            None => match &self.selected {
                Some(view) => view.folder.name().to_string(),
                None => return Err(bad_url(url, "No mailbox selected.")),
            },
        };
        self.require(&name, right::READ, "CATENATE")
            .map_err(|_| bad_url(url, "No such mailbox or no right to read it."))?;
        let folder = self
            .folder(&name)
            .map_err(|_| bad_url(url, "No such mailbox."))?;
        let scan = folder
            .scan_read_only()
            .map_err(|_| bad_url(url, "The mailbox cannot be read."))?;
        if parsed.uidvalidity.is_some_and(|v| v != scan.uidvalidity) {
            return Err(bad_url(url, "UIDVALIDITY does not match."));
        }
        let Some(entry) = scan.messages.iter().find(|m| m.uid == parsed.uid) else {
            return Err(bad_url(url, "No message with that UID."));
        };
        let raw = match folder.open_message(&entry.filename) {
            Ok(Some(mut opened)) => {
                let mut raw = Vec::new();
                std::io::Read::read_to_end(&mut opened.file, &mut raw)
                    .map_err(|_| bad_url(url, "The message cannot be read."))?;
                raw
            }
            _ => return Err(bad_url(url, "The message is gone.")),
        };
        let mut crlf = Vec::new();
        let data = if to_crlf_into(&raw, &mut crlf) {
            crlf
        } else {
            raw
        };
        let mut bytes = match &parsed.section {
            None => data,
            Some(section) => {
                // The section grammar is FETCH's (RFC 5092 §3: section as
                // in BODY[...]); the FETCH parser reads it.
                let mut line = b"x FETCH 1 BODY.PEEK[".to_vec();
                line.extend_from_slice(section);
                line.push(b']');
                let section = match parse_command(vec![Fragment::Line(line)]) {
                    Ok(c) => match c.body {
                        CommandBody::Fetch { mut items, .. } => match items.pop() {
                            Some(FetchItem::BodySection { section, .. }) if items.is_empty() => {
                                section
                            }
                            _ => return Err(bad_url(url, "Invalid section.")),
                        },
                        _ => return Err(bad_url(url, "Invalid section.")),
                    },
                    Err(_) => return Err(bad_url(url, "Invalid section.")),
                };
                match Message::parse(&data).section(&section) {
                    Some(b) => b.into_owned(),
                    None => return Err(bad_url(url, "No such section.")),
                }
            }
        };
        if let Some((origin, length)) = parsed.partial {
            let start = usize::try_from(origin)
                .unwrap_or(usize::MAX)
                .min(bytes.len());
            let end = match length {
                Some(l) => start
                    .saturating_add(usize::try_from(l).unwrap_or(usize::MAX))
                    .min(bytes.len()),
                None => bytes.len(),
            };
            bytes = bytes.get(start..end).unwrap_or_default().to_vec();
        }
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_of_rfc_4469_and_5092() {
        assert_eq!(
            parse_url(b"/INBOX;UIDVALIDITY=385759045/;UID=20/;SECTION=1.MIME", "u"),
            Some(ImapUrl {
                mailbox: Some(b"INBOX".to_vec()),
                uidvalidity: Some(385759045),
                uid: 20,
                section: Some(b"1.MIME".to_vec()),
                partial: None,
            })
        );
        assert_eq!(
            parse_url(b"/;uid=20/;partial=10.5", "u"),
            Some(ImapUrl {
                uid: 20,
                partial: Some((10, Some(5))),
                ..ImapUrl::default()
            })
        );
        let abs = parse_url(
            b"imap://u@host.example/Drafts%20X/;UID=3/;SECTION=HEADER",
            "u",
        )
        .unwrap();
        assert_eq!(abs.mailbox.as_deref(), Some(&b"Drafts X"[..]));
        assert_eq!(abs.section.as_deref(), Some(&b"HEADER"[..]));
        // Another account, no UID, junk.
        assert_eq!(parse_url(b"imap://other@host/INBOX/;UID=3", "u"), None);
        assert_eq!(parse_url(b"/INBOX", "u"), None);
        assert_eq!(parse_url(b"/INBOX/;UID=0", "u"), None);
        assert_eq!(parse_url(b"/INBOX/;UID=x", "u"), None);
        assert_eq!(parse_url(b"INBOX/;UID=1", "u"), None);
        assert_eq!(parse_url(b"/INBOX/;SECTION=1/;UID=1", "u"), None);
    }
}
