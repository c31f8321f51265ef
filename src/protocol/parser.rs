//! The command grammar: framed fragments to a [`Command`] (RFC 3501 §9 plus
//! MULTIAPPEND, UIDPLUS's UID EXPUNGE, MOVE, UNSELECT, IDLE, NAMESPACE, ID, ENABLE,
//! SASL-IR, QUOTA's GETQUOTA/GETQUOTAROOT/SETQUOTA (RFC 9208), the STATUS items
//! SIZE, DELETED and DELETED-STORAGE, ACL's GETACL, SETACL, DELETEACL,
//! LISTRIGHTS and MYRIGHTS, ESEARCH's and ESORT's `RETURN (...)`, SEARCHRES's
//! `$`, and SORT and THREAD with their UID forms).
//!
//! This module only checks syntax. It must not judge meaning: whether a
//! command is allowed in the current state, whether 8-bit bytes in a quoted
//! string are acceptable (UTF8=ACCEPT), what a mailbox name refers to; the
//! session decides all that. Errors carry the tag when it could be read and a
//! short message that becomes the text of `tag BAD`.
//!
//! SEARCH criteria always come back wrapped in [`SearchKey::And`], even a
//! single key, so callers see one shape for the top level.

use super::chars::{is_astring_char, is_atom_char, is_list_char, is_tag_char};
use super::command::{
    AppendMessage, CatPart, Command, CommandBody, FetchItem, ListOptions, MessageData, NotifyEvent,
    NotifyFilter, NotifyGroup, NotifySet, PartialRange, Qresync, SearchKey, SearchReturn, Section,
    SectionText, SelectParams, SortCriterion, SortKey, StatusItem, StoreMode, ThreadAlgorithm,
};
use super::framing::Fragment;
use super::sequence::SequenceSet;
use super::{base64, datetime};

/// A syntax error. `tag` is `None` when not even the tag was readable (the
/// reply is then `* BAD`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub tag: Option<String>,
    pub message: String,
    /// A literal too large for its place (only an APPEND's message may be
    /// spooled to a file): answered with `[TOOBIG]`.
    pub too_big: bool,
    /// Grammatical, but past a limit of this server (SEARCH nesting or key
    /// count): answered with `[LIMIT]` (RFC 5530), so that a client can tell
    /// it from a syntax error.
    pub limit: bool,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ParseError {}

/// Nesting of NOT, OR and parentheses in SEARCH, bounding recursion.
const MAX_SEARCH_DEPTH: usize = 100;
/// Search keys in one command, bounding the work of evaluating them.
const MAX_SEARCH_KEYS: usize = 1000;

type PResult<T> = Result<T, String>;

fn is_sequence_char(b: u8) -> bool {
    b.is_ascii_digit() || matches!(b, b':' | b',' | b'*')
}

/// Parses one framed command. The fragments are taken by value so that an
/// APPEND's message moves into the command instead of being copied.
pub fn parse_command(mut fragments: Vec<Fragment>) -> Result<Command, ParseError> {
    let mut p = Parser {
        fragments: &fragments,
        index: 0,
        pos: 0,
        search_keys: 0,
        too_big: false,
        limit: false,
        message_at: Vec::new(),
    };
    let tag = p.tag().map_err(|message| ParseError {
        tag: None,
        message,
        too_big: false,
        limit: false,
    })?;
    let body = p.command_body();
    let (too_big, limit, message_at) = (p.too_big, p.limit, std::mem::take(&mut p.message_at));
    match body {
        Ok(mut body) => {
            if let CommandBody::Append { messages, .. } = &mut body {
                // The literals in the order the grammar met them: each
                // message's, or each TEXT part's of a CATENATE.
                let mut literals = message_at.iter();
                let mut take = || -> Option<MessageData> {
                    let &i = literals.next()?;
                    match fragments
                        .get_mut(i)
                        .map(|f| std::mem::replace(f, Fragment::Line(Vec::new())))
                    {
                        Some(Fragment::Literal(data)) => Some(MessageData::Memory(data)),
                        Some(Fragment::Spooled(spool)) => Some(MessageData::Spooled(spool)),
                        _ => None,
                    }
                };
                let missing = || ParseError {
                    tag: Some(tag.clone()),
                    message: "Literal data missing".into(),
                    too_big: false,
                    limit: false,
                };
                for m in messages.iter_mut() {
                    match &mut m.catenate {
                        None => m.message = take().ok_or_else(missing)?,
                        Some(parts) => {
                            for part in parts.iter_mut() {
                                if let CatPart::Text(data) = part {
                                    *data = take().ok_or_else(missing)?;
                                }
                            }
                        }
                    }
                }
            }
            Ok(Command { tag, body })
        }
        Err(message) => Err(ParseError {
            tag: Some(tag),
            message,
            too_big,
            limit,
        }),
    }
}

/// A cursor over the fragments: `index` is always a line, `pos` a position
/// in it. A literal is consumed together with its announcement, moving the
/// cursor to the start of the following line.
struct Parser<'a> {
    fragments: &'a [Fragment],
    index: usize,
    pos: usize,
    search_keys: usize,
    /// A spooled literal stood where only a small one may.
    too_big: bool,
    /// A SEARCH went past MAX_SEARCH_DEPTH or MAX_SEARCH_KEYS.
    limit: bool,
    /// The fragments holding an APPEND's messages, moved out after parsing.
    message_at: Vec<usize>,
}

impl<'a> Parser<'a> {
    fn line(&self) -> &'a [u8] {
        match self.fragments.get(self.index) {
            Some(Fragment::Line(line)) => line,
            _ => &[],
        }
    }

    fn rest(&self) -> &'a [u8] {
        self.line().get(self.pos..).unwrap_or(&[])
    }

    fn peek(&self) -> Option<u8> {
        self.rest().first().copied()
    }

    fn peek_at(&self, offset: usize) -> Option<u8> {
        self.rest().get(offset).copied()
    }

    fn at_end(&self) -> bool {
        self.rest().is_empty() && self.index + 1 >= self.fragments.len()
    }

    fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a [u8] {
        let rest = self.rest();
        let n = rest.iter().position(|&b| !f(b)).unwrap_or(rest.len());
        self.pos += n;
        rest.get(..n).unwrap_or(&[])
    }

    fn expect(&mut self, b: u8, what: &str) -> PResult<()> {
        if self.peek() == Some(b) {
            self.pos += 1;
            Ok(())
        } else {
            Err(format!("Expected {what}"))
        }
    }

    fn sp(&mut self) -> PResult<()> {
        if self.peek() == Some(b' ') {
            self.pos += 1;
            Ok(())
        } else if self.at_end() {
            Err("Missing arguments".into())
        } else {
            Err("Expected a space".into())
        }
    }

    fn expect_end(&self) -> PResult<()> {
        if self.at_end() {
            Ok(())
        } else {
            Err("Unexpected extra arguments".into())
        }
    }

    fn atom(&mut self) -> PResult<&'a [u8]> {
        let atom = self.take_while(is_atom_char);
        if atom.is_empty() {
            return Err(if self.at_end() {
                "Missing arguments".into()
            } else {
                "Expected an atom".into()
            });
        }
        Ok(atom)
    }

    /// An atom as text; atoms are printable ASCII, so this cannot fail.
    fn atom_string(&mut self) -> PResult<String> {
        Ok(String::from_utf8_lossy(self.atom()?).into_owned())
    }

    /// The next word made of letters, digits and dots, upper-cased (FETCH
    /// attribute names, section keywords), without requiring it to be nonempty.
    fn word(&mut self) -> Vec<u8> {
        self.take_while(|b| b.is_ascii_alphanumeric() || b == b'.')
            .to_ascii_uppercase()
    }

    /// True when the next atom, compared case-insensitively, is `keyword`;
    /// consumes it in that case.
    /// RFC 8474 `objectid = 1*255(ALPHA / DIGIT / "_" / "-")`.
    fn object_id(&mut self) -> PResult<String> {
        let id = self.atom()?;
        if id.len() > 255
            || !id
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
        {
            return Err("Invalid object id".into());
        }
        Ok(String::from_utf8_lossy(id).into_owned())
    }

    fn keyword(&mut self, keyword: &str) -> bool {
        let rest = self.rest();
        let n = rest
            .iter()
            .position(|&b| !is_atom_char(b))
            .unwrap_or(rest.len());
        if rest
            .get(..n)
            .is_some_and(|w| w.eq_ignore_ascii_case(keyword.as_bytes()))
        {
            self.pos += n;
            true
        } else {
            false
        }
    }

    fn tag(&mut self) -> PResult<String> {
        let tag = self.take_while(is_tag_char);
        if tag.is_empty() {
            return Err("Missing or invalid tag".into());
        }
        Ok(String::from_utf8_lossy(tag).into_owned())
    }

    fn quoted(&mut self) -> PResult<Vec<u8>> {
        self.expect(b'"', "a quoted string")?;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => return Err("Unterminated quoted string".into()),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => match self.peek_at(1) {
                    Some(c @ (b'"' | b'\\')) => {
                        out.push(c);
                        self.pos += 2;
                    }
                    _ => return Err("Invalid escape in quoted string".into()),
                },
                Some(0) => return Err("NUL in quoted string".into()),
                Some(c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    /// A literal (`{n}` or `{n+}`; with `allow8` also `~{n}`) whose
    /// announcement ends the current line; its data is the next fragment,
    /// which is returned by index (and the cursor moved past it).
    fn literal_at(&mut self, allow8: bool) -> PResult<usize> {
        let rest = self.rest();
        let rest = if allow8 {
            rest.strip_prefix(b"~").unwrap_or(rest)
        } else {
            rest
        };
        let inner = rest
            .strip_prefix(b"{")
            .and_then(|r| r.strip_suffix(b"}"))
            .ok_or_else(|| "Invalid literal".to_string())?;
        let digits = inner.strip_suffix(b"+").unwrap_or(inner);
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return Err("Invalid literal".into());
        }
        let size = parse_u64(digits).ok_or_else(|| "Invalid literal".to_string())?;
        let at = self.index + 1;
        let fits = match self.fragments.get(at) {
            Some(Fragment::Literal(data)) => data.len() as u64 == size,
            Some(Fragment::Spooled(spool)) => spool.len == size,
            _ => false,
        };
        if !fits {
            return Err("Literal data missing".into());
        }
        self.index += 2;
        self.pos = 0;
        Ok(at)
    }

    /// A literal held in memory: any string but an APPEND's message.
    fn literal(&mut self, allow8: bool) -> PResult<Vec<u8>> {
        let at = self.literal_at(allow8)?;
        match self.fragments.get(at) {
            Some(Fragment::Literal(data)) => Ok(data.clone()),
            _ => {
                self.too_big = true;
                Err("Literal too large for this argument".into())
            }
        }
    }

    fn string(&mut self) -> PResult<Vec<u8>> {
        match self.peek() {
            Some(b'"') => self.quoted(),
            Some(b'{') => self.literal(false),
            None => Err("Missing arguments".into()),
            _ => Err("Expected a string".into()),
        }
    }

    fn astring(&mut self) -> PResult<Vec<u8>> {
        match self.peek() {
            Some(b'"' | b'{') => self.string(),
            _ => {
                let atom = self.take_while(is_astring_char);
                if atom.is_empty() {
                    return Err(if self.at_end() {
                        "Missing arguments".into()
                    } else {
                        "Expected a string".into()
                    });
                }
                Ok(atom.to_vec())
            }
        }
    }

    fn nstring(&mut self) -> PResult<Option<Vec<u8>>> {
        if self.keyword("NIL") {
            Ok(None)
        } else {
            self.string().map(Some)
        }
    }

    fn mailbox(&mut self) -> PResult<Vec<u8>> {
        self.astring()
    }

    fn list_mailbox(&mut self) -> PResult<Vec<u8>> {
        match self.peek() {
            Some(b'"' | b'{') => self.string(),
            _ => {
                let pattern = self.take_while(is_list_char);
                if pattern.is_empty() {
                    return Err("Expected a mailbox pattern".into());
                }
                Ok(pattern.to_vec())
            }
        }
    }

    fn number(&mut self) -> PResult<u64> {
        let digits = self.take_while(|b| b.is_ascii_digit());
        parse_u64(digits).ok_or_else(|| "Expected a number".to_string())
    }

    fn number32(&mut self) -> PResult<u32> {
        u32::try_from(self.number()?).map_err(|_| "Number too large".to_string())
    }

    fn nz_number(&mut self) -> PResult<u32> {
        match self.number32()? {
            0 => Err("Expected a nonzero number".into()),
            n => Ok(n),
        }
    }

    /// A sequence set, or SEARCHRES's `$` standing alone.
    fn sequence_set(&mut self) -> PResult<SequenceSet> {
        if self.peek() == Some(b'$') {
            self.pos += 1;
            return Ok(SequenceSet::saved());
        }
        let text = self.take_while(is_sequence_char);
        SequenceSet::parse(text).ok_or_else(|| "Invalid sequence set".to_string())
    }

    fn flag(&mut self) -> PResult<String> {
        if self.peek() == Some(b'\\') {
            self.pos += 1;
            let name = self.atom().map_err(|_| "Invalid flag".to_string())?;
            Ok(format!("\\{}", String::from_utf8_lossy(name)))
        } else {
            self.atom_string()
        }
    }

    /// `item *(SP item) ")"`, the opening parenthesis already read: calls `item` for each
    /// element in turn (at least one) and reads the closing parenthesis. Every
    /// parenthesized list of the grammar ends this way.
    fn rest_of_list(&mut self, mut item: impl FnMut(&mut Self) -> PResult<()>) -> PResult<()> {
        loop {
            item(self)?;
            match self.peek() {
                Some(b')') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => self.sp()?,
            }
        }
    }

    /// [`Parser::rest_of_list`] collecting what `item` parses.
    fn rest_of_list_of<T>(
        &mut self,
        mut item: impl FnMut(&mut Self) -> PResult<T>,
    ) -> PResult<Vec<T>> {
        let mut items = Vec::new();
        self.rest_of_list(|p| {
            items.push(item(p)?);
            Ok(())
        })?;
        Ok(items)
    }

    /// `(flag *(SP flag))`, possibly empty.
    fn flag_list(&mut self) -> PResult<Vec<String>> {
        self.expect(b'(', "a flag list")?;
        if self.peek() == Some(b')') {
            self.pos += 1;
            return Ok(Vec::new());
        }
        self.rest_of_list_of(Self::flag)
    }

    fn command_body(&mut self) -> PResult<CommandBody> {
        self.sp()?;
        let name = self
            .atom()
            .map_err(|_| "Missing command".to_string())?
            .to_ascii_uppercase();
        let body = match name.as_slice() {
            b"CAPABILITY" => CommandBody::Capability,
            b"NOOP" => CommandBody::Noop,
            b"LOGOUT" => CommandBody::Logout,
            b"STARTTLS" => CommandBody::StartTls,
            b"CHECK" => CommandBody::Check,
            b"CLOSE" => CommandBody::Close,
            b"UNSELECT" => CommandBody::Unselect,
            b"CANCELUPDATE" => {
                let mut tags = Vec::new();
                while self.peek() == Some(b' ') {
                    self.pos += 1;
                    let tag = self.astring()?;
                    tags.push(String::from_utf8(tag).map_err(|_| "Invalid tag".to_string())?);
                }
                if tags.is_empty() {
                    return Err("CANCELUPDATE needs a tag".into());
                }
                CommandBody::CancelUpdate { tags }
            }
            b"NAMESPACE" => CommandBody::Namespace,
            b"IDLE" => CommandBody::Idle,
            b"COMPRESS" => {
                self.sp()?;
                CommandBody::Compress {
                    mechanism: self.atom_string()?.to_ascii_uppercase(),
                }
            }
            b"EXPUNGE" => CommandBody::Expunge { uids: None },
            b"ID" => self.id()?,
            b"NOTIFY" => self.notify()?,
            b"LOGIN" => {
                self.sp()?;
                let user = self.astring()?;
                self.sp()?;
                let password = self.astring()?;
                CommandBody::Login { user, password }
            }
            b"AUTHENTICATE" => self.authenticate()?,
            b"ENABLE" => {
                let mut caps = Vec::new();
                loop {
                    self.sp()?;
                    caps.push(self.atom_string()?.to_ascii_uppercase());
                    if self.at_end() {
                        break;
                    }
                }
                CommandBody::Enable(caps)
            }
            b"SELECT" => {
                let mailbox = self.sp_mailbox()?;
                let params = self.select_params()?;
                CommandBody::Select { mailbox, params }
            }
            b"EXAMINE" => {
                let mailbox = self.sp_mailbox()?;
                let params = self.select_params()?;
                CommandBody::Examine { mailbox, params }
            }
            b"CREATE" => self.create()?,
            b"DELETE" => CommandBody::Delete {
                mailbox: self.sp_mailbox()?,
            },
            b"SUBSCRIBE" => CommandBody::Subscribe {
                mailbox: self.sp_mailbox()?,
            },
            b"UNSUBSCRIBE" => CommandBody::Unsubscribe {
                mailbox: self.sp_mailbox()?,
            },
            b"GETQUOTAROOT" => CommandBody::GetQuotaRoot {
                mailbox: self.sp_mailbox()?,
            },
            b"GETQUOTA" => CommandBody::GetQuota {
                root: self.sp_astring()?,
            },
            b"SETQUOTA" => self.setquota()?,
            b"RENAME" => {
                let from = self.sp_mailbox()?;
                let to = self.sp_mailbox()?;
                CommandBody::Rename { from, to }
            }
            b"LIST" => self.list()?,
            b"LSUB" => {
                let reference = self.sp_mailbox()?;
                self.sp()?;
                let pattern = self.list_mailbox()?;
                CommandBody::Lsub { reference, pattern }
            }
            b"GETACL" | b"SETACL" | b"DELETEACL" | b"LISTRIGHTS" | b"MYRIGHTS" => {
                self.acl_command(&name)?
            }
            b"STATUS" => self.status()?,
            b"APPEND" => self.append()?,
            b"SEARCH" => self.search(false)?,
            b"SORT" => self.sort(false)?,
            b"THREAD" => self.thread(false)?,
            b"FETCH" => self.fetch(false)?,
            b"STORE" => self.store(false)?,
            b"COPY" => self.copy_or_move(false, false)?,
            b"MOVE" => self.copy_or_move(false, true)?,
            b"UID" => {
                self.sp()?;
                let sub = self.atom()?.to_ascii_uppercase();
                match sub.as_slice() {
                    b"SEARCH" => self.search(true)?,
                    b"SORT" => self.sort(true)?,
                    b"THREAD" => self.thread(true)?,
                    b"FETCH" => self.fetch(true)?,
                    b"STORE" => self.store(true)?,
                    b"COPY" => self.copy_or_move(true, false)?,
                    b"MOVE" => self.copy_or_move(true, true)?,
                    b"EXPUNGE" => {
                        self.sp()?;
                        CommandBody::Expunge {
                            uids: Some(self.sequence_set()?),
                        }
                    }
                    _ => return Err("Unknown UID command".into()),
                }
            }
            _ => return Err("Unknown command".into()),
        };
        self.expect_end()?;
        Ok(body)
    }

    fn sp_mailbox(&mut self) -> PResult<Vec<u8>> {
        self.sp()?;
        self.mailbox()
    }

    /// RFC 5465 §8: `NOTIFY NONE` or `NOTIFY SET [STATUS] event-group *(SP event-group)`.
    fn notify(&mut self) -> PResult<CommandBody> {
        self.sp()?;
        if self.keyword("NONE") {
            return Ok(CommandBody::Notify(None));
        }
        if !self.keyword("SET") {
            return Err("Expected SET or NONE".into());
        }
        let mut status = false;
        let mut groups = Vec::new();
        loop {
            self.sp()?;
            if groups.is_empty() && !status && self.keyword("STATUS") {
                status = true;
                continue;
            }
            groups.push(self.notify_group()?);
            if self.at_end() {
                break;
            }
        }
        Ok(CommandBody::Notify(Some(NotifySet { status, groups })))
    }

    /// `"(" filter-mailboxes SP events ")"`.
    fn notify_group(&mut self) -> PResult<NotifyGroup> {
        self.expect(b'(', "an event group")?;
        let filter = match self.atom()?.to_ascii_uppercase().as_slice() {
            b"SELECTED" => NotifyFilter::Selected,
            b"SELECTED-DELAYED" => NotifyFilter::SelectedDelayed,
            b"INBOXES" => NotifyFilter::Inboxes,
            b"PERSONAL" => NotifyFilter::Personal,
            b"SUBSCRIBED" => NotifyFilter::Subscribed,
            b"SUBTREE" => NotifyFilter::Subtree(self.one_or_more_mailboxes()?),
            b"MAILBOXES" => NotifyFilter::Mailboxes(self.one_or_more_mailboxes()?),
            _ => return Err("Unknown mailbox filter".into()),
        };
        self.sp()?;
        let mut events = Vec::new();
        if !self.keyword("NONE") {
            self.expect(b'(', "a list of events")?;
            events = self.rest_of_list_of(|p| {
                Ok(match p.atom()?.to_ascii_uppercase().as_slice() {
                    b"MESSAGENEW" if p.peek() == Some(b' ') && p.peek_at(1) == Some(b'(') => {
                        p.pos += 2;
                        NotifyEvent::MessageNew(p.rest_of_list_of(Self::fetch_att)?)
                    }
                    b"MESSAGENEW" => NotifyEvent::MessageNew(Vec::new()),
                    b"MESSAGEEXPUNGE" => NotifyEvent::MessageExpunge,
                    b"FLAGCHANGE" => NotifyEvent::FlagChange,
                    b"ANNOTATIONCHANGE" => NotifyEvent::AnnotationChange,
                    b"MAILBOXNAME" => NotifyEvent::MailboxName,
                    b"SUBSCRIPTIONCHANGE" => NotifyEvent::SubscriptionChange,
                    b"MAILBOXMETADATACHANGE" => NotifyEvent::MailboxMetadataChange,
                    b"SERVERMETADATACHANGE" => NotifyEvent::ServerMetadataChange,
                    _ => return Err("Unknown event".into()),
                })
            })?;
        }
        self.expect(b')', "\")\" after the event group")?;
        Ok(NotifyGroup { filter, events })
    }

    /// `SP (mailbox / "(" mailbox *(SP mailbox) ")")`.
    fn one_or_more_mailboxes(&mut self) -> PResult<Vec<Vec<u8>>> {
        self.sp()?;
        if self.peek() != Some(b'(') {
            return Ok(vec![self.mailbox()?]);
        }
        self.pos += 1;
        self.rest_of_list_of(Self::mailbox)
    }

    fn id(&mut self) -> PResult<CommandBody> {
        self.sp()?;
        if self.keyword("NIL") {
            return Ok(CommandBody::Id(None));
        }
        self.expect(b'(', "NIL or a parameter list")?;
        let mut params = Vec::new();
        // `()` is not in RFC 2971's grammar, but it is unambiguous and some
        // clients send it; treat it as an empty list.
        if self.peek() == Some(b')') {
            self.pos += 1;
            return Ok(CommandBody::Id(Some(params)));
        }
        self.rest_of_list(|p| {
            let key = p.string()?;
            p.sp()?;
            let value = p.nstring()?;
            params.push((key, value));
            Ok(())
        })?;
        Ok(CommandBody::Id(Some(params)))
    }

    fn authenticate(&mut self) -> PResult<CommandBody> {
        self.sp()?;
        let mechanism = self.atom_string()?.to_ascii_uppercase();
        let mut initial = None;
        if self.peek() == Some(b' ') {
            self.pos += 1;
            let response = self.atom()?;
            initial = Some(if response == b"=" {
                Vec::new()
            } else {
                base64::decode(response)
                    .ok_or_else(|| "Invalid base64 in initial response".to_string())?
            });
        }
        Ok(CommandBody::Authenticate { mechanism, initial })
    }

    fn status(&mut self) -> PResult<CommandBody> {
        let mailbox = self.sp_mailbox()?;
        self.sp()?;
        let items = self.status_items()?;
        Ok(CommandBody::Status { mailbox, items })
    }

    /// A parenthesized, space-separated list of words (upper-cased), possibly empty, each
    /// handed to `each`, which may read what follows the word.
    fn word_list(
        &mut self,
        what: &str,
        mut each: impl FnMut(&mut Self, &[u8]) -> PResult<()>,
    ) -> PResult<()> {
        self.expect(b'(', what)?;
        if self.peek() == Some(b')') {
            self.pos += 1;
            return Ok(());
        }
        self.rest_of_list(|p| {
            let word = p.atom()?.to_ascii_uppercase();
            each(p, &word)
        })
    }

    /// RFC 6154 §3: `CREATE mailbox [SP "(" "USE" SP "(" [use-attr *(SP use-attr)] ")" ")"]`
    /// (RFC 4466's create-params, of which USE is the only one known).
    fn create(&mut self) -> PResult<CommandBody> {
        let mailbox = self.sp_mailbox()?;
        let mut uses = Vec::new();
        if !self.at_end() {
            self.sp()?;
            self.word_list("CREATE parameters", |p, word| {
                if word != b"USE" {
                    return Err("Unknown CREATE parameter".into());
                }
                p.sp()?;
                uses.extend(p.flag_list()?);
                Ok(())
            })?;
        }
        Ok(CommandBody::Create { mailbox, uses })
    }

    /// RFC 5258 §6: `LIST [SP list-select-opts] SP mailbox SP mbox-or-pat
    /// [SP list-return-opts]`.
    fn list(&mut self) -> PResult<CommandBody> {
        let mut o = ListOptions::default();
        self.sp()?;
        if self.peek() == Some(b'(') {
            o.extended = true;
            self.word_list("LIST selection options", |_, word| {
                match word {
                    b"SUBSCRIBED" => o.select_subscribed = true,
                    b"REMOTE" => o.select_remote = true,
                    b"RECURSIVEMATCH" => o.recursive_match = true,
                    b"SPECIAL-USE" => o.select_special_use = true,
                    _ => return Err("Unknown LIST selection option".into()),
                }
                Ok(())
            })?;
            self.sp()?;
        }
        let reference = self.mailbox()?;
        self.sp()?;
        let mut patterns = Vec::new();
        if self.peek() == Some(b'(') {
            o.extended = true;
            self.pos += 1;
            patterns = self.rest_of_list_of(Self::list_mailbox)?;
        } else {
            patterns.push(self.list_mailbox()?);
        }
        if !self.at_end() {
            self.sp()?;
            if !self.keyword("RETURN") {
                return Err("Expected RETURN".into());
            }
            o.extended = true;
            self.sp()?;
            self.word_list("LIST return options", |p, word| {
                match word {
                    b"SUBSCRIBED" => o.return_subscribed = true,
                    b"CHILDREN" => o.return_children = true,
                    b"SPECIAL-USE" => o.return_special_use = true,
                    b"STATUS" => {
                        p.sp()?;
                        o.return_status = Some(p.status_items()?);
                    }
                    _ => return Err("Unknown LIST return option".into()),
                }
                Ok(())
            })?;
        }
        // RFC 5258 §3.1: RECURSIVEMATCH alone (or with only REMOTE) is an error.
        if o.recursive_match && !o.select_subscribed && !o.select_special_use {
            return Err("RECURSIVEMATCH needs another selection option".into());
        }
        Ok(CommandBody::List {
            reference,
            patterns,
            options: o,
        })
    }

    /// `"(" status-att *(SP status-att) ")"`.
    fn status_items(&mut self) -> PResult<Vec<StatusItem>> {
        self.expect(b'(', "a list of status items")?;
        self.rest_of_list_of(|p| {
            Ok(match p.atom()?.to_ascii_uppercase().as_slice() {
                b"MESSAGES" => StatusItem::Messages,
                b"RECENT" => StatusItem::Recent,
                b"UIDNEXT" => StatusItem::UidNext,
                b"UIDVALIDITY" => StatusItem::UidValidity,
                b"UNSEEN" => StatusItem::Unseen,
                b"SIZE" => StatusItem::Size,
                b"DELETED" => StatusItem::Deleted,
                b"DELETED-STORAGE" => StatusItem::DeletedStorage,
                b"MAILBOXID" => StatusItem::MailboxId,
                b"HIGHESTMODSEQ" => StatusItem::HighestModSeq,
                _ => return Err("Unknown status item".into()),
            })
        })
    }

    /// RFC 9208 §4.1.3: `SETQUOTA root (resource limit ...)`, the list possibly empty.
    fn setquota(&mut self) -> PResult<CommandBody> {
        let root = self.sp_astring()?;
        self.sp()?;
        self.expect(b'(', "a list of quota resources")?;
        if self.peek() == Some(b')') {
            self.pos += 1;
            return Ok(CommandBody::SetQuota {
                root,
                limits: Vec::new(),
            });
        }
        let limits = self.rest_of_list_of(|p| {
            let resource = String::from_utf8_lossy(p.atom()?).to_ascii_uppercase();
            p.sp()?;
            Ok((resource, p.number()?))
        })?;
        Ok(CommandBody::SetQuota { root, limits })
    }

    /// `APPEND mailbox 1*append-message` (RFC 3502 §6): each message is
    /// `[SP flag-list] [SP date-time] SP literal`, one after the other.
    fn append(&mut self) -> PResult<CommandBody> {
        let mailbox = self.sp_mailbox()?;
        let mut messages = Vec::new();
        loop {
            self.sp()?;
            messages.push(self.append_message()?);
            if self.rest().is_empty() {
                break;
            }
        }
        Ok(CommandBody::Append { mailbox, messages })
    }

    /// One message of an APPEND, after its leading space: its literal's
    /// fragment is noted in `message_at`.
    fn append_message(&mut self) -> PResult<AppendMessage> {
        let mut flags = Vec::new();
        if self.peek() == Some(b'(') {
            flags = self.flag_list()?;
            self.sp()?;
        }
        let mut date = None;
        if self.peek() == Some(b'"') {
            let text = self.quoted()?;
            date = Some(
                datetime::parse_date_time(&text).ok_or_else(|| "Invalid date-time".to_string())?,
            );
            self.sp()?;
        }
        // RFC 4469: `CATENATE (TEXT {n} URL "..." ...)`.
        if self.keyword("CATENATE") {
            self.sp()?;
            self.expect(b'(', "( after CATENATE")?;
            let parts = self.rest_of_list_of(|p| {
                let word = p.word();
                p.sp()?;
                match word.as_slice() {
                    b"TEXT" => {
                        // The text is a message's bytes: literal8 is allowed.
                        let at = p.literal_at(true)?;
                        p.message_at.push(at);
                        Ok(CatPart::Text(MessageData::Memory(Vec::new())))
                    }
                    b"URL" => Ok(CatPart::Url(p.astring()?)),
                    _ => Err("Expected TEXT or URL in CATENATE".into()),
                }
            })?;
            return Ok(AppendMessage {
                flags,
                date,
                message: MessageData::Memory(Vec::new()),
                catenate: Some(parts),
            });
        }
        // RFC 6855/9755: `UTF8 (~{n}...)` carries a message with raw UTF-8
        // headers; it is stored like any other.
        let utf8 = self.keyword("UTF8");
        if utf8 {
            self.sp()?;
            self.expect(b'(', "( after UTF8")?;
        }
        match self.peek() {
            Some(b'{' | b'~') => {}
            None => return Err("Missing message literal".into()),
            _ => return Err("Expected a message literal".into()),
        }
        let at = self.literal_at(true)?;
        self.message_at.push(at);
        if utf8 {
            self.expect(b')', ") after the UTF8 message literal")?;
        }
        Ok(AppendMessage {
            flags,
            date,
            // Moved in from the fragment by `parse_command`.
            message: MessageData::Memory(Vec::new()),
            catenate: None,
        })
    }

    fn copy_or_move(&mut self, uid: bool, is_move: bool) -> PResult<CommandBody> {
        self.sp()?;
        let set = self.sequence_set()?;
        let mailbox = self.sp_mailbox()?;
        Ok(if is_move {
            CommandBody::Move { uid, set, mailbox }
        } else {
            CommandBody::Copy { uid, set, mailbox }
        })
    }

    /// RFC 4466 select parameters: RFC 7162's `CONDSTORE` and
    /// `QRESYNC (uidvalidity mod-sequence [known-uids [(seqs uids)]])`.
    fn select_params(&mut self) -> PResult<SelectParams> {
        let mut params = SelectParams::default();
        if self.at_end() {
            return Ok(params);
        }
        self.sp()?;
        self.expect(b'(', "select parameters")?;
        self.rest_of_list(|p| {
            match p.atom()?.to_ascii_uppercase().as_slice() {
                b"CONDSTORE" => params.condstore = true,
                b"QRESYNC" if params.qresync.is_none() => {
                    p.sp()?;
                    params.qresync = Some(p.qresync_param()?);
                }
                _ => return Err("Unknown select parameter".into()),
            }
            Ok(())
        })?;
        Ok(params)
    }

    /// The parenthesized list after `QRESYNC` (RFC 7162 §3.2.5, §7).
    fn qresync_param(&mut self) -> PResult<Qresync> {
        self.expect(b'(', "QRESYNC parameters")?;
        let uidvalidity = self.nz_number()?;
        self.sp()?;
        let modseq = self.modseq_value()?;
        if modseq == 0 {
            return Err("Expected a nonzero mod-sequence".into());
        }
        let mut known_uids = None;
        let mut seq_match = None;
        if self.peek() == Some(b' ') && self.peek_at(1) != Some(b'(') {
            self.pos += 1;
            known_uids = Some(self.uid_set()?);
        }
        if self.peek() == Some(b' ') {
            self.pos += 1;
            self.expect(b'(', "seq-match-data")?;
            let seqs = self.uid_set()?;
            self.sp()?;
            let uids = self.uid_set()?;
            self.expect(b')', "\")\" after seq-match-data")?;
            seq_match = Some((seqs, uids));
        }
        self.expect(b')', "\")\" after the QRESYNC parameters")?;
        Ok(Qresync {
            uidvalidity,
            modseq,
            known_uids,
            seq_match,
        })
    }

    /// A sequence set without `*` or `$` (RFC 7162's known-uids and seq-match-data).
    fn uid_set(&mut self) -> PResult<SequenceSet> {
        if self.peek() == Some(b'$') {
            return Err("Expected UIDs".into());
        }
        let set = self.sequence_set()?;
        if set.has_star() {
            return Err("\"*\" is not allowed here".into());
        }
        Ok(set)
    }

    /// A mod-sequence value: 63 bits (RFC 7162 §7).
    fn modseq_value(&mut self) -> PResult<u64> {
        let n = self.number()?;
        if n > i64::MAX as u64 {
            return Err("Mod-sequence too large".into());
        }
        Ok(n)
    }

    /// FETCH's modifiers (RFC 7162): `SP "(" CHANGEDSINCE n [SP VANISHED] ")"` in either
    /// order; `(None, false)` without them.
    fn fetch_modifiers(&mut self) -> PResult<(Option<u64>, bool)> {
        if !(self.peek() == Some(b' ') && self.peek_at(1) == Some(b'(')) {
            return Ok((None, false));
        }
        self.pos += 2;
        let (mut since, mut vanished) = (None, false);
        self.rest_of_list(|p| {
            if p.keyword("CHANGEDSINCE") && since.is_none() {
                p.sp()?;
                since = Some(p.modseq_value()?);
            } else if p.keyword("VANISHED") && !vanished {
                vanished = true;
            } else {
                return Err("Unknown or repeated FETCH modifier".into());
            }
            Ok(())
        })?;
        Ok((since, vanished))
    }

    /// `SP "(" name SP mod-sequence-value ")"`: RFC 7162's one modifier of FETCH
    /// (CHANGEDSINCE) or STORE (UNCHANGEDSINCE), when the command has one here.
    fn modseq_modifier(&mut self, name: &str) -> PResult<Option<u64>> {
        if !(self.peek() == Some(b' ') && self.peek_at(1) == Some(b'(')) {
            return Ok(None);
        }
        self.pos += 2;
        if !self.keyword(name) {
            return Err(format!("Unknown modifier, expected {name}"));
        }
        self.sp()?;
        let n = self.number()?;
        // mod-sequence-value: 63 bits (RFC 7162 §7); CHANGEDSINCE takes 0 too.
        if n > i64::MAX as u64 {
            return Err("Mod-sequence too large".into());
        }
        self.expect(b')', "\")\" after the modifier")?;
        Ok(Some(n))
    }

    /// After SEARCH's `MODSEQ`: `[SP entry-name SP entry-type-req] SP mod-sequence-valzer`
    /// (RFC 7162 §3.1.5); the entry is checked and otherwise ignored.
    fn search_modseq(&mut self) -> PResult<u64> {
        self.sp()?;
        if self.peek() == Some(b'"') {
            let entry = self.quoted()?;
            if !entry.starts_with(b"/flags/") {
                return Err("Expected a \"/flags/...\" entry name".into());
            }
            self.sp()?;
            match self.atom()?.to_ascii_lowercase().as_slice() {
                b"priv" | b"shared" | b"all" => {}
                _ => return Err("Expected priv, shared or all".into()),
            }
            self.sp()?;
        }
        let n = self.number()?;
        if n > i64::MAX as u64 {
            return Err("Mod-sequence too large".into());
        }
        Ok(n)
    }

    fn store(&mut self, uid: bool) -> PResult<CommandBody> {
        self.sp()?;
        let set = self.sequence_set()?;
        let unchanged_since = self.modseq_modifier("UNCHANGEDSINCE")?;
        self.sp()?;
        let mode = match self.peek() {
            Some(b'+') => {
                self.pos += 1;
                StoreMode::Add
            }
            Some(b'-') => {
                self.pos += 1;
                StoreMode::Remove
            }
            _ => StoreMode::Replace,
        };
        let silent = match self.word().as_slice() {
            b"FLAGS" => false,
            b"FLAGS.SILENT" => true,
            _ => return Err("Expected FLAGS or FLAGS.SILENT".into()),
        };
        self.sp()?;
        let flags = if self.peek() == Some(b'(') {
            self.flag_list()?
        } else {
            let mut flags = vec![self.flag()?];
            while self.peek() == Some(b' ') {
                self.pos += 1;
                flags.push(self.flag()?);
            }
            flags
        };
        Ok(CommandBody::Store {
            uid,
            set,
            unchanged_since,
            mode,
            silent,
            flags,
        })
    }

    fn fetch(&mut self, uid: bool) -> PResult<CommandBody> {
        self.sp()?;
        let set = self.sequence_set()?;
        self.sp()?;
        let mut items = Vec::new();
        if self.peek() == Some(b'(') {
            self.pos += 1;
            items = self.rest_of_list_of(Self::fetch_att)?;
        } else if self.keyword("ALL") {
            items = vec![
                FetchItem::Flags,
                FetchItem::InternalDate,
                FetchItem::Rfc822Size,
                FetchItem::Envelope,
            ];
        } else if self.keyword("FAST") {
            items = vec![
                FetchItem::Flags,
                FetchItem::InternalDate,
                FetchItem::Rfc822Size,
            ];
        } else if self.keyword("FULL") {
            items = vec![
                FetchItem::Flags,
                FetchItem::InternalDate,
                FetchItem::Rfc822Size,
                FetchItem::Envelope,
                FetchItem::Body,
            ];
        } else {
            items.push(self.fetch_att()?);
        }
        let (changed_since, vanished) = self.fetch_modifiers()?;
        Ok(CommandBody::Fetch {
            uid,
            set,
            items,
            changed_since,
            vanished,
        })
    }

    fn fetch_att(&mut self) -> PResult<FetchItem> {
        let name = self.word();
        Ok(match name.as_slice() {
            b"ENVELOPE" => FetchItem::Envelope,
            b"FLAGS" => FetchItem::Flags,
            b"INTERNALDATE" => FetchItem::InternalDate,
            b"RFC822" => FetchItem::Rfc822,
            b"RFC822.HEADER" => FetchItem::Rfc822Header,
            b"RFC822.SIZE" => FetchItem::Rfc822Size,
            b"RFC822.TEXT" => FetchItem::Rfc822Text,
            b"BODYSTRUCTURE" => FetchItem::BodyStructure,
            b"UID" => FetchItem::Uid,
            b"BODY" if self.peek() != Some(b'[') => FetchItem::Body,
            b"BODY" | b"BODY.PEEK" => {
                let section = self.section()?;
                let partial = self.partial()?;
                FetchItem::BodySection {
                    peek: name == b"BODY.PEEK",
                    section,
                    partial,
                }
            }
            b"BINARY" | b"BINARY.PEEK" => {
                let part = self.section_binary()?;
                let partial = self.partial()?;
                FetchItem::Binary {
                    peek: name == b"BINARY.PEEK",
                    part,
                    partial,
                }
            }
            b"BINARY.SIZE" => FetchItem::BinarySize {
                part: self.section_binary()?,
            },
            b"EMAILID" => FetchItem::EmailId,
            b"MODSEQ" => FetchItem::ModSeq,
            b"THREADID" => FetchItem::ThreadId,
            b"SAVEDATE" => FetchItem::SaveDate,
            // RFC 8970: `"PREVIEW" [SP "(" preview-mod *(SP preview-mod) ")"]`, the only
            // modifier being LAZY.
            b"PREVIEW" => {
                let mut lazy = false;
                if self.peek() == Some(b' ') && self.peek_at(1) == Some(b'(') {
                    self.pos += 2;
                    self.rest_of_list(|p| {
                        if !p.keyword("LAZY") {
                            return Err("Unknown PREVIEW modifier".into());
                        }
                        lazy = true;
                        Ok(())
                    })?;
                }
                FetchItem::Preview { lazy }
            }
            b"" if self.at_end() => return Err("Missing fetch items".into()),
            _ => return Err("Unknown fetch item".into()),
        })
    }

    fn section(&mut self) -> PResult<Section> {
        self.expect(b'[', "a section")?;
        let mut part = Vec::new();
        let mut text = None;
        if self.peek().is_some_and(|b| b.is_ascii_digit()) {
            loop {
                part.push(self.nz_number()?);
                if self.peek() == Some(b'.') && self.peek_at(1).is_some_and(|b| b.is_ascii_digit())
                {
                    self.pos += 1;
                } else {
                    break;
                }
            }
            if self.peek() == Some(b'.') {
                self.pos += 1;
                text = Some(self.section_text(true)?);
            }
        } else if self.peek() != Some(b']') {
            text = Some(self.section_text(false)?);
        }
        self.expect(b']', "] after the section")?;
        Ok(Section { part, text })
    }

    /// RFC 3516 `section-binary`: `[` part numbers `]`, nothing else.
    fn section_binary(&mut self) -> PResult<Vec<u32>> {
        self.expect(b'[', "a section")?;
        let mut part = Vec::new();
        if self.peek() != Some(b']') {
            loop {
                part.push(self.nz_number()?);
                if self.peek() == Some(b'.') {
                    self.pos += 1;
                } else {
                    break;
                }
            }
        }
        self.expect(b']', "] after the section")?;
        Ok(part)
    }

    fn section_text(&mut self, after_part: bool) -> PResult<SectionText> {
        let word = self
            .take_while(|b| b.is_ascii_alphabetic() || b == b'.')
            .to_ascii_uppercase();
        Ok(match word.as_slice() {
            b"HEADER" => SectionText::Header,
            b"TEXT" => SectionText::Text,
            b"MIME" if after_part => SectionText::Mime,
            b"HEADER.FIELDS" => SectionText::HeaderFields(self.header_list()?),
            b"HEADER.FIELDS.NOT" => SectionText::HeaderFieldsNot(self.header_list()?),
            _ => return Err("Invalid section".into()),
        })
    }

    fn header_list(&mut self) -> PResult<Vec<Vec<u8>>> {
        self.sp()?;
        self.expect(b'(', "a header field list")?;
        self.rest_of_list_of(Self::astring)
    }

    fn partial(&mut self) -> PResult<Option<(u32, u32)>> {
        if self.peek() != Some(b'<') {
            return Ok(None);
        }
        self.pos += 1;
        let origin = self.number32()?;
        self.expect(b'.', ". in the partial range")?;
        let count = self.nz_number()?;
        self.expect(b'>', "> after the partial range")?;
        Ok(Some((origin, count)))
    }

    fn search(&mut self, uid: bool) -> PResult<CommandBody> {
        self.sp()?;
        let returns = self.search_return()?;
        let mut charset = None;
        if self.keyword("CHARSET") {
            self.sp()?;
            charset = Some(self.charset()?);
            self.sp()?;
        }
        let criteria = self.search_program()?;
        Ok(CommandBody::Search {
            uid,
            returns,
            charset,
            criteria,
        })
    }

    /// `search-key *(SP search-key)`, as one `And`.
    fn search_program(&mut self) -> PResult<SearchKey> {
        let mut keys = vec![self.search_key(1)?];
        while self.peek() == Some(b' ') {
            self.pos += 1;
            keys.push(self.search_key(1)?);
        }
        Ok(SearchKey::And(keys))
    }

    fn charset(&mut self) -> PResult<String> {
        String::from_utf8(self.astring()?).map_err(|_| "Invalid charset name".to_string())
    }

    /// RFC 4731 `RETURN (MIN MAX ALL COUNT)`, RFC 5182 `SAVE` and RFC 5267's `UPDATE`,
    /// `CONTEXT` and `PARTIAL low:high`, with the space after it; None when absent.
    /// `RETURN ()` means ALL.
    fn search_return(&mut self) -> PResult<Option<SearchReturn>> {
        if !(self.keyword("RETURN")) {
            return Ok(None);
        }
        self.sp()?;
        self.expect(b'(', "( after RETURN")?;
        let mut r = SearchReturn::default();
        let mut any = false;
        while self.peek() != Some(b')') {
            if any {
                self.sp()?;
            }
            let option = self.atom()?.to_ascii_uppercase();
            let flag = match option.as_slice() {
                b"MIN" => &mut r.min,
                b"MAX" => &mut r.max,
                b"ALL" => &mut r.all,
                b"COUNT" => &mut r.count,
                b"SAVE" => &mut r.save,
                b"UPDATE" => &mut r.update,
                // RFC 5267 §4.2: a hint that the client will ask again; nothing to do.
                b"CONTEXT" => {
                    any = true;
                    continue;
                }
                b"PARTIAL" if r.partial.is_none() => {
                    self.sp()?;
                    r.partial = Some(self.partial_range()?);
                    any = true;
                    continue;
                }
                _ => return Err("Unknown SEARCH return option".into()),
            };
            *flag = true;
            any = true;
        }
        self.pos += 1;
        // RFC 9394 §3.1: ALL and PARTIAL ask for the same messages two ways.
        if r.all && r.partial.is_some() {
            return Err("PARTIAL and ALL cannot be used together".into());
        }
        if !any {
            r.all = true;
        }
        self.sp()?;
        Ok(Some(r))
    }

    /// `nz-number ":" nz-number` (RFC 5267), or `"-" nz-number ":" "-" nz-number` (RFC
    /// 9394), in either order.
    fn partial_range(&mut self) -> PResult<PartialRange> {
        let from_end = self.peek() == Some(b'-');
        let side = |p: &mut Self| -> PResult<u32> {
            if from_end {
                p.expect(b'-', "a negative PARTIAL range end")?;
            }
            p.nz_number()
        };
        let a = side(self)?;
        self.expect(b':', ": in the PARTIAL range")?;
        let b = side(self)?;
        Ok(PartialRange {
            low: a.min(b),
            high: a.max(b),
            from_end,
        })
    }

    /// RFC 5256: `SORT [RETURN (...)] (criteria) charset search-keys`.
    fn sort(&mut self, uid: bool) -> PResult<CommandBody> {
        self.sp()?;
        let returns = self.search_return()?;
        self.expect(b'(', "a sort criteria list")?;
        let mut program = Vec::new();
        loop {
            let mut reverse = false;
            let mut name = self.atom()?.to_ascii_uppercase();
            if name == b"REVERSE" {
                self.sp()?;
                reverse = true;
                name = self.atom()?.to_ascii_uppercase();
            }
            let key = match name.as_slice() {
                b"ARRIVAL" => SortKey::Arrival,
                b"CC" => SortKey::Cc,
                b"DATE" => SortKey::Date,
                b"FROM" => SortKey::From,
                b"SIZE" => SortKey::Size,
                b"SUBJECT" => SortKey::Subject,
                b"TO" => SortKey::To,
                b"DISPLAYFROM" => SortKey::DisplayFrom,
                b"DISPLAYTO" => SortKey::DisplayTo,
                _ => return Err("Unknown sort criterion".into()),
            };
            program.push(SortCriterion { key, reverse });
            if self.peek() == Some(b')') {
                self.pos += 1;
                break;
            }
            self.sp()?;
        }
        self.sp()?;
        let charset = self.charset()?;
        self.sp()?;
        let criteria = self.search_program()?;
        Ok(CommandBody::Sort {
            uid,
            returns,
            program,
            charset,
            criteria,
        })
    }

    /// RFC 5256: `THREAD algorithm charset search-keys`.
    fn thread(&mut self, uid: bool) -> PResult<CommandBody> {
        self.sp()?;
        let algorithm = match self.atom()?.to_ascii_uppercase().as_slice() {
            b"ORDEREDSUBJECT" => ThreadAlgorithm::OrderedSubject,
            b"REFERENCES" => ThreadAlgorithm::References,
            _ => return Err("Unknown thread algorithm".into()),
        };
        self.sp()?;
        let charset = self.charset()?;
        self.sp()?;
        let criteria = self.search_program()?;
        Ok(CommandBody::Thread {
            uid,
            algorithm,
            charset,
            criteria,
        })
    }

    fn search_key(&mut self, depth: usize) -> PResult<SearchKey> {
        if depth > MAX_SEARCH_DEPTH {
            self.limit = true;
            return Err("Search criteria nested too deeply".into());
        }
        self.search_keys += 1;
        if self.search_keys > MAX_SEARCH_KEYS {
            self.limit = true;
            return Err("Too many search criteria".into());
        }
        match self.peek() {
            Some(b'(') => {
                self.pos += 1;
                let mut keys = vec![self.search_key(depth + 1)?];
                loop {
                    match self.peek() {
                        Some(b')') => {
                            self.pos += 1;
                            return Ok(SearchKey::And(keys));
                        }
                        _ => {
                            self.sp()?;
                            keys.push(self.search_key(depth + 1)?);
                        }
                    }
                }
            }
            Some(b) if is_sequence_char(b) || b == b'$' => {
                Ok(SearchKey::SequenceSet(self.sequence_set()?))
            }
            None => Err("Missing search criteria".into()),
            _ => {
                let name = self.atom()?.to_ascii_uppercase();
                self.search_key_named(&name, depth)
            }
        }
    }

    fn search_key_named(&mut self, name: &[u8], depth: usize) -> PResult<SearchKey> {
        use SearchKey as K;
        let key = match name {
            b"ALL" => K::All,
            b"ANSWERED" => K::Answered,
            b"DELETED" => K::Deleted,
            b"DRAFT" => K::Draft,
            b"FLAGGED" => K::Flagged,
            b"NEW" => K::New,
            b"OLD" => K::Old,
            b"RECENT" => K::Recent,
            b"SEEN" => K::Seen,
            b"UNANSWERED" => K::Unanswered,
            b"UNDELETED" => K::Undeleted,
            b"UNDRAFT" => K::Undraft,
            b"UNFLAGGED" => K::Unflagged,
            b"UNSEEN" => K::Unseen,
            b"BCC" => K::Bcc(self.sp_astring()?),
            b"CC" => K::Cc(self.sp_astring()?),
            b"FROM" => K::From(self.sp_astring()?),
            b"TO" => K::To(self.sp_astring()?),
            b"SUBJECT" => K::Subject(self.sp_astring()?),
            b"BODY" => K::Body(self.sp_astring()?),
            b"TEXT" => K::Text(self.sp_astring()?),
            b"HEADER" => {
                let field = self.sp_astring()?;
                K::Header(field, self.sp_astring()?)
            }
            b"KEYWORD" => {
                self.sp()?;
                K::Keyword(self.atom_string()?)
            }
            b"UNKEYWORD" => {
                self.sp()?;
                K::Unkeyword(self.atom_string()?)
            }
            b"BEFORE" => K::Before(self.search_date()?),
            b"ON" => K::On(self.search_date()?),
            b"SINCE" => K::Since(self.search_date()?),
            b"SENTBEFORE" => K::SentBefore(self.search_date()?),
            b"SENTON" => K::SentOn(self.search_date()?),
            b"SENTSINCE" => K::SentSince(self.search_date()?),
            b"LARGER" => {
                self.sp()?;
                K::Larger(self.number()?)
            }
            b"SMALLER" => {
                self.sp()?;
                K::Smaller(self.number()?)
            }
            // RFC 5032: `"OLDER" SP nz-number`, seconds.
            b"OLDER" => {
                self.sp()?;
                K::Older(u64::from(self.nz_number()?))
            }
            b"YOUNGER" => {
                self.sp()?;
                K::Younger(u64::from(self.nz_number()?))
            }
            b"UID" => {
                self.sp()?;
                K::Uid(self.sequence_set()?)
            }
            b"EMAILID" => {
                self.sp()?;
                K::EmailId(self.object_id()?)
            }
            b"THREADID" => {
                self.sp()?;
                K::ThreadId(self.object_id()?)
            }
            b"SAVEDBEFORE" => K::SavedBefore(self.search_date()?),
            b"SAVEDON" => K::SavedOn(self.search_date()?),
            b"SAVEDSINCE" => K::SavedSince(self.search_date()?),
            b"SAVEDATESUPPORTED" => K::SaveDateSupported,
            b"MODSEQ" => K::ModSeq(self.search_modseq()?),
            b"NOT" => {
                self.sp()?;
                K::Not(Box::new(self.search_key(depth + 1)?))
            }
            b"OR" => {
                self.sp()?;
                let a = self.search_key(depth + 1)?;
                self.sp()?;
                let b = self.search_key(depth + 1)?;
                K::Or(Box::new(a), Box::new(b))
            }
            _ => return Err("Unknown search criterion".into()),
        };
        Ok(key)
    }

    fn sp_astring(&mut self) -> PResult<Vec<u8>> {
        self.sp()?;
        self.astring()
    }

    /// RFC 4314 §3: `GETACL mailbox`, `SETACL mailbox identifier mod-rights`,
    /// `DELETEACL mailbox identifier`, `LISTRIGHTS mailbox identifier`,
    /// `MYRIGHTS mailbox`; identifiers and rights are astrings.
    fn acl_command(&mut self, name: &[u8]) -> PResult<CommandBody> {
        let mailbox = self.sp_mailbox()?;
        Ok(match name {
            b"GETACL" => CommandBody::GetAcl { mailbox },
            b"MYRIGHTS" => CommandBody::MyRights { mailbox },
            b"DELETEACL" => CommandBody::DeleteAcl {
                mailbox,
                identifier: self.sp_astring()?,
            },
            b"LISTRIGHTS" => CommandBody::ListRights {
                mailbox,
                identifier: self.sp_astring()?,
            },
            _ => {
                let identifier = self.sp_astring()?;
                CommandBody::SetAcl {
                    mailbox,
                    identifier,
                    rights: self.sp_astring()?,
                }
            }
        })
    }

    /// `SP date`, where date is `d-Mon-yyyy` bare or in quotes.
    fn search_date(&mut self) -> PResult<super::command::Date> {
        self.sp()?;
        let text = if self.peek() == Some(b'"') {
            self.quoted()?
        } else {
            self.atom()?.to_vec()
        };
        datetime::parse_search_date(&text).ok_or_else(|| "Invalid date".to_string())
    }
}

fn parse_u64(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    digits.iter().try_fold(0u64, |acc, &d| {
        acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::command::Date;
    use crate::protocol::sequence::SeqNum;

    /// Splits a test command the way the framing layer would: `{n}` at a
    /// line end takes the next n bytes as a literal.
    fn frame(input: &[u8]) -> Vec<Fragment> {
        let mut reader = crate::protocol::framing::CommandReader::new(input, Default::default());
        reader.read_command(&mut std::io::sink()).unwrap()
    }

    fn parse(input: &str) -> Result<Command, ParseError> {
        parse_command(frame(format!("{input}\r\n").as_bytes()))
    }

    fn body(input: &str) -> CommandBody {
        let cmd = parse(input).unwrap_or_else(|e| panic!("{input}: {e:?}"));
        cmd.body
    }

    fn err(input: &str) -> ParseError {
        match parse(input) {
            Ok(c) => panic!("{input} parsed as {c:?}"),
            Err(e) => e,
        }
    }

    fn set(s: &str) -> SequenceSet {
        SequenceSet::parse(s.as_bytes()).unwrap()
    }

    fn v(s: &str) -> Vec<u8> {
        s.as_bytes().to_vec()
    }

    #[test]
    fn simple_commands_and_case() {
        let cmd = parse("a001 capability").unwrap();
        assert_eq!(
            cmd,
            Command {
                tag: "a001".into(),
                body: CommandBody::Capability
            }
        );
        assert_eq!(body("x NOOP"), CommandBody::Noop);
        assert_eq!(body("x LogOut"), CommandBody::Logout);
        assert_eq!(body("x STARTTLS"), CommandBody::StartTls);
        assert_eq!(body("x CHECK"), CommandBody::Check);
        assert_eq!(body("x CLOSE"), CommandBody::Close);
        assert_eq!(body("x UNSELECT"), CommandBody::Unselect);
        assert_eq!(body("x NAMESPACE"), CommandBody::Namespace);
        assert_eq!(body("x IDLE"), CommandBody::Idle);
        assert_eq!(
            body("x compress deflate"),
            CommandBody::Compress {
                mechanism: "DEFLATE".into()
            }
        );
        assert!(parse_command(vec![Fragment::Line(b"x COMPRESS".to_vec())]).is_err());
        assert_eq!(body("x EXPUNGE"), CommandBody::Expunge { uids: None });
        assert_eq!(
            body("x UID EXPUNGE 3:5"),
            CommandBody::Expunge {
                uids: Some(set("3:5"))
            }
        );
        // `]` is allowed in tags, `+` is not.
        assert_eq!(parse("a] NOOP").unwrap().tag, "a]");
    }

    #[test]
    fn tags() {
        assert_eq!(err("+a NOOP").tag, None);
        assert_eq!(err("").tag, None);
        assert_eq!(err("(a NOOP").tag, None);
        assert_eq!(err("a+ NOOP").tag.as_deref(), Some("a"));
        let e = err("a7 FROB");
        assert_eq!(e.tag.as_deref(), Some("a7"));
        assert_eq!(e.message, "Unknown command");
        assert_eq!(err("a7").message, "Missing arguments");
    }

    #[test]
    fn login_forms() {
        let want = CommandBody::Login {
            user: v("fred"),
            password: v("se cr\"et"),
        };
        assert_eq!(body(r#"a LOGIN fred "se cr\"et""#), want);
        assert_eq!(body("a LOGIN fred {8}\r\nse cr\"et"), want);
        assert_eq!(body("a LOGIN {4+}\r\nfred {8+}\r\nse cr\"et"), want);
        assert_eq!(
            body("a LOGIN \"\" \"a\\\\b\""),
            CommandBody::Login {
                user: vec![],
                password: v("a\\b")
            }
        );
        // 8-bit in quoted strings is the session's call.
        assert_eq!(
            body("a LOGIN \"jörg\" x"),
            CommandBody::Login {
                user: "jörg".as_bytes().to_vec(),
                password: v("x")
            }
        );
        // ASTRING-CHAR includes `]`.
        assert_eq!(
            body("a LOGIN us]er pw"),
            CommandBody::Login {
                user: v("us]er"),
                password: v("pw")
            }
        );
        assert_eq!(err("a LOGIN fred").message, "Missing arguments");
        assert_eq!(
            err("a LOGIN fred pw extra").message,
            "Unexpected extra arguments"
        );
        assert_eq!(
            err(r#"a LOGIN fred "p\w""#).message,
            "Invalid escape in quoted string"
        );
        assert_eq!(
            err(r#"a LOGIN fred "pw"#).message,
            "Unterminated quoted string"
        );
        assert!(err("a LOGIN  fred pw").tag.is_some());
        assert_eq!(err("a LOGIN fred {3}x").message, "Invalid literal");
    }

    #[test]
    fn literal_fragments_checked() {
        // Hand-made fragments whose literal length disagrees with the announcement.
        let frags = vec![
            Fragment::Line(v("a LOGIN {4}")),
            Fragment::Literal(v("abc")),
            Fragment::Line(v(" x")),
        ];
        assert_eq!(
            parse_command(frags).unwrap_err().message,
            "Literal data missing"
        );
        let frags = vec![Fragment::Line(v("a LOGIN {4}"))];
        assert_eq!(
            parse_command(frags).unwrap_err().message,
            "Literal data missing"
        );
        assert_eq!(parse_command(vec![]).unwrap_err().tag, None);
    }

    #[test]
    fn authenticate() {
        assert_eq!(
            body("a AUTHENTICATE plain"),
            CommandBody::Authenticate {
                mechanism: "PLAIN".into(),
                initial: None
            }
        );
        assert_eq!(
            body("a AUTHENTICATE PLAIN AHRpbQB0YW5zdGFhZnRhbnN0YWFm"),
            CommandBody::Authenticate {
                mechanism: "PLAIN".into(),
                initial: Some(b"\0tim\0tanstaaftanstaaf".to_vec()),
            }
        );
        assert_eq!(
            body("a AUTHENTICATE EXTERNAL ="),
            CommandBody::Authenticate {
                mechanism: "EXTERNAL".into(),
                initial: Some(vec![])
            }
        );
        assert_eq!(
            err("a AUTHENTICATE PLAIN Zm9v!").message,
            "Invalid base64 in initial response"
        );
        assert_eq!(
            err("a AUTHENTICATE PLAIN Zm9v x").message,
            "Unexpected extra arguments"
        );
        assert_eq!(err("a AUTHENTICATE").message, "Missing arguments");
        assert_eq!(
            err("a AUTHENTICATE PLAIN Zm=v").message,
            "Invalid base64 in initial response"
        );
    }

    #[test]
    fn id_and_enable() {
        assert_eq!(body("a ID NIL"), CommandBody::Id(None));
        assert_eq!(
            body(r#"a ID ("name" "sodr" "version" NIL)"#),
            CommandBody::Id(Some(vec![
                (v("name"), Some(v("sodr"))),
                (v("version"), None)
            ]))
        );
        assert_eq!(body("a ID ()"), CommandBody::Id(Some(vec![])));
        assert!(parse(r#"a ID ("name")"#).is_err());
        assert!(parse("a ID (name x)").is_err());
        assert_eq!(
            body("a ENABLE utf8=accept CONDSTORE"),
            CommandBody::Enable(vec!["UTF8=ACCEPT".into(), "CONDSTORE".into()])
        );
        assert!(parse("a ENABLE").is_err());
    }

    #[test]
    fn mailbox_commands() {
        assert_eq!(
            body("a SELECT inbox"),
            CommandBody::Select {
                mailbox: v("inbox"),
                params: SelectParams::default(),
            }
        );
        assert_eq!(
            body("a EXAMINE \"My Box\""),
            CommandBody::Examine {
                mailbox: v("My Box"),
                params: SelectParams::default(),
            }
        );
        assert_eq!(
            body("a CREATE {3}\r\na b"),
            CommandBody::Create {
                mailbox: v("a b"),
                uses: vec![]
            }
        );
        assert_eq!(body("a DELETE x"), CommandBody::Delete { mailbox: v("x") });
        assert_eq!(
            body("a SUBSCRIBE x"),
            CommandBody::Subscribe { mailbox: v("x") }
        );
        assert_eq!(
            body("a UNSUBSCRIBE x"),
            CommandBody::Unsubscribe { mailbox: v("x") }
        );
        assert_eq!(
            body("a RENAME old \"new\""),
            CommandBody::Rename {
                from: v("old"),
                to: v("new")
            }
        );
        assert_eq!(
            body("a GETQUOTAROOT INBOX"),
            CommandBody::GetQuotaRoot {
                mailbox: v("INBOX")
            }
        );
        assert_eq!(
            body("a GETQUOTA \"\""),
            CommandBody::GetQuota { root: vec![] }
        );
        assert_eq!(
            body("a GETQUOTA ROOT"),
            CommandBody::GetQuota { root: v("ROOT") }
        );
        assert_eq!(
            body("a SETQUOTA \"ROOT\" (STORAGE 512 message 100)"),
            CommandBody::SetQuota {
                root: v("ROOT"),
                limits: vec![("STORAGE".into(), 512), ("MESSAGE".into(), 100)]
            }
        );
        assert_eq!(
            body("a SETQUOTA ROOT ()"),
            CommandBody::SetQuota {
                root: v("ROOT"),
                limits: vec![]
            }
        );
        assert!(parse("a SETQUOTA ROOT").is_err());
        assert!(parse("a SETQUOTA ROOT (STORAGE)").is_err());
        assert!(parse("a SETQUOTA ROOT (STORAGE x)").is_err());
        assert!(parse("a SELECT").is_err());
        assert!(parse("a SELECT a*").is_err());
        assert!(parse("a RENAME x").is_err());
    }

    #[test]
    fn acl_commands() {
        assert_eq!(
            body("a GETACL INBOX.Work"),
            CommandBody::GetAcl {
                mailbox: v("INBOX.Work")
            }
        );
        assert_eq!(
            body("a myrights \"INBOX\""),
            CommandBody::MyRights {
                mailbox: v("INBOX")
            }
        );
        assert_eq!(
            body("a SETACL INBOX bob +lrd"),
            CommandBody::SetAcl {
                mailbox: v("INBOX"),
                identifier: v("bob"),
                rights: v("+lrd")
            }
        );
        assert_eq!(
            body("a SETACL INBOX {4}\r\n-bob \"\""),
            CommandBody::SetAcl {
                mailbox: v("INBOX"),
                identifier: v("-bob"),
                rights: vec![]
            }
        );
        assert_eq!(
            body("a DELETEACL INBOX.x anyone"),
            CommandBody::DeleteAcl {
                mailbox: v("INBOX.x"),
                identifier: v("anyone")
            }
        );
        assert_eq!(
            body("a LISTRIGHTS INBOX \"user=x\""),
            CommandBody::ListRights {
                mailbox: v("INBOX"),
                identifier: v("user=x")
            }
        );
        for bad in [
            "a GETACL",
            "a GETACL INBOX x",
            "a SETACL INBOX bob",
            "a SETACL INBOX bob lr x",
            "a DELETEACL INBOX",
            "a LISTRIGHTS INBOX",
            "a MYRIGHTS",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn list_and_lsub() {
        assert_eq!(
            body("a LIST \"\" *"),
            CommandBody::List {
                reference: vec![],
                patterns: vec![v("*")],
                options: ListOptions::default(),
            }
        );
        assert_eq!(
            body("a LIST ~/Mail/ %"),
            CommandBody::List {
                reference: v("~/Mail/"),
                patterns: vec![v("%")],
                options: ListOptions::default(),
            }
        );
        assert_eq!(
            body("a LSUB \"#news.\" comp.mail.*"),
            CommandBody::Lsub {
                reference: v("#news."),
                pattern: v("comp.mail.*")
            }
        );
        assert_eq!(
            body("a LIST \"\" INBOX.%]x"),
            CommandBody::List {
                reference: vec![],
                patterns: vec![v("INBOX.%]x")],
                options: ListOptions::default(),
            }
        );
        assert!(parse("a LIST \"\"").is_err());
        assert!(parse("a LIST * x").is_err());
    }

    #[test]
    fn list_extended_rfc5258() {
        // §5's example 7 and example 11's forms.
        let CommandBody::List {
            reference,
            patterns,
            options,
        } = body(r#"A01 LIST (SUBSCRIBED RECURSIVEMATCH) "" "%" RETURN (CHILDREN)"#)
        else {
            panic!("not LIST");
        };
        assert_eq!((reference, patterns), (vec![], vec![v("%")]));
        assert_eq!(
            options,
            ListOptions {
                extended: true,
                select_subscribed: true,
                recursive_match: true,
                return_children: true,
                ..ListOptions::default()
            }
        );
        let CommandBody::List {
            patterns, options, ..
        } = body(
            r#"A02 LIST () "" ("INBOX" Drafts "Sent/%") RETURN (special-use STATUS (MESSAGES UNSEEN))"#,
        )
        else {
            panic!("not LIST");
        };
        assert_eq!(patterns, vec![v("INBOX"), v("Drafts"), v("Sent/%")]);
        assert!(options.extended && options.return_special_use);
        assert_eq!(
            options.return_status,
            Some(vec![StatusItem::Messages, StatusItem::Unseen])
        );
        let CommandBody::List { options, .. } = body(r#"A03 LIST "" "*" RETURN ()"#) else {
            panic!("not LIST");
        };
        assert!(options.extended && !options.return_children);
        let CommandBody::List { options, .. } = body(r#"A04 LIST (REMOTE SPECIAL-USE) "" *"#)
        else {
            panic!("not LIST");
        };
        assert!(options.select_remote && options.select_special_use);
        for bad in [
            r#"a LIST (RECURSIVEMATCH) "" "*""#,
            r#"a LIST (REMOTE RECURSIVEMATCH) "" "*""#,
            r#"a LIST (BOGUS) "" "*""#,
            r#"a LIST "" "*" RETURN (BOGUS)"#,
            r#"a LIST "" "*" RETURN CHILDREN"#,
            r#"a LIST "" "*" CHILDREN"#,
            r#"a LIST "" () RETURN ()"#,
            r#"a LIST "" "*" RETURN (STATUS (FOO))"#,
        ] {
            err(bad);
        }
    }

    #[test]
    fn create_special_use_rfc6154() {
        assert_eq!(
            body(r#"t1 CREATE MySpecial (USE (\Drafts \Sent))"#),
            CommandBody::Create {
                mailbox: v("MySpecial"),
                uses: vec!["\\Drafts".into(), "\\Sent".into()]
            }
        );
        assert_eq!(
            body("t1 CREATE x (USE ())"),
            CommandBody::Create {
                mailbox: v("x"),
                uses: vec![]
            }
        );
        err("t1 CREATE x (FOO (\\Sent))");
        err("t1 CREATE x (USE \\Sent)");
        err("t1 CREATE x USE");
    }

    #[test]
    fn objectid_savedate_preview_rfc8474_8514_8970() {
        // RFC 8474 §7 and RFC 8970 §3.2 examples.
        assert_eq!(
            body("3 FETCH 1:* (EMAILID THREADID)"),
            CommandBody::Fetch {
                uid: false,
                set: set("1:*"),
                items: vec![FetchItem::EmailId, FetchItem::ThreadId],
                changed_since: None,
                vanished: false,
            }
        );
        assert_eq!(
            body("D FETCH 1 (UID PREVIEW (LAZY) SAVEDATE)"),
            CommandBody::Fetch {
                uid: false,
                set: set("1"),
                items: vec![
                    FetchItem::Uid,
                    FetchItem::Preview { lazy: true },
                    FetchItem::SaveDate
                ],
                changed_since: None,
                vanished: false,
            }
        );
        assert_eq!(
            body("B FETCH 1 PREVIEW"),
            CommandBody::Fetch {
                uid: false,
                set: set("1"),
                items: vec![FetchItem::Preview { lazy: false }],
                changed_since: None,
                vanished: false,
            }
        );
        assert_eq!(
            body(
                "27 SEARCH EMAILID M6d99ac3275bb4e THREADID T64b478a75b7ea9 SAVEDSINCE 1-Feb-2020"
            ),
            CommandBody::Search {
                uid: false,
                returns: None,
                charset: None,
                criteria: SearchKey::And(vec![
                    SearchKey::EmailId("M6d99ac3275bb4e".into()),
                    SearchKey::ThreadId("T64b478a75b7ea9".into()),
                    SearchKey::SavedSince(Date {
                        year: 2020,
                        month: 2,
                        day: 1
                    }),
                ]),
            }
        );
        assert_eq!(
            body("a SEARCH SAVEDATESUPPORTED"),
            CommandBody::Search {
                uid: false,
                returns: None,
                charset: None,
                criteria: SearchKey::And(vec![SearchKey::SaveDateSupported]),
            }
        );
        assert_eq!(
            body("a STATUS foo (MAILBOXID)"),
            CommandBody::Status {
                mailbox: v("foo"),
                items: vec![StatusItem::MailboxId],
            }
        );
        for bad in [
            "a FETCH 1 (PREVIEW (FUZZY))",
            "a FETCH 1 (PREVIEW ())",
            "a SEARCH EMAILID a.b",
            "a SEARCH EMAILID",
            "a SEARCH SAVEDON 1-Foo-2020",
            "a STATUS INBOX (MAILBOXID FOO)",
        ] {
            err(bad);
        }
    }

    #[test]
    fn within_rfc5032() {
        assert_eq!(
            body("a SEARCH YOUNGER 3600 older 86400"),
            CommandBody::Search {
                uid: false,
                returns: None,
                charset: None,
                criteria: SearchKey::And(vec![SearchKey::Younger(3600), SearchKey::Older(86400)]),
            }
        );
        for bad in ["a SEARCH YOUNGER 0", "a SEARCH OLDER", "a SEARCH OLDER x"] {
            err(bad);
        }
    }

    #[test]
    fn status() {
        assert_eq!(
            body(
                "a STATUS blurdybloop (UIDNEXT MESSAGES unseen recent uidvalidity SIZE deleted \
                 DELETED-STORAGE)"
            ),
            CommandBody::Status {
                mailbox: v("blurdybloop"),
                items: vec![
                    StatusItem::UidNext,
                    StatusItem::Messages,
                    StatusItem::Unseen,
                    StatusItem::Recent,
                    StatusItem::UidValidity,
                    StatusItem::Size,
                    StatusItem::Deleted,
                    StatusItem::DeletedStorage,
                ],
            }
        );
        assert!(parse("a STATUS x ()").is_err());
        assert!(parse("a STATUS x (FOO)").is_err());
        assert!(parse("a STATUS x MESSAGES").is_err());
        assert!(parse("a STATUS x (MESSAGES").is_err());
    }

    #[test]
    fn append() {
        // RFC 3501 §6.3.11 example.
        let msg = "Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)\r\nSubject: afternoon meeting\r\n\r\nHello\r\n";
        let cmd = format!(
            "A003 APPEND saved-messages (\\Seen $Forwarded) \"17-Jul-1996 02:44:25 -0700\" {{{}}}\r\n{msg}",
            msg.len()
        );
        assert_eq!(
            body(&cmd),
            append_of(
                v("saved-messages"),
                vec![(
                    vec!["\\Seen".into(), "$Forwarded".into()],
                    Some(837_596_665),
                    MessageData::Memory(v(msg))
                )]
            )
        );
        assert_eq!(
            body("a APPEND INBOX {3+}\r\nx\r\n"),
            append_of(
                v("INBOX"),
                vec![(vec![], None, MessageData::Memory(v("x\r\n")))]
            )
        );
        assert_eq!(
            body("a APPEND INBOX () \" 7-Jan-2024 10:00:00 +0100\" ~{2}\r\n\0x"),
            append_of(
                v("INBOX"),
                vec![(vec![], Some(1_704_618_000), MessageData::Memory(v("\0x")))]
            )
        );
        assert_eq!(
            err("a APPEND INBOX \"32-Jan-2024 10:00:00 +0100\" {1}\r\nx").message,
            "Invalid date-time"
        );
        assert_eq!(err("a APPEND INBOX \"hello\"").message, "Invalid date-time");
        assert_eq!(err("a APPEND INBOX (\\Seen)").message, "Missing arguments");
        assert_eq!(
            err("a APPEND INBOX (\\Seen) x").message,
            "Expected a message literal"
        );
        // RFC 6855 §4: the UTF8 form.
        assert_eq!(
            body("a APPEND INBOX (\\Seen) UTF8 (~{4+}\r\né\r\n)"),
            append_of(
                v("INBOX"),
                vec![(
                    vec!["\\Seen".into()],
                    None,
                    MessageData::Memory("é\r\n".as_bytes().to_vec())
                )]
            )
        );
        assert!(
            parse("a APPEND INBOX UTF8 (~{1}\r\nx").is_err(),
            "the ) is required"
        );
        assert!(parse("a APPEND INBOX {1}\r\nx extra").is_err());
        assert!(parse("a APPEND INBOX (\\*) {1}\r\nx").is_err());
    }

    /// `CommandBody::Append` of `mailbox` with `(flags, date, message)` each.
    fn append_of(
        mailbox: Vec<u8>,
        messages: Vec<(Vec<String>, Option<i64>, MessageData)>,
    ) -> CommandBody {
        CommandBody::Append {
            mailbox,
            messages: messages
                .into_iter()
                .map(|(flags, date, message)| AppendMessage {
                    flags,
                    date,
                    message,
                    catenate: None,
                })
                .collect(),
        }
    }

    #[test]
    fn catenate() {
        // RFC 4469 §6 example (shortened), then a plain literal after it.
        let cmd = "A003 APPEND Drafts (\\Seen) CATENATE (URL \"/Drafts;UIDVALIDITY=385759045/;UID=20/;section=HEADER\" TEXT {8}\r\n\r\nbody\r\n URL \"/;uid=30\") {3}\r\nx\r\n";
        let CommandBody::Append { mailbox, messages } = body(cmd) else {
            panic!("not an APPEND");
        };
        assert_eq!(mailbox, v("Drafts"));
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[0].flags, vec!["\\Seen".to_string()]);
        assert_eq!(
            messages[0].catenate,
            Some(vec![
                CatPart::Url(v("/Drafts;UIDVALIDITY=385759045/;UID=20/;section=HEADER")),
                CatPart::Text(MessageData::Memory(v("\r\nbody\r\n"))),
                CatPart::Url(v("/;uid=30")),
            ])
        );
        assert_eq!(messages[1].catenate, None);
        assert_eq!(messages[1].message, MessageData::Memory(v("x\r\n")));
        assert!(parse("a APPEND x CATENATE (TEXT \"inline\")").is_err());
        assert!(parse("a APPEND x CATENATE ()").is_err());
    }

    #[test]
    fn multiappend() {
        // RFC 3502 §7 example, the second message with flags and a date of its own.
        let one = "Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)\r\nSubject: afternoon meeting\r\n\r\nHello\r\n";
        let two = "Subject: party\r\n\r\nBring wine\r\n";
        let cmd = format!(
            "A003 APPEND saved-messages (\\Seen) {{{}}}\r\n{one} (\\Seen $Party) \"17-Jul-1996 02:44:25 -0700\" {{{}+}}\r\n{two}",
            one.len(),
            two.len()
        );
        assert_eq!(
            body(&cmd),
            append_of(
                v("saved-messages"),
                vec![
                    (vec!["\\Seen".into()], None, MessageData::Memory(v(one))),
                    (
                        vec!["\\Seen".into(), "$Party".into()],
                        Some(837_596_665),
                        MessageData::Memory(v(two))
                    ),
                ]
            )
        );
        // Three without options, literal8 and UTF8 forms mixed.
        assert_eq!(
            body("a APPEND INBOX {1+}\r\na ~{1+}\r\nb UTF8 (~{1+}\r\nc)"),
            append_of(
                v("INBOX"),
                vec![
                    (vec![], None, MessageData::Memory(v("a"))),
                    (vec![], None, MessageData::Memory(v("b"))),
                    (vec![], None, MessageData::Memory(v("c"))),
                ]
            )
        );
        // Each message needs its literal; the separator is one space.
        assert!(parse("a APPEND INBOX {1+}\r\na (\\Seen)").is_err());
        assert!(parse("a APPEND INBOX {1+}\r\na  {1+}\r\nb").is_err());
        assert!(parse("a APPEND INBOX {1+}\r\na{1+}\r\nb").is_err());
        assert_eq!(
            err("a APPEND INBOX {1+}\r\na \"32-Jan-2024 10:00:00 +0100\" {1+}\r\nb").message,
            "Invalid date-time"
        );
    }

    #[test]
    fn fetch_macros_and_items() {
        let f = |s: &str| match body(s) {
            CommandBody::Fetch { items, .. } => items,
            other => panic!("{other:?}"),
        };
        use FetchItem::*;
        assert_eq!(
            f("a FETCH 1 ALL"),
            vec![Flags, InternalDate, Rfc822Size, Envelope]
        );
        assert_eq!(f("a FETCH 1 fast"), vec![Flags, InternalDate, Rfc822Size]);
        assert_eq!(
            f("a FETCH 1 FULL"),
            vec![Flags, InternalDate, Rfc822Size, Envelope, Body]
        );
        assert_eq!(f("a FETCH 1 uid"), vec![Uid]);
        assert_eq!(
            f(
                "a FETCH 1 (ENVELOPE FLAGS INTERNALDATE RFC822 RFC822.HEADER RFC822.SIZE RFC822.TEXT BODY BODYSTRUCTURE UID)"
            ),
            vec![
                Envelope,
                Flags,
                InternalDate,
                Rfc822,
                Rfc822Header,
                Rfc822Size,
                Rfc822Text,
                Body,
                BodyStructure,
                Uid
            ]
        );
        assert_eq!(
            body("a UID FETCH 1:* (FLAGS)"),
            CommandBody::Fetch {
                uid: true,
                set: set("1:*"),
                items: vec![Flags],
                changed_since: None,
                vanished: false,
            }
        );
        assert!(parse("a FETCH 1 (ALL)").is_err());
        assert!(parse("a FETCH 1 ()").is_err());
        assert!(parse("a FETCH 1 (FLAGS").is_err());
        assert!(parse("a FETCH 1 FOO").is_err());
        assert!(parse("a FETCH 0 FLAGS").is_err());
        assert!(parse("a FETCH 1").is_err());
        assert!(parse("a FETCH 1 BODY.PEEK").is_err());
        // RFC 3516
        assert_eq!(
            f("a FETCH 1 (BINARY[1.2]<0.10> BINARY.PEEK[] BINARY.SIZE[3])"),
            vec![
                Binary {
                    peek: false,
                    part: vec![1, 2],
                    partial: Some((0, 10)),
                },
                Binary {
                    peek: true,
                    part: vec![],
                    partial: None,
                },
                BinarySize { part: vec![3] },
            ]
        );
        assert!(parse("a FETCH 1 BINARY[1.TEXT]").is_err());
        assert!(parse("a FETCH 1 BINARY[HEADER]").is_err());
        assert!(parse("a FETCH 1 BINARY.SIZE[1]<0.5>").is_err());
        assert!(parse("a FETCH 1 FLAGS UID").is_err());
    }

    fn section_item(s: &str) -> FetchItem {
        match body(&format!("a FETCH 1 {s}")) {
            CommandBody::Fetch { mut items, .. } if items.len() == 1 => items.remove(0),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn body_sections() {
        assert_eq!(
            section_item("BODY.PEEK[HEADER.FIELDS (From To)]<0.100>"),
            FetchItem::BodySection {
                peek: true,
                section: Section {
                    part: vec![],
                    text: Some(SectionText::HeaderFields(vec![v("From"), v("To")])),
                },
                partial: Some((0, 100)),
            }
        );
        assert_eq!(
            section_item("body[]"),
            FetchItem::BodySection {
                peek: false,
                section: Section {
                    part: vec![],
                    text: None
                },
                partial: None
            }
        );
        assert_eq!(
            section_item("BODY[1.2.3]"),
            FetchItem::BodySection {
                peek: false,
                section: Section {
                    part: vec![1, 2, 3],
                    text: None
                },
                partial: None,
            }
        );
        assert_eq!(
            section_item("BODY[4.2.mime]<10.4294967295>"),
            FetchItem::BodySection {
                peek: false,
                section: Section {
                    part: vec![4, 2],
                    text: Some(SectionText::Mime)
                },
                partial: Some((10, u32::MAX)),
            }
        );
        assert_eq!(
            section_item("BODY.PEEK[2.HEADER.FIELDS.NOT (\"X-A\" {3}\r\nX-B)]"),
            FetchItem::BodySection {
                peek: true,
                section: Section {
                    part: vec![2],
                    text: Some(SectionText::HeaderFieldsNot(vec![v("X-A"), v("X-B")])),
                },
                partial: None,
            }
        );
        for (s, t) in [
            ("HEADER", SectionText::Header),
            ("TEXT", SectionText::Text),
            ("3.TEXT", SectionText::Text),
        ] {
            match section_item(&format!("BODY[{s}]")) {
                FetchItem::BodySection { section, .. } => assert_eq!(section.text, Some(t)),
                other => panic!("{other:?}"),
            }
        }
        for bad in [
            "BODY[MIME]",
            "BODY[0]",
            "BODY[1.0]",
            "BODY[1.]",
            "BODY[1",
            "BODY[HEADER.FIELDS]",
            "BODY[HEADER.FIELDS ()]",
            "BODY[FOO]",
            "BODY[]<0>",
            "BODY[]<0.0>",
            "BODY[]<1.2",
            "BODY[]<4294967296.1>",
            "BODY.PEEK",
        ] {
            assert!(parse(&format!("a FETCH 1 {bad}")).is_err(), "{bad}");
        }
    }

    /// RFC 7162's examples (§3.1.2.2, §3.1.3, §3.1.4.1, §3.1.5) and its grammar's edges.
    #[test]
    fn condstore_syntax() {
        assert_eq!(
            body("a3 SELECT INBOX (CONDSTORE)"),
            CommandBody::Select {
                mailbox: v("INBOX"),
                params: SelectParams {
                    condstore: true,
                    qresync: None,
                },
            }
        );
        assert_eq!(
            body("a SELECT INBOX"),
            CommandBody::Select {
                mailbox: v("INBOX"),
                params: SelectParams::default(),
            }
        );
        assert!(parse("a SELECT INBOX ()").is_err());
        assert_eq!(
            body("a103 UID STORE 6,4,8 (UNCHANGEDSINCE 12121230045) +FLAGS.SILENT (\\Deleted)"),
            CommandBody::Store {
                uid: true,
                set: set("6,4,8"),
                unchanged_since: Some(12121230045),
                mode: StoreMode::Add,
                silent: true,
                flags: vec!["\\Deleted".into()],
            }
        );
        assert_eq!(
            body("s100 UID FETCH 1:* (FLAGS) (CHANGEDSINCE 12345)"),
            CommandBody::Fetch {
                uid: true,
                set: set("1:*"),
                items: vec![FetchItem::Flags],
                changed_since: Some(12345),
                vanished: false,
            }
        );
        assert_eq!(
            body("a FETCH 1 MODSEQ"),
            CommandBody::Fetch {
                uid: false,
                set: set("1"),
                items: vec![FetchItem::ModSeq],
                changed_since: None,
                vanished: false,
            }
        );
        let search = |line: &str| match body(line) {
            CommandBody::Search { criteria, .. } => criteria,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            search("a SEARCH MODSEQ \"/flags/\\\\draft\" all 620162338"),
            SearchKey::And(vec![SearchKey::ModSeq(620162338)])
        );
        assert_eq!(
            search("a SEARCH OR NOT MODSEQ 720162338 LARGER 50000"),
            SearchKey::And(vec![SearchKey::Or(
                Box::new(SearchKey::Not(Box::new(SearchKey::ModSeq(720162338)))),
                Box::new(SearchKey::Larger(50000)),
            )])
        );
        for bad in [
            "a SEARCH MODSEQ",
            "a SEARCH MODSEQ \"/flags/\\\\draft\" 5",
            "a SEARCH MODSEQ \"/x\" all 5",
            "a FETCH 1 FLAGS (CHANGEDSINCE)",
            "a FETCH 1 FLAGS (CHANGEDSINCE 9223372036854775808)",
            "a STORE 1 (UNCHANGEDSINCE -1) +FLAGS (\\Seen)",
            "a STORE 1 (CHANGEDSINCE 1) +FLAGS (\\Seen)",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert!(parse("a FETCH 1 FLAGS (CHANGEDSINCE 9223372036854775807)").is_ok());
    }

    /// RFC 7162 §3.2.5's examples of SELECT with QRESYNC, and UID FETCH's VANISHED.
    #[test]
    fn qresync_syntax() {
        let params = |line: &str| match body(line) {
            CommandBody::Select { params, .. } | CommandBody::Examine { params, .. } => params,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            params("A02 SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))"),
            SelectParams {
                condstore: false,
                qresync: Some(Qresync {
                    uidvalidity: 67890007,
                    modseq: 20050715194045000,
                    known_uids: Some(set("41,43:211,214:541")),
                    seq_match: None,
                }),
            }
        );
        assert_eq!(
            params(
                "B02 SELECT INBOX (QRESYNC (67890007 90060115194045000 1:29997 (5000,7500,9000,9990:9999 15000,22500,27000,29970,29973,29976,29979,29982,29985,29988,29991,29994,29997)))"
            )
            .qresync
            .and_then(|q| q.seq_match)
            .map(|(seqs, _)| seqs),
            Some(set("5000,7500,9000,9990:9999"))
        );
        assert_eq!(
            params("a EXAMINE INBOX (CONDSTORE QRESYNC (1 2))"),
            SelectParams {
                condstore: true,
                qresync: Some(Qresync {
                    uidvalidity: 1,
                    modseq: 2,
                    known_uids: None,
                    seq_match: None,
                }),
            }
        );
        match body("s100 UID FETCH 300:500 (FLAGS) (CHANGEDSINCE 12345 VANISHED)") {
            CommandBody::Fetch {
                changed_since,
                vanished,
                ..
            } => assert_eq!((changed_since, vanished), (Some(12345), true)),
            other => panic!("{other:?}"),
        }
        for bad in [
            "a SELECT INBOX (QRESYNC)",
            "a SELECT INBOX (QRESYNC ())",
            "a SELECT INBOX (QRESYNC (0 5))",
            "a SELECT INBOX (QRESYNC (1 0))",
            "a SELECT INBOX (QRESYNC (1 5 1:*))",
            "a SELECT INBOX (QRESYNC (1 5 1:9 (1:2)))",
            "a SELECT INBOX (QRESYNC (1 5) QRESYNC (1 5))",
            "a UID FETCH 1 (FLAGS) (VANISHED VANISHED)",
            "a UID FETCH 1 (FLAGS) (CHANGEDSINCE 1 CHANGEDSINCE 2)",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn store() {
        assert_eq!(
            body("a STORE 2:4 +FLAGS (\\Deleted)"),
            CommandBody::Store {
                uid: false,
                set: set("2:4"),
                mode: StoreMode::Add,
                silent: false,
                flags: vec!["\\Deleted".into()],
                unchanged_since: None,
            }
        );
        assert_eq!(
            body("a UID STORE 7 -flags.silent \\Seen $Junk"),
            CommandBody::Store {
                uid: true,
                set: set("7"),
                mode: StoreMode::Remove,
                silent: true,
                flags: vec!["\\Seen".into(), "$Junk".into()],
                unchanged_since: None,
            }
        );
        assert_eq!(
            body("a STORE * FLAGS ()"),
            CommandBody::Store {
                uid: false,
                set: SequenceSet(vec![(SeqNum::Star, SeqNum::Star)]),
                mode: StoreMode::Replace,
                silent: false,
                flags: vec![],
                unchanged_since: None,
            }
        );
        assert!(parse("a STORE 1 +FLAGS (\\*)").is_err());
        assert!(parse("a STORE 1 +FLAGS \\*").is_err());
        assert!(parse("a STORE 1 FLAG (\\Seen)").is_err());
        assert!(parse("a STORE 1 +FLAGS").is_err());
        assert!(parse("a STORE 1 +FLAGS (\\Seen").is_err());
    }

    #[test]
    fn copy_and_move() {
        assert_eq!(
            body("a COPY 2:4 MEETING"),
            CommandBody::Copy {
                uid: false,
                set: set("2:4"),
                mailbox: v("MEETING")
            }
        );
        assert_eq!(
            body("a UID MOVE 1,3 \"Trash\""),
            CommandBody::Move {
                uid: true,
                set: set("1,3"),
                mailbox: v("Trash")
            }
        );
        assert_eq!(
            body("a MOVE 1 x"),
            CommandBody::Move {
                uid: false,
                set: set("1"),
                mailbox: v("x")
            }
        );
        assert!(parse("a COPY 1").is_err());
        assert!(parse("a UID FROB 1").is_err());
        assert!(parse("a UID").is_err());
    }

    fn criteria(s: &str) -> (Option<String>, SearchKey) {
        match body(s) {
            CommandBody::Search {
                charset, criteria, ..
            } => (charset, criteria),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn search_rfc_examples() {
        use SearchKey as K;
        // RFC 3501 §6.4.4 examples.
        assert_eq!(
            criteria("A282 SEARCH FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\""),
            (
                None,
                K::And(vec![
                    K::Flagged,
                    K::Since(Date {
                        year: 1994,
                        month: 2,
                        day: 1
                    }),
                    K::Not(Box::new(K::From(v("Smith")))),
                ])
            )
        );
        assert_eq!(
            criteria("A284 SEARCH CHARSET UTF-8 TEXT {6}\r\nXXXXXX"),
            (Some("UTF-8".into()), K::And(vec![K::Text(v("XXXXXX"))]))
        );
        assert_eq!(criteria("a SEARCH ALL").1, K::And(vec![K::All]));
        assert_eq!(
            body("a UID SEARCH 1:* UID 5"),
            CommandBody::Search {
                uid: true,
                returns: None,
                charset: None,
                criteria: K::And(vec![K::SequenceSet(set("1:*")), K::Uid(set("5"))]),
            }
        );
    }

    #[test]
    fn search_all_keys() {
        use SearchKey as K;
        let d = Date {
            year: 2024,
            month: 1,
            day: 7,
        };
        let (_, key) = criteria(
            "a SEARCH ALL ANSWERED BCC b BEFORE 7-jan-2024 BODY x CC c DELETED DRAFT FLAGGED \
             FROM f HEADER X-Spam yes KEYWORD $Junk LARGER 100 NEW NOT OLD ON \"07-Jan-2024\" \
             OR RECENT SEEN SENTBEFORE 7-Jan-2024 SENTON 7-Jan-2024 SENTSINCE 7-Jan-2024 \
             SINCE 7-Jan-2024 SMALLER 5 SUBJECT \"s s\" TEXT t TO o UID 1:3 UNANSWERED \
             UNDELETED UNDRAFT UNFLAGGED UNKEYWORD foo UNSEEN 4,*",
        );
        assert_eq!(
            key,
            K::And(vec![
                K::All,
                K::Answered,
                K::Bcc(v("b")),
                K::Before(d),
                K::Body(v("x")),
                K::Cc(v("c")),
                K::Deleted,
                K::Draft,
                K::Flagged,
                K::From(v("f")),
                K::Header(v("X-Spam"), v("yes")),
                K::Keyword("$Junk".into()),
                K::Larger(100),
                K::New,
                K::Not(Box::new(K::Old)),
                K::On(d),
                K::Or(Box::new(K::Recent), Box::new(K::Seen)),
                K::SentBefore(d),
                K::SentOn(d),
                K::SentSince(d),
                K::Since(d),
                K::Smaller(5),
                K::Subject(v("s s")),
                K::Text(v("t")),
                K::To(v("o")),
                K::Uid(set("1:3")),
                K::Unanswered,
                K::Undeleted,
                K::Undraft,
                K::Unflagged,
                K::Unkeyword("foo".into()),
                K::Unseen,
                K::SequenceSet(set("4,*")),
            ])
        );
    }

    #[test]
    fn search_nesting() {
        use SearchKey as K;
        assert_eq!(
            criteria("a SEARCH OR (SEEN FLAGGED) NOT (DELETED) 2:3").1,
            K::And(vec![
                K::Or(
                    Box::new(K::And(vec![K::Seen, K::Flagged])),
                    Box::new(K::Not(Box::new(K::And(vec![K::Deleted])))),
                ),
                K::SequenceSet(set("2:3")),
            ])
        );
        assert_eq!(
            criteria("a SEARCH OR OR SEEN DRAFT ((ANSWERED))").1,
            K::And(vec![K::Or(
                Box::new(K::Or(Box::new(K::Seen), Box::new(K::Draft))),
                Box::new(K::And(vec![K::And(vec![K::Answered])])),
            )])
        );
        // Depth 99 inside the top level is fine, beyond the limit is not.
        let ok = format!("a SEARCH {}ALL", "NOT ".repeat(99));
        assert!(parse(&ok).is_ok());
        let deep = format!("a SEARCH {}ALL", "NOT ".repeat(150));
        assert_eq!(err(&deep).message, "Search criteria nested too deeply");
        assert!(err(&deep).limit && !err(&deep).too_big);
        assert!(!err("a SEARCH FOO").limit, "a syntax error is no limit");
        let deep = format!("a SEARCH {}ALL{}", "(".repeat(200), ")".repeat(200));
        assert_eq!(err(&deep).message, "Search criteria nested too deeply");
        let many = format!("a SEARCH {}", vec!["SEEN"; 1001].join(" "));
        assert_eq!(err(&many).message, "Too many search criteria");
        assert!(err(&many).limit);
        let enough = format!("a SEARCH {}", vec!["SEEN"; 1000].join(" "));
        assert!(parse(&enough).is_ok());
    }

    #[test]
    fn esearch_and_searchres() {
        use SearchKey as K;
        let r = |min, max, all, count, save| SearchReturn {
            min,
            max,
            all,
            count,
            save,
            ..SearchReturn::default()
        };
        let returns = |s: &str| match body(s) {
            CommandBody::Search { returns, .. } => returns,
            other => panic!("{other:?}"),
        };
        assert_eq!(returns("a SEARCH ALL"), None);
        assert_eq!(
            returns("a SEARCH RETURN () ALL"),
            Some(r(false, false, true, false, false))
        );
        assert_eq!(
            returns("a SEARCH return (min MAX count) CHARSET UTF-8 ALL"),
            Some(r(true, true, false, true, false))
        );
        assert_eq!(
            returns("a UID SEARCH RETURN (SAVE) SEEN"),
            Some(r(false, false, false, false, true))
        );
        for bad in [
            "a SEARCH RETURN (PARTIAL 1) ALL",
            "a SEARCH RETURN (MIN",
            "a SEARCH RETURN MIN ALL",
            "a SEARCH RETURN (MIN)ALL",
            "a SEARCH RETURN (MIN  MAX) ALL",
        ] {
            parse(bad).expect_err(bad);
        }
        // `$` as a whole set: in SEARCH, and wherever a set goes.
        assert_eq!(
            criteria("a SEARCH $ UID $ OR $ 1").1,
            K::And(vec![
                K::SequenceSet(SequenceSet::saved()),
                K::Uid(SequenceSet::saved()),
                K::Or(
                    Box::new(K::SequenceSet(SequenceSet::saved())),
                    Box::new(K::SequenceSet(set("1")))
                ),
            ])
        );
        match body("a UID FETCH $ FLAGS") {
            CommandBody::Fetch { uid: true, set, .. } => assert!(set.is_saved()),
            other => panic!("{other:?}"),
        }
        match body("a COPY $ INBOX") {
            CommandBody::Copy { set, .. } => assert!(set.is_saved()),
            other => panic!("{other:?}"),
        }
        parse("a FETCH $,1 FLAGS").expect_err("$ is a whole set");
        parse("a FETCH 1,$ FLAGS").expect_err("$ is a whole set");
    }

    #[test]
    fn context_return_options_and_cancelupdate_rfc5267() {
        let returns = |s: &str| match body(s) {
            CommandBody::Search { returns, .. } | CommandBody::Sort { returns, .. } => {
                returns.expect("RETURN")
            }
            other => panic!("{other:?}"),
        };
        let range = |low, high, from_end| {
            Some(PartialRange {
                low,
                high,
                from_end,
            })
        };
        // RFC 5267 §4.3's example.
        let r = returns("B01 UID SEARCH RETURN (UPDATE) UNDELETED UNKEYWORD $Junk");
        assert!(r.update && !r.all && r.partial.is_none());
        let r = returns("a SEARCH RETURN (CONTEXT update COUNT) ALL");
        assert!(r.update && r.count && !r.all);
        // §4.4: the range either way round; RFC 9394's counted from the end.
        assert_eq!(
            returns("a SEARCH RETURN (PARTIAL 4:2) ALL").partial,
            range(2, 4, false)
        );
        assert_eq!(
            returns("a UID SORT RETURN (PARTIAL 1:500 UPDATE) (DATE) UTF-8 ALL").partial,
            range(1, 500, false)
        );
        assert_eq!(
            returns("a SEARCH RETURN (PARTIAL -1:-100) ALL").partial,
            range(1, 100, true)
        );
        assert_eq!(
            returns("a SEARCH RETURN (PARTIAL -9:-3) ALL").partial,
            range(3, 9, true)
        );
        for bad in [
            "a SEARCH RETURN (PARTIAL 1) ALL",
            "a SEARCH RETURN (PARTIAL 1:*) ALL",
            "a SEARCH RETURN (PARTIAL *:1) ALL",
            "a SEARCH RETURN (PARTIAL 0:3) ALL",
            "a SEARCH RETURN (PARTIAL -1:3) ALL",
            "a SEARCH RETURN (PARTIAL 1:2 PARTIAL 3:4) ALL",
            "a SEARCH RETURN (PARTIAL 1:2 ALL) ALL",
            "a SORT RETURN (PARTIAL) (ARRIVAL) UTF-8 ALL",
            "a CANCELUPDATE",
            "a CANCELUPDATE \"a\"x",
        ] {
            parse(bad).expect_err(bad);
        }
        assert_eq!(
            body("a CANCELUPDATE \"B01\" c2"),
            CommandBody::CancelUpdate {
                tags: vec!["B01".into(), "c2".into()]
            }
        );
    }

    #[test]
    fn sort_and_thread() {
        use SearchKey as K;
        match body("a UID SORT (REVERSE date subject displayFROM) UTF-8 SINCE 1-Feb-1994 seen") {
            CommandBody::Sort {
                uid: true,
                returns: None,
                program,
                charset,
                criteria,
            } => {
                assert_eq!(
                    program,
                    vec![
                        SortCriterion {
                            key: SortKey::Date,
                            reverse: true
                        },
                        SortCriterion {
                            key: SortKey::Subject,
                            reverse: false
                        },
                        SortCriterion {
                            key: SortKey::DisplayFrom,
                            reverse: false
                        },
                    ]
                );
                assert_eq!(charset, "UTF-8");
                assert_eq!(
                    criteria,
                    K::And(vec![
                        K::Since(Date {
                            year: 1994,
                            month: 2,
                            day: 1
                        }),
                        K::Seen
                    ])
                );
            }
            other => panic!("{other:?}"),
        }
        match body("a SORT RETURN (MIN COUNT) (ARRIVAL) \"US-ASCII\" ALL") {
            CommandBody::Sort { returns, .. } => assert_eq!(
                returns,
                Some(SearchReturn {
                    min: true,
                    count: true,
                    ..SearchReturn::default()
                })
            ),
            other => panic!("{other:?}"),
        }
        for (cmd, algorithm) in [
            (
                "a THREAD ORDEREDSUBJECT UTF-8 ALL",
                ThreadAlgorithm::OrderedSubject,
            ),
            (
                "a UID THREAD references us-ascii 1:*",
                ThreadAlgorithm::References,
            ),
        ] {
            match body(cmd) {
                CommandBody::Thread { algorithm: a, .. } => assert_eq!(a, algorithm),
                other => panic!("{other:?}"),
            }
        }
        for bad in [
            "a SORT () UTF-8 ALL",
            "a SORT (REVERSE) UTF-8 ALL",
            "a SORT (SENDER) UTF-8 ALL",
            "a SORT (DATE) UTF-8",
            "a SORT (DATE) ALL",
            "a SORT DATE UTF-8 ALL",
            "a THREAD REFS UTF-8 ALL",
            "a THREAD REFERENCES UTF-8",
        ] {
            parse(bad).expect_err(bad);
        }
    }

    #[test]
    fn search_errors() {
        for bad in [
            "a SEARCH",
            "a SEARCH FOO",
            "a SEARCH OR SEEN",
            "a SEARCH NOT",
            "a SEARCH (SEEN",
            "a SEARCH ()",
            "a SEARCH SINCE 1-Feb-94",
            "a SEARCH SINCE 31-Feb-1994",
            "a SEARCH LARGER x",
            "a SEARCH LARGER 99999999999999999999999",
            "a SEARCH UID x",
            "a SEARCH 0",
            "a SEARCH CHARSET",
            "a SEARCH CHARSET UTF-8",
            "a SEARCH HEADER X",
            "a SEARCH SEEN  UNSEEN",
            "a SEARCH SEEN ",
            "a SEARCH KEYWORD \\Seen",
        ] {
            let e = err(bad);
            assert_eq!(e.tag.as_deref(), Some("a"), "{bad}");
        }
    }
}
