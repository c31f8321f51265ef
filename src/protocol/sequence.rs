//! Sequence sets (RFC 3501 `sequence-set`): `1:4,7,9:*`.
//!
//! A set is kept as the client wrote it, with `*` unresolved, because `*` means
//! "the largest number the client knows" and that is only known when the
//! command runs. Ranges may be written backwards (`4:2` is `2:4`).
//!
//! SEARCHRES's `$` (RFC 5182 §3: the whole set, never part of one) is the
//! set with no ranges: only the session knows what was saved, and replaces it
//! before a command runs. Left unreplaced it names no message, which is what
//! `$` means before any SEARCH saved a result.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqNum {
    Value(u32),
    Star,
}

impl SeqNum {
    fn resolve(self, star: u32) -> u32 {
        match self {
            SeqNum::Value(v) => v,
            SeqNum::Star => star,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SequenceSet(pub Vec<(SeqNum, SeqNum)>);

impl SequenceSet {
    /// Parses the textual form; `None` when it is not a valid sequence set
    /// (empty, a zero, a number over u32, stray characters).
    pub fn parse(s: &[u8]) -> Option<SequenceSet> {
        if s.is_empty() {
            return None;
        }
        if s == b"$" {
            return Some(SequenceSet::saved());
        }
        let mut ranges = Vec::new();
        for item in s.split(|&b| b == b',') {
            let mut ends = item.splitn(2, |&b| b == b':');
            let lo = parse_num(ends.next()?)?;
            let hi = match ends.next() {
                Some(h) => parse_num(h)?,
                None => lo,
            };
            ranges.push((lo, hi));
        }
        Some(SequenceSet(ranges))
    }

    /// SEARCHRES's `$`: the result a SEARCH saved.
    pub fn saved() -> SequenceSet {
        SequenceSet(Vec::new())
    }

    pub fn is_saved(&self) -> bool {
        self.0.is_empty()
    }

    /// The set of exactly `nums` (ascending), runs joined: `1:3,7`.
    /// Empty `nums` gives `$`'s empty set.
    pub fn of_sorted(nums: &[u32]) -> SequenceSet {
        let mut ranges: Vec<(SeqNum, SeqNum)> = Vec::new();
        for &n in nums {
            match ranges.last_mut() {
                Some((_, SeqNum::Value(hi))) if hi.checked_add(1) == Some(n) => *hi = n,
                _ => ranges.push((SeqNum::Value(n), SeqNum::Value(n))),
            }
        }
        SequenceSet(ranges)
    }

    /// The ranges as `(low, high)` with `*` replaced by `star` and each range
    /// put the right way round.
    pub fn ranges(&self, star: u32) -> impl Iterator<Item = (u32, u32)> + '_ {
        self.0.iter().map(move |&(a, b)| {
            let (a, b) = (a.resolve(star), b.resolve(star));
            if a <= b { (a, b) } else { (b, a) }
        })
    }

    pub fn contains(&self, n: u32, star: u32) -> bool {
        self.ranges(star).any(|(lo, hi)| lo <= n && n <= hi)
    }

    /// The set with `*` resolved, as sorted, disjoint, non-adjacent ranges:
    /// `5:7,1:3,2,4` is `1:7`. However the client repeats or overlaps its
    /// ranges, the result has at most one range per number it covers, so
    /// whatever walks it does so once per message, not once per range.
    pub fn normalized(&self, star: u32) -> Ranges {
        let mut v: Vec<(u32, u32)> = self.ranges(star).collect();
        v.sort_unstable();
        let mut out: Vec<(u32, u32)> = Vec::with_capacity(v.len().min(1024));
        for (lo, hi) in v {
            match out.last_mut() {
                Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
                _ => out.push((lo, hi)),
            }
        }
        Ranges(out)
    }

    /// True when any element is `*` (a sequence-number `*` on an empty
    /// mailbox is an error).
    pub fn has_star(&self) -> bool {
        self.0
            .iter()
            .any(|&(a, b)| a == SeqNum::Star || b == SeqNum::Star)
    }

    /// The largest explicit number in the set (ignoring `*`), for range checks.
    pub fn max_value(&self) -> u32 {
        self.0
            .iter()
            .flat_map(|&(a, b)| [a, b])
            .filter_map(|n| match n {
                SeqNum::Value(v) => Some(v),
                SeqNum::Star => None,
            })
            .max()
            .unwrap_or(0)
    }
}

/// Sorted, disjoint ranges of numbers (see [`SequenceSet::normalized`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ranges(Vec<(u32, u32)>);

impl Ranges {
    /// Whether `n` is in one of the ranges, by binary search.
    pub fn contains(&self, n: u32) -> bool {
        let i = self.0.partition_point(|&(_, hi)| hi < n);
        self.0.get(i).is_some_and(|&(lo, _)| lo <= n)
    }

    pub fn iter(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        self.0.iter().copied()
    }

    /// The largest number covered.
    pub fn max(&self) -> Option<u32> {
        self.0.last().map(|&(_, hi)| hi)
    }
}

fn parse_num(s: &[u8]) -> Option<SeqNum> {
    if s == b"*" {
        return Some(SeqNum::Star);
    }
    if s.is_empty() || s.len() > 10 || !s.iter().all(u8::is_ascii_digit) || s[0] == b'0' {
        return None;
    }
    let v: u64 = std::str::from_utf8(s).ok()?.parse().ok()?;
    u32::try_from(v).ok().map(SeqNum::Value)
}

impl fmt::Display for SequenceSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_saved() {
            return f.write_str("$");
        }
        for (i, &(a, b)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write_num(f, a)?;
            if a != b {
                f.write_str(":")?;
                write_num(f, b)?;
            }
        }
        Ok(())
    }
}

fn write_num(f: &mut fmt::Formatter<'_>, n: SeqNum) -> fmt::Result {
    match n {
        SeqNum::Value(v) => write!(f, "{v}"),
        SeqNum::Star => f.write_str("*"),
    }
}

/// Formats numbers (in the order given) compactly, joining consecutive runs:
/// `[1,2,3,5]` → `1:3,5`. Used for COPYUID, whose two sets must correspond
/// element by element, so the order is kept rather than sorted.
pub fn compact(nums: &[u32]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < nums.len() {
        let start = nums[i];
        let mut j = i;
        while j + 1 < nums.len() && nums[j + 1] == nums[j].wrapping_add(1) {
            j += 1;
        }
        if !out.is_empty() {
            out.push(',');
        }
        if j > i {
            out.push_str(&format!("{}:{}", start, nums[j]));
        } else {
            out.push_str(&start.to_string());
        }
        i = j + 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_resolve() {
        let s = SequenceSet::parse(b"1:4,7,9:*").unwrap();
        assert_eq!(
            s.ranges(20).collect::<Vec<_>>(),
            vec![(1, 4), (7, 7), (9, 20)]
        );
        assert!(s.contains(20, 20));
        assert!(!s.contains(8, 20));
        assert!(s.has_star());
    }

    #[test]
    fn reversed_range_and_star_below() {
        let s = SequenceSet::parse(b"4:2").unwrap();
        assert_eq!(s.ranges(10).collect::<Vec<_>>(), vec![(2, 4)]);
        // RFC 3501 §6.4.8: UID 500:* with max UID 300 covers 300.
        let s = SequenceSet::parse(b"500:*").unwrap();
        assert!(s.contains(300, 300));
    }

    #[test]
    fn rejects_bad() {
        for bad in [
            &b""[..],
            b"0",
            b"1:",
            b":2",
            b"1,,2",
            b"a",
            b"4294967296",
            b"01",
        ] {
            assert!(SequenceSet::parse(bad).is_none(), "{bad:?}");
        }
        assert!(SequenceSet::parse(b"4294967295").is_some());
    }

    #[test]
    fn normalized_merges_repeats_and_overlaps() {
        let s = SequenceSet::parse(b"5:7,1:3,2,4,10:*,20").unwrap();
        let r = s.normalized(12);
        assert_eq!(
            r.iter().collect::<Vec<_>>(),
            vec![(1, 7), (10, 12), (20, 20)]
        );
        assert!(r.contains(1) && r.contains(7) && r.contains(11) && r.contains(20));
        assert!(!r.contains(8) && !r.contains(13) && !r.contains(21) && !r.contains(0));
        assert_eq!(r.max(), Some(20));
        // 16,000 copies of 1:* are one range, not 16,000.
        let text = vec!["1:*"; 16_000].join(",");
        let s = SequenceSet::parse(text.as_bytes()).unwrap();
        assert_eq!(s.normalized(601).iter().collect::<Vec<_>>(), vec![(1, 601)]);
        let edge = SequenceSet::parse(b"4294967295,1:4294967294").unwrap();
        assert_eq!(
            edge.normalized(1).iter().collect::<Vec<_>>(),
            vec![(1, u32::MAX)]
        );
    }

    #[test]
    fn saved_result_marker() {
        let s = SequenceSet::parse(b"$").unwrap();
        assert!(s.is_saved());
        assert_eq!(s.to_string(), "$");
        // Unreplaced, it names nothing.
        assert_eq!(s.normalized(10).iter().count(), 0);
        for bad in [&b"$,1"[..], b"1:$", b"$$", b"$:*"] {
            assert!(SequenceSet::parse(bad).is_none(), "{bad:?}");
        }
        assert_eq!(
            SequenceSet::of_sorted(&[1, 2, 3, 7, 9, 10]).to_string(),
            "1:3,7,9:10"
        );
        assert!(SequenceSet::of_sorted(&[]).is_saved());
    }

    #[test]
    fn display_and_compact() {
        assert_eq!(
            SequenceSet::parse(b"1:4,*,7").unwrap().to_string(),
            "1:4,*,7"
        );
        assert_eq!(compact(&[1, 2, 3, 5, 7, 8]), "1:3,5,7:8");
        assert_eq!(compact(&[5, 3]), "5,3");
    }
}
