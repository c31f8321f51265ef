//! Custom keywords in `courierimapkeywords/` (spec/courier-files.md §2): reading and merging
//! per-message update files into `:list`, and writing update files.
//!
//! Owns the file formats and the merge protocol; must not validate IMAP keyword syntax (the
//! protocol layer does) beyond refusing what would corrupt the files (line breaks).

use std::collections::BTreeMap;

use crate::maildir::fast::{FastMap, FastSet};
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::Path;
use std::time::SystemTime;

use super::error::StoreError;
use super::unique::{create_exclusive, fsync_dir, now_secs, replace_file};

/// Directory of keyword files inside a folder.
pub(crate) const KEYWORDS_DIR: &str = "courierimapkeywords";
/// The consolidated list.
const LIST_NAME: &str = ":list";
/// Age after which leftover update and temp files may go.
const AGE_LIMIT_SECS: i64 = 15 * 60;
/// Length of one age bucket.
const BUCKET_SECS: i64 = 300;
/// How often to restart when update files vanish under us (another process merging).
const ATTEMPTS: u32 = 5;

/// Keywords per message base name.
pub(crate) type KeywordMap = FastMap<String, Vec<String>>;

/// Replaces characters Courier forbids in keywords (`KEYWORD_IMAPVERBOTTEN`) with `_`.
fn sanitize(keyword: &str) -> String {
    keyword
        .chars()
        .map(|c| {
            if matches!(c, ' ' | '(' | ')' | '{' | '%' | '*' | '"' | '\\' | ']') {
                '_'
            } else {
                c
            }
        })
        .collect()
}

/// Drops empty and case-insensitively repeated keywords, keeping the first spelling.
pub(crate) fn dedupe(keywords: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut seen = FastSet::default();
    keywords
        .into_iter()
        .filter(|k| !k.is_empty() && seen.insert(k.to_ascii_lowercase()))
        .collect()
}

fn parse_update(bytes: &[u8]) -> Vec<String> {
    dedupe(String::from_utf8_lossy(bytes).lines().map(sanitize))
}

/// Parses `:list`.
pub(crate) fn parse_list(bytes: &[u8]) -> KeywordMap {
    let text = String::from_utf8_lossy(bytes);
    let mut lines = text.split('\n');
    let mut table = Vec::new();
    for line in lines.by_ref() {
        if line.is_empty() {
            break;
        }
        table.push(sanitize(line));
    }
    let mut map = KeywordMap::default();
    for line in lines {
        let Some((basename, indexes)) = line.rsplit_once(':') else {
            continue;
        };
        if basename.is_empty() {
            continue;
        }
        let keywords = indexes
            .split_ascii_whitespace()
            .filter_map(|i| i.parse::<usize>().ok())
            .filter_map(|i| table.get(i).cloned());
        let keywords = dedupe(keywords);
        if !keywords.is_empty() {
            map.insert(basename.to_string(), keywords);
        }
    }
    map
}

/// Formats `:list`: the keyword table in order of first use, a blank line, then one line per
/// message with keywords, sorted by base name.
pub(crate) fn format_list(map: &KeywordMap) -> Vec<u8> {
    let sorted: BTreeMap<&String, &Vec<String>> =
        map.iter().filter(|(_, k)| !k.is_empty()).collect();
    let mut table: Vec<&str> = Vec::new();
    let mut index: FastMap<String, usize> = FastMap::default();
    let mut body = String::new();
    for (basename, keywords) in sorted {
        let mut line = format!("{basename}:");
        let mut first = true;
        for keyword in keywords {
            let key = keyword.to_ascii_lowercase();
            let i = *index.entry(key).or_insert_with(|| {
                table.push(keyword);
                table.len() - 1
            });
            if !first {
                line.push(' ');
            }
            first = false;
            line.push_str(&i.to_string());
        }
        body.push_str(&line);
        body.push('\n');
    }
    let mut out = String::new();
    for keyword in table {
        out.push_str(keyword);
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&body);
    out.into_bytes()
}

/// Parses `.<N>.<basename>` (N decimal without leading zero).
fn parse_merged(name: &str) -> Option<(i64, &str)> {
    let rest = name.strip_prefix('.')?;
    let (n, basename) = rest.split_once('.')?;
    if n.is_empty()
        || (n.len() > 1 && n.starts_with('0'))
        || !n.bytes().all(|b| b.is_ascii_digit())
        || basename.is_empty()
    {
        return None;
    }
    Some((n.parse().ok()?, basename))
}

fn age_secs(meta: &fs::Metadata) -> i64 {
    now_secs().saturating_sub(meta.mtime())
}

fn remove_quietly(path: &Path) {
    if let Err(e) = fs::remove_file(path)
        && e.kind() != io::ErrorKind::NotFound
    {
        log::warn!("cannot remove {}: {e}", path.display());
    }
}

/// Loads the keywords of a folder, merging update files (spec §2.3). `existing` holds the
/// base names of the messages in `new/` and `cur/`. With `write` false nothing on disk
/// changes (read-only sessions).
pub(crate) fn load(
    folder: &Path,
    existing: &FastSet<String>,
    write: bool,
) -> Result<KeywordMap, StoreError> {
    let dir = folder.join(KEYWORDS_DIR);
    match fs::symlink_metadata(&dir) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => return Ok(KeywordMap::default()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(KeywordMap::default()),
        Err(e) => return Err(StoreError::io(&dir, e)),
    }
    for attempt in 1..=ATTEMPTS {
        if let Some(map) = load_once(folder, &dir, existing, write, attempt == ATTEMPTS)? {
            return Ok(map);
        }
    }
    Err(StoreError::io(
        &dir,
        io::Error::other("keyword files kept vanishing while merging"),
    ))
}

/// One pass of the merge; `None` means an update file vanished and the caller should retry.
fn load_once(
    folder: &Path,
    dir: &Path,
    existing: &FastSet<String>,
    write: bool,
    tolerate_vanished: bool,
) -> Result<Option<KeywordMap>, StoreError> {
    let bucket = now_secs().div_euclid(BUCKET_SECS);
    let mut fresh: FastSet<String> = FastSet::default();
    let mut merged: FastMap<String, (i64, String)> = FastMap::default();
    let mut obsolete = Vec::new();
    let entries = fs::read_dir(dir).map_err(|e| StoreError::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| StoreError::io(dir, e))?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if name == LIST_NAME {
            continue;
        }
        if let Some((n, basename)) = parse_merged(&name) {
            match merged.get(basename) {
                Some((old, _)) if *old >= n => obsolete.push(name.clone()),
                _ => {
                    if let Some((_, old_name)) =
                        merged.insert(basename.to_string(), (n, name.clone()))
                    {
                        obsolete.push(old_name);
                    }
                }
            }
        } else if name.starts_with('.') {
            if write
                && entry
                    .metadata()
                    .is_ok_and(|m| age_secs(&m) > AGE_LIMIT_SECS)
            {
                remove_quietly(&entry.path());
            }
        } else {
            fresh.insert(name);
        }
    }
    if write {
        for name in &obsolete {
            remove_quietly(&dir.join(name));
        }
    }

    // The newest update of each message overrides the list.
    let mut updates: FastMap<String, Vec<String>> = FastMap::default();
    let sources = fresh.iter().map(|b| (b.clone(), b.clone())).chain(
        merged
            .iter()
            .filter(|(b, _)| !fresh.contains(*b))
            .map(|(b, (_, n))| (b.clone(), n.clone())),
    );
    for (basename, file_name) in sources {
        let path = dir.join(&file_name);
        match fs::read(&path) {
            Ok(bytes) => {
                updates.insert(basename, parse_update(&bytes));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if !tolerate_vanished {
                    return Ok(None);
                }
            }
            Err(e) => return Err(StoreError::io(&path, e)),
        }
    }

    let list_path = dir.join(LIST_NAME);
    let old_list = match fs::read(&list_path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(StoreError::io(&list_path, e)),
    };
    let mut map: KeywordMap = parse_list(&old_list)
        .into_iter()
        .filter(|(b, _)| existing.contains(b))
        .collect();
    for (basename, keywords) in updates {
        if !existing.contains(&basename) {
            continue;
        }
        if keywords.is_empty() {
            map.remove(&basename);
        } else {
            map.insert(basename, keywords);
        }
    }
    if !write {
        return Ok(Some(map));
    }

    let new_list = format_list(&map);
    if new_list != old_list {
        replace_file(folder, &list_path, "keywords", &new_list)?;
    }
    // Fresh updates are now in :list; keep them a while as `.N.` for readers that still
    // hold an older :list (NFS attribute caching).
    let now = SystemTime::now();
    for basename in &fresh {
        if !existing.contains(basename) {
            continue;
        }
        let previous = merged.get(basename);
        let n = previous.map_or(bucket + 1, |(old, _)| (*old).max(bucket + 1));
        let target = dir.join(format!(".{n}.{basename}"));
        match fs::rename(dir.join(basename), &target) {
            Ok(()) => {
                if let Err(e) = File::options()
                    .write(true)
                    .open(&target)
                    .and_then(|f| f.set_modified(now))
                {
                    log::debug!("cannot touch {}: {e}", target.display());
                }
                if let Some((_, old_name)) = previous
                    && dir.join(old_name) != target
                {
                    remove_quietly(&dir.join(old_name));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(StoreError::io(&target, e)),
        }
    }
    for (basename, (n, name)) in &merged {
        let old_enough =
            || fs::symlink_metadata(dir.join(name)).is_ok_and(|m| age_secs(&m) > AGE_LIMIT_SECS);
        let lone_aged = !fresh.contains(basename) && *n < bucket;
        if (lone_aged || !existing.contains(basename)) && old_enough() {
            remove_quietly(&dir.join(name));
        }
    }
    for basename in fresh.iter().filter(|b| !existing.contains(*b)) {
        let path = dir.join(basename);
        if fs::symlink_metadata(&path).is_ok_and(|m| age_secs(&m) > AGE_LIMIT_SECS) {
            remove_quietly(&path);
        }
    }
    Ok(Some(map))
}

/// Refuses base names that could address anything but a message's update file.
fn check_basename(basename: &str) -> Result<(), StoreError> {
    if basename.is_empty() || basename.starts_with('.') || basename.contains(['/', ':', '\0']) {
        return Err(StoreError::InvalidName(basename.to_string()));
    }
    Ok(())
}

/// Writes the complete keyword set of one message as an update file (IMAP_KEYWORDS=1 style:
/// tmp + rename into `courierimapkeywords/<basename>`).
pub(crate) fn write_update(
    folder: &Path,
    basename: &str,
    keywords: &[String],
) -> Result<(), StoreError> {
    check_basename(basename)?;
    if let Some(bad) = keywords.iter().find(|k| k.contains(['\n', '\r', '\0'])) {
        return Err(StoreError::Cannot(format!(
            "keyword {bad:?} contains a line break"
        )));
    }
    let dir = folder.join(KEYWORDS_DIR);
    if let Err(e) = fs::DirBuilder::new().mode(0o700).create(&dir)
        && e.kind() != io::ErrorKind::AlreadyExists
    {
        return Err(StoreError::io(&dir, e));
    }
    let mut contents = String::new();
    for keyword in dedupe(keywords.iter().cloned()) {
        contents.push_str(&keyword);
        contents.push('\n');
    }
    let (mut file, tmp, _) = create_exclusive(&folder.join("tmp"), "keywords")?;
    let written = file
        .write_all(contents.as_bytes())
        .and_then(|()| file.sync_all());
    drop(file);
    let target = dir.join(basename);
    let result = written
        .map_err(|e| StoreError::io(&tmp, e))
        .and_then(|()| fs::rename(&tmp, &target).map_err(|e| StoreError::io(&target, e)));
    if result.is_err() {
        remove_quietly(&tmp);
    } else {
        fsync_dir(&dir);
    }
    result
}

/// Removes a message's pending update file (used when a delivery is rolled back).
pub(crate) fn remove_update(folder: &Path, basename: &str) {
    if check_basename(basename).is_ok() {
        remove_quietly(&folder.join(KEYWORDS_DIR).join(basename));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maildir::testutil::TempDir;

    const LIST: &[u8] = b"Important\n$Label1\n\n1795769172.M914087P11768V000000000000FE00I000000000098E6D3.vm,S=120:1 0\n";

    #[test]
    fn list_parses_and_formats() {
        let map = parse_list(LIST);
        let kws = &map["1795769172.M914087P11768V000000000000FE00I000000000098E6D3.vm,S=120"];
        assert_eq!(kws, &vec!["$Label1".to_string(), "Important".to_string()]);
        assert_eq!(format_list(&map), b"$Label1\nImportant\n\n1795769172.M914087P11768V000000000000FE00I000000000098E6D3.vm,S=120:0 1\n");
        assert_eq!(format_list(&KeywordMap::default()), b"\n");
        assert!(parse_list(b"").is_empty());
    }

    #[test]
    fn forbidden_characters_and_case() {
        assert_eq!(
            parse_update(b"a b\nJunk\njunk\n\nx]\n"),
            vec!["a_b", "Junk", "x_"]
        );
        assert_eq!(parse_merged(".5985898.abc,S=1"), Some((5985898, "abc,S=1")));
        assert_eq!(parse_merged(".05.abc"), None);
        assert_eq!(parse_merged(".tmp.abc"), None);
    }

    fn folder() -> TempDir {
        let dir = TempDir::new("kw");
        fs::create_dir(dir.path().join("tmp")).unwrap();
        dir
    }

    #[test]
    fn write_then_merge() {
        let dir = folder();
        let existing: FastSet<String> = ["m1".to_string(), "m2".to_string()].into_iter().collect();
        write_update(
            dir.path(),
            "m1",
            &["$Label1".into(), "Junk".into(), "junk".into()],
        )
        .unwrap();
        assert_eq!(
            fs::read(dir.path().join(KEYWORDS_DIR).join("m1")).unwrap(),
            b"$Label1\nJunk\n"
        );
        // A read-only load sees the update but changes nothing.
        let map = load(dir.path(), &existing, false).unwrap();
        assert_eq!(map["m1"], vec!["$Label1", "Junk"]);
        assert!(dir.path().join(KEYWORDS_DIR).join("m1").exists());
        // A writing load merges it into :list and ages the update file.
        let map = load(dir.path(), &existing, true).unwrap();
        assert_eq!(map["m1"], vec!["$Label1", "Junk"]);
        assert_eq!(
            fs::read(dir.path().join(KEYWORDS_DIR).join(LIST_NAME)).unwrap(),
            b"$Label1\nJunk\n\nm1:0 1\n"
        );
        let names: Vec<String> = fs::read_dir(dir.path().join(KEYWORDS_DIR))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        let bucket = now_secs() / BUCKET_SECS;
        assert!(names.iter().any(|n| n == &format!(".{}.m1", bucket + 1) || n == &format!(".{}.m1", bucket + 2)), "{names:?}");
        // A later update replaces the set; an empty set clears it.
        write_update(dir.path(), "m2", &["Work".into()]).unwrap();
        write_update(dir.path(), "m1", &[]).unwrap();
        let map = load(dir.path(), &existing, true).unwrap();
        assert!(!map.contains_key("m1"));
        assert_eq!(map["m2"], vec!["Work"]);
        assert_eq!(load(dir.path(), &existing, true).unwrap(), map);
        // Vanished messages drop out of :list.
        let only_m1: FastSet<String> = ["m1".to_string()].into_iter().collect();
        assert!(load(dir.path(), &only_m1, true).unwrap().is_empty());
        assert_eq!(
            fs::read(dir.path().join(KEYWORDS_DIR).join(LIST_NAME)).unwrap(),
            b"\n"
        );
    }

    #[test]
    fn refuses_bad_names_and_line_breaks() {
        let dir = folder();
        assert!(write_update(dir.path(), "../x", &[]).is_err());
        assert!(write_update(dir.path(), ":list", &[]).is_err());
        assert!(write_update(dir.path(), "m", &["a\nb".into()]).is_err());
    }
}
