//! APPEND (RFC 3501 §6.3.11) with APPENDUID (RFC 4315).

use super::{Done, Session, store_error};
use crate::maildir::StoreError;

impl Session<'_> {
    pub(super) fn cmd_append(
        &mut self,
        raw: &[u8],
        flags: &[String],
        date: Option<i64>,
        message: &[u8],
    ) -> Done {
        let name = match self.mailbox_name(raw) {
            Ok(n) => n,
            Err(d) => return d,
        };
        if message.len() > self.settings.max_append {
            return Done::no_code("TOOBIG", "Message too large.");
        }
        let change = match super::flags::parse_for_store(flags, self.settings.keywords) {
            Ok(c) => c,
            Err(d) => return d,
        };
        let folder = match self.store.folder(&name) {
            Ok(f) => f,
            // RFC 3501 §6.3.11: TRYCREATE tells the client to CREATE and retry.
            Err(StoreError::NonExistent(_)) => {
                return Done::no_code("TRYCREATE", "No such mailbox.");
            }
            Err(e) => return store_error(&e),
        };
        // Store messages the way an MTA does, with LF line ends, so sizes
        // and files look the same as Courier's.
        let data = strip_cr(message);
        match folder.deliver(&data, &change.info_flags(), &change.keywords, date) {
            Ok((uidvalidity, uid)) => Done::ok_code(
                format!("APPENDUID {uidvalidity} {uid}"),
                "APPEND completed.",
            ),
            Err(e) => store_error(&e),
        }
    }
}

/// CRLF → LF, and a final LF added when missing (as Courier stores APPENDs).
fn strip_cr(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 1);
    let mut i = 0;
    while i < data.len() {
        if data[i] == b'\r' && data.get(i + 1) == Some(&b'\n') {
            i += 1;
            continue;
        }
        out.push(data[i]);
        i += 1;
    }
    if !out.is_empty() && out.last() != Some(&b'\n') {
        out.push(b'\n');
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn strips_crlf_and_terminates() {
        assert_eq!(super::strip_cr(b"a\r\nb\r\n"), b"a\nb\n");
        assert_eq!(super::strip_cr(b"no end"), b"no end\n");
        // A lone CR is message content, not a line end.
        assert_eq!(super::strip_cr(b"a\rb\n"), b"a\rb\n");
    }
}
