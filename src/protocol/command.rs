//! The parsed form of every client command this server understands.
//!
//! This module owns only the data types; `parser.rs` builds them from framed
//! input. Nothing here knows about mailboxes on disk: mailbox names stay the raw
//! bytes the client sent (modified UTF-7 or, after ENABLE UTF8=ACCEPT, UTF-8) and
//! the session decodes them.

use super::framing::Spool;
use super::sequence::SequenceSet;

/// One complete command: its tag and what it asks for.
#[derive(Debug, PartialEq)]
pub struct Command {
    pub tag: String,
    pub body: CommandBody,
}

/// An APPEND's message as it arrived: in memory, or spooled to a file when
/// large (the command owns the only copy either way).
#[derive(Debug, PartialEq)]
pub enum MessageData {
    Memory(Vec<u8>),
    Spooled(Spool),
}

/// One message of an APPEND: RFC 3502's MULTIAPPEND sends several, each with
/// flags and a date of its own.
#[derive(Debug, PartialEq)]
pub struct AppendMessage {
    /// Flag names as sent, e.g. `\Seen`, `$Forwarded`.
    pub flags: Vec<String>,
    /// Unix time of the date-time argument.
    pub date: Option<i64>,
    pub message: MessageData,
    /// RFC 4469 CATENATE: the parts the message is made of, in order
    /// (`message` is then empty until the session builds it).
    pub catenate: Option<Vec<CatPart>>,
}

/// One part of a CATENATE (RFC 4469).
#[derive(Debug, PartialEq)]
pub enum CatPart {
    Text(MessageData),
    /// An IMAP URL (RFC 5092) as sent.
    Url(Vec<u8>),
}

impl MessageData {
    pub fn len(&self) -> u64 {
        match self {
            MessageData::Memory(v) => v.len() as u64,
            MessageData::Spooled(s) => s.len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Debug, PartialEq)]
pub enum CommandBody {
    // Any state.
    Capability,
    Noop,
    Logout,
    /// RFC 2971. `None` is `ID NIL`.
    Id(Option<Vec<IdField>>),

    // Not authenticated.
    StartTls,
    Login {
        user: Vec<u8>,
        password: Vec<u8>,
    },
    /// `initial` is the SASL-IR initial response, already base64-decoded;
    /// `Some(vec![])` for the `=` empty response.
    Authenticate {
        mechanism: String,
        initial: Option<Vec<u8>>,
    },

    // Authenticated.
    Enable(Vec<String>),
    Select {
        mailbox: Vec<u8>,
        params: SelectParams,
    },
    Examine {
        mailbox: Vec<u8>,
        params: SelectParams,
    },
    /// `uses` are CREATE-SPECIAL-USE's attributes (RFC 6154 `USE (...)`) as sent,
    /// e.g. `\\Sent`; empty without them.
    Create {
        mailbox: Vec<u8>,
        uses: Vec<String>,
    },
    Delete {
        mailbox: Vec<u8>,
    },
    Rename {
        from: Vec<u8>,
        to: Vec<u8>,
    },
    Subscribe {
        mailbox: Vec<u8>,
    },
    Unsubscribe {
        mailbox: Vec<u8>,
    },
    /// LIST, with RFC 5258's extensions: `patterns` has at least one pattern.
    List {
        reference: Vec<u8>,
        patterns: Vec<Vec<u8>>,
        options: ListOptions,
    },
    Lsub {
        reference: Vec<u8>,
        pattern: Vec<u8>,
    },
    Namespace,
    Status {
        mailbox: Vec<u8>,
        items: Vec<StatusItem>,
    },
    /// APPEND, or with more than one message MULTIAPPEND (RFC 3502).
    Append {
        mailbox: Vec<u8>,
        /// At least one.
        messages: Vec<AppendMessage>,
    },
    GetQuotaRoot {
        mailbox: Vec<u8>,
    },
    GetQuota {
        root: Vec<u8>,
    },
    // RFC 4314 (identifiers and rights as sent).
    GetAcl {
        mailbox: Vec<u8>,
    },
    SetAcl {
        mailbox: Vec<u8>,
        identifier: Vec<u8>,
        rights: Vec<u8>,
    },
    DeleteAcl {
        mailbox: Vec<u8>,
        identifier: Vec<u8>,
    },
    ListRights {
        mailbox: Vec<u8>,
        identifier: Vec<u8>,
    },
    MyRights {
        mailbox: Vec<u8>,
    },
    /// RFC 9208 §4.1.3; `limits` are (upper-cased resource name, limit).
    SetQuota {
        root: Vec<u8>,
        limits: Vec<(String, u64)>,
    },

    // Selected.
    Check,
    Close,
    Unselect,
    /// RFC 5267 §4.2: stop keeping these searches' results (by their commands' tags) current.
    CancelUpdate {
        tags: Vec<String>,
    },
    /// `uids` is `Some` for UID EXPUNGE (RFC 4315).
    Expunge {
        uids: Option<SequenceSet>,
    },
    /// `returns` is `Some` when the client asked for ESEARCH results
    /// (RFC 4731 `RETURN (...)`).
    Search {
        uid: bool,
        returns: Option<SearchReturn>,
        charset: Option<String>,
        criteria: SearchKey,
    },
    /// RFC 5256 SORT; `returns` is ESORT's `RETURN (...)` (RFC 5267).
    Sort {
        uid: bool,
        returns: Option<SearchReturn>,
        program: Vec<SortCriterion>,
        charset: String,
        criteria: SearchKey,
    },
    /// RFC 5256 THREAD.
    Thread {
        uid: bool,
        algorithm: ThreadAlgorithm,
        charset: String,
        criteria: SearchKey,
    },
    /// `changed_since` and `vanished`: RFC 7162's `(CHANGEDSINCE n [VANISHED])` fetch
    /// modifiers.
    Fetch {
        uid: bool,
        set: SequenceSet,
        items: Vec<FetchItem>,
        changed_since: Option<u64>,
        vanished: bool,
    },
    /// `unchanged_since`: RFC 7162's `(UNCHANGEDSINCE n)` store modifier.
    Store {
        uid: bool,
        set: SequenceSet,
        unchanged_since: Option<u64>,
        mode: StoreMode,
        silent: bool,
        flags: Vec<String>,
    },
    Copy {
        uid: bool,
        set: SequenceSet,
        mailbox: Vec<u8>,
    },
    Move {
        uid: bool,
        set: SequenceSet,
        mailbox: Vec<u8>,
    },
    Idle,
    /// RFC 4978: the mechanism's name, upper-cased (only DEFLATE exists).
    Compress {
        mechanism: String,
    },
    /// RFC 5465 NOTIFY: `None` is NOTIFY NONE.
    Notify(Option<NotifySet>),
}

/// RFC 5465 `NOTIFY SET [STATUS] (filter events) ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifySet {
    /// STATUS: tell the state of the (non-selected) mailboxes at once.
    pub status: bool,
    /// At least one.
    pub groups: Vec<NotifyGroup>,
}

/// One event group: which mailboxes, and which of their events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyGroup {
    pub filter: NotifyFilter,
    /// Empty for `NONE`.
    pub events: Vec<NotifyEvent>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyFilter {
    Selected,
    SelectedDelayed,
    Inboxes,
    Personal,
    Subscribed,
    /// The mailboxes named and everything below them, as sent.
    Subtree(Vec<Vec<u8>>),
    /// Exactly the mailboxes named, as sent.
    Mailboxes(Vec<Vec<u8>>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyEvent {
    /// With the fetch attributes to send for each new message (selected mailbox only).
    MessageNew(Vec<FetchItem>),
    MessageExpunge,
    FlagChange,
    AnnotationChange,
    MailboxName,
    SubscriptionChange,
    MailboxMetadataChange,
    ServerMetadataChange,
}

/// RFC 4466 select parameters: RFC 7162's `CONDSTORE` and `QRESYNC (...)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SelectParams {
    pub condstore: bool,
    pub qresync: Option<Qresync>,
}

/// RFC 7162 §3.2.5: what the client knew of the mailbox when it last had it selected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Qresync {
    pub uidvalidity: u32,
    pub modseq: u64,
    /// The UIDs it knows; `None` stands for all.
    pub known_uids: Option<SequenceSet>,
    /// Message sequence numbers and the UIDs they had (seq-match-data): a hint for servers
    /// that forget expunges; this one answers from the UIDs it has.
    pub seq_match: Option<(SequenceSet, SequenceSet)>,
}

/// LIST-EXTENDED's selection and return options (RFC 5258, with SPECIAL-USE's of RFC
/// 6154 and LIST-STATUS's of RFC 5819). All false for RFC 3501's LIST.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListOptions {
    /// The command used the extended syntax (selection options, a parenthesized list of
    /// patterns, or RETURN): RFC 3501's empty-pattern special case does not apply.
    pub extended: bool,
    pub select_subscribed: bool,
    /// Nothing to do for a server without remote mailboxes, but valid.
    pub select_remote: bool,
    pub recursive_match: bool,
    pub select_special_use: bool,
    pub return_subscribed: bool,
    pub return_children: bool,
    pub return_special_use: bool,
    /// RFC 5819 `RETURN (STATUS (...))`.
    pub return_status: Option<Vec<StatusItem>>,
}

/// What ESEARCH (RFC 4731), SEARCHRES (RFC 5182) and CONTEXT (RFC 5267) ask a SEARCH
/// or SORT to return. `RETURN ()` is `all` alone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SearchReturn {
    pub min: bool,
    pub max: bool,
    pub all: bool,
    pub count: bool,
    /// SEARCHRES: keep the result for `$`.
    pub save: bool,
    /// CONTEXT: keep the result current with ADDTO and REMOVEFROM as the mailbox changes.
    pub update: bool,
    /// CONTEXT: only this slice of the result (PARTIAL).
    pub partial: Option<PartialRange>,
}

/// RFC 5267 §4.4 `PARTIAL low:high`: positions in the result, counted from 1, `low <=
/// high` whichever way the client wrote them; with `from_end`, RFC 9394's `-low:-high`,
/// counted back from the last (`-1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartialRange {
    pub low: u32,
    pub high: u32,
    pub from_end: bool,
}

/// One RFC 5256 sort criterion (with RFC 5957's DISPLAYFROM and DISPLAYTO).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SortCriterion {
    pub key: SortKey,
    pub reverse: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Arrival,
    Cc,
    Date,
    From,
    Size,
    Subject,
    To,
    DisplayFrom,
    DisplayTo,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThreadAlgorithm {
    OrderedSubject,
    References,
}

/// One ID field: a name and its value (`NIL` is `None`).
pub type IdField = (Vec<u8>, Option<Vec<u8>>);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusItem {
    Messages,
    Recent,
    UidNext,
    UidValidity,
    Unseen,
    /// RFC 8438.
    Size,
    /// RFC 9208 (and RFC 9051): messages with `\Deleted`.
    Deleted,
    /// RFC 9208: the STORAGE an EXPUNGE would free.
    DeletedStorage,
    /// RFC 8474.
    MailboxId,
    /// RFC 7162.
    HighestModSeq,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreMode {
    Replace,
    Add,
    Remove,
}

/// One FETCH data item. The macros ALL, FAST and FULL are expanded by the parser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchItem {
    Envelope,
    Flags,
    InternalDate,
    Rfc822,
    Rfc822Header,
    Rfc822Size,
    Rfc822Text,
    /// `BODY` without a section: the non-extensible body structure.
    Body,
    BodyStructure,
    Uid,
    /// `BODY[...]` or `BODY.PEEK[...]`, optionally partial `<origin.count>`.
    BodySection {
        peek: bool,
        section: Section,
        partial: Option<(u32, u32)>,
    },
    /// RFC 3516 `BINARY[part]` or `BINARY.PEEK[part]`: the part's content
    /// with its Content-Transfer-Encoding undone, optionally partial.
    Binary {
        peek: bool,
        part: Vec<u32>,
        partial: Option<(u32, u32)>,
    },
    /// RFC 3516 `BINARY.SIZE[part]`: the decoded size.
    BinarySize {
        part: Vec<u32>,
    },
    /// RFC 8474 `EMAILID`.
    EmailId,
    /// RFC 8474 `THREADID`.
    ThreadId,
    /// RFC 8514 `SAVEDATE`.
    SaveDate,
    /// RFC 8970 `PREVIEW` or `PREVIEW (LAZY)`.
    Preview {
        lazy: bool,
    },
    /// RFC 7162 `MODSEQ`.
    ModSeq,
}

/// A section specification: `1.2.HEADER.FIELDS (From To)` is
/// `Section { part: vec![1, 2], text: Some(SectionText::HeaderFields(..)) }`.
/// `BODY[]` is an empty `part` with `text: None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub part: Vec<u32>,
    pub text: Option<SectionText>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SectionText {
    Header,
    /// Field names as sent (compare case-insensitively).
    HeaderFields(Vec<Vec<u8>>),
    HeaderFieldsNot(Vec<Vec<u8>>),
    Text,
    Mime,
}

/// A calendar date from SEARCH (`1-Feb-1994`), without time or zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date {
    pub year: i32,
    pub month: u32,
    pub day: u32,
}

/// The SEARCH criteria tree. Top-level keys given side by side arrive as `And`.
/// Strings are raw bytes in the command's charset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchKey {
    And(Vec<SearchKey>),
    Or(Box<SearchKey>, Box<SearchKey>),
    Not(Box<SearchKey>),
    All,
    Answered,
    Deleted,
    Draft,
    Flagged,
    New,
    Old,
    Recent,
    Seen,
    Unanswered,
    Undeleted,
    Undraft,
    Unflagged,
    Unseen,
    Keyword(String),
    Unkeyword(String),
    Bcc(Vec<u8>),
    Cc(Vec<u8>),
    From(Vec<u8>),
    To(Vec<u8>),
    Subject(Vec<u8>),
    Body(Vec<u8>),
    Text(Vec<u8>),
    Header(Vec<u8>, Vec<u8>),
    Before(Date),
    On(Date),
    Since(Date),
    SentBefore(Date),
    SentOn(Date),
    SentSince(Date),
    Larger(u64),
    Smaller(u64),
    /// RFC 5032 WITHIN: INTERNALDATE within the last n seconds.
    Younger(u64),
    /// RFC 5032 WITHIN: INTERNALDATE more than n seconds ago.
    Older(u64),
    Uid(SequenceSet),
    SequenceSet(SequenceSet),
    /// RFC 8474 `EMAILID objectid`.
    EmailId(String),
    /// RFC 8474 `THREADID objectid`.
    ThreadId(String),
    /// RFC 8514 SAVEDBEFORE, SAVEDON, SAVEDSINCE.
    SavedBefore(Date),
    SavedOn(Date),
    SavedSince(Date),
    /// RFC 8514 SAVEDATESUPPORTED: every message of a mailbox that has save dates.
    SaveDateSupported,
    /// RFC 7162 `MODSEQ [entry-name entry-type] n`: MODSEQ at least n (the entry, which
    /// names one flag's metadata, is accepted and not distinguished: a message has one
    /// MODSEQ for all its flags here).
    ModSeq(u64),
}
