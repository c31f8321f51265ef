//! The mail store: a Maildir++ tree on disk, byte-compatible with Courier-IMAP 5
//! (spec/maildir.md, spec/courier-files.md). Folder names, unique file names, the dot-lock,
//! the UID database, keywords, subscriptions, access control lists, the Maildir++ quota
//! (`maildirsize`), scanning, delivery, flag changes and expunge.
//!
//! This layer knows nothing of IMAP syntax: names arrive and leave as UTF-8 IMAP names such
//! as `INBOX.Work.Reports` (modified UTF-7 is the protocol layer's job), and it keeps no
//! session state. Every change on disk is a create in `tmp/` + fsync + rename, or a single
//! rename/link/unlink, so Courier processes sharing the maildir always see complete files.
//! Nothing below the maildir root is reached by following a symbolic link (`beneath`): a
//! link planted in a maildir leads nowhere, least of all into another user's mail. The
//! links Courier makes for filesystem-shared folders are read, never followed, and must
//! say what Courier writes there (`sharable`); other maildirs (another account's, for
//! `#shared.` folders found in `sharedindex`; a sharable maildir) are roots of their own.

pub mod acl;
mod beneath;
pub mod crash;
mod error;
pub mod fast;
mod flags;
mod folder;
mod index;
mod keywords;
mod lock;
mod mailbox_id;
pub mod modseq;
mod names;
mod quota;
mod recent;
mod sharable;
pub mod sharedindex;
mod special_use;
mod spool;
mod stamp;
mod status_cache;
mod store;
mod subscriptions;
#[cfg(test)]
mod symlink_tests;
mod uiddb;
mod unique;

pub use acl::{Accessor, Acl, AclEntry, AclRefusal, AclUpdateError, Rights};
pub use error::StoreError;
pub use flags::{InfoFlags, basename_of, size_from_name};
pub use folder::{
    BeforePlacing, Delivery, Folder, FolderStatus, MessageEntry, NewMessage, OpenedMessage,
    ScanResult,
};
pub use index::{
    Facts, Index, IndexEntry, IndexHeader, IndexWriter, Record, flag_bit, flag_bits, flags_of_bits,
    letter_bits, regular_flag_bits, regular_name,
};
pub use keywords::KeywordWriter;
pub use names::{INBOX, canonical_name, is_valid_name};
pub use quota::{
    MAILDIRSIZE, Quota, QuotaLimits, QuotaReport, QuotaUse, UNCOUNTED_FOLDER, counts_file,
    counts_folder,
};
pub use sharable::{SHARED_FOLDERS, SHARED_MAILDIRS, SharableMaildir};
pub use special_use::SpecialUse;
pub use spool::spool_file;
pub use stamp::{ChangeStamp, FileTime};
pub use status_cache::StatusCache;
pub use store::Store;

/// The store's own writers of Courier's files, for `crate::migrate`, which converts another
/// server's files into them and must write them exactly as the store does, reaching them
/// as the store does (`Dir`: no symbolic link below the root is followed).
pub(crate) mod courier {
    pub(crate) use super::beneath::{Dir, Kind};
    pub(crate) use super::keywords::{
        KEYWORDS_DIR, KeywordMap, has_update_files, load as load_keywords, write_list,
        write_update as write_keyword_update,
    };
    pub(crate) use super::lock::DotLock;
    pub(crate) use super::names::same_name;
    pub(crate) use super::uiddb::{UIDDB_NAME, UidDb, write as write_uiddb};
}

#[cfg(test)]
pub(crate) mod testutil {
    //! Temporary directories for tests, removed on drop; setting one message's keywords as
    //! a STORE does.

    /// Replaces the keywords of message `basename` of `folder` through the folder's
    /// keyword writer, as STORE does.
    pub(crate) fn set_keywords(
        folder: &super::Folder,
        basename: &str,
        keywords: &[String],
    ) -> Result<(), super::StoreError> {
        let names = std::iter::once(basename.to_string()).collect();
        folder.keyword_writer(&names)?.write(basename, keywords)
    }

    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicU32, Ordering};

    static NEXT: AtomicU32 = AtomicU32::new(0);

    pub(crate) struct TempDir(PathBuf);

    impl TempDir {
        pub(crate) fn new(tag: &str) -> TempDir {
            let path = std::env::temp_dir().join(format!(
                "mdimap-maildir-{}-{}-{tag}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = std::fs::remove_dir_all(&path);
            std::fs::create_dir_all(&path).unwrap();
            TempDir(path)
        }

        pub(crate) fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
