//! LIST, with the extensions that shape its answer: LIST-EXTENDED (RFC 5258: selection
//! options SUBSCRIBED, REMOTE and RECURSIVEMATCH, return options SUBSCRIBED and CHILDREN,
//! several patterns, `\Subscribed`, `\NonExistent`, CHILDINFO), SPECIAL-USE (RFC 6154:
//! the folders' uses as attributes, the SPECIAL-USE selection and return options) and
//! LIST-STATUS (RFC 5819: a STATUS response after each selectable folder's LIST line,
//! made by the STATUS command's own code).
//!
//! Owns the choice of names and attributes; the folders, subscriptions and recorded uses
//! come from the store (through the shared-namespace rules of `shared`), and the
//! configured uses from the session's settings.

use std::collections::{BTreeMap, BTreeSet};

use super::mailboxes::hierarchy;
use super::names::{fold_inbox, from_wire, pattern_is_reasonable, pattern_matches};
use super::{Completion, Session, store_error};
use crate::maildir::SpecialUse;
use crate::protocol::command::ListOptions;
use crate::protocol::response::Code;

/// The folders of a name and those of every level above it: `INBOX.a.b` gives `INBOX.a`
/// and `INBOX`.
fn ancestors(name: &str) -> impl Iterator<Item = &str> {
    name.rmatch_indices('.').map(move |(i, _)| &name[..i])
}

impl Session<'_> {
    /// Every folder's special uses: those clients gave with CREATE ... USE, and for each
    /// use no client gave a folder, the configured ones.
    fn special_uses(&self) -> BTreeMap<String, Vec<SpecialUse>> {
        let recorded = match self.store.special_uses() {
            Ok(r) => r,
            Err(e) => {
                log::error!("reading the special uses: {e}");
                Vec::new()
            }
        };
        let mut uses: BTreeMap<String, Vec<SpecialUse>> = BTreeMap::new();
        for (folder, u) in recorded.iter().chain(
            self.settings
                .special_use
                .iter()
                .filter(|(_, u)| !recorded.iter().any(|(_, have)| have == u)),
        ) {
            let list = uses.entry(folder.clone()).or_default();
            if !list.contains(u) {
                list.push(*u);
            }
        }
        uses.values_mut().for_each(|v| v.sort());
        uses
    }

    pub(super) fn cmd_list_extended(
        &mut self,
        reference: &[u8],
        raw_patterns: &[Vec<u8>],
        o: &ListOptions,
    ) -> Completion {
        if !o.extended && raw_patterns.iter().all(Vec::is_empty) {
            // RFC 3501 §6.3.8: an empty pattern asks for the delimiter.
            self.pending.push(b"LIST (\\Noselect) \".\" \"\"".to_vec());
            return Completion::ok("LIST completed.");
        }
        let mut patterns = Vec::new();
        for raw in raw_patterns.iter().filter(|p| !p.is_empty()) {
            let mut full = reference.to_vec();
            full.extend_from_slice(raw);
            if !pattern_is_reasonable(&full) {
                return Completion::no_code(Code::Limit, "Pattern too complex.");
            }
            // Nothing can match a pattern that is not valid modified UTF-7.
            if let Some(p) = from_wire(&full, self.utf8) {
                patterns.push(fold_inbox(&p));
            }
        }
        if patterns.len() > 64 {
            return Completion::no_code(Code::Limit, "Too many patterns.");
        }
        let matches = |name: &str| {
            patterns
                .iter()
                .any(|p| pattern_matches(p.as_bytes(), name.as_bytes()))
        };
        // Folders without the lookup right are not shown, nor levels only they make; the
        // shared namespaces take part as Courier has them (see `shared`).
        let mut existing = BTreeSet::new();
        let mut subscribed = BTreeSet::new();
        let want_subscribed = o.select_subscribed || o.return_subscribed;
        for p in &patterns {
            match self.listed_folders(p) {
                Ok(names) => existing.extend(names),
                Err(e) => return store_error(&e),
            }
            if want_subscribed {
                match self.subscribed_folders(p) {
                    Ok(names) => subscribed.extend(names),
                    Err(e) => return store_error(&e),
                }
            }
        }
        let existing: Vec<String> = existing.into_iter().collect();
        let tree = hierarchy(&existing);
        let uses = self.special_uses();
        let uses_of = |name: &str| -> &[SpecialUse] {
            match (tree.get(name), uses.get(name)) {
                (Some(node), Some(u)) if node.exists => u,
                _ => &[],
            }
        };

        // The names the selection options select, and (RECURSIVEMATCH, RFC 5258 §3.5)
        // those with a selected name below them that the patterns do not match.
        let selected: BTreeSet<String> = if o.select_subscribed {
            subscribed.iter().cloned().collect()
        } else if o.select_special_use {
            tree.keys()
                .filter(|n| !uses_of(n).is_empty())
                .cloned()
                .collect()
        } else {
            tree.keys().cloned().collect()
        };
        let filtering = o.select_subscribed || o.select_special_use;
        let mut with_selected_child = BTreeSet::new();
        if o.recursive_match {
            // Only for a descendant the patterns do not list themselves: one they do
            // speaks for itself (as imaptest's listext has it, and Dovecot answers).
            for name in selected.iter().filter(|n| !matches(n)) {
                with_selected_child.extend(ancestors(name).map(str::to_string));
            }
        }
        let childinfo = if o.select_subscribed {
            "SUBSCRIBED"
        } else {
            "SPECIAL-USE"
        };

        let names: BTreeSet<&String> = selected.iter().chain(&with_selected_child).collect();
        for name in names {
            if !matches(name) {
                continue;
            }
            let mut attrs: Vec<String> = Vec::new();
            let node = tree.get(name.as_str());
            match node {
                None => attrs.push("\\NonExistent".into()),
                Some(n) if !n.exists => attrs.push("\\Noselect".into()),
                Some(_) => {}
            }
            // RFC 5258 §3.4: with a filtering selection, the children are told when asked
            // for; otherwise always, as before LIST-EXTENDED (CHILDREN, RFC 3348).
            if !filtering || o.return_children {
                let has_children = node.is_some_and(|n| n.has_children);
                attrs.push(
                    if has_children {
                        "\\HasChildren"
                    } else {
                        "\\HasNoChildren"
                    }
                    .into(),
                );
            }
            if want_subscribed && subscribed.contains(name) {
                attrs.push("\\Subscribed".into());
            }
            // RFC 6154 §2: shown on every LIST, not only when asked for.
            attrs.extend(uses_of(name).iter().map(|u| format!("\\{}", u.name())));
            let mut line = self.list_line("LIST", &attrs.join(" "), name);
            if o.recursive_match && with_selected_child.contains(name) {
                line.extend_from_slice(format!(" (\"CHILDINFO\" (\"{childinfo}\"))").as_bytes());
            }
            self.pending.push(line);
            if let Some(items) = &o.return_status
                && node.is_some_and(|n| n.exists)
            {
                // RFC 5819 §1: a folder STATUS cannot be had for gets no STATUS line, and
                // the LIST goes on.
                match self.status_line(name, items) {
                    Ok(status) => self.pending.push(status),
                    Err(refused) => log::debug!("LIST-STATUS of {name}: {}", refused.text),
                }
            }
        }
        Completion::ok("LIST completed.")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ancestors_of_a_name() {
        assert_eq!(
            ancestors("INBOX.a.b").collect::<Vec<_>>(),
            vec!["INBOX.a", "INBOX"]
        );
        assert_eq!(ancestors("INBOX").count(), 0);
    }
}
