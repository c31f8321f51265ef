//! The user file (`/etc/mdimap/users`, `name:hash:uid:gid:home[:maildir[:quota[:options]]]`):
//! the fuzz input is written as the file and looked up with `userfile::find`,
//! the function every login and `mdimap` user command goes through (line
//! splitting, comments, first-entry-wins, malformed lines), for a name taken
//! from the file; every line goes through `parse_line`. Checks that a record
//! written back by `format_line` (as `mdimap useradd` writes it) reads back as
//! the same record, and that `find` answers with the first line for a name.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mdimap::auth::userfile::{Line, find, format_line, parse_line};
use std::path::PathBuf;
use std::sync::OnceLock;

fn file() -> &'static PathBuf {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir").keep();
        dir.join("users")
    })
}

fuzz_target!(|data: &[u8]| {
    let mut first_name: Option<Vec<u8>> = None;
    for raw in data.split(|&b| b == b'\n') {
        match parse_line(raw) {
            Line::Ignored => {}
            Line::Malformed { name, .. } => {
                first_name.get_or_insert(name);
            }
            Line::Record(record) => {
                first_name.get_or_insert(record.user.name.as_bytes().to_vec());
                if let Ok(line) = format_line(&record.user, &record.hash) {
                    match parse_line(line.as_bytes()) {
                        Line::Record(again) => assert_eq!(again, record, "{line:?} reads back differently"),
                        other => panic!("{line:?}, written by format_line, reads as {other:?}"),
                    }
                }
            }
        }
    }
    let path = file();
    std::fs::write(path, data).expect("write the user file");
    let Some(name) = first_name.and_then(|n| String::from_utf8(n).ok()) else {
        return;
    };
    // The first name in the file is decided by its first line.
    match find(path, &name) {
        Ok(Some((record, line_no))) => {
            assert_eq!(record.user.name, name);
            let raw = data.split(|&b| b == b'\n').nth(line_no - 1).expect("line number in the file");
            assert_eq!(parse_line(raw), Line::Record(record));
        }
        Ok(None) | Err(_) => {}
    }
});
