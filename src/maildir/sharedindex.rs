//! Courier's index of virtual shared folders (spec/courier-files.md §5.1; Courier's
//! `maildirnewshared.C` and `maildirinfo.c`): the file named by IMAP_SHAREDINDEXFILE, with
//! the account's `sharedgroup` option appended to its name, lists the accounts whose folders
//! others may open as `#shared.<account>.<folder>`.
//!
//! Owns reading those files and turning a name below `#shared.` into an account's maildir
//! and a folder of it, the way Courier-IMAP 5 does:
//!
//! - Lines are TAB separated; a `#` starts a comment anywhere in a line; blank lines are
//!   skipped and any other line that is not one of the two forms below is logged as a
//!   syntax error and skipped.
//! - `name<TAB>uid<TAB>gid<TAB>home[<TAB>maildir]`: an account. uid and gid must be
//!   non-zero numbers (they are not otherwise used); the maildir is `./Maildir` when
//!   missing or empty, and relative to the home unless it starts with `/`.
//! - `name<TAB>*<TAB>file`: a group of accounts listed in `file`, which is named relative
//!   to the directory of the file that names it, whatever it starts with. A group is one
//!   more level of names: `#shared.<group>.<account>.<folder>`.
//! - Names are UTF-8 and become one level of an IMAP name: `.` and `/` are replaced by a
//!   blank, or with IMAP_SHAREDMUNGENAMES by `\:` and `\;` (and `\` by `\\`).
//! - The owner of a shared folder, for its access control list, is `user=<group>` for an
//!   account listed in a group and nobody (`vendor=courier.internal`) otherwise.
//!
//! Must not decide who may see what (the owner's access control list does, read by the
//! caller through the account's `Store`), and opens no maildir: it only says where one is.
//! A cycle of groups, which Courier forbids without checking, ends at [`MAX_DEPTH`] levels.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

/// The IMAP name of the virtual shared namespace, with its delimiter.
pub const SHARED_PREFIX: &str = "#shared.";
/// The owner Courier gives folders of accounts listed outside any group.
pub const NOBODY: &[u8] = b"vendor=courier.internal";
/// How deep groups may nest before the rest is ignored (a guard against a cycle).
pub const MAX_DEPTH: usize = 16;
/// The maildir of an account line without one.
const DEFAULT_MAILDIR: &str = "./Maildir";

/// One line of an index file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexEntry {
    Account {
        name: String,
        /// The maildir, home and maildir field combined as Courier does.
        maildir: PathBuf,
    },
    Group {
        name: String,
        /// The index file listing the group's accounts.
        file: PathBuf,
    },
}

impl IndexEntry {
    pub fn name(&self) -> &str {
        match self {
            IndexEntry::Account { name, .. } | IndexEntry::Group { name, .. } => name,
        }
    }
}

/// What a name below `#shared.` stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SharedName {
    /// A folder of an account: its maildir and the folder's name in it (`INBOX`,
    /// `INBOX.Work`).
    Folder(SharedFolder),
    /// A group: a level of the hierarchy that holds no mail.
    Level,
    /// Nothing the index lists.
    Unknown,
}

/// A folder of another account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedFolder {
    /// `#shared.<group>.<account>`: the IMAP name of the account's INBOX.
    pub prefix: String,
    pub maildir: PathBuf,
    /// The folder's name in that maildir.
    pub folder: String,
    /// Who its access control list calls `owner` (see the module comment).
    pub owner: Vec<u8>,
}

/// An account as LIST enumerates them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedAccount {
    /// `#shared.<group>.<account>`.
    pub prefix: String,
    pub maildir: PathBuf,
    pub owner: Vec<u8>,
}

/// The index one account sees.
#[derive(Debug, Clone)]
pub struct SharedIndex {
    file: PathBuf,
    munge: bool,
}

/// Leading decimal digits as a number; 0 when there are none (Courier's `atouid`).
fn leading_number(field: &str) -> u64 {
    let digits = field
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(field.len());
    field
        .get(..digits)
        .and_then(|d| d.parse().ok())
        .unwrap_or(0)
}

/// `home` and `maildir` as one path: `maildir` itself when absolute (Courier's
/// `maildir_location`).
fn location(home: &str, maildir: &str) -> PathBuf {
    if maildir.starts_with('/') {
        PathBuf::from(maildir)
    } else {
        PathBuf::from(format!("{home}/{maildir}"))
    }
}

/// `file` named in `index`: relative to its directory, by plain concatenation, as Courier
/// does (`/x` in `/etc/courier/shared/index` is `/etc/courier/shared//x`).
fn beside(index: &Path, file: &str) -> PathBuf {
    let mut bytes = index.as_os_str().as_encoded_bytes().to_vec();
    let dir_len = bytes.iter().rposition(|&b| b == b'/').map_or(0, |i| i + 1);
    bytes.truncate(dir_len);
    bytes.extend_from_slice(file.as_bytes());
    PathBuf::from(OsString::from_vec(bytes))
}

/// One line of an index file (without its newline), or `None` for a line that says
/// nothing; `Err` for a syntax error.
fn parse_line(index: &Path, line: &str) -> Result<Option<IndexEntry>, ()> {
    let line = line.split('#').next().unwrap_or("");
    let Some((name, rest)) = line.split_once('\t') else {
        return if line.is_empty() { Ok(None) } else { Err(()) };
    };
    if let Some(after_star) = rest.strip_prefix('*') {
        let Some((_, file)) = after_star.split_once('\t') else {
            return Err(());
        };
        let file = file.split('\t').next().unwrap_or("");
        return Ok(Some(IndexEntry::Group {
            name: name.to_string(),
            file: beside(index, file),
        }));
    }
    let uid = leading_number(rest);
    let Some((_, rest)) = rest.split_once('\t').filter(|_| uid != 0) else {
        return Err(());
    };
    let gid = leading_number(rest);
    let Some((_, rest)) = rest.split_once('\t').filter(|_| gid != 0) else {
        return Err(());
    };
    let (home, maildir) = match rest.split_once('\t') {
        Some((home, more)) => {
            let field = more.split('\t').next().unwrap_or("");
            let maildir = if field.is_empty() {
                DEFAULT_MAILDIR
            } else {
                field
            };
            (home, maildir)
        }
        None => (rest, DEFAULT_MAILDIR),
    };
    Ok(Some(IndexEntry::Account {
        name: name.to_string(),
        maildir: location(home, maildir),
    }))
}

/// Every entry of one index file, in file order. A file that cannot be read lists nothing
/// (Courier's behaviour; the administrator learns why from the log).
pub fn read_index(file: &Path) -> Vec<IndexEntry> {
    let bytes = match std::fs::read(file) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            log::debug!("shared folder index {}: {e}", file.display());
            return Vec::new();
        }
        Err(e) => {
            log::warn!("shared folder index {}: {e}", file.display());
            return Vec::new();
        }
    };
    let mut entries = Vec::new();
    for (number, line) in bytes.split(|&b| b == b'\n').enumerate() {
        let text = String::from_utf8_lossy(line);
        match parse_line(file, &text) {
            Ok(Some(entry)) => entries.push(entry),
            Ok(None) => {}
            Err(()) => log::warn!("{}({}): syntax error.", file.display(), number + 1),
        }
    }
    entries
}

/// A name of the index as one level of an IMAP name (see the module comment).
pub fn munge(name: &str, complex: bool) -> String {
    if !complex {
        return name.replace(['.', '/'], " ");
    }
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            '.' => out.push_str("\\:"),
            '/' => out.push_str("\\;"),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out
}

fn owner_in(group: Option<&str>) -> Vec<u8> {
    match group {
        Some(group) if !group.is_empty() => format!("user={group}").into_bytes(),
        _ => NOBODY.to_vec(),
    }
}

impl SharedIndex {
    /// The index in `file` (IMAP_SHAREDINDEXFILE with the account's `sharedgroup`
    /// appended); `munge` is IMAP_SHAREDMUNGENAMES.
    pub fn new(file: PathBuf, munge: bool) -> SharedIndex {
        SharedIndex { file, munge }
    }

    /// The top-level index file.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// Whether the top-level index file exists (NAMESPACE offers `#shared.` only then).
    pub fn exists(&self) -> bool {
        self.file.is_file()
    }

    fn level_name(&self, entry: &IndexEntry) -> String {
        munge(entry.name(), self.munge)
    }

    /// What `rest`, a name without its `#shared.` prefix, stands for.
    pub fn find(&self, rest: &str) -> SharedName {
        let mut file = self.file.clone();
        let mut group: Option<String> = None;
        let mut prefix = SHARED_PREFIX.trim_end_matches('.').to_string();
        let mut remaining = rest;
        for _ in 0..MAX_DEPTH {
            if remaining.is_empty() {
                return SharedName::Level;
            }
            let (level, after) = match remaining.split_once('.') {
                Some((level, after)) => (level, Some(after)),
                None => (remaining, None),
            };
            let entries = read_index(&file);
            let Some(entry) = entries.iter().find(|e| self.level_name(e) == level) else {
                return SharedName::Unknown;
            };
            prefix.push('.');
            prefix.push_str(level);
            match entry {
                IndexEntry::Group { name, file: next } => {
                    file = next.clone();
                    group = Some(name.clone());
                    remaining = after.unwrap_or("");
                }
                IndexEntry::Account { maildir, .. } => {
                    let folder = match after {
                        Some(after) => format!("INBOX.{after}"),
                        None => "INBOX".to_string(),
                    };
                    return SharedName::Folder(SharedFolder {
                        prefix,
                        maildir: maildir.clone(),
                        folder,
                        owner: owner_in(group.as_deref()),
                    });
                }
            }
        }
        log::warn!(
            "shared folder index {}: groups nest deeper than {MAX_DEPTH} levels (a cycle?)",
            self.file.display()
        );
        SharedName::Unknown
    }

    /// Every account reachable from the index, and the names of the group levels, for
    /// LIST. `wanted(prefix)` says whether anything at or below the IMAP name `prefix`
    /// could match the client's pattern; other groups are not read.
    pub fn accounts(&self, wanted: &dyn Fn(&str) -> bool) -> (Vec<SharedAccount>, Vec<String>) {
        let mut accounts = Vec::new();
        let mut levels = Vec::new();
        let top = SHARED_PREFIX.trim_end_matches('.');
        self.walk(&self.file, top, None, 0, wanted, &mut accounts, &mut levels);
        (accounts, levels)
    }

    #[allow(clippy::too_many_arguments)]
    fn walk(
        &self,
        file: &Path,
        prefix: &str,
        group: Option<&str>,
        depth: usize,
        wanted: &dyn Fn(&str) -> bool,
        accounts: &mut Vec<SharedAccount>,
        levels: &mut Vec<String>,
    ) {
        if depth >= MAX_DEPTH {
            log::warn!(
                "shared folder index {}: groups nest deeper than {MAX_DEPTH} levels (a cycle?)",
                self.file.display()
            );
            return;
        }
        for entry in read_index(file) {
            let name = format!("{prefix}.{}", self.level_name(&entry));
            if !wanted(&name) {
                continue;
            }
            match entry {
                IndexEntry::Group {
                    name: group_name,
                    file: next,
                } => {
                    levels.push(name.clone());
                    self.walk(
                        &next,
                        &name,
                        Some(&group_name),
                        depth + 1,
                        wanted,
                        accounts,
                        levels,
                    );
                }
                IndexEntry::Account { maildir, .. } => accounts.push(SharedAccount {
                    prefix: name,
                    maildir,
                    owner: owner_in(group),
                }),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maildir::testutil::TempDir;
    use std::fs;

    #[test]
    fn lines_as_courier_reads_them() {
        let index = Path::new("/etc/courier/shared/index");
        let p = |line: &str| parse_line(index, line);
        assert_eq!(
            p("bob\t1000\t1000\t/home/bob"),
            Ok(Some(IndexEntry::Account {
                name: "bob".into(),
                maildir: PathBuf::from("/home/bob/./Maildir"),
            }))
        );
        assert_eq!(
            p("bob\t1000\t1000\t/home/bob\tMail\textra"),
            Ok(Some(IndexEntry::Account {
                name: "bob".into(),
                maildir: PathBuf::from("/home/bob/Mail"),
            }))
        );
        assert_eq!(
            p("bob\t1000\t1000\t/home/bob\t/srv/mail/bob # comment"),
            Ok(Some(IndexEntry::Account {
                name: "bob".into(),
                maildir: PathBuf::from("/srv/mail/bob "),
            }))
        );
        assert_eq!(
            p("bob\t1000\t1000\t/home/bob\t"),
            Ok(Some(IndexEntry::Account {
                name: "bob".into(),
                maildir: PathBuf::from("/home/bob/./Maildir"),
            }))
        );
        assert_eq!(
            p("sales\t*\tindex.sales"),
            Ok(Some(IndexEntry::Group {
                name: "sales".into(),
                file: PathBuf::from("/etc/courier/shared/index.sales"),
            }))
        );
        assert_eq!(
            p("abs\t*\t/x"),
            Ok(Some(IndexEntry::Group {
                name: "abs".into(),
                file: PathBuf::from("/etc/courier/shared//x"),
            }))
        );
        for ignored in ["", "# all comment", "#\tx\t1\t1\t/h"] {
            assert_eq!(p(ignored), Ok(None), "{ignored:?}");
        }
        for bad in [
            "bob",
            "bob\t0\t1000\t/home/bob",
            "bob\t1000\t0\t/home/bob",
            "bob\tx\t1000\t/home/bob",
            "bob\t1000\t1000",
            "bob\t1000",
            "grp\t*",
        ] {
            assert_eq!(p(bad), Err(()), "{bad:?}");
        }
    }

    #[test]
    fn names_are_munged_as_courier_does() {
        assert_eq!(munge("john.doe/x", false), "john doe x");
        assert_eq!(munge("john.doe/x\\y", true), "john\\:doe\\;x\\\\y");
        assert_eq!(munge("Zoë", false), "Zoë");
    }

    #[test]
    fn names_resolve_through_groups() {
        let dir = TempDir::new("sharedindex");
        let top = dir.path().join("index");
        fs::write(
            &top,
            "bob\t1000\t1000\t/home/bob\nsales\t*\tindex.sales\nbroken line\njo.e\t7\t7\t/home/joe\tM\n",
        )
        .unwrap();
        fs::write(
            dir.path().join("index.sales"),
            "carol\t1000\t1000\t/home/carol\t/srv/carol\nloop\t*\tindex.sales\n",
        )
        .unwrap();
        let index = SharedIndex::new(top.clone(), false);
        assert!(index.exists());
        assert_eq!(
            index.find("bob.Work.Deep"),
            SharedName::Folder(SharedFolder {
                prefix: "#shared.bob".into(),
                maildir: PathBuf::from("/home/bob/./Maildir"),
                folder: "INBOX.Work.Deep".into(),
                owner: NOBODY.to_vec(),
            })
        );
        assert_eq!(
            index.find("bob"),
            SharedName::Folder(SharedFolder {
                prefix: "#shared.bob".into(),
                maildir: PathBuf::from("/home/bob/./Maildir"),
                folder: "INBOX".into(),
                owner: NOBODY.to_vec(),
            })
        );
        assert_eq!(
            index.find("sales.carol.X"),
            SharedName::Folder(SharedFolder {
                prefix: "#shared.sales.carol".into(),
                maildir: PathBuf::from("/srv/carol"),
                folder: "INBOX.X".into(),
                owner: b"user=sales".to_vec(),
            })
        );
        assert_eq!(index.find("sales"), SharedName::Level);
        assert_eq!(index.find("jo e"), index.find("jo e"));
        assert!(matches!(index.find("jo e.F"), SharedName::Folder(_)));
        assert_eq!(index.find("jo.e"), SharedName::Unknown);
        assert_eq!(index.find("nobody.X"), SharedName::Unknown);
        // A cycle ends.
        let deep = "loop.".repeat(40) + "carol";
        assert_eq!(index.find(&format!("sales.{deep}")), SharedName::Unknown);

        let (accounts, levels) = index.accounts(&|_| true);
        let prefixes: Vec<&str> = accounts.iter().map(|a| a.prefix.as_str()).collect();
        assert!(prefixes.starts_with(&["#shared.bob", "#shared.sales.carol"]));
        assert!(prefixes.contains(&"#shared.jo e"));
        assert_eq!(levels[0], "#shared.sales");
        let (accounts, levels) = index.accounts(&|p| !p.starts_with("#shared.sales"));
        assert_eq!(accounts.len(), 2);
        assert!(levels.is_empty());
        // Nothing at all without the file.
        let none = SharedIndex::new(dir.path().join("missing"), false);
        assert!(!none.exists());
        assert_eq!(none.find("bob"), SharedName::Unknown);
        assert!(none.accounts(&|_| true).0.is_empty());
    }
}
