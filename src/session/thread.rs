//! THREAD and UID THREAD (RFC 5256 §3): ORDEREDSUBJECT and REFERENCES over
//! the messages SEARCH would find, and the `* THREAD` answer.
//!
//! The algorithms work on [`Item`]s (a number to answer with, the sent date
//! and the header keys) and know nothing of the store; where two readings of
//! the RFC differ, they answer as Dovecot does, which the tests compare with.

use std::collections::HashMap;

use super::search::{Matches, completed};
use super::sort::message_keys;
use super::{Completion, Session};
use crate::message::SortKeys;
use crate::protocol::command::{SearchKey, ThreadAlgorithm};

/// One message to thread, in sequence order.
#[derive(Debug, Clone)]
pub(super) struct Item {
    /// The number the answer names it by: sequence number or UID.
    pub(super) id: u32,
    /// The sent date, or INTERNALDATE without one (RFC 5256 §2.2).
    pub(super) date: i64,
    pub(super) keys: SortKeys,
}

/// Threads as a flat tree: nodes by index, each with its message (None for
/// a dummy that only holds its children together) and its replies, oldest
/// first. Flat, and walked without recursion, so that a chain of a hundred
/// thousand replies costs memory, not stack.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Threads {
    pub(super) nodes: Vec<ThreadNode>,
    /// The threads' first nodes, in order.
    pub(super) roots: Vec<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ThreadNode {
    pub(super) id: Option<u32>,
    pub(super) children: Vec<usize>,
}

impl Threads {
    fn add(&mut self, id: Option<u32>, children: Vec<usize>) -> usize {
        self.nodes.push(ThreadNode { id, children });
        self.nodes.len() - 1
    }
}

/// RFC 5256 ORDEREDSUBJECT: messages grouped by base subject, each group in
/// date order (then sequence order), the groups ordered by their first
/// message's date. A group's later messages are all children of its first.
pub(super) fn ordered_subject(items: &[Item]) -> Threads {
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by(|&a, &b| {
        let (x, y) = (&items[a], &items[b]);
        (&x.keys.subject, x.date, a).cmp(&(&y.keys.subject, y.date, b))
    });
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for i in order {
        match groups.last_mut() {
            Some(g) if items[g[0]].keys.subject == items[i].keys.subject => g.push(i),
            _ => groups.push(vec![i]),
        }
    }
    groups.sort_by_key(|g| (items[g[0]].date, g[0]));
    let mut threads = Threads::default();
    for g in groups {
        let children = g[1..]
            .iter()
            .map(|&i| threads.add(Some(items[i].id), Vec::new()))
            .collect();
        let root = threads.add(Some(items[g[0]].id), children);
        threads.roots.push(root);
    }
    threads
}

/// A container of the REFERENCES algorithm: a message id seen in a
/// Message-ID or a reference, holding the message when there is one.
#[derive(Debug, Default)]
struct Container {
    item: Option<usize>,
    parent: Option<usize>,
    /// Some container was made its child (and may still be): only such a
    /// container can be an ancestor of another, so only for one is the
    /// walk up that rules out a loop needed. A long chain of replies then
    /// links in linear time, not quadratic.
    has_children: bool,
}

/// Containers by message id (step 1.A), plus one of its own for each
/// message without a usable id or with one already taken.
#[derive(Default)]
struct Links {
    nodes: Vec<Container>,
    by_id: HashMap<String, usize>,
}

impl Links {
    fn new_node(&mut self) -> usize {
        self.nodes.push(Container::default());
        self.nodes.len() - 1
    }

    fn node_of(&mut self, id: &str) -> usize {
        if let Some(&n) = self.by_id.get(id) {
            return n;
        }
        let n = self.new_node();
        self.by_id.insert(id.to_string(), n);
        n
    }

    /// Whether `ancestor` is `node` or above it.
    fn has_ancestor(&self, mut node: usize, ancestor: usize) -> bool {
        loop {
            if node == ancestor {
                return true;
            }
            match self.nodes[node].parent {
                Some(p) => node = p,
                None => return false,
            }
        }
    }

    /// Makes `parent` the parent of `child` unless `child` has one already
    /// or the link would make a loop (steps 1.B and 1.C).
    fn link(&mut self, parent: usize, child: usize) {
        if parent == child
            || self.nodes[child].parent.is_some()
            || (self.nodes[child].has_children && self.has_ancestor(parent, child))
        {
            return;
        }
        self.nodes[child].parent = Some(parent);
        self.nodes[parent].has_children = true;
    }
}

/// RFC 5256 REFERENCES: threads by the Message-ID, References and
/// In-Reply-To links (step 1), roots and dummies pruned (2, 3), sorted by
/// date (4), roots with the same base subject gathered (5), each level in
/// date order (6). Ties in date go by sequence order.
pub(super) fn references(items: &[Item]) -> Threads {
    // (1) Link the containers, message by message in sequence order.
    let mut links = Links::default();
    for (i, item) in items.iter().enumerate() {
        let own = match &item.keys.message_id {
            Some(id) => {
                let n = links.node_of(id);
                if links.nodes[n].item.is_none() {
                    n
                } else {
                    // A duplicate Message-ID: the first keeps it, this
                    // one becomes a message of its own.
                    links.new_node()
                }
            }
            None => links.new_node(),
        };
        links.nodes[own].item = Some(i);
        let mut last = None;
        for r in &item.keys.references {
            let n = links.node_of(r);
            if let Some(prev) = last {
                links.link(prev, n);
            }
            last = Some(n);
        }
        // (1.C) The last reference is the parent, replacing whatever
        // earlier references made it; no references make it a root.
        if links.nodes[own].parent != last {
            links.nodes[own].parent = None;
        }
        if let Some(parent) = last {
            links.link(parent, own);
        }
    }
    let date_of = |n: &Container| n.item.map(|i| (items[i].date, i));

    // (2), (3) Each message hangs under its nearest ancestor that holds a
    // message; below the root, dummies go and their children move up. A
    // root stays a root, dummy or not.
    let count = links.nodes.len();
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); count];
    let mut roots: Vec<usize> = Vec::new();
    for n in 0..count {
        let node = &links.nodes[n];
        match node.parent {
            None => roots.push(n),
            Some(_) if node.item.is_none() => {}
            Some(mut p) => {
                while links.nodes[p].item.is_none() {
                    match links.nodes[p].parent {
                        Some(up) => p = up,
                        None => break,
                    }
                }
                children[p].push(n);
            }
        }
    }
    for c in &mut children {
        c.sort_by_key(|&n| date_of(&links.nodes[n]));
    }

    // A root of the tree being built: a container, or a dummy made in
    // step 5 (an index past the containers' own).
    #[derive(Clone)]
    struct Root {
        node: usize,
        dummy: bool,
        ignore: bool,
        /// The date and item that order this root (for a dummy, its
        /// oldest child's).
        key: (i64, usize),
        reply: bool,
        /// Step 5.B: the root whose thread this one joins.
        joins: Option<usize>,
    }
    let mut roots: Vec<Root> = roots
        .into_iter()
        .filter_map(|n| {
            let dummy = links.nodes[n].item.is_none();
            (!dummy || !children[n].is_empty()).then_some(Root {
                node: n,
                dummy,
                ignore: false,
                key: (0, 0),
                reply: false,
                joins: None,
            })
        })
        .collect();

    // (3) deferred, and (4): a dummy root with one child gives way to it;
    // roots by date.
    let sort_roots = |roots: &mut Vec<Root>, children: &Vec<Vec<usize>>| {
        for r in roots.iter_mut().filter(|r| !r.ignore) {
            if r.dummy {
                match children[r.node].as_slice() {
                    [] => r.ignore = true,
                    [only] => {
                        r.node = *only;
                        r.dummy = false;
                    }
                    _ => {}
                }
            }
            let source = if r.dummy {
                children[r.node].first().copied()
            } else {
                Some(r.node)
            };
            if let Some(key) = source.and_then(|n| links.nodes.get(n)).and_then(date_of) {
                r.key = key;
            }
        }
        roots.sort_by_key(|r| r.key);
    };
    // Children of the dummies step 5 makes.
    children.resize(count, Vec::new());
    sort_roots(&mut roots, &children);

    // (5.B) Gather the roots by base subject.
    let subject_item = |r: &Root, children: &Vec<Vec<usize>>| {
        let n = if r.dummy {
            *children[r.node].first()?
        } else {
            r.node
        };
        links.nodes.get(n)?.item
    };
    let mut table: HashMap<String, usize> = HashMap::new();
    for r in 0..roots.len() {
        if roots[r].ignore {
            continue;
        }
        let Some(item) = subject_item(&roots[r], &children) else {
            continue;
        };
        let keys = &items[item].keys;
        if keys.subject.is_empty() {
            continue;
        }
        match table.get(&keys.subject).copied() {
            None => {
                table.insert(keys.subject.clone(), r);
            }
            Some(held) => {
                let held_root = &roots[held];
                if !held_root.dummy
                    && (roots[r].dummy || (held_root.reply && !keys.reply_or_forward))
                {
                    roots[held].joins = Some(r);
                    table.insert(keys.subject.clone(), r);
                } else {
                    roots[r].joins = Some(held);
                }
            }
        }
        roots[r].reply = keys.reply_or_forward;
    }

    // (5.C) Merge the threads that share a subject.
    let before = roots.len();
    let mut merged = false;
    for r in 0..before {
        if roots[r].joins.is_none() || roots[r].ignore {
            continue;
        }
        merged = true;
        let mut top = r;
        while let Some(up) = roots[top].joins {
            top = up;
        }
        if top == r {
            continue;
        }
        let (cur, held) = (roots[r].clone(), roots[top].clone());
        if cur.dummy {
            // Both dummies: their children become siblings.
            let moved = std::mem::take(&mut children[cur.node]);
            children[held.node].extend(moved);
            roots[r].ignore = true;
        } else if held.dummy || (cur.reply && !held.reply) {
            children[held.node].push(cur.node);
            roots[r].ignore = true;
        } else {
            // Neither under the other: a new dummy holds them both.
            children.push(vec![held.node, cur.node]);
            let node = children.len() - 1;
            roots.push(Root {
                node,
                dummy: true,
                ignore: false,
                key: (0, 0),
                reply: false,
                joins: None,
            });
            let new = roots.len() - 1;
            roots[top].joins = Some(new);
            roots[top].ignore = true;
            roots[r].ignore = true;
        }
    }
    if merged {
        // Dummies made above have no container: extend the date lookup.
        for c in children.iter_mut() {
            c.sort_by_key(|&n| links.nodes.get(n).and_then(date_of));
        }
        sort_roots(&mut roots, &children);
    }

    // (6) The tree, each level oldest first: the containers' (and step 5's
    // dummies') indexes are the nodes' own.
    let mut threads = Threads::default();
    for (n, mut kids) in children.into_iter().enumerate() {
        kids.sort_by_key(|&k| links.nodes.get(k).and_then(date_of));
        let id = links.nodes.get(n).and_then(|c| c.item).map(|i| items[i].id);
        threads.add(id, kids);
    }
    threads
        .roots
        .extend(roots.iter().filter(|r| !r.ignore).map(|r| r.node));
    threads
}

/// The `* THREAD` response: `(1 2 (3)(4))`-style lists, written as Dovecot
/// writes them (RFC 5256 §4 allows either form): an only child follows its
/// parent without parentheses, siblings each get their own.
pub(super) fn thread_response(threads: &Threads) -> Vec<u8> {
    /// What is left to write, last first.
    enum Task<'t> {
        Text(String),
        Children(&'t [usize], bool),
    }
    let nodes = &threads.nodes;
    let mut out = String::from("THREAD");
    if !threads.roots.is_empty() {
        out.push(' ');
    }
    let mut tasks = vec![Task::Children(&threads.roots, true)];
    while let Some(task) = tasks.pop() {
        let (list, root) = match task {
            Task::Text(t) => {
                out.push_str(&t);
                continue;
            }
            Task::Children(list, root) => (list, root),
        };
        if let ([only], false) = (list, root) {
            let node = &nodes[*only];
            if let Some(id) = node.id {
                out.push_str(&id.to_string());
            }
            if !node.children.is_empty() {
                out.push(' ');
                tasks.push(Task::Children(&node.children, false));
            }
            continue;
        }
        for &n in list.iter().rev() {
            let node = &nodes[n];
            match (node.id, node.children.is_empty()) {
                (Some(id), true) => tasks.push(Task::Text(format!("({id})"))),
                // A dummy without children says nothing.
                (None, true) => {}
                (id, false) => {
                    tasks.push(Task::Text(")".into()));
                    tasks.push(Task::Children(&node.children, false));
                    tasks.push(Task::Text(match id {
                        Some(id) => format!("({id} "),
                        None => "(".into(),
                    }));
                }
            }
        }
    }
    out.into_bytes()
}

impl Session<'_> {
    pub(super) fn cmd_thread(
        &mut self,
        uid: bool,
        algorithm: ThreadAlgorithm,
        charset: &str,
        criteria: &SearchKey,
    ) -> Completion {
        let Matches {
            hits,
            expunge_issued,
        } = match self.selected_matches(Some(charset), criteria, false) {
            Ok(m) => m,
            Err(refusal) => return refusal,
        };
        let Some(view) = self.selected.as_mut() else {
            return Completion::bad("No mailbox selected.");
        };
        let scratch = &mut self.scratch;
        let items: Vec<Item> = hits
            .iter()
            .map(|&i| {
                let (keys, _) =
                    message_keys(view, scratch, i, true, false, false).unwrap_or_default();
                // RFC 5256 §2.2: the sent date, or INTERNALDATE when it has none.
                let date = match keys.sent {
                    Some(t) => t,
                    None => message_keys(view, scratch, i, false, false, true)
                        .and_then(|(_, f)| f.date)
                        .unwrap_or(0),
                };
                Item {
                    id: if uid { view.uid(i) } else { i as u32 + 1 },
                    date,
                    keys,
                }
            })
            .collect();
        scratch.trim();
        let threads = match algorithm {
            ThreadAlgorithm::OrderedSubject => ordered_subject(&items),
            ThreadAlgorithm::References => references(&items),
        };
        self.pending.push(thread_response(&threads));
        completed("THREAD", expunge_issued)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A message numbered `id`, sent at `date`, with `headers` (Message-ID,
    /// References, Subject, ...).
    fn item(id: u32, date: i64, headers: &str) -> Item {
        Item {
            id,
            date,
            keys: SortKeys::of_header(format!("{headers}\r\n\r\n").as_bytes()),
        }
    }

    fn answer(threads: &Threads) -> String {
        String::from_utf8(thread_response(threads)).unwrap()
    }

    /// A tree spelled as (id, children) with 0 for a dummy.
    enum T {
        N(u32, Vec<T>),
    }

    fn leaf(id: u32) -> T {
        T::N(id, vec![])
    }

    fn node(id: u32, children: Vec<T>) -> T {
        T::N(id, children)
    }

    fn flat(trees: Vec<T>) -> Threads {
        fn add(t: T, out: &mut Threads) -> usize {
            let T::N(id, children) = t;
            let children = children.into_iter().map(|c| add(c, out)).collect();
            out.add((id != 0).then_some(id), children)
        }
        let mut out = Threads::default();
        for t in trees {
            let r = add(t, &mut out);
            out.roots.push(r);
        }
        out
    }

    #[test]
    fn rfc5256_response_examples() {
        // RFC 5256 §4: "(2)(3 6 (4 23)(44 7 96))": 3's child 6 has the
        // children 4 (with 23) and 44 (with 7, then 96).
        let threads = flat(vec![
            leaf(2),
            node(
                3,
                vec![node(
                    6,
                    vec![
                        node(4, vec![leaf(23)]),
                        node(44, vec![node(7, vec![leaf(96)])]),
                    ],
                )],
            ),
        ]);
        assert_eq!(answer(&threads), "THREAD (2)(3 6 (4 23)(44 7 96))");
        // "((3)(5))": siblings whose parent is not in the mailbox.
        assert_eq!(
            answer(&flat(vec![node(0, vec![leaf(3), leaf(5)])])),
            "THREAD ((3)(5))"
        );
        assert_eq!(answer(&Threads::default()), "THREAD");
    }

    #[test]
    fn references_builds_the_rfc_example_tree() {
        let id = |n: u32| format!("Message-ID: <{n}@example>");
        let refs = |chain: &[u32]| {
            let ids: Vec<String> = chain.iter().map(|n| format!("<{n}@example>")).collect();
            format!("References: {}", ids.join(" "))
        };
        // Sequence order differs from date order on purpose; subjects are
        // all different so that step 5 merges nothing.
        let items = vec![
            item(2, 10, &format!("{}\r\nSubject: two", id(2))),
            item(3, 20, &format!("{}\r\nSubject: three", id(3))),
            item(
                96,
                90,
                &format!("{}\r\n{}\r\nSubject: Re: x96", id(96), refs(&[3, 6, 44, 7])),
            ),
            item(
                6,
                30,
                &format!("{}\r\n{}\r\nSubject: Re: x6", id(6), refs(&[3])),
            ),
            item(
                44,
                50,
                &format!("{}\r\n{}\r\nSubject: Re: x44", id(44), refs(&[3, 6])),
            ),
            item(
                4,
                40,
                &format!("{}\r\n{}\r\nSubject: Re: x4", id(4), refs(&[3, 6])),
            ),
            item(
                23,
                45,
                &format!("{}\r\n{}\r\nSubject: Re: x23", id(23), refs(&[6, 4])),
            ),
            item(
                7,
                60,
                &format!("{}\r\nIn-Reply-To: <44@example>\r\nSubject: Re: x7", id(7)),
            ),
        ];
        assert_eq!(
            answer(&references(&items)),
            "THREAD (2)(3 6 (4 23)(44 7 96))"
        );
    }

    #[test]
    fn references_dummies_duplicates_and_loops() {
        let items = vec![
            // Two replies to a message that is not there: a dummy holds them.
            item(
                1,
                10,
                "Message-ID: <a@x>\r\nReferences: <gone@x>\r\nSubject: one",
            ),
            item(
                2,
                20,
                "Message-ID: <b@x>\r\nReferences: <gone@x>\r\nSubject: two",
            ),
            // A reply to a missing message alone: no dummy, it is a root.
            item(
                3,
                30,
                "Message-ID: <c@x>\r\nReferences: <gone2@x>\r\nSubject: three",
            ),
            // A duplicate Message-ID is a message of its own.
            item(4, 40, "Message-ID: <c@x>\r\nSubject: four"),
            // A loop is broken, not followed.
            item(
                5,
                50,
                "Message-ID: <l1@x>\r\nReferences: <l2@x>\r\nSubject: five",
            ),
            item(
                6,
                60,
                "Message-ID: <l2@x>\r\nReferences: <l1@x>\r\nSubject: six",
            ),
        ];
        assert_eq!(answer(&references(&items)), "THREAD ((1)(2))(3)(4)(6 5)");
    }

    #[test]
    fn references_gathers_roots_by_subject() {
        let items = vec![
            // A reply without references joins the original (5.C.b).
            item(1, 10, "Message-ID: <1@x>\r\nSubject: Meeting"),
            item(2, 20, "Message-ID: <2@x>\r\nSubject: Re: Meeting"),
            // Two originals with one subject: a dummy holds both (5.C.c).
            item(3, 30, "Message-ID: <3@x>\r\nSubject: Lunch"),
            item(4, 40, "Message-ID: <4@x>\r\nSubject: lunch"),
            // A root joins a dummy with its subject (5.C.a).
            item(
                5,
                50,
                "Message-ID: <5@x>\r\nReferences: <gone@x>\r\nSubject: Re: Outage",
            ),
            item(
                6,
                60,
                "Message-ID: <6@x>\r\nReferences: <gone@x>\r\nSubject: Re: Outage",
            ),
            item(7, 5, "Message-ID: <7@x>\r\nSubject: Outage"),
            // No subject: never gathered.
            item(8, 70, "Message-ID: <8@x>"),
            item(9, 80, "Message-ID: <9@x>\r\nSubject: "),
        ];
        assert_eq!(
            answer(&references(&items)),
            "THREAD ((7)(5)(6))(1 2)((3)(4))(8)(9)"
        );
    }

    #[test]
    fn a_long_chain_of_replies_is_no_trouble() {
        // Each message replies to the one before: one thread 100,000 deep.
        let n = 100_000u32;
        let items: Vec<Item> = (1..=n)
            .map(|i| Item {
                id: i,
                date: i64::from(i),
                keys: SortKeys {
                    message_id: Some(format!("{i}@x")),
                    references: if i > 1 {
                        vec![format!("{}@x", i - 1)]
                    } else {
                        vec![]
                    },
                    ..SortKeys::default()
                },
            })
            .collect();
        let threads = references(&items);
        let text = answer(&threads);
        let want: Vec<String> = (1..=n).map(|i| i.to_string()).collect();
        assert_eq!(text, format!("THREAD ({})", want.join(" ")));
        drop(threads);
    }

    #[test]
    fn ordered_subject_groups_by_base_subject() {
        let items = vec![
            item(1, 30, "Subject: b"),
            item(2, 10, "Subject: Re: b"),
            item(3, 20, "Subject: a"),
            item(4, 20, "Subject: [list] A"),
            item(5, 5, "Subject: c"),
            item(6, 40, "Subject: Fwd: b"),
        ];
        // Groups by their first (earliest) message's date; two messages are
        // written `(a b)`, more `(a (b)(c))`.
        assert_eq!(
            answer(&ordered_subject(&items)),
            "THREAD (5)(2 (1)(6))(3 4)"
        );
    }
}
