//! Torture test (issue 10, point 2): many sessions at once doing random APPEND, FETCH,
//! STORE, COPY, MOVE, EXPUNGE, SEARCH and CREATE/RENAME/DELETE on one maildir, while a
//! simulated MTA delivers into `new/` and a killer SIGKILLs sessions in the middle of
//! their commands. Afterwards the disk and a fresh session are reconciled with what was
//! acknowledged.
//!
//! Seeded and bounded: `MDIMAP_TORTURE_SEED` (printed at the start) replays the choices,
//! `MDIMAP_TORTURE_SECS` (default 60) bounds the run, `MDIMAP_TORTURE_SESSIONS` (default
//! 20) sets the number of concurrent sessions. Threads and processes interleave as the
//! kernel schedules them, so a seed gives the same choices, not the same run.
//!
//! Every message carries a unique `X-Token` header. The ledger keeps, per token:
//! - `must_exist`: its APPEND was acknowledged or the MTA placed it in `new/`;
//! - `at_risk`: some command that may legitimately remove it was sent (`\Deleted` set on
//!   one of its copies, which any EXPUNGE then removes; the DELETE of a folder it is in);
//! - `max_copies`: how many messages may carry it: one for its APPEND or delivery (sent,
//!   acknowledged or not), one more for each COPY or MOVE sent that named a copy of it (a
//!   MOVE killed between its copy and its expunge may leave the message in both folders,
//!   as in any Maildir server).
//!
//! The invariants checked at the end:
//! 1. every token that must exist and is not at risk is found in some folder (MOVE only
//!    relocates; a killed command may or may not have happened, but never loses one);
//! 2. no token is found more often than `max_copies` (nothing duplicated as two UIDs);
//! 3. no (folder, UIDVALIDITY, UID) ever named two different tokens, in any answer during
//!    the run or in the final one;
//! 4. each session's own keyword (`$sN`, only session N changes it) and `\Flagged` on the
//!    messages session N appended (only N changes it) are, on every message still there,
//!    as N's last acknowledged STORE left them, unless a later STORE of N was killed;
//! 5. every file mdimap keeps parses: the UID database (unique UIDs, unique names, all
//!    below the next UID, every message of cur/ listed), the keyword list, `maildirsize`;
//!    every folder SELECTs in a fresh session.

mod common;

use common::*;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Folders every session works in; never renamed or deleted, so flag and UID checks can
/// name them.
const FIXED: [&str; 4] = ["INBOX", "INBOX.A", "INBOX.B", "INBOX.C"];

/// A small, seedable generator (xorshift64*): the choices of a run are replayed by its seed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

#[derive(Default, Debug)]
struct TokenState {
    must_exist: bool,
    at_risk: bool,
    max_copies: u32,
    /// The session that appended it (only that one changes its `\Flagged`).
    owner: Option<usize>,
}

/// The last STORE of one session on one message: the state it asked for, and whether it
/// was acknowledged (a killed one leaves the state unknown).
#[derive(Debug, Clone, Copy)]
struct FlagIntent {
    keyword: Option<bool>,
    flagged: Option<bool>,
    acknowledged: bool,
}

#[derive(Default)]
struct Ledger {
    tokens: HashMap<String, TokenState>,
    /// (folder, uidvalidity, uid) → token, from every answer that named one.
    uids: HashMap<(String, u32, u32), String>,
    /// (session, folder, uidvalidity, uid) → the session's last STORE on it.
    flags: HashMap<(usize, String, u32, u32), FlagIntent>,
    violations: Vec<String>,
}

impl Ledger {
    fn token(&mut self, token: &str) -> &mut TokenState {
        self.tokens.entry(token.to_string()).or_default()
    }

    fn saw_uid(&mut self, folder: &str, uidvalidity: u32, uid: u32, token: &str) {
        let key = (folder.to_string(), uidvalidity, uid);
        match self.uids.get(&key) {
            Some(known) if known != token => {
                let violation = format!(
                    "UID {uid} of {folder} (UIDVALIDITY {uidvalidity}) named {known} and later {token}"
                );
                // Every later FETCH would repeat it.
                if !self.violations.contains(&violation) {
                    self.violations.push(violation);
                }
            }
            Some(_) => {}
            None => {
                self.uids.insert(key, token.to_string());
            }
        }
    }
}

#[derive(Default)]
struct Counts {
    ops: BTreeMap<&'static str, u64>,
    acknowledged: BTreeMap<&'static str, u64>,
    refused: BTreeMap<&'static str, u64>,
    killed_during: BTreeMap<&'static str, u64>,
}

/// What the session threads, the MTA and the killer share.
struct Shared {
    dir: TestDir,
    maildir: PathBuf,
    ledger: Mutex<Ledger>,
    counts: Mutex<Counts>,
    /// Per session: the pid of its mdimapd while a command is in flight.
    in_command: Mutex<Vec<Option<i32>>>,
    /// Pids the killer killed: a connection that closes otherwise is a server crash.
    killed: Mutex<HashSet<i32>>,
    stop: AtomicBool,
    deliveries: AtomicU64,
    kills: AtomicU64,
    sessions_started: AtomicU64,
    failures: Mutex<Vec<String>>,
}

fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, not {v:?}")),
        Err(_) => default,
    }
}

fn token_message(token: &str, filler: usize) -> String {
    let body = "torture line of text\r\n".repeat(filler);
    format!(
        "From: torture@example.org\r\nTo: box@example.net\r\nSubject: {token}\r\n\
         Message-ID: <{token}@torture.example>\r\nX-Token: {token}\r\n\r\n{body}end {token}\r\n"
    )
}

/// `[CODE a b c]` from a tagged OK: the words after CODE.
fn response_code<'a>(tagged: &'a str, code: &str) -> Option<Vec<&'a str>> {
    let start = tagged.find(&format!("[{code} "))? + code.len() + 2;
    let end = tagged[start..].find(']')? + start;
    Some(tagged[start..end].split(' ').collect())
}

/// A UID set as sent by COPYUID/APPENDUID (`3:5,9`), expanded.
fn expand_uid_set(set: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for part in set.split(',') {
        match part.split_once(':') {
            Some((a, b)) => {
                let (Ok(a), Ok(b)) = (a.parse::<u32>(), b.parse::<u32>()) else {
                    continue;
                };
                let (lo, hi) = (a.min(b), a.max(b));
                // COPYUID lists ranges in the order of the source set, which may descend.
                if a <= b {
                    out.extend(lo..=hi);
                } else {
                    out.extend((lo..=hi).rev());
                }
            }
            None => {
                if let Ok(n) = part.parse() {
                    out.push(n);
                }
            }
        }
    }
    out
}

/// (uid, flags, token) of each `* n FETCH (UID u FLAGS (...) BODY[...] {n}\r\nX-Token: t...`.
fn parse_fetches(r: &Response) -> Vec<(u32, Vec<String>, Option<String>)> {
    let mut out = Vec::new();
    for (_, line) in r.fetches() {
        let uid = line
            .split("UID ")
            .nth(1)
            .and_then(|s| s.split([' ', ')']).next())
            .and_then(|s| s.parse().ok());
        let flags = line
            .split("FLAGS (")
            .nth(1)
            .and_then(|s| s.split(')').next())
            .map(|s| s.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default();
        let token = line
            .split("X-Token: ")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .map(str::to_string);
        if let Some(uid) = uid {
            out.push((uid, flags, token));
        }
    }
    out
}

/// One session's view of the folder it has selected.
struct Selected {
    folder: String,
    uidvalidity: u32,
    /// uid → token, as last fetched.
    known: BTreeMap<u32, String>,
}

struct Session {
    id: usize,
    rng: Rng,
    conn: Option<(Server, Client)>,
    selected: Option<Selected>,
    /// The session's scratch folder for CREATE/RENAME/DELETE: `None` when unknown (after
    /// a kill), else whether it exists and under which name.
    scratch: Option<Option<String>>,
    /// Tokens appended into the scratch folder under any of its names.
    scratch_tokens: Vec<String>,
    next_token: u64,
}

/// What became of one command.
enum Done {
    Answer(Response),
    /// The connection closed: the killer's doing (a crash is recorded as a failure).
    Killed,
}

impl Session {
    fn keyword(&self) -> String {
        format!("$s{}", self.id)
    }

    fn connect(&mut self, shared: &Shared) {
        let (server, mut client) = preauth(&shared.dir, &shared.maildir);
        client.timeout = Duration::from_secs(300);
        shared.sessions_started.fetch_add(1, Ordering::Relaxed);
        self.conn = Some((server, client));
        self.selected = None;
    }

    /// Sends one command with the killer allowed to strike while it runs.
    fn command(&mut self, shared: &Shared, kind: &'static str, text: &[u8]) -> Done {
        if self.conn.is_none() {
            self.connect(shared);
        }
        let Some((server, client)) = self.conn.as_mut() else {
            unreachable!()
        };
        let pid = server.pid();
        lock(&shared.in_command)[self.id] = Some(pid);
        let (_, outcome) = client.try_cmd_bytes(text);
        lock(&shared.in_command)[self.id] = None;
        *lock(&shared.counts).ops.entry(kind).or_default() += 1;
        match outcome {
            Outcome::Done(r) => {
                if r.is_bad() {
                    lock(&shared.failures).push(format!(
                        "session {}: BAD for {kind} {:?}: {}",
                        self.id,
                        String::from_utf8_lossy(&text[..text.len().min(200)]),
                        r.tagged
                    ));
                }
                let counts = &mut lock(&shared.counts);
                if r.is_ok() {
                    *counts.acknowledged.entry(kind).or_default() += 1;
                } else {
                    *counts.refused.entry(kind).or_default() += 1;
                }
                Done::Answer(r)
            }
            Outcome::Closed(_) => {
                let (mut server, _) = self.conn.take().unwrap_or_else(|| unreachable!());
                let status = server.wait_exit(HANG_GUARD);
                if !lock(&shared.killed).contains(&pid) {
                    lock(&shared.failures).push(format!(
                        "session {} (pid {pid}) closed the connection during {kind} without \
                         being killed: {status:?}\n{}",
                        self.id,
                        server.log_text()
                    ));
                }
                *lock(&shared.counts).killed_during.entry(kind).or_default() += 1;
                self.selected = None;
                self.scratch = None;
                Done::Killed
            }
        }
    }

    fn new_token(&mut self) -> String {
        self.next_token += 1;
        format!("s{}-{}", self.id, self.next_token)
    }

    fn select(&mut self, shared: &Shared, folder: &str) {
        let Done::Answer(r) = self.command(shared, "SELECT", format!("SELECT {folder}").as_bytes())
        else {
            return;
        };
        if !r.is_ok() {
            lock(&shared.failures).push(format!("SELECT {folder}: {}", r.tagged));
            return;
        }
        let uidvalidity = r
            .untagged
            .iter()
            .find_map(|l| response_code(l, "UIDVALIDITY"))
            .and_then(|w| w.first().and_then(|v| v.parse().ok()));
        let Some(uidvalidity) = uidvalidity else {
            lock(&shared.failures).push(format!("SELECT {folder} without UIDVALIDITY: {r:?}"));
            return;
        };
        self.selected = Some(Selected {
            folder: folder.to_string(),
            uidvalidity,
            known: BTreeMap::new(),
        });
        self.fetch(shared);
    }

    fn fetch(&mut self, shared: &Shared) {
        let Done::Answer(r) = self.command(
            shared,
            "FETCH",
            b"UID FETCH 1:* (UID FLAGS BODY.PEEK[HEADER.FIELDS (X-Token)])",
        ) else {
            return;
        };
        let Some(sel) = self.selected.as_mut() else {
            return;
        };
        if !r.is_ok() {
            return;
        }
        let mut ledger = lock(&shared.ledger);
        for (uid, _, token) in parse_fetches(&r) {
            if let Some(token) = token {
                ledger.saw_uid(&sel.folder, sel.uidvalidity, uid, &token);
                sel.known.insert(uid, token);
            }
        }
    }

    fn some_uids(&mut self, most: usize) -> Vec<(u32, String)> {
        let Some(sel) = self.selected.as_ref() else {
            return Vec::new();
        };
        let all: Vec<(u32, String)> = sel.known.iter().map(|(u, t)| (*u, t.clone())).collect();
        if all.is_empty() {
            return all;
        }
        let n = 1 + self.rng.below(most);
        let mut picked: Vec<(u32, String)> = (0..n).map(|_| self.rng.pick(&all).clone()).collect();
        picked.sort();
        picked.dedup();
        picked
    }

    fn append(&mut self, shared: &Shared) {
        let scratch = match &self.scratch {
            Some(Some(name)) if self.rng.chance(30) => Some(name.clone()),
            _ => None,
        };
        let folder = scratch
            .clone()
            .unwrap_or_else(|| self.rng.pick(&FIXED).to_string());
        let token = self.new_token();
        let mut flags = Vec::new();
        let keyword = self.rng.chance(30);
        if keyword {
            flags.push(self.keyword());
        }
        if self.rng.chance(20) {
            flags.push("\\Seen".to_string());
        }
        let flagged = self.rng.chance(20);
        if flagged {
            flags.push("\\Flagged".to_string());
        }
        let filler = self.rng.below(200);
        let msg = token_message(&token, filler);
        {
            let mut ledger = lock(&shared.ledger);
            let t = ledger.token(&token);
            t.max_copies += 1;
            t.owner = Some(self.id);
        }
        if scratch.is_some() {
            self.scratch_tokens.push(token.clone());
        }
        let text = format!(
            "APPEND {folder} ({}) {{{}+}}\r\n{msg}",
            flags.join(" "),
            msg.len()
        );
        let Done::Answer(r) = self.command(shared, "APPEND", text.as_bytes()) else {
            return;
        };
        if !r.is_ok() {
            if scratch.is_none() {
                lock(&shared.failures).push(format!("APPEND {folder}: {}", r.tagged));
            }
            return;
        }
        let mut ledger = lock(&shared.ledger);
        ledger.token(&token).must_exist = true;
        if let Some(words) = response_code(&r.tagged, "APPENDUID")
            && let [v, uid] = words[..]
            && let (Ok(v), Ok(uid)) = (v.parse(), uid.parse())
        {
            ledger.saw_uid(&folder, v, uid, &token);
            if scratch.is_none() {
                ledger.flags.insert(
                    (self.id, folder.clone(), v, uid),
                    FlagIntent {
                        keyword: Some(keyword),
                        flagged: Some(flagged),
                        acknowledged: true,
                    },
                );
            }
        } else {
            lock(&shared.failures).push(format!("APPEND {folder} without APPENDUID: {}", r.tagged));
        }
    }

    fn store(&mut self, shared: &Shared) {
        let picked = self.some_uids(3);
        let Some(sel) = self.selected.as_ref() else {
            return;
        };
        if picked.is_empty() {
            return;
        }
        let (folder, v) = (sel.folder.clone(), sel.uidvalidity);
        let set: Vec<String> = picked.iter().map(|(u, _)| u.to_string()).collect();
        let set = set.join(",");
        let sign = if self.rng.chance(50) { '+' } else { '-' };
        let on = sign == '+';
        let choice = self.rng.below(10);
        let (flag, intent) = match choice {
            0..=3 => (
                self.keyword(),
                FlagIntent {
                    keyword: Some(on),
                    flagged: None,
                    acknowledged: false,
                },
            ),
            4 | 5 => (
                "\\Seen".to_string(),
                FlagIntent {
                    keyword: None,
                    flagged: None,
                    acknowledged: false,
                },
            ),
            6 | 7 => (
                "\\Flagged".to_string(),
                FlagIntent {
                    keyword: None,
                    flagged: Some(on),
                    acknowledged: false,
                },
            ),
            _ => (
                "\\Deleted".to_string(),
                FlagIntent {
                    keyword: None,
                    flagged: None,
                    acknowledged: false,
                },
            ),
        };
        // \Flagged is only changed by the session that appended the message.
        let picked: Vec<(u32, String)> = if intent.flagged.is_some() {
            let ledger = lock(&shared.ledger);
            picked
                .into_iter()
                .filter(|(_, t)| ledger.tokens.get(t).and_then(|s| s.owner) == Some(self.id))
                .collect()
        } else {
            picked
        };
        if picked.is_empty() {
            return;
        }
        let set = if intent.flagged.is_some() {
            picked
                .iter()
                .map(|(u, _)| u.to_string())
                .collect::<Vec<_>>()
                .join(",")
        } else {
            set
        };
        {
            let mut ledger = lock(&shared.ledger);
            for (uid, token) in &picked {
                if flag == "\\Deleted" && on {
                    ledger.token(token).at_risk = true;
                }
                if intent.keyword.is_some() || intent.flagged.is_some() {
                    let key = (self.id, folder.clone(), v, *uid);
                    let old = ledger.flags.get(&key).copied();
                    // Keep what the other kind of flag was; this STORE is unknown until OK.
                    let merged = FlagIntent {
                        keyword: intent.keyword.or(old.and_then(|o| o.keyword)),
                        flagged: intent.flagged.or(old.and_then(|o| o.flagged)),
                        acknowledged: false,
                    };
                    ledger.flags.insert(key, merged);
                }
            }
        }
        let silent = if self.rng.chance(50) { ".SILENT" } else { "" };
        let text = format!("UID STORE {set} {sign}FLAGS{silent} ({flag})");
        let Done::Answer(r) = self.command(shared, "STORE", text.as_bytes()) else {
            return;
        };
        if r.is_ok() && (intent.keyword.is_some() || intent.flagged.is_some()) {
            let mut ledger = lock(&shared.ledger);
            for (uid, _) in &picked {
                if let Some(i) = ledger.flags.get_mut(&(self.id, folder.clone(), v, *uid)) {
                    i.acknowledged = true;
                }
            }
        }
    }

    fn copy_or_move(&mut self, shared: &Shared, moving: bool) {
        let picked = self.some_uids(4);
        let Some(sel) = self.selected.as_ref() else {
            return;
        };
        if picked.is_empty() {
            return;
        }
        let from = sel.folder.clone();
        let targets: Vec<&str> = FIXED.iter().copied().filter(|f| *f != from).collect();
        let target = self.rng.pick(&targets).to_string();
        {
            let mut ledger = lock(&shared.ledger);
            for (_, token) in &picked {
                ledger.token(token).max_copies += 1;
            }
        }
        let set: Vec<String> = picked.iter().map(|(u, _)| u.to_string()).collect();
        let kind = if moving { "MOVE" } else { "COPY" };
        let text = format!("UID {kind} {} {target}", set.join(","));
        let Done::Answer(r) = self.command(shared, kind, text.as_bytes()) else {
            return;
        };
        if !r.is_ok() {
            return;
        }
        // COPYUID comes in the tagged OK for COPY, in an untagged OK for MOVE.
        let code = std::iter::once(&r.tagged)
            .chain(r.untagged.iter())
            .find_map(|l| response_code(l, "COPYUID"));
        let tokens: HashMap<u32, String> = picked.into_iter().collect();
        if let Some(words) = code
            && let [v, src, dst] = words[..]
            && let Ok(v) = v.parse::<u32>()
        {
            let mut ledger = lock(&shared.ledger);
            for (s, d) in expand_uid_set(src).into_iter().zip(expand_uid_set(dst)) {
                if let Some(token) = tokens.get(&s) {
                    ledger.saw_uid(&target, v, d, token);
                }
            }
        }
        if moving && let Some(sel) = self.selected.as_mut() {
            for uid in tokens.keys() {
                sel.known.remove(uid);
            }
        }
    }

    fn expunge(&mut self, shared: &Shared) {
        let text: String = if self.rng.chance(50) {
            "EXPUNGE".to_string()
        } else {
            let picked = self.some_uids(5);
            if picked.is_empty() {
                return;
            }
            let set: Vec<String> = picked.iter().map(|(u, _)| u.to_string()).collect();
            format!("UID EXPUNGE {}", set.join(","))
        };
        if let Done::Answer(r) = self.command(shared, "EXPUNGE", text.as_bytes())
            && r.is_ok()
            && !r.expunged().is_empty()
        {
            // Sequence numbers moved: learn the folder again.
            self.fetch(shared);
        }
    }

    fn search(&mut self, shared: &Shared) {
        let criteria = match self.rng.below(4) {
            0 => format!("KEYWORD {}", self.keyword()),
            1 => "UNSEEN".to_string(),
            2 => "DELETED".to_string(),
            _ => format!("HEADER X-Token s{}-", self.id),
        };
        self.command(
            shared,
            "SEARCH",
            format!("UID SEARCH {criteria}").as_bytes(),
        );
    }

    /// Learns whether the scratch folder exists after a kill left it unknown.
    fn learn_scratch(&mut self, shared: &Shared) {
        let pattern = format!("INBOX.S{}*", self.id);
        let Done::Answer(r) =
            self.command(shared, "LIST", format!("LIST \"\" {pattern}").as_bytes())
        else {
            return;
        };
        let names: Vec<String> = r
            .lines("* LIST")
            .iter()
            .filter_map(|l| l.rsplit(' ').next())
            .map(|n| n.trim_matches('"').to_string())
            .collect();
        // The pattern also matches other sessions' folders (S1* matches S10a). A rename
        // is one rename(2) here (the folder has no children), so at most one is ours.
        let ours = [
            format!("INBOX.S{}a", self.id),
            format!("INBOX.S{}b", self.id),
        ];
        self.scratch = Some(names.into_iter().find(|n| ours.contains(n)));
    }

    fn folder_op(&mut self, shared: &Shared) {
        if self.scratch.is_none() {
            self.learn_scratch(shared);
        }
        let Some(state) = self.scratch.clone() else {
            return;
        };
        let a = format!("INBOX.S{}a", self.id);
        let b = format!("INBOX.S{}b", self.id);
        match state {
            None => {
                let Done::Answer(r) =
                    self.command(shared, "CREATE", format!("CREATE {a}").as_bytes())
                else {
                    return;
                };
                if r.is_ok() {
                    self.scratch = Some(Some(a));
                    self.scratch_tokens.clear();
                } else {
                    self.scratch = None;
                }
            }
            Some(name) if self.rng.chance(60) => {
                let to = if name == a { b } else { a };
                let Done::Answer(r) =
                    self.command(shared, "RENAME", format!("RENAME {name} {to}").as_bytes())
                else {
                    return;
                };
                self.scratch = if r.is_ok() { Some(Some(to)) } else { None };
            }
            Some(name) => {
                {
                    let mut ledger = lock(&shared.ledger);
                    for token in &self.scratch_tokens {
                        ledger.token(token).at_risk = true;
                    }
                }
                let Done::Answer(r) =
                    self.command(shared, "DELETE", format!("DELETE {name}").as_bytes())
                else {
                    return;
                };
                if r.is_ok() {
                    self.scratch = Some(None);
                    self.scratch_tokens.clear();
                } else {
                    self.scratch = None;
                }
            }
        }
    }

    fn step(&mut self, shared: &Shared) {
        if self.selected.is_none() || self.rng.chance(5) {
            let folder = self.rng.pick(&FIXED).to_string();
            self.select(shared, &folder);
            return;
        }
        match self.rng.below(100) {
            0..=24 => self.append(shared),
            25..=34 => self.fetch(shared),
            35..=54 => self.store(shared),
            55..=64 => self.copy_or_move(shared, false),
            65..=74 => self.copy_or_move(shared, true),
            75..=84 => self.expunge(shared),
            85..=91 => self.search(shared),
            _ => self.folder_op(shared),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The simulated MTA: writes into `tmp/`, fsyncs, renames into `new/`, as qmail does.
fn mta(shared: &Shared, seed: u64) {
    let mut rng = Rng::new(seed ^ 0xD311_7E57);
    let mut n = 0u64;
    while !shared.stop.load(Ordering::Relaxed) {
        n += 1;
        let token = format!("mta-{n}");
        let folder = if rng.chance(70) {
            shared.maildir.clone()
        } else {
            shared.maildir.join(".A")
        };
        let msg = token_message(&token, rng.below(100)).replace("\r\n", "\n");
        let name = unique_name(msg.len());
        lock(&shared.ledger).token(&token).max_copies += 1;
        let tmp = folder.join("tmp").join(&name);
        let written = fs::File::create(&tmp).and_then(|mut f| {
            f.write_all(msg.as_bytes())?;
            f.sync_all()
        });
        if let Err(e) = written {
            lock(&shared.failures).push(format!("MTA cannot write {}: {e}", tmp.display()));
            return;
        }
        if let Err(e) = fs::rename(&tmp, folder.join("new").join(&name)) {
            lock(&shared.failures).push(format!("MTA cannot deliver {name}: {e}"));
            return;
        }
        lock(&shared.ledger).token(&token).must_exist = true;
        shared.deliveries.fetch_add(1, Ordering::Relaxed);
        thread::sleep(Duration::from_millis(20 + rng.below(200) as u64));
    }
}

/// SIGKILLs a random session that has a command in flight, now and then.
fn killer(shared: &Shared, seed: u64) {
    let mut rng = Rng::new(seed ^ 0x0B1D_EAD5);
    while !shared.stop.load(Ordering::Relaxed) {
        thread::sleep(Duration::from_millis(50 + rng.below(400) as u64));
        let busy = lock(&shared.in_command);
        let pids: Vec<i32> = busy.iter().flatten().copied().collect();
        if pids.is_empty() {
            continue;
        }
        let pid = *rng.pick(&pids);
        // Under the lock: the session cannot reap the process (and its pid be reused)
        // before it is marked as killed.
        lock(&shared.killed).insert(pid);
        signal(pid, libc::SIGKILL);
        shared.kills.fetch_add(1, Ordering::Relaxed);
        drop(busy);
    }
}

#[test]
fn torture_sessions_mta_and_killer() {
    let seed = env_u64(
        "MDIMAP_TORTURE_SEED",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1),
    );
    let secs = env_u64("MDIMAP_TORTURE_SECS", 60);
    let sessions = env_u64("MDIMAP_TORTURE_SESSIONS", 20).max(1) as usize;
    eprintln!(
        "torture: seed {seed} (MDIMAP_TORTURE_SEED={seed} replays the choices), {secs} s, \
         {sessions} sessions"
    );
    let dir = TestDir::new("torture");
    let maildir = dir.maildir();
    for f in &FIXED[1..] {
        make_folder(&maildir, &f["INBOX".len()..]);
    }
    // A Maildir++ quota far above what the run stores, so that every write updates it.
    fs::write(maildir.join("maildirsize"), "1000000000S,1000000C\n0 0\n").unwrap();
    let shared = Arc::new(Shared {
        dir,
        maildir,
        ledger: Mutex::new(Ledger::default()),
        counts: Mutex::new(Counts::default()),
        in_command: Mutex::new(vec![None; sessions]),
        killed: Mutex::new(HashSet::new()),
        stop: AtomicBool::new(false),
        deliveries: AtomicU64::new(0),
        kills: AtomicU64::new(0),
        sessions_started: AtomicU64::new(0),
        failures: Mutex::new(Vec::new()),
    });
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut threads = Vec::new();
    for id in 0..sessions {
        let shared = Arc::clone(&shared);
        threads.push(thread::spawn(move || {
            let mut s = Session {
                id,
                rng: Rng::new(seed.wrapping_add(id as u64 + 1)),
                conn: None,
                selected: None,
                scratch: None,
                scratch_tokens: Vec::new(),
                next_token: 0,
            };
            while Instant::now() < deadline {
                s.step(&shared);
            }
            if let Some((_, mut client)) = s.conn.take() {
                let _ = client.try_cmd_bytes(b"LOGOUT");
            }
        }));
    }
    let mta_thread = {
        let shared = Arc::clone(&shared);
        thread::spawn(move || mta(&shared, seed))
    };
    let killer_thread = {
        let shared = Arc::clone(&shared);
        thread::spawn(move || killer(&shared, seed))
    };
    let mut panicked = Vec::new();
    for (i, t) in threads.into_iter().enumerate() {
        if t.join().is_err() {
            panicked.push(i);
        }
    }
    shared.stop.store(true, Ordering::Relaxed);
    let _ = mta_thread.join();
    let _ = killer_thread.join();
    assert!(
        panicked.is_empty(),
        "session threads panicked: {panicked:?}"
    );

    // The final look: a fresh session lists and selects every folder.
    let (server, mut client) = preauth(&shared.dir, &shared.maildir);
    client.timeout = Duration::from_secs(300);
    let list = client.ok("LIST \"\" *");
    let folders: Vec<String> = list
        .lines("* LIST")
        .iter()
        .filter_map(|l| l.rsplit(' ').next())
        .map(|n| n.trim_matches('"').to_string())
        .collect();
    let mut found: HashMap<String, u32> = HashMap::new();
    let mut present: HashMap<(String, u32, u32), Vec<String>> = HashMap::new();
    let mut problems: Vec<String> = lock(&shared.failures).clone();
    for folder in &folders {
        let r = client.cmd(&format!("SELECT {folder}"));
        if !r.is_ok() {
            problems.push(format!("final SELECT {folder}: {}", r.tagged));
            continue;
        }
        let v: u32 = r
            .untagged
            .iter()
            .find_map(|l| response_code(l, "UIDVALIDITY"))
            .and_then(|w| w.first().and_then(|v| v.parse().ok()))
            .unwrap_or(0);
        let r = client.ok("UID FETCH 1:* (UID FLAGS BODY.PEEK[HEADER.FIELDS (X-Token)])");
        let mut ledger = lock(&shared.ledger);
        for (uid, flags, token) in parse_fetches(&r) {
            let Some(token) = token else {
                problems.push(format!("{folder} UID {uid} has no X-Token"));
                continue;
            };
            ledger.saw_uid(folder, v, uid, &token);
            *found.entry(token.clone()).or_default() += 1;
            present.insert((folder.clone(), v, uid), flags);
        }
    }
    client.ok("LOGOUT");
    drop(server);

    let ledger = lock(&shared.ledger);
    problems.extend(ledger.violations.iter().cloned());
    let mut must = 0;
    for (token, state) in &ledger.tokens {
        let n = found.get(token).copied().unwrap_or(0);
        if state.must_exist && !state.at_risk {
            must += 1;
            if n == 0 {
                problems.push(format!("lost: {token} ({state:?})"));
            }
        }
        if n > state.max_copies {
            problems.push(format!(
                "{token} found {n} times, at most {} expected",
                state.max_copies
            ));
        }
    }
    for token in found.keys() {
        if !ledger.tokens.contains_key(token) {
            problems.push(format!("{token} found but never sent"));
        }
    }
    let mut flag_checks = 0;
    for ((session, folder, v, uid), intent) in &ledger.flags {
        if !intent.acknowledged {
            continue;
        }
        let Some(flags) = present.get(&(folder.clone(), *v, *uid)) else {
            continue;
        };
        flag_checks += 1;
        let has = |f: &str| flags.iter().any(|g| g.eq_ignore_ascii_case(f));
        if let Some(k) = intent.keyword
            && has(&format!("$s{session}")) != k
        {
            problems.push(format!(
                "{folder} UID {uid}: session {session}'s keyword should be {k}, flags {flags:?}"
            ));
        }
        if let Some(f) = intent.flagged
            && has("\\Flagged") != f
        {
            problems.push(format!(
                "{folder} UID {uid}: \\Flagged should be {f} as session {session} left it, \
                 flags {flags:?}"
            ));
        }
    }
    for folder in &folders {
        let path = match folder.strip_prefix("INBOX") {
            Some("") => shared.maildir.clone(),
            Some(rest) => shared.maildir.join(rest),
            None => continue,
        };
        problems.extend(store_file_problems(&path));
    }
    problems.extend(maildirsize_problems(
        &shared.maildir,
        "1000000000S,1000000C",
    ));

    let counts = lock(&shared.counts);
    let total: u64 = counts.ops.values().sum();
    eprintln!(
        "torture: seed {seed}, {secs} s, {sessions} sessions ({} started), {total} commands, \
         {} kills, {} MTA deliveries",
        shared.sessions_started.load(Ordering::Relaxed),
        shared.kills.load(Ordering::Relaxed),
        shared.deliveries.load(Ordering::Relaxed),
    );
    eprintln!("torture: sent {:?}", counts.ops);
    eprintln!("torture: OK {:?}", counts.acknowledged);
    eprintln!("torture: NO {:?}", counts.refused);
    eprintln!("torture: killed during {:?}", counts.killed_during);
    eprintln!(
        "torture: {} tokens, {must} that must exist, {} found in {} folders, {flag_checks} \
         flag states checked, {} UIDs seen",
        ledger.tokens.len(),
        found.len(),
        folders.len(),
        ledger.uids.len()
    );
    let folders_seen: BTreeSet<&String> = folders.iter().collect();
    eprintln!("torture: folders at the end {folders_seen:?}");
    assert!(
        problems.is_empty(),
        "seed {seed}: {} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
    assert!(
        total > 0 && must > 0,
        "the run did nothing to check (seed {seed})"
    );
}
