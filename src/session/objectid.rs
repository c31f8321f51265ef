//! OBJECTID (RFC 8474): how a message's EMAILID and THREADID are made. (MAILBOXID is
//! the store's: `maildir::Folder::mailbox_id`.)
//!
//! EMAILID is a hash of the message's maildir unique name (its file name before `:2,`).
//! That name is the same in every session, is kept by every flag change (a flag change
//! renames only the part after `:2,`), and is unique in the maildir, so no index or
//! database has to hold the id; COPY and MOVE give the new file a unique name of its own,
//! hence a new EMAILID, which RFC 8474 §5.1 allows. A hash of the content would instead
//! give two deliveries of the same bytes one id, which the RFC forbids for distinct
//! messages in one mailbox.
//!
//! THREADID is a hash of the thread's root as the message's own header names it: the
//! first id of References:, else of In-Reply-To:, else its own Message-ID: (the first
//! id of References is the thread's start by RFC 5322 §3.6.4), as Dovecot's message-id
//! based threading groups them. Replies that keep their References therefore share the
//! id of the message they descend from, in any folder and session, with no state kept. A
//! message with none of these fields is a thread of its own: its id derives from its
//! EMAILID. Must not touch the filesystem.

use sha2::{Digest, Sha256};

use crate::maildir::basename_of;
use crate::message::SortKeys;

/// `prefix` and 24 hex digits (96 bits) of SHA-256 over `what`: an RFC 8474 objectid.
fn hashed(prefix: char, what: &[u8]) -> String {
    let digest = Sha256::digest(what);
    let mut id = String::with_capacity(25);
    id.push(prefix);
    for b in digest.iter().take(12) {
        id.push_str(&format!("{b:02x}"));
    }
    id
}

/// The EMAILID of the message whose file is named `filename` (with or without flags).
pub(super) fn email_id(filename: &str) -> String {
    hashed('M', basename_of(filename).as_bytes())
}

/// The THREADID of a message whose header (or kept header fields) is `header`.
pub(super) fn thread_id(filename: &str, header: &[u8]) -> String {
    let keys = SortKeys::of_header(header);
    match keys.references.first().or(keys.message_id.as_ref()) {
        Some(root) => hashed('T', root.as_bytes()),
        None => hashed('T', email_id(filename).as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_id_ignores_flags() {
        let a = email_id("1700000000.M1P2.host,S=10:2,");
        assert_eq!(a, email_id("1700000000.M1P2.host,S=10:2,FS"));
        assert_ne!(a, email_id("1700000001.M1P2.host,S=10:2,"));
        assert!(a.starts_with('M') && a.len() == 25);
    }

    #[test]
    fn thread_id_is_the_roots() {
        let root = thread_id("a", b"Message-ID: <root@x>\r\n\r\n");
        let reply = thread_id(
            "b",
            b"Message-ID: <r1@x>\r\nReferences: <root@x> <p@x>\r\n\r\n",
        );
        let in_reply = thread_id("c", b"Message-ID: <r2@x>\r\nIn-Reply-To: <root@x>\r\n\r\n");
        assert_eq!(root, reply);
        assert_eq!(root, in_reply);
        assert_ne!(root, thread_id("d", b"Message-ID: <other@x>\r\n\r\n"));
        assert_ne!(thread_id("e", b"\r\n"), thread_id("f", b"\r\n"));
    }
}
