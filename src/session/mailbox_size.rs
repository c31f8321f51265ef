//! STATUS SIZE (RFC 8438): the sum of the messages' RFC822.SIZE, which the RFC requires to
//! be at least that sum. Maildir file names carry the size on disk (`,S=`), with LF line
//! ends, which is less; so the sizes are those FETCH RFC822.SIZE answers with, from the
//! folder's index, and for a folder the index cannot answer for, learnt the way FETCH
//! learns them and kept in the index for the next time.

use super::fetch::{self, Needs, Scratch};
use super::view::SelectedView;
use crate::maildir::{Folder, StoreError};

/// The sum of RFC822.SIZE over `folder`'s messages, opening it read-only as EXAMINE does
/// (nothing moves from new/, no `\Recent` is claimed) and reading each message the index
/// does not know the size of.
pub(super) fn total_rfc822_size(folder: Folder) -> Result<u64, StoreError> {
    let mut view = SelectedView::open(folder, true)?;
    let needs = Needs {
        size: true,
        ..Needs::default()
    };
    let mut scratch = Scratch::default();
    let mut total = 0u64;
    for i in 0..view.len() {
        if view.is_expunged(i) {
            continue;
        }
        match fetch::prepare(&mut view, i, needs, &mut scratch) {
            Ok(Some(p)) => total += p.facts.size.unwrap_or(0),
            // Expunged by another process since the folder was listed: not in it now.
            Ok(None) => {}
            Err(e) => {
                let path = view.folder.path().to_path_buf();
                return Err(StoreError::io(&path, e));
            }
        }
    }
    view.save_index();
    Ok(total)
}
