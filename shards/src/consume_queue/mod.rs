//! Consume queues: per (topic, queue id), the ordered list of entries `commit-log offset ·
//! size · tag code` (spec §7.3), indexed by queue offset. Owned by the shard that owns the
//! queue; rebuilt from the commit log at start-up and extended by the writer task as batches
//! become durable, so a consumer never sees an entry that is not acknowledged.
//!
//! `select` is the pure core of a pull: from an offset, take up to N entries that pass the tag
//! filter, within a byte budget.

pub mod file;

use std::collections::HashMap;

/// One consume-queue unit (spec §7.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CqEntry {
    pub commit_log_offset: u64,
    pub size: u32,
    pub tags_code: i64,
    pub store_timestamp: i64,
}

#[derive(Debug, Default)]
pub struct ConsumeQueue {
    /// Queue offset of `entries[0]`: entries below it went with the log segments retention
    /// deleted (RocketMQ's min offset).
    base: u64,
    entries: Vec<CqEntry>,
    /// Next queue offset to assign: entries assigned but not yet durable sit between
    /// `max_offset()` and here.
    next_offset: u64,
    /// Queue offsets below this are written to the queue's file.
    persisted: u64,
}

impl ConsumeQueue {
    /// A queue loaded from its file, whose first `base` units were deleted: the entries
    /// after them are on disk already.
    pub fn from_persisted(base: u64, entries: Vec<CqEntry>) -> ConsumeQueue {
        let end = base + entries.len() as u64;
        ConsumeQueue {
            base,
            entries,
            next_offset: end,
            persisted: end,
        }
    }

    /// Entries not yet written to the file, with the queue offset of the first.
    pub fn unpersisted(&self) -> (u64, &[CqEntry]) {
        let from = self.persisted.max(self.base);
        (from, &self.entries[(from - self.base) as usize..])
    }

    pub fn mark_persisted(&mut self, upto: u64) {
        self.persisted = self.persisted.max(upto.min(self.max_offset()));
    }

    /// Drops the entries whose records lie below `log_min` (deleted segments); returns how
    /// many went. Entries are in log order, so they are a prefix.
    pub fn trim_below(&mut self, log_min: u64) -> u64 {
        let n = self
            .entries
            .partition_point(|e| e.commit_log_offset < log_min);
        if n > 0 {
            self.entries.drain(..n);
            self.entries.shrink_to(self.entries.len() * 2);
            self.base += n as u64;
        }
        n as u64
    }

    /// For a recovery that finds the queue's first record in a log whose older segments
    /// were deleted: the queue starts at that record's offset.
    pub fn start_at(&mut self, queue_offset: u64) {
        if self.entries.is_empty() && queue_offset > self.base {
            self.base = queue_offset;
            self.next_offset = self.next_offset.max(queue_offset);
            self.persisted = self.persisted.max(queue_offset);
        }
    }

    /// The queue offset the next append gets.
    pub fn next_offset(&self) -> u64 {
        self.next_offset
    }

    /// Reserves the next queue offset for an append.
    pub fn reserve(&mut self) -> u64 {
        let offset = self.next_offset;
        self.next_offset += 1;
        offset
    }

    /// Adds the entry for `queue_offset`, which must be the next one in order.
    pub fn push(&mut self, queue_offset: u64, entry: CqEntry) -> Result<(), (u64, u64)> {
        if queue_offset != self.max_offset() {
            return Err((queue_offset, self.max_offset()));
        }
        self.entries.push(entry);
        self.next_offset = self.next_offset.max(self.max_offset());
        Ok(())
    }

    /// The oldest offset still held (0 until retention deleted something).
    pub fn min_offset(&self) -> u64 {
        self.base
    }

    /// One past the last durable entry (RocketMQ's "max offset").
    pub fn max_offset(&self) -> u64 {
        self.base + self.entries.len() as u64
    }

    pub fn get(&self, queue_offset: u64) -> Option<&CqEntry> {
        let index = queue_offset.checked_sub(self.base)?;
        self.entries.get(usize::try_from(index).ok()?)
    }

    /// The entries held, the first at `min_offset()`.
    pub fn entries(&self) -> &[CqEntry] {
        &self.entries
    }

    /// `select` over this queue from queue offset `from` (at least `min_offset()`).
    pub fn select(&self, from: u64, filter: &TagFilter, limits: PullLimits) -> Selection {
        let mut selection = select(
            &self.entries,
            from.saturating_sub(self.base),
            filter,
            limits,
        );
        for (offset, _) in &mut selection.found {
            *offset += self.base;
        }
        selection.next_offset += self.base;
        selection
    }

    /// First offset whose store time is ≥ `timestamp` (`max_offset` if none), or with
    /// `Boundary::Upper` the last offset whose store time is ≤ `timestamp` (`min_offset` if
    /// none).
    pub fn search_by_time(&self, timestamp: i64, boundary: Boundary) -> u64 {
        let first_at_or_after = self
            .entries
            .partition_point(|e| e.store_timestamp < timestamp);
        match boundary {
            Boundary::Lower => self.base + first_at_or_after as u64,
            Boundary::Upper => {
                let first_after = self
                    .entries
                    .partition_point(|e| e.store_timestamp <= timestamp);
                self.base + first_after.saturating_sub(1) as u64
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Boundary {
    Lower,
    Upper,
}

/// A subscription's tag filter (spec §4.4): everything, or a set of tag hash codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagFilter {
    All,
    Codes(Vec<i64>),
}

impl TagFilter {
    /// Parses `*`, empty, or `a || b || c`.
    pub fn parse(expression: &str) -> TagFilter {
        let expression = expression.trim();
        if expression.is_empty() || expression == "*" {
            return TagFilter::All;
        }
        let mut codes: Vec<i64> = expression
            .split("||")
            .map(str::trim)
            .filter(|tag| !tag.is_empty())
            .map(crate::record::tags_code)
            .collect();
        if codes.is_empty() {
            return TagFilter::All;
        }
        codes.sort_unstable();
        codes.dedup();
        TagFilter::Codes(codes)
    }

    pub fn from_codes(codes: &[i64]) -> TagFilter {
        if codes.is_empty() {
            TagFilter::All
        } else {
            let mut codes = codes.to_vec();
            codes.sort_unstable();
            codes.dedup();
            TagFilter::Codes(codes)
        }
    }

    pub fn matches(&self, tags_code: i64) -> bool {
        match self {
            TagFilter::All => true,
            TagFilter::Codes(codes) => tags_code != 0 && codes.binary_search(&tags_code).is_ok(),
        }
    }
}

/// What a pull takes from a queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// Matching entries with their queue offsets, in order.
    pub found: Vec<(u64, CqEntry)>,
    /// Where the next pull continues: past every scanned entry.
    pub next_offset: u64,
}

/// Limits of one pull.
#[derive(Debug, Clone, Copy)]
pub struct PullLimits {
    pub messages_max: usize,
    pub bytes_max: usize,
    /// Entries scanned at most, matching or not, so a sparse filter cannot stall the shard.
    pub scan_max: usize,
}

/// Selects entries of `entries` from `from`.
pub fn select(entries: &[CqEntry], from: u64, filter: &TagFilter, limits: PullLimits) -> Selection {
    let mut found = Vec::new();
    let mut bytes = 0usize;
    let mut next = from;
    let start = usize::try_from(from)
        .unwrap_or(usize::MAX)
        .min(entries.len());
    for (i, entry) in entries[start..].iter().enumerate().take(limits.scan_max) {
        let offset = from + i as u64;
        if filter.matches(entry.tags_code) {
            if !found.is_empty() && bytes + entry.size as usize > limits.bytes_max {
                break;
            }
            bytes += entry.size as usize;
            found.push((offset, *entry));
        }
        next = offset + 1;
        if found.len() >= limits.messages_max {
            break;
        }
    }
    Selection {
        found,
        next_offset: next,
    }
}

/// The consume queues of one shard, by topic then queue id.
#[derive(Debug, Default)]
pub struct ConsumeQueues {
    topics: HashMap<String, Vec<ConsumeQueue>>,
}

impl ConsumeQueues {
    pub fn get(&self, topic: &str, queue_id: i32) -> Option<&ConsumeQueue> {
        self.topics.get(topic)?.get(usize::try_from(queue_id).ok()?)
    }

    pub fn get_or_create(&mut self, topic: &str, queue_id: u32) -> &mut ConsumeQueue {
        if !self.topics.contains_key(topic) {
            self.topics.insert(topic.to_string(), Vec::new());
        }
        let queues = self.topics.get_mut(topic).expect("inserted above");
        let index = queue_id as usize;
        if queues.len() <= index {
            queues.resize_with(index + 1, ConsumeQueue::default);
        }
        &mut queues[index]
    }

    pub fn topics(&self) -> impl Iterator<Item = (&String, &Vec<ConsumeQueue>)> {
        self.topics.iter()
    }

    pub fn get_mut(&mut self, topic: &str, queue_id: u32) -> Option<&mut ConsumeQueue> {
        self.topics.get_mut(topic)?.get_mut(queue_id as usize)
    }

    /// Drops every entry whose record lies below `log_min`; returns how many went.
    pub fn trim_below(&mut self, log_min: u64) -> u64 {
        self.topics
            .values_mut()
            .flatten()
            .map(|q| q.trim_below(log_min))
            .sum()
    }

    /// Installs a queue loaded from disk.
    pub fn insert_loaded(&mut self, topic: &str, queue_id: u32, queue: ConsumeQueue) {
        *self.get_or_create(topic, queue_id) = queue;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entry(i: u64, tag: &str) -> CqEntry {
        CqEntry {
            commit_log_offset: i * 100,
            size: 100,
            tags_code: crate::record::tags_code(tag),
            store_timestamp: 1000 + i as i64 * 10,
        }
    }

    const LIMITS: PullLimits = PullLimits {
        messages_max: 32,
        bytes_max: 1 << 20,
        scan_max: 1000,
    };

    #[test]
    fn tag_filter_parses_star_and_alternatives() {
        assert_eq!(TagFilter::parse("*"), TagFilter::All);
        assert_eq!(TagFilter::parse(""), TagFilter::All);
        let f = TagFilter::parse("TagA || TagB");
        assert!(f.matches(crate::record::tags_code("TagA")));
        assert!(f.matches(crate::record::tags_code("TagB")));
        assert!(!f.matches(crate::record::tags_code("TagC")));
        assert!(!f.matches(0), "untagged messages match only *");
    }

    #[test]
    fn select_skips_non_matching_and_advances_past_them() {
        let entries: Vec<_> = ["a", "b", "a", "c", "a"]
            .iter()
            .enumerate()
            .map(|(i, t)| entry(i as u64, t))
            .collect();
        let sel = select(&entries, 1, &TagFilter::parse("a"), LIMITS);
        assert_eq!(
            sel.found.iter().map(|f| f.0).collect::<Vec<_>>(),
            vec![2, 4]
        );
        assert_eq!(sel.next_offset, 5);
        let none = select(&entries, 3, &TagFilter::parse("b"), LIMITS);
        assert!(none.found.is_empty());
        assert_eq!(none.next_offset, 5);
    }

    #[test]
    fn select_respects_message_and_byte_limits() {
        let entries: Vec<_> = (0..10).map(|i| entry(i, "a")).collect();
        let sel = select(
            &entries,
            0,
            &TagFilter::All,
            PullLimits {
                messages_max: 3,
                ..LIMITS
            },
        );
        assert_eq!((sel.found.len(), sel.next_offset), (3, 3));
        let sel = select(
            &entries,
            0,
            &TagFilter::All,
            PullLimits {
                bytes_max: 250,
                ..LIMITS
            },
        );
        assert_eq!((sel.found.len(), sel.next_offset), (2, 2));
        let sel = select(
            &entries,
            0,
            &TagFilter::All,
            PullLimits {
                bytes_max: 10,
                ..LIMITS
            },
        );
        assert_eq!(sel.found.len(), 1, "one message always fits");
    }

    #[test]
    fn search_by_time_finds_boundaries() {
        let mut q = ConsumeQueue::default();
        for i in 0..5 {
            let o = q.reserve();
            q.push(o, entry(i, "a")).unwrap();
        }
        assert_eq!(q.search_by_time(1020, Boundary::Lower), 2);
        assert_eq!(q.search_by_time(1025, Boundary::Lower), 3);
        assert_eq!(q.search_by_time(1025, Boundary::Upper), 2);
        assert_eq!(q.search_by_time(0, Boundary::Lower), 0);
        assert_eq!(q.search_by_time(9999, Boundary::Lower), 5);
    }

    #[test]
    fn a_trimmed_queue_keeps_its_offsets() {
        let mut q = ConsumeQueue::default();
        for i in 0..6 {
            let o = q.reserve();
            q.push(o, entry(i, if i % 2 == 0 { "a" } else { "b" }))
                .unwrap();
        }
        assert_eq!(q.trim_below(300), 3);
        assert_eq!((q.min_offset(), q.max_offset()), (3, 6));
        assert!(q.get(2).is_none());
        assert_eq!(q.get(3).unwrap().commit_log_offset, 300);
        let sel = q.select(3, &TagFilter::parse("a"), LIMITS);
        assert_eq!(sel.found.iter().map(|f| f.0).collect::<Vec<_>>(), vec![4]);
        assert_eq!(sel.next_offset, 6);
        assert_eq!(q.search_by_time(1040, Boundary::Lower), 4);
        assert_eq!(q.unpersisted().0, 3);
        let o = q.reserve();
        assert_eq!(o, 6);
        q.push(o, entry(6, "a")).unwrap();
        assert_eq!(q.trim_below(0), 0);
    }

    proptest! {
        #[test]
        fn select_never_returns_offsets_outside_the_scan(len in 0u64..50, from in 0u64..60, max in 1usize..10) {
            let entries: Vec<_> = (0..len).map(|i| entry(i, if i % 3 == 0 { "a" } else { "b" })).collect();
            let sel = select(&entries, from, &TagFilter::parse("a"), PullLimits { messages_max: max, ..LIMITS });
            prop_assert!(sel.found.len() <= max);
            for (o, _) in &sel.found {
                prop_assert!(*o >= from && *o < sel.next_offset);
                prop_assert_eq!(o % 3, 0);
            }
            prop_assert!(sel.next_offset >= from.min(len));
        }
    }
}
