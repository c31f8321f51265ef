//! Server responses (RFC 3501 §7, §9 `response`): status responses, tagged
//! or untagged, with their response codes (RFC 3501 §7.1, RFC 4315, RFC 5530,
//! RFC 7162 ...), continuation requests, and the one place that decides how a
//! command that could not be framed or parsed is answered, before login and
//! after it alike.
//!
//! This module only encodes; it does not know where the bytes go. Data
//! responses (`* FETCH`, `* LIST`, ...) are built by the session, which knows
//! what they say.

use std::fmt;

use super::framing::FrameError;
use super::parser::ParseError;

/// The status word of a status response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    No,
    Bad,
    Bye,
    PreAuth,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::No => "NO",
            Status::Bad => "BAD",
            Status::Bye => "BYE",
            Status::PreAuth => "PREAUTH",
        }
    }
}

/// A response code: the bracketed part a client acts on without reading the
/// text (RFC 3501 §7.1, RFC 4315 §3, RFC 5530 §3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Code {
    // RFC 3501
    Alert,
    /// The charsets SEARCH understands.
    BadCharset(&'static [&'static str]),
    Capability(String),
    Parse,
    /// The flag list, already encoded: `(\Seen \Deleted \*)`.
    PermanentFlags(Vec<u8>),
    ReadOnly,
    ReadWrite,
    TryCreate,
    UidNext(u32),
    UidValidity(u32),
    Unseen(u32),
    // RFC 4315
    /// The new messages' UIDs, already compacted: one UID, or for MULTIAPPEND
    /// (RFC 3502) a set.
    AppendUid {
        uidvalidity: u32,
        uids: String,
    },
    /// Source and destination UID sets, already compacted.
    CopyUid {
        uidvalidity: u32,
        source: String,
        dest: String,
    },
    UidNotSticky,
    // RFC 5530
    Unavailable,
    AuthenticationFailed,
    AuthorizationFailed,
    Expired,
    PrivacyRequired,
    ContactAdmin,
    NoPerm,
    InUse,
    ExpungeIssued,
    Corruption,
    ServerBug,
    ClientBug,
    Cannot,
    Limit,
    OverQuota,
    AlreadyExists,
    NonExistent,
    // RFC 7888 (LITERAL+ / LITERAL-), RFC 4469
    TooBig,
    // RFC 7162
    Closed,
    HighestModSeq(u64),
    /// The messages a conditional STORE left alone, already compacted.
    Modified(String),
    /// RFC 5465: the events the server supports, space-separated.
    BadEvent(String),
    // RFC 4978
    CompressionActive,
    // RFC 3516
    UnknownCte,
    /// RFC 4469: the URL, which must hold no `"` or `\`.
    BadUrl(String),
    /// RFC 6154: CREATE with a special use the server does not offer.
    UseAttr,
    /// Courier's `[MYRIGHTS "<rights>"]` on SELECT (ACL, RFC 4314 letters).
    MyRights(String),
    /// RFC 8474 `MAILBOXID (<objectid>)` on SELECT, EXAMINE and CREATE; the id holds only
    /// letters, digits, `_` and `-`.
    MailboxId(String),
    /// RFC 5267 §4.2: the search with this tag is answered but not kept current. A tag
    /// holds no `"` or `\\` (RFC 3501's `tag` is made of atom characters).
    NoUpdate(String),
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Code::Alert => f.write_str("ALERT"),
            Code::BadCharset(list) => write!(f, "BADCHARSET ({})", list.join(" ")),
            Code::Capability(caps) => write!(f, "CAPABILITY {caps}"),
            Code::Parse => f.write_str("PARSE"),
            Code::PermanentFlags(list) => {
                write!(f, "PERMANENTFLAGS {}", String::from_utf8_lossy(list))
            }
            Code::ReadOnly => f.write_str("READ-ONLY"),
            Code::ReadWrite => f.write_str("READ-WRITE"),
            Code::TryCreate => f.write_str("TRYCREATE"),
            Code::UidNext(n) => write!(f, "UIDNEXT {n}"),
            Code::UidValidity(n) => write!(f, "UIDVALIDITY {n}"),
            Code::Unseen(n) => write!(f, "UNSEEN {n}"),
            Code::AppendUid { uidvalidity, uids } => write!(f, "APPENDUID {uidvalidity} {uids}"),
            Code::CopyUid {
                uidvalidity,
                source,
                dest,
            } => write!(f, "COPYUID {uidvalidity} {source} {dest}"),
            Code::UidNotSticky => f.write_str("UIDNOTSTICKY"),
            Code::Unavailable => f.write_str("UNAVAILABLE"),
            Code::AuthenticationFailed => f.write_str("AUTHENTICATIONFAILED"),
            Code::AuthorizationFailed => f.write_str("AUTHORIZATIONFAILED"),
            Code::Expired => f.write_str("EXPIRED"),
            Code::PrivacyRequired => f.write_str("PRIVACYREQUIRED"),
            Code::ContactAdmin => f.write_str("CONTACTADMIN"),
            Code::NoPerm => f.write_str("NOPERM"),
            Code::InUse => f.write_str("INUSE"),
            Code::ExpungeIssued => f.write_str("EXPUNGEISSUED"),
            Code::Corruption => f.write_str("CORRUPTION"),
            Code::ServerBug => f.write_str("SERVERBUG"),
            Code::ClientBug => f.write_str("CLIENTBUG"),
            Code::Cannot => f.write_str("CANNOT"),
            Code::Limit => f.write_str("LIMIT"),
            Code::OverQuota => f.write_str("OVERQUOTA"),
            Code::AlreadyExists => f.write_str("ALREADYEXISTS"),
            Code::NonExistent => f.write_str("NONEXISTENT"),
            Code::TooBig => f.write_str("TOOBIG"),
            Code::Closed => f.write_str("CLOSED"),
            Code::HighestModSeq(n) => write!(f, "HIGHESTMODSEQ {n}"),
            Code::Modified(set) => write!(f, "MODIFIED {set}"),
            Code::BadEvent(events) => write!(f, "BADEVENT ({events})"),
            Code::CompressionActive => f.write_str("COMPRESSIONACTIVE"),
            Code::UnknownCte => f.write_str("UNKNOWN-CTE"),
            Code::BadUrl(url) => write!(f, "BADURL \"{url}\""),
            Code::UseAttr => f.write_str("USEATTR"),
            Code::MailboxId(id) => write!(f, "MAILBOXID ({id})"),
            Code::NoUpdate(tag) => write!(f, "NOUPDATE \"{tag}\""),
            Code::MyRights(rights) => {
                f.write_str("MYRIGHTS \"")?;
                for c in rights.chars() {
                    if c == '"' || c == '\\' {
                        f.write_str("\\")?;
                    }
                    write!(f, "{c}")?;
                }
                f.write_str("\"")
            }
        }
    }
}

/// How a command ended, or an untagged status: status, optional code, text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    pub status: Status,
    pub code: Option<Code>,
    pub text: String,
}

impl Completion {
    pub fn new(status: Status, code: Option<Code>, text: impl Into<String>) -> Completion {
        Completion {
            status,
            code,
            text: text.into(),
        }
    }
    pub fn ok(text: impl Into<String>) -> Completion {
        Completion::new(Status::Ok, None, text)
    }
    pub fn ok_code(code: Code, text: impl Into<String>) -> Completion {
        Completion::new(Status::Ok, Some(code), text)
    }
    pub fn no(text: impl Into<String>) -> Completion {
        Completion::new(Status::No, None, text)
    }
    pub fn no_code(code: Code, text: impl Into<String>) -> Completion {
        Completion::new(Status::No, Some(code), text)
    }
    pub fn bad(text: impl Into<String>) -> Completion {
        Completion::new(Status::Bad, None, text)
    }
    pub fn bad_code(code: Code, text: impl Into<String>) -> Completion {
        Completion::new(Status::Bad, Some(code), text)
    }
    pub fn bye(text: impl Into<String>) -> Completion {
        Completion::new(Status::Bye, None, text)
    }

    /// `tag SP status SP [code] SP text CRLF`; the tag `*` makes it untagged.
    pub fn encode(&self, tag: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(tag.len() + self.text.len() + 16);
        out.extend_from_slice(tag.as_bytes());
        out.push(b' ');
        out.extend_from_slice(&self.body());
        out.extend_from_slice(b"\r\n");
        out
    }

    /// `status SP [code] SP text`, without tag and line end (for a queue of
    /// untagged responses that adds both).
    pub fn body(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.text.len() + 16);
        out.extend_from_slice(self.status.as_str().as_bytes());
        out.push(b' ');
        if let Some(code) = &self.code {
            out.push(b'[');
            out.extend_from_slice(code.to_string().as_bytes());
            out.extend_from_slice(b"] ");
        }
        // Text is ours, but a CR or LF in it would end the response early.
        out.extend(self.text.bytes().filter(|&b| b != b'\r' && b != b'\n'));
        out
    }

    /// The untagged form: `* status [code] text CRLF`.
    pub fn untagged(&self) -> Vec<u8> {
        self.encode("*")
    }
}

/// A continuation request: `+ text CRLF` (SASL challenges carry base64 here).
pub fn continuation(text: &str) -> Vec<u8> {
    format!("+ {text}\r\n").into_bytes()
}

/// The tag to answer with when the command's own could not be read: the
/// client sees an untagged BAD and at least knows why it waits.
fn tag_or_star(tag: Option<&[u8]>) -> String {
    tag.map(|t| String::from_utf8_lossy(t).into_owned())
        .unwrap_or_else(|| "*".into())
}

/// The answer to input that could not be framed, the same in every state:
/// `None` when the connection failed (nothing can be answered).
///
/// RFC 7888 §4: a non-synchronizing literal over the limit is a protocol
/// violation, answered BAD; a synchronizing one was merely refused before the
/// client sent it, answered NO. A line over the limit is BAD. All carry
/// `[TOOBIG]`.
pub fn for_frame_error(e: &FrameError) -> Option<(String, Completion)> {
    match e {
        FrameError::Io(_) => None,
        FrameError::LineTooLong { tag } => Some((
            tag_or_star(tag.as_deref()),
            Completion::bad_code(Code::TooBig, "Command line too long."),
        )),
        FrameError::LiteralTooBig {
            tag, synchronizing, ..
        } => {
            let status = if *synchronizing {
                Status::No
            } else {
                Status::Bad
            };
            Some((
                tag_or_star(tag.as_deref()),
                Completion::new(status, Some(Code::TooBig), "Literal too large."),
            ))
        }
    }
}

/// The answer to a command that was framed but not understood, or that
/// went past a limit of the grammar's (`[TOOBIG]`, `[LIMIT]`).
pub fn for_parse_error(e: &ParseError) -> (String, Completion) {
    let code = if e.too_big {
        Some(Code::TooBig)
    } else if e.limit {
        Some(Code::Limit)
    } else {
        None
    };
    (
        e.tag.clone().unwrap_or_else(|| "*".into()),
        Completion::new(Status::Bad, code, e.message.clone()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_tagged_and_untagged() {
        assert_eq!(
            Completion::ok_code(
                Code::AppendUid {
                    uidvalidity: 38505,
                    uids: "3955".into()
                },
                "APPEND completed"
            )
            .encode("A003"),
            b"A003 OK [APPENDUID 38505 3955] APPEND completed\r\n"
        );
        assert_eq!(
            Completion::no_code(
                Code::BadCharset(&["US-ASCII", "UTF-8"]),
                "Unsupported charset."
            )
            .encode("a"),
            b"a NO [BADCHARSET (US-ASCII UTF-8)] Unsupported charset.\r\n"
        );
        assert_eq!(
            Completion::bye("Autologout").untagged(),
            b"* BYE Autologout\r\n"
        );
        assert_eq!(
            Completion::bad("a\r\nb").encode("t"),
            b"t BAD ab\r\n",
            "text cannot end the response early"
        );
    }

    #[test]
    fn frame_errors_answered_alike_in_every_state() {
        let sync = FrameError::LiteralTooBig {
            tag: Some(b"a1".to_vec()),
            size: 1 << 40,
            synchronizing: true,
            in_sync: true,
        };
        let nonsync = FrameError::LiteralTooBig {
            tag: Some(b"a2".to_vec()),
            size: 1 << 40,
            synchronizing: false,
            in_sync: false,
        };
        let (t, c) = for_frame_error(&sync).unwrap();
        assert_eq!(c.encode(&t), b"a1 NO [TOOBIG] Literal too large.\r\n");
        let (t, c) = for_frame_error(&nonsync).unwrap();
        assert_eq!(c.encode(&t), b"a2 BAD [TOOBIG] Literal too large.\r\n");
        let (t, c) = for_frame_error(&FrameError::LineTooLong { tag: None }).unwrap();
        assert_eq!(c.encode(&t), b"* BAD [TOOBIG] Command line too long.\r\n");
        assert!(
            for_frame_error(&FrameError::Io(std::io::ErrorKind::UnexpectedEof.into())).is_none()
        );
    }

    #[test]
    fn parse_errors_carry_their_code() {
        let error = |too_big, limit| ParseError {
            tag: Some("a".into()),
            message: "Nope".into(),
            too_big,
            limit,
        };
        let answer = |e: ParseError| {
            let (t, c) = for_parse_error(&e);
            String::from_utf8(c.encode(&t)).unwrap()
        };
        assert_eq!(answer(error(false, false)), "a BAD Nope\r\n");
        assert_eq!(answer(error(true, false)), "a BAD [TOOBIG] Nope\r\n");
        assert_eq!(answer(error(false, true)), "a BAD [LIMIT] Nope\r\n");
    }
}
