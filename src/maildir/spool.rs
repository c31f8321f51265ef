//! Scratch space for a literal too large to hold in memory (an APPEND's
//! message while it arrives): an unlinked file in the maildir's `tmp/`, on
//! the same filesystem and under the same quota as the mail it becomes, and
//! gone without a trace when the session dies.

use std::fs::File;
use std::io;
use std::path::Path;

use super::beneath::Dir;
use super::unique::Stamp;

/// An anonymous read-write file in `root/tmp/`. O_TMPFILE where the
/// filesystem has it; elsewhere (NFS) a uniquely named file, removed at once.
/// `tmp/` is reached without following a link, as everything below the root.
pub fn spool_file(root: &Path) -> io::Result<File> {
    let described =
        |dir: &Dir, rel: &str, e: io::Error| io::Error::new(e.kind(), dir.fail(rel, e).to_string());
    let top = Dir::open_root(root)?;
    let tmp = top.open_dir("tmp").map_err(|e| described(&top, "tmp", e))?;
    match tmp.create_unnamed(0o600) {
        Ok(f) => return Ok(f),
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::EOPNOTSUPP | libc::EISDIR | libc::EINVAL)
            ) => {}
        Err(e) => return Err(e),
    }
    for _ in 0..100 {
        let name = Stamp::now().tmp_name("spool");
        match tmp.create_new(&name, 0o600) {
            Ok(f) => {
                tmp.remove_file(&name)?;
                return Ok(f);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(described(&tmp, &name, e)),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        "no free unique file name in tmp/",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek, SeekFrom, Write};

    #[test]
    fn spool_is_invisible_and_usable() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("tmp")).unwrap();
        let mut f = spool_file(dir.path()).unwrap();
        f.write_all(b"hello").unwrap();
        f.seek(SeekFrom::Start(0)).unwrap();
        let mut back = String::new();
        f.read_to_string(&mut back).unwrap();
        assert_eq!(back, "hello");
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
            0
        );
    }

    #[test]
    fn a_linked_tmp_is_not_spooled_into() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = dir.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, dir.path().join("tmp")).unwrap();
        let err = spool_file(dir.path()).unwrap_err().to_string();
        assert!(err.contains("symbolic link"), "{err}");
    }
}
