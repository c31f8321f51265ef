//! `mdimap migrate-dovecot`: turns what Dovecot knows about a Maildir++ store into
//! Courier's files, so that clients keep their UIDs, UIDVALIDITY, keywords and
//! subscriptions when a site moves from Dovecot to mdimap (or to Courier).
//!
//! For every folder (INBOX and each `.Folder`) Dovecot's `dovecot-uidlist` becomes
//! `courierimapuiddb` (same UIDVALIDITY, same UID for every message whose file is
//! there, next UID = Dovecot's next UID) and the keyword letters `a`..`z` of the
//! file names, read through `dovecot-keywords`, become `courierimapkeywords/`.
//! The root's `subscriptions` becomes `courierimapsubscribed` (`INBOX.`-prefixed
//! names). Folder directories that Dovecot named in modified UTF-7 are renamed to
//! their UTF-8 spelling, which is how Courier 5 and mdimap name them.
//!
//! What is deliberately left alone, and why:
//! - Messages Dovecot numbered while they were still in `new/` are listed under their
//!   Dovecot UIDs. mdimap's scan moves a file to `cur/` before it matches base names,
//!   so it keeps that UID (Courier itself would drop such an entry and renumber).
//! - Files Dovecot never numbered (delivered after its last look) are not listed: the
//!   first scan numbers them from the next UID in arrival order, as Courier's would.
//! - Dovecot's keyword letters stay in the file names. mdimap keeps letters it does not
//!   know and never reads them as flags (only `D F R S T` are flags), and Courier drops
//!   unknown letters at the next flag change of a message; renaming every message file
//!   would gain nothing and would take a rollback to Dovecot away.
//! - Dovecot's own files (`dovecot-uidlist`, `dovecot.index*`, `subscriptions`, ...) are
//!   not removed: neither Courier nor mdimap reads them, and they let the site go back.
//!
//! Safety: Dovecot must be stopped (a fresh `dovecot-uidlist.lock` refuses the run).
//! Everything is planned and checked before the first write, so a refusal changes
//! nothing. Every file goes through the store's own writers (tmp + fsync + rename);
//! each folder's UID database is written under Courier's dot-lock and re-checked
//! under it. A Courier UID database that exists with other content is refused unless
//! `--force`. Started as root, the work on a folder runs with the effective uid and gid
//! of its directory's owner: the files created belong to the mail user, and what the
//! user controls is read and written with the user's rights only. A second run finds
//! nothing to change.
//!
//! Like the store, it opens the maildir root by its path and reaches everything below it
//! through `Dir`, following no symbolic link: a link in place of a folder directory or
//! a message is left alone (and said so), and one in place of a file the migration reads
//! or writes fails the run, before any write where the plan reads that file.
//!
//! This module must not change messages (no file of `cur/` or `new/` is renamed,
//! moved or rewritten) nor parse Dovecot's binary index files.

pub mod dovecot;

use std::collections::BTreeSet;
use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::unistd::{Gid, Uid, getegid, geteuid, getgroups, setegid, seteuid, setgroups};

use crate::maildir::courier::{
    Dir, DotLock, KEYWORDS_DIR, KeywordMap, Kind, UIDDB_NAME, UidDb, has_update_files,
    load_keywords, same_name, write_keyword_update, write_list, write_uiddb,
};
use crate::maildir::fast::FastSet;
use crate::maildir::{INBOX, Store, StoreError, basename_of, canonical_name};

use dovecot::UidList;

/// A `dovecot-uidlist.lock` younger than this means Dovecot is at work (Dovecot itself
/// overrides its lock after two minutes).
const DOVECOT_LOCK_FRESH: Duration = Duration::from_secs(120);

/// What the administrator asked for.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Print what would change; change nothing.
    pub dry_run: bool,
    /// Replace Courier UID databases that differ from Dovecot's numbering, and leave
    /// folders whose UID list cannot be read to mdimap's scan.
    pub force: bool,
}

/// What a run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Something was (or, in a dry run, would have been) written or renamed.
    Changed,
    /// Everything was already converted.
    NothingToDo,
}

/// Why a run stopped. Every variant reads as a sentence for the administrator.
#[derive(Debug)]
pub enum MigrateError {
    /// The path is not a maildir root.
    NotAMaildir(PathBuf, String),
    /// The plan cannot be carried out as it stands: one sentence per problem, each naming
    /// the file and what to do. Nothing was changed.
    Refused(Vec<String>),
    /// A file operation failed.
    Store(StoreError),
    /// Taking or giving back the mail user's identity failed.
    Identity(String),
    /// Writing the report failed.
    Output(io::Error),
}

impl fmt::Display for MigrateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MigrateError::NotAMaildir(path, why) => {
                write!(f, "{} is not a maildir root: {why}", path.display())
            }
            MigrateError::Refused(reasons) => {
                write!(f, "nothing was changed:")?;
                for reason in reasons {
                    write!(f, "\n  {reason}")?;
                }
                Ok(())
            }
            MigrateError::Store(e) => write!(f, "{e}"),
            MigrateError::Identity(why) => write!(f, "{why}"),
            MigrateError::Output(e) => write!(f, "writing the report failed: {e}"),
        }
    }
}

impl std::error::Error for MigrateError {}

impl From<StoreError> for MigrateError {
    fn from(e: StoreError) -> MigrateError {
        MigrateError::Store(e)
    }
}

fn io_error(path: &Path, e: io::Error) -> MigrateError {
    MigrateError::Store(StoreError::io(path, e))
}

/// Who owns a directory: the work in it is done as that user.
#[derive(Debug, Clone, Copy)]
struct Owner {
    uid: u32,
    gid: u32,
}

/// The maildir root, opened once by its path (following links on the way there: where
/// the maildir lives is the administrator's choice); everything below it is reached
/// through `dir`.
struct Root {
    dir: Dir,
    owner: Owner,
}

impl Root {
    fn open(path: &Path) -> Result<Root, MigrateError> {
        let dir = Dir::open_root(path).map_err(|e| io_error(path, e))?;
        let meta = fs::metadata(path).map_err(|e| io_error(path, e))?;
        // The owner must be the opened directory's, not that of whatever the path names by
        // now: the work is done with that owner's rights.
        if dir.identity().map_err(|e| io_error(path, e))? != (meta.dev(), meta.ino()) {
            return Err(MigrateError::Refused(vec![format!(
                "{} was replaced while the migration started. Run again.",
                path.display()
            )]));
        }
        Ok(Root {
            dir,
            owner: Owner {
                uid: meta.uid(),
                gid: meta.gid(),
            },
        })
    }
}

/// One folder directory and what it becomes.
#[derive(Debug)]
struct FolderDir {
    /// Courier's IMAP name (UTF-8): `INBOX`, `INBOX.Résumé`.
    name: String,
    /// The directory's name in the root (`.Work`); `None` for INBOX, the root itself.
    dir: Option<String>,
    /// The directory as it is now (for the report).
    path: PathBuf,
    /// The directory's new name in the root when Dovecot named it in modified UTF-7.
    rename_to: Option<String>,
    owner: Owner,
}

impl FolderDir {
    /// The folder's own directory, opened below the root without following links; `None`
    /// for INBOX, which is the root.
    fn open_below(&self, root: &Dir) -> Result<Option<Dir>, MigrateError> {
        match &self.dir {
            None => Ok(None),
            Some(name) => root
                .open_dir(name)
                .map(Some)
                .map_err(|e| MigrateError::Store(root.fail(name, e))),
        }
    }
}

/// The UID side of a folder's conversion.
#[derive(Debug)]
enum UidPlan {
    /// No `dovecot-uidlist`: Dovecot never numbered the folder.
    NoList,
    /// The list exists but cannot be read; the reason.
    Unreadable(String),
    Convert(UidConversion),
}

#[derive(Debug)]
struct UidConversion {
    db: UidDb,
    bytes: Vec<u8>,
    /// `courierimapuiddb` as found (None: absent).
    existing: Option<Vec<u8>>,
    /// Listed messages whose file is still in new/.
    in_new: usize,
    /// Files Dovecot never numbered.
    unlisted: usize,
}

impl UidConversion {
    fn needs_write(&self) -> bool {
        self.existing.as_deref() != Some(self.bytes.as_slice())
    }

    fn conflicts(&self) -> bool {
        self.existing.is_some() && self.needs_write()
    }
}

/// The keyword side of a folder's conversion.
#[derive(Debug, Default)]
struct KeywordPlan {
    /// Every keyword Dovecot's letters give in this folder.
    names: BTreeSet<String>,
    /// Messages whose Courier keywords change, with their complete new set.
    changes: Vec<(String, Vec<String>)>,
    /// The folder's whole keyword map after the change.
    result: KeywordMap,
    /// Base names of the messages in new/ and cur/ (the keyword merge needs them).
    existing: FastSet<String>,
    /// Letters that `dovecot-keywords` does not name (Dovecot ignores them too).
    unknown_letters: usize,
}

#[derive(Debug)]
struct FolderPlan {
    dir: FolderDir,
    uids: UidPlan,
    keywords: KeywordPlan,
}

impl FolderPlan {
    fn changes_anything(&self) -> bool {
        let uids = matches!(&self.uids, UidPlan::Convert(c) if c.needs_write());
        uids || !self.keywords.changes.is_empty() || self.dir.rename_to.is_some()
    }
}

/// Converts the Dovecot maildir at `root`, reporting on `out`.
///
/// Changes the effective uid and gid of the process while it works when started as root,
/// so it must not run while other threads of the process use the file system.
pub fn migrate_dovecot(
    root: &Path,
    options: Options,
    out: &mut dyn Write,
) -> Result<Outcome, MigrateError> {
    let store = Store::open(root).map_err(|_| {
        MigrateError::NotAMaildir(root.to_path_buf(), "it has no cur/, new/ and tmp/".into())
    })?;
    let root_dir = Root::open(root)?;
    if let Some(why) = not_a_folder(&root_dir.dir) {
        return Err(MigrateError::NotAMaildir(root.to_path_buf(), why));
    }
    if root_dir.dir.stat("maildirfolder").is_ok() {
        return Err(MigrateError::NotAMaildir(
            root.to_path_buf(),
            "it is a folder (it has a maildirfolder file); give the maildir it belongs to".into(),
        ));
    }

    let (dirs, mut notes) = {
        let _owner = AsOwner::of(root_dir.owner, root)?;
        discover_folders(&root_dir)?
    };
    let mut plans = Vec::with_capacity(dirs.len());
    let mut refusals = Vec::new();
    for dir in dirs {
        let _owner = AsOwner::of(dir.owner, &dir.path)?;
        plans.push(plan_folder(&root_dir.dir, dir, &mut refusals, &mut notes)?);
    }
    let subscriptions = {
        let _owner = AsOwner::of(root_dir.owner, root)?;
        plan_subscriptions(&store, &root_dir.dir, &plans, &mut notes)?
    };

    for plan in &plans {
        match &plan.uids {
            UidPlan::Convert(c) if c.conflicts() && !options.force => refusals.push(format!(
                "{} already exists and differs from what Dovecot's UID list gives \
                 (UIDVALIDITY {}, {} UIDs): a Courier or mdimap server has numbered this \
                 folder since. If Dovecot's numbering is the one the clients know, run again \
                 with --force to replace it.",
                plan.dir.path.join(UIDDB_NAME).display(),
                c.db.uidvalidity,
                c.db.entries.len()
            )),
            UidPlan::Unreadable(why) if !options.force => refusals.push(format!(
                "{} cannot be read as a Dovecot UID list ({why}). Repair it, or run again with \
                 --force to leave {} to mdimap's first scan (its clients then resynchronise).",
                plan.dir.path.join(dovecot::UIDLIST_NAME).display(),
                plan.dir.name
            )),
            _ => {}
        }
    }
    if !refusals.is_empty() {
        return Err(MigrateError::Refused(refusals));
    }

    let say = |out: &mut dyn Write, line: String| -> Result<(), MigrateError> {
        writeln!(out, "{line}").map_err(MigrateError::Output)
    };
    let verb = |done: &'static str, would: &'static str| if options.dry_run { would } else { done };
    for note in notes {
        say(out, format!("note: {note}"))?;
    }
    let mut changed = false;
    for plan in &plans {
        for line in describe_folder(plan, options) {
            say(out, line)?;
        }
        if plan.changes_anything() {
            changed = true;
            if !options.dry_run {
                let _owner = AsOwner::of(plan.dir.owner, &plan.dir.path)?;
                apply_folder(&root_dir.dir, plan)?;
            }
        }
    }
    if subscriptions.is_empty() {
        say(
            out,
            "subscriptions: nothing to add to courierimapsubscribed".into(),
        )?;
    } else {
        say(
            out,
            format!(
                "subscriptions: {} {} to courierimapsubscribed",
                verb("added", "would add"),
                subscriptions.join(", ")
            ),
        )?;
        changed = true;
        if !options.dry_run {
            let _owner = AsOwner::of(root_dir.owner, root)?;
            for name in &subscriptions {
                store.subscribe(name)?;
            }
        }
    }
    match (changed, options.dry_run) {
        (false, _) => say(
            out,
            "nothing to change: the maildir is already converted".into(),
        )?,
        (true, true) => say(out, "dry run: nothing was changed".into())?,
        (true, false) => say(
            out,
            "done: mdimap can serve this maildir now (Dovecot's files were left in place)".into(),
        )?,
    }
    Ok(if changed {
        Outcome::Changed
    } else {
        Outcome::NothingToDo
    })
}

/// Why the opened folder directory is no folder mdimap serves: `cur/`, `new/` or `tmp/`
/// missing, not a directory, or a symbolic link (which the store does not follow).
fn not_a_folder(folder: &Dir) -> Option<String> {
    for sub in ["cur", "new", "tmp"] {
        match folder.stat(sub).map(|stat| Kind::of(&stat)) {
            Ok(Kind::Dir) => {}
            Ok(Kind::Symlink) => {
                return Some(format!(
                    "its {sub}/ is a symbolic link, which mdimap does not follow"
                ));
            }
            _ => return Some("it has no cur/, new/ and tmp/".into()),
        }
    }
    None
}

/// INBOX and every Maildir++ folder directory (`.Name` with `cur/`, `new/` and `tmp/`),
/// sorted by name.
fn discover_folders(root: &Root) -> Result<(Vec<FolderDir>, Vec<String>), MigrateError> {
    let root_path = root.dir.path();
    let mut notes = Vec::new();
    let mut dirs = vec![FolderDir {
        name: INBOX.to_string(),
        dir: None,
        path: root_path.to_path_buf(),
        rename_to: None,
        owner: root.owner,
    }];
    let mut targets: Vec<(&str, String)> = Vec::new();
    let entries = root.dir.entries().map_err(|e| io_error(root_path, e))?;
    for entry in &entries {
        let Some(stored) = entry.name.to_str() else {
            if entry.name.as_encoded_bytes().starts_with(b".") {
                notes.push(format!(
                    "{}: the name is not UTF-8; left alone",
                    root_path.join(&entry.name).display()
                ));
            }
            continue;
        };
        let Some(stored_name) = stored.strip_prefix('.') else {
            continue;
        };
        if stored_name.is_empty() || stored_name.starts_with('.') {
            continue;
        }
        let path = root_path.join(stored);
        let stat = match root.dir.stat(stored) {
            Ok(stat) => stat,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(MigrateError::Store(root.dir.fail(stored, e))),
        };
        match Kind::of(&stat) {
            Kind::Dir => {}
            Kind::Symlink => {
                notes.push(format!(
                    "{}: a symbolic link, which mdimap does not follow (nor serve as a \
                     folder); left alone",
                    path.display()
                ));
                continue;
            }
            _ => continue,
        }
        let not_served = match root.dir.open_dir(stored) {
            Ok(folder) => not_a_folder(&folder),
            Err(e) => Some(format!(
                "it cannot be opened ({})",
                root.dir.fail(stored, e)
            )),
        };
        if let Some(why) = not_served {
            notes.push(format!(
                "{}: not a folder, as {why}; left alone",
                path.display()
            ));
            continue;
        }
        let decoded = dovecot::decode_name(stored_name);
        let name = format!("{INBOX}.{decoded}");
        if canonical_name(&name).ok().as_deref() != Some(name.as_str()) {
            notes.push(format!(
                "{}: {name:?} is not a folder name Courier accepts; left alone",
                path.display()
            ));
            continue;
        }
        let rename_to = (decoded != stored_name).then(|| format!(".{decoded}"));
        if let Some(target) = &rename_to {
            targets.push((stored, target.clone()));
        }
        dirs.push(FolderDir {
            name,
            dir: Some(stored.to_string()),
            path,
            rename_to,
            owner: Owner {
                uid: stat.st_uid,
                gid: stat.st_gid,
            },
        });
    }
    let mut clashes = Vec::new();
    for (from, to) in &targets {
        if root.dir.stat(to).is_ok() || targets.iter().any(|(f, t)| t == to && f != from) {
            clashes.push(format!(
                "{} is Dovecot's modified UTF-7 spelling of {}, which also exists (or another \
                 directory has the same UTF-8 spelling): both would be the same folder for \
                 mdimap. Merge or rename one of them by hand, then run again.",
                root_path.join(from).display(),
                root_path.join(to).display()
            ));
        }
    }
    if !clashes.is_empty() {
        clashes.sort();
        return Err(MigrateError::Refused(clashes));
    }
    dirs.sort_by(|a, b| {
        (a.name != INBOX)
            .cmp(&(b.name != INBOX))
            .then(a.name.cmp(&b.name))
    });
    Ok((dirs, notes))
}

/// Message file names in the folder's `sub` (no dot files, no directories, UTF-8 only: no
/// maildir writer makes other names). Only regular files are messages, as for the store's
/// scan; anything else is counted in a note.
fn message_files(
    folder: &Dir,
    sub: &str,
    notes: &mut Vec<String>,
) -> Result<Vec<String>, MigrateError> {
    let dir = match folder.open_dir(sub) {
        Ok(dir) => dir,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(MigrateError::Store(folder.fail(sub, e))),
    };
    let mut names = Vec::new();
    let mut skipped = 0;
    for entry in dir.entries().map_err(|e| io_error(dir.path(), e))? {
        let Ok(name) = entry.name.into_string() else {
            continue;
        };
        if name.starts_with('.') {
            continue;
        }
        match entry.kind {
            Kind::File => names.push(name),
            Kind::Dir => {}
            Kind::Symlink | Kind::Other => skipped += 1,
        }
    }
    if skipped > 0 {
        notes.push(format!(
            "{}: {} left alone: mdimap serves only regular files as messages and follows no \
             symbolic link, so they get no UID",
            dir.path().display(),
            count(
                skipped,
                "entry that is no regular file",
                "entries that are no regular files"
            )
        ));
    }
    names.sort();
    Ok(names)
}

/// Reads the file `name` of `dir` (never through a link), `None` when it does not exist.
fn read_optional(dir: &Dir, name: &str) -> Result<Option<Vec<u8>>, MigrateError> {
    match dir.read(name) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(MigrateError::Store(dir.fail(name, e))),
    }
}

fn plan_folder(
    root: &Dir,
    dir: FolderDir,
    refusals: &mut Vec<String>,
    notes: &mut Vec<String>,
) -> Result<FolderPlan, MigrateError> {
    let below = dir.open_below(root)?;
    let folder = below.as_ref().unwrap_or(root);
    if let Ok(stat) = folder.stat(dovecot::UIDLIST_LOCK_NAME) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        // A lock dated in the future counts as fresh.
        let age = u64::try_from(now.saturating_sub(stat.st_mtime)).unwrap_or(0);
        if age < DOVECOT_LOCK_FRESH.as_secs() {
            refusals.push(format!(
                "{} is fresh: Dovecot is at work on {}. Stop Dovecot and its deliveries, \
                 then run again.",
                dir.path.join(dovecot::UIDLIST_LOCK_NAME).display(),
                dir.name
            ));
        }
    }
    let cur = message_files(folder, "cur", notes)?;
    let new = message_files(folder, "new", notes)?;
    let in_cur: FastSet<&str> = cur.iter().map(|f| basename_of(f)).collect();
    let in_new: FastSet<&str> = new.iter().map(|f| basename_of(f)).collect();

    let uids = match read_optional(folder, dovecot::UIDLIST_NAME)? {
        None => UidPlan::NoList,
        Some(bytes) => match dovecot::parse_uidlist(&bytes) {
            Err(why) => UidPlan::Unreadable(why),
            Ok(list) => UidPlan::Convert(convert_uids(folder, &list, &in_cur, &in_new)?),
        },
    };

    let existing: FastSet<String> = in_cur
        .iter()
        .chain(in_new.iter())
        .map(|b| b.to_string())
        .collect();
    let keywords = plan_keywords(folder, &cur, existing)?;
    Ok(FolderPlan {
        dir,
        uids,
        keywords,
    })
}

fn convert_uids(
    folder: &Dir,
    list: &UidList,
    in_cur: &FastSet<&str>,
    in_new: &FastSet<&str>,
) -> Result<UidConversion, MigrateError> {
    let mut entries = Vec::with_capacity(list.records.len());
    let mut listed: FastSet<&str> = FastSet::default();
    let mut still_new = 0;
    for (uid, base) in &list.records {
        let here = in_cur.contains(base.as_str());
        if here || in_new.contains(base.as_str()) {
            entries.push((*uid, base.clone()));
            listed.insert(base.as_str());
            if !here {
                still_new += 1;
            }
        }
    }
    let unlisted = in_cur
        .iter()
        .chain(in_new.iter().filter(|b| !in_cur.contains(*b)))
        .filter(|b| !listed.contains(*b))
        .count();
    let db = UidDb {
        uidvalidity: list.uidvalidity,
        nextuid: list.next_uid(),
        entries,
    };
    let bytes = db.format();
    let existing = read_optional(folder, UIDDB_NAME)?;
    Ok(UidConversion {
        db,
        bytes,
        existing,
        in_new: still_new,
        unlisted,
    })
}

/// Adds `add` to `into`, comparing without regard to ASCII case (keywords are).
fn merge_keywords(into: &mut Vec<String>, add: &[String]) {
    for keyword in add {
        if !into.iter().any(|k| k.eq_ignore_ascii_case(keyword)) {
            into.push(keyword.clone());
        }
    }
}

fn plan_keywords(
    folder: &Dir,
    cur: &[String],
    existing: FastSet<String>,
) -> Result<KeywordPlan, MigrateError> {
    let table = match read_optional(folder, dovecot::KEYWORDS_NAME)? {
        Some(bytes) => dovecot::parse_keywords(&bytes),
        None => Default::default(),
    };
    let mut plan = KeywordPlan::default();
    let mut from_letters: Vec<(String, Vec<String>)> = Vec::new();
    for filename in cur {
        let mut names = Vec::new();
        for slot in dovecot::keyword_slots(filename) {
            match table.get(slot).and_then(Option::as_ref) {
                Some(name) => names.push(name.clone()),
                None => plan.unknown_letters += 1,
            }
        }
        if !names.is_empty() {
            plan.names.extend(names.iter().cloned());
            from_letters.push((basename_of(filename).to_string(), names));
        }
    }
    if from_letters.is_empty() {
        plan.existing = existing;
        return Ok(plan);
    }
    // Keywords Courier or mdimap already keep for these messages are kept too. A read-only
    // load writes nothing, in tmp/ or elsewhere.
    let tmp = folder.open_dir("tmp").map_err(|e| folder.fail("tmp", e))?;
    let mut result = load_keywords(folder, &tmp, &existing, false)?;
    for (basename, names) in from_letters {
        let current = result.get(&basename).cloned().unwrap_or_default();
        let mut wanted = current.clone();
        merge_keywords(&mut wanted, &names);
        if wanted != current {
            result.insert(basename.clone(), wanted.clone());
            plan.changes.push((basename, wanted));
        }
    }
    plan.result = result;
    plan.existing = existing;
    Ok(plan)
}

/// Maps Dovecot's subscriptions to Courier names not yet in `courierimapsubscribed`.
fn plan_subscriptions(
    store: &Store,
    root: &Dir,
    plans: &[FolderPlan],
    notes: &mut Vec<String>,
) -> Result<Vec<String>, MigrateError> {
    let path = root.path().join(dovecot::SUBSCRIPTIONS_NAME);
    let Some(bytes) = read_optional(root, dovecot::SUBSCRIPTIONS_NAME)? else {
        return Ok(Vec::new());
    };
    let folders: Vec<&str> = plans.iter().map(|p| p.dir.name.as_str()).collect();
    let present = store.subscriptions()?;
    let mut add: Vec<String> = Vec::new();
    for line in dovecot::parse_subscriptions(&bytes) {
        let subscription = match line {
            Ok(s) => s,
            Err(raw) => {
                notes.push(format!(
                    "{}: skipping {raw:?}, which is not UTF-8",
                    path.display()
                ));
                continue;
            }
        };
        let Some(name) = courier_name(&subscription.components, &folders) else {
            notes.push(format!(
                "{}: skipping {:?}, which is no folder name Courier accepts",
                path.display(),
                subscription.components.join(".")
            ));
            continue;
        };
        if !present
            .iter()
            .chain(add.iter())
            .any(|n| same_name(n, &name))
        {
            add.push(name);
        }
    }
    Ok(add)
}

/// The Courier name of a Dovecot subscription: `INBOX` stays, anything else goes under
/// `INBOX.`, as the directory `.<name>` maps to `INBOX.<name>`. A name that already
/// starts with `INBOX.` (a namespace with Courier's prefix, as sites migrating from
/// Courier configure) keeps it when that names an existing folder and the doubled
/// prefix does not.
fn courier_name(components: &[String], folders: &[&str]) -> Option<String> {
    if components.is_empty() || components.iter().any(String::is_empty) {
        return None;
    }
    let joined = dovecot::decode_name(&components.join("."));
    if joined.eq_ignore_ascii_case(INBOX) {
        return Some(INBOX.to_string());
    }
    let prefixed = format!("{INBOX}.{joined}");
    let exists = |name: &str| folders.contains(&name);
    let name = match joined.get(..INBOX.len() + 1) {
        Some(head) if head.eq_ignore_ascii_case("INBOX.") => {
            let own = format!("{INBOX}{}", &joined[INBOX.len()..]);
            if exists(&own) && !exists(&prefixed) {
                own
            } else {
                prefixed
            }
        }
        _ => prefixed,
    };
    canonical_name(&name).ok().filter(|c| *c == name)
}

fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn describe_folder(plan: &FolderPlan, options: Options) -> Vec<String> {
    let verb = |done: &'static str, would: &'static str| if options.dry_run { would } else { done };
    let mut lines = Vec::new();
    let head = match &plan.uids {
        UidPlan::NoList => format!(
            "{}: no {}; mdimap's first scan numbers it with a new UIDVALIDITY",
            plan.dir.name,
            dovecot::UIDLIST_NAME
        ),
        UidPlan::Unreadable(why) => format!(
            "{}: {} is unusable ({why}); left to mdimap's first scan (--force)",
            plan.dir.name,
            dovecot::UIDLIST_NAME
        ),
        UidPlan::Convert(c) => {
            let mut head = format!(
                "{}: UIDVALIDITY {}, {} UIDs, next UID {}",
                plan.dir.name,
                c.db.uidvalidity,
                c.db.entries.len(),
                c.db.nextuid
            );
            if c.in_new > 0 {
                head.push_str(&format!(
                    "; {} still in new/ (mdimap keeps the UID when it moves the file)",
                    count(c.in_new, "message", "messages")
                ));
            }
            if c.unlisted > 0 {
                head.push_str(&format!(
                    "; {} Dovecot never numbered get UIDs from {} at the first scan",
                    count(c.unlisted, "file", "files"),
                    c.db.nextuid
                ));
            }
            head
        }
    };
    lines.push(head);
    if let UidPlan::Convert(c) = &plan.uids {
        lines.push(match (c.needs_write(), c.existing.is_some()) {
            (false, _) => format!("  {UIDDB_NAME}: already converted"),
            (true, false) => format!("  {UIDDB_NAME}: {}", verb("written", "would write")),
            (true, true) => format!(
                "  {UIDDB_NAME}: {} (it differed; --force)",
                verb("replaced", "would replace")
            ),
        });
    }
    let k = &plan.keywords;
    if !k.names.is_empty() {
        let names: Vec<&str> = k.names.iter().map(String::as_str).collect();
        lines.push(if k.changes.is_empty() {
            format!("  {KEYWORDS_DIR}/: already has {}", names.join(" "))
        } else {
            format!(
                "  {KEYWORDS_DIR}/: {} keywords of {}: {}",
                verb("set", "would set"),
                count(k.changes.len(), "message", "messages"),
                names.join(" ")
            )
        });
    }
    if k.unknown_letters > 0 {
        lines.push(format!(
            "  {} that {} does not name ignored (as Dovecot ignores them)",
            count(k.unknown_letters, "keyword letter", "keyword letters"),
            dovecot::KEYWORDS_NAME
        ));
    }
    if let Some(target) = &plan.dir.rename_to {
        lines.push(format!(
            "  directory {} {} to {} (Dovecot's modified UTF-7 name in UTF-8)",
            plan.dir.path.display(),
            verb("renamed", "would be renamed"),
            plan.dir.path.with_file_name(target).display()
        ));
    }
    lines
}

fn apply_folder(root: &Dir, plan: &FolderPlan) -> Result<(), MigrateError> {
    let below = plan.dir.open_below(root)?;
    let folder = below.as_ref().unwrap_or(root);
    let writes_db = matches!(&plan.uids, UidPlan::Convert(c) if c.needs_write());
    if writes_db || !plan.keywords.changes.is_empty() {
        let tmp = folder.open_dir("tmp").map_err(|e| folder.fail("tmp", e))?;
        // Courier's lock keeps a Courier or mdimap scan from numbering the folder while
        // its database and keywords change.
        let _lock = DotLock::acquire(&tmp)?;
        if let UidPlan::Convert(c) = &plan.uids
            && c.needs_write()
        {
            let now = read_optional(folder, UIDDB_NAME)?;
            if now != c.existing {
                return Err(MigrateError::Refused(vec![format!(
                    "{} changed while the migration ran: a server is using this maildir. \
                     Stop it, then run again.",
                    plan.dir.path.join(UIDDB_NAME).display()
                )]));
            }
            write_uiddb(folder, &tmp, &c.db)?;
        }
        let k = &plan.keywords;
        if !k.changes.is_empty() {
            if has_update_files(folder)? {
                // Update files override :list for their messages: go through the
                // per-message protocol, then merge as any reader would.
                for (basename, keywords) in &k.changes {
                    write_keyword_update(folder, &tmp, basename, keywords)?;
                }
                load_keywords(folder, &tmp, &k.existing, true)?;
            } else {
                write_list(folder, &tmp, &k.result)?;
            }
        }
    }
    if let (Some(from), Some(to)) = (&plan.dir.dir, &plan.dir.rename_to) {
        root.rename_noreplace(from, root, to)
            .map_err(|e| MigrateError::Store(root.fail(to, e)))?;
        root.sync();
    }
    Ok(())
}

/// While alive, the process works with the effective uid and gid of a directory's owner
/// (only when started as root, and only for owners other than root). Files it creates
/// then belong to the mail user, with the modes the umask gives, as if the user's own
/// server had made them; and nothing the user controls is read or written with root's
/// rights.
struct AsOwner {
    /// What to give back: root's effective gid and supplementary groups.
    restore: Option<(Gid, Vec<Gid>)>,
}

impl AsOwner {
    /// Works as `owner`, the owner of `dir` (named in messages).
    fn of(owner: Owner, dir: &Path) -> Result<AsOwner, MigrateError> {
        if !geteuid().is_root() || owner.uid == 0 {
            return Ok(AsOwner { restore: None });
        }
        let (uid, gid) = (Uid::from_raw(owner.uid), Gid::from_raw(owner.gid));
        let failed = |what: &str, e: nix::Error| {
            MigrateError::Identity(format!(
                "cannot {what} to work as the owner of {} (uid {uid}, gid {gid}): {e}",
                dir.display()
            ))
        };
        let groups = getgroups().map_err(|e| failed("read the groups", e))?;
        let egid = getegid();
        setgroups(&[gid]).map_err(|e| failed("set the groups", e))?;
        let guard = AsOwner {
            restore: Some((egid, groups)),
        };
        // From here on, dropping the guard gives everything back.
        setegid(gid).map_err(|e| failed("set the group id", e))?;
        seteuid(uid).map_err(|e| failed("set the user id", e))?;
        Ok(guard)
    }
}

impl Drop for AsOwner {
    fn drop(&mut self) {
        let Some((egid, groups)) = self.restore.take() else {
            return;
        };
        // Root again first: only root may change the groups. The saved set-user-ID is
        // still root, so this cannot be refused.
        if let Err(e) = seteuid(Uid::from_raw(0)) {
            log::error!("cannot become root again: {e}");
            return;
        }
        if let Err(e) = setegid(egid) {
            log::error!("cannot restore the group id: {e}");
        }
        if let Err(e) = setgroups(&groups) {
            log::error!("cannot restore the groups: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscription_names() {
        let folders = ["INBOX", "INBOX.Work", "INBOX.Résumé", "INBOX.INBOX.x"];
        let name = |c: &[&str]| {
            let c: Vec<String> = c.iter().map(|s| s.to_string()).collect();
            courier_name(&c, &folders)
        };
        assert_eq!(name(&["INBOX"]).as_deref(), Some("INBOX"));
        assert_eq!(name(&["inbox"]).as_deref(), Some("INBOX"));
        assert_eq!(name(&["Work"]).as_deref(), Some("INBOX.Work"));
        assert_eq!(
            name(&["Work", "Reports"]).as_deref(),
            Some("INBOX.Work.Reports")
        );
        assert_eq!(name(&["R&AOk-sum&AOk-"]).as_deref(), Some("INBOX.Résumé"));
        // Dovecot's INBOX.x is the directory .INBOX.x; a prefixed line naming .Work stays.
        assert_eq!(name(&["INBOX", "x"]).as_deref(), Some("INBOX.INBOX.x"));
        assert_eq!(name(&["INBOX", "Work"]).as_deref(), Some("INBOX.Work"));
        // Not subscribable under Courier's rules.
        assert_eq!(name(&["a\u{1}b"]), None);
        assert_eq!(name(&["a", ""]), None);
    }

    use crate::maildir::testutil::TempDir;
    use std::os::unix::fs::symlink;

    /// A Dovecot maildir `root` with the folder `.Work`, each with one message Dovecot
    /// numbered (keyword letter `a` = Junk), and beside it `outside/`: a maildir-shaped
    /// directory with a UID list, a message and a keywords directory of its own, which
    /// no link from the maildir may lead the migration into.
    fn maildir_and_outside(tag: &str) -> (TempDir, PathBuf, PathBuf) {
        let t = TempDir::new(tag);
        let root = t.path().join("root");
        let outside = t.path().join("outside");
        for dir in [&root, &root.join(".Work"), &outside] {
            for sub in ["cur", "new", "tmp"] {
                fs::create_dir_all(dir.join(sub)).unwrap();
            }
            fs::write(dir.join("dovecot-keywords"), "0 Junk\n").unwrap();
            fs::write(
                dir.join("cur/1700000000.M1P1.vm:2,Sa"),
                "Subject: x\r\n\r\nx\r\n",
            )
            .unwrap();
            fs::write(
                dir.join(dovecot::UIDLIST_NAME),
                "3 V1700000000 N8\n7 :1700000000.M1P1.vm\n",
            )
            .unwrap();
        }
        fs::write(root.join(".Work/maildirfolder"), "").unwrap();
        fs::write(outside.join("cur/1700000099.M9P9.vm:2,a"), "x").unwrap();
        fs::write(
            outside.join("other-uidlist"),
            "3 V42 N100\n99 :1700000099.M9P9.vm\n",
        )
        .unwrap();
        fs::create_dir(outside.join(KEYWORDS_DIR)).unwrap();
        (t, root, outside)
    }

    fn run(root: &Path) -> (Result<Outcome, MigrateError>, String) {
        let mut out = Vec::new();
        let result = migrate_dovecot(root, Options::default(), &mut out);
        (result, String::from_utf8(out).unwrap())
    }

    /// Everything in `dir`, recursively, with contents: to see that nothing changed.
    fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
        let mut out = Vec::new();
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                out.push((path.clone(), Vec::new()));
                out.extend(snapshot(&path));
            } else if meta.is_file() {
                out.push((path.clone(), fs::read(&path).unwrap()));
            } else {
                out.push((path.clone(), b"link".to_vec()));
            }
        }
        out.sort();
        out
    }

    #[test]
    fn linked_folders_and_messages_are_left_alone() {
        let (_t, root, outside) = maildir_and_outside("migrate-linked-folder");
        symlink(&outside, root.join(".Elsewhere")).unwrap();
        symlink(
            outside.join("cur/1700000099.M9P9.vm:2,a"),
            root.join(".Work/cur/1700000099.M9P9.vm:2,a"),
        )
        .unwrap();
        let before = snapshot(&outside);
        let (result, report) = run(&root);
        assert_eq!(result.unwrap(), Outcome::Changed, "{report}");
        assert_eq!(snapshot(&outside), before, "{report}");
        assert!(!report.contains("INBOX.Elsewhere:"), "{report}");
        assert!(
            report.contains(".Elsewhere: a symbolic link"),
            "the administrator is told: {report}"
        );
        assert!(
            report.contains("1 entry that is no regular file left alone"),
            "{report}"
        );
        // The linked message is neither numbered nor given keywords.
        let db = fs::read_to_string(root.join(".Work").join(UIDDB_NAME)).unwrap();
        assert_eq!(db, "1 1700000000 8\n7 1700000000.M1P1.vm\n");
        let list = fs::read_to_string(root.join(".Work/courierimapkeywords/:list")).unwrap();
        assert_eq!(list, "Junk\n\n1700000000.M1P1.vm:0\n");
    }

    #[test]
    fn a_linked_file_the_migration_reads_or_writes_stops_it_before_any_write() {
        /// Puts a link into the maildir at `root`, pointing into `outside`.
        type Plant = fn(&Path, &Path);
        let cases: [(&str, Plant); 4] = [
            ("uidlist", |root, outside| {
                let list = root.join(".Work").join(dovecot::UIDLIST_NAME);
                fs::remove_file(&list).unwrap();
                symlink(outside.join("other-uidlist"), list).unwrap();
            }),
            ("uiddb", |root, outside| {
                symlink(
                    outside.join(UIDDB_NAME),
                    root.join(".Work").join(UIDDB_NAME),
                )
                .unwrap();
            }),
            ("keywords", |root, outside| {
                symlink(
                    outside.join(KEYWORDS_DIR),
                    root.join(".Work").join(KEYWORDS_DIR),
                )
                .unwrap();
            }),
            ("tmp", |root, outside| {
                fs::remove_dir(root.join(".Work/tmp")).unwrap();
                symlink(outside.join("tmp"), root.join(".Work/tmp")).unwrap();
            }),
        ];
        for (what, plant) in cases {
            let (_t, root, outside) = maildir_and_outside(&format!("migrate-linked-{what}"));
            plant(&root, &outside);
            let (before, outside_before) = (snapshot(&root), snapshot(&outside));
            let (result, report) = run(&root);
            assert_eq!(snapshot(&outside), outside_before, "{what}: {report}");
            if what == "tmp" {
                // Not a folder mdimap would serve: left alone, the rest converted.
                assert!(
                    report.contains("its tmp/ is a symbolic link"),
                    "{what}: {report}"
                );
                assert!(!root.join(".Work").join(UIDDB_NAME).exists(), "{report}");
                assert!(root.join(UIDDB_NAME).exists(), "{report}");
                continue;
            }
            let e = result.expect_err(what).to_string();
            assert!(e.contains("symbolic link"), "{what}: {e}");
            assert_eq!(snapshot(&root), before, "{what}: nothing was written");
        }
    }

    #[test]
    fn keyword_merge_ignores_case() {
        let mut kws = vec!["Junk".to_string()];
        merge_keywords(&mut kws, &["junk".to_string(), "$Forwarded".to_string()]);
        assert_eq!(kws, vec!["Junk", "$Forwarded"]);
    }
}
