//! The key index of one shard (spec §7.4, F12): RocketMQ's hash index files under
//! `<shard>/index/`, each a 40-byte header, `slots` 4-byte slots and `entries` 20-byte entries:
//!
//! ```text
//! header: beginTimestamp i64 · endTimestamp i64 · beginPhyOffset i64 · endPhyOffset i64 ·
//!         hashSlotCount i32 · indexCount i32
//! slot:   number of the newest entry whose key hashes here (0 = none)
//! entry:  keyHash i32 · phyOffset i64 · timeDiff i32 (s since beginTimestamp) · prevIndex i32
//! ```
//!
//! Every message is indexed when it is appended, under `topic#key` for each word of `KEYS` and
//! under `topic#UNIQ_KEY`; a full file is followed by a new one. The files are memory-mapped
//! and synced before each store checkpoint, so the checkpoint vouches for them; recovery
//! indexes again whatever it scans past the checkpoint. An entry is only a hint: a lookup
//! reads each record it points at and keeps it only if its topic, key and store time match,
//! so a duplicate or a stale entry (from a cut log tail) never reaches a client.

use std::path::{Path, PathBuf};

use memmap2::MmapMut;

use crate::record::{find_property, property};

const HEADER_BYTES: usize = 40;
const SLOT_BYTES: usize = 4;
const ENTRY_BYTES: usize = 20;

/// Sizes of a new index file (`maxHashSlotNum`, `maxIndexNum`).
#[derive(Debug, Clone, Copy)]
pub struct IndexConfig {
    pub enabled: bool,
    pub slots: u32,
    pub entries: u32,
}

impl Default for IndexConfig {
    fn default() -> Self {
        IndexConfig {
            enabled: true,
            slots: 5_000_000,
            entries: 20_000_000,
        }
    }
}

/// Java's `String.hashCode` of `topic#key`, made non-negative as RocketMQ does.
pub fn key_hash(topic: &str, key: &str) -> i32 {
    let mut h: i32 = 0;
    for part in [topic, "#", key] {
        for unit in part.encode_utf16() {
            h = h.wrapping_mul(31).wrapping_add(unit as i32);
        }
    }
    // Math.abs(Integer.MIN_VALUE) stays negative in Java; RocketMQ then uses 0.
    if h == i32::MIN {
        0
    } else {
        h.abs()
    }
}

/// Entry space is allocated on disk this much at a time, ahead of the entries written.
const ALLOCATE_AHEAD_BYTES: u64 = 4 << 20;

/// One index file, mapped whole. The file is sparse; no page of the map is written before
/// its blocks are allocated (`fallocate`), so a full disk refuses an entry (the message
/// goes unindexed, loudly) instead of faulting the process with SIGBUS.
struct IndexFile {
    path: PathBuf,
    map: MmapMut,
    file: std::fs::File,
    /// Bytes from the start known to have blocks on disk.
    allocated: u64,
    slots: u32,
    entries: u32,
}

/// Allocates blocks for `[from, to)` of `file`. A filesystem without fallocate cannot be
/// protected this way: the range counts as allocated.
fn allocate(file: &std::fs::File, from: u64, to: u64) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    if to <= from {
        return Ok(());
    }
    // SAFETY: fallocate on our own open descriptor; mode 0 only allocates blocks.
    let rc = unsafe { libc::fallocate(file.as_raw_fd(), 0, from as i64, (to - from) as i64) };
    if rc == 0 {
        return Ok(());
    }
    let e = std::io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EOPNOTSUPP) {
        return Ok(());
    }
    Err(e)
}

impl IndexFile {
    fn bytes_for(slots: u32, entries: u32) -> u64 {
        HEADER_BYTES as u64 + slots as u64 * SLOT_BYTES as u64 + entries as u64 * ENTRY_BYTES as u64
    }

    #[allow(
        clippy::disallowed_methods,
        reason = "index files are opened before the shard serves and when one fills; the file is sparse"
    )]
    fn create(path: &Path, slots: u32, entries: u32) -> std::io::Result<IndexFile> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)?;
        let len = Self::bytes_for(slots, entries);
        file.set_len(len)?;
        let first = (HEADER_BYTES as u64 + slots as u64 * SLOT_BYTES as u64 + ALLOCATE_AHEAD_BYTES)
            .min(len);
        if let Err(e) = allocate(&file, 0, first) {
            drop(file);
            let _ = std::fs::remove_file(path);
            return Err(e);
        }
        // SAFETY: the file is this shard's own; nothing else maps or truncates it.
        let map = unsafe { MmapMut::map_mut(&file)? };
        let mut f = IndexFile {
            path: path.to_path_buf(),
            map,
            file,
            allocated: first,
            slots,
            entries,
        };
        f.set_i32(32, slots as i32);
        f.set_i32(36, 1);
        Ok(f)
    }

    #[allow(
        clippy::disallowed_methods,
        reason = "start-up, before the shard serves"
    )]
    fn open(path: &Path) -> Result<IndexFile, String> {
        let bad = |why: String| format!("index file {}: {why}", path.display());
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| bad(e.to_string()))?;
        let len = file.metadata().map_err(|e| bad(e.to_string()))?.len();
        if len < HEADER_BYTES as u64 {
            return Err(bad(format!("{len} bytes is shorter than its header")));
        }
        // SAFETY: as in `create`.
        let map = unsafe { MmapMut::map_mut(&file) }.map_err(|e| bad(e.to_string()))?;
        let mut f = IndexFile {
            path: path.to_path_buf(),
            map,
            file,
            // Nothing is known allocated: the first entry added allocates what it needs.
            allocated: 0,
            slots: 0,
            entries: 0,
        };
        let slots = f.i32(32);
        let used = f.i32(36);
        if slots <= 0 {
            return Err(bad(format!("hashSlotCount {slots}")));
        }
        let rest = len - HEADER_BYTES as u64 - slots as u64 * SLOT_BYTES as u64;
        let entries = rest / ENTRY_BYTES as u64;
        if len < HEADER_BYTES as u64 + slots as u64 * SLOT_BYTES as u64
            || used < 1
            || used as u64 > entries + 1
        {
            return Err(bad(format!(
                "header (slots {slots}, count {used}) does not fit its {len} bytes"
            )));
        }
        f.slots = slots as u32;
        f.entries = entries as u32;
        Ok(f)
    }

    fn i32(&self, at: usize) -> i32 {
        i32::from_be_bytes(self.map[at..at + 4].try_into().expect("4 bytes"))
    }
    fn i64(&self, at: usize) -> i64 {
        i64::from_be_bytes(self.map[at..at + 8].try_into().expect("8 bytes"))
    }
    fn set_i32(&mut self, at: usize, v: i32) {
        self.map[at..at + 4].copy_from_slice(&v.to_be_bytes());
    }
    fn set_i64(&mut self, at: usize, v: i64) {
        self.map[at..at + 8].copy_from_slice(&v.to_be_bytes());
    }

    fn count(&self) -> u32 {
        self.i32(36) as u32
    }
    fn is_full(&self) -> bool {
        self.count() > self.entries
    }
    fn begin_timestamp(&self) -> i64 {
        self.i64(0)
    }
    fn end_timestamp(&self) -> i64 {
        self.i64(8)
    }
    fn end_phy_offset(&self) -> i64 {
        self.i64(24)
    }
    fn slot_at(&self, hash: i32) -> usize {
        HEADER_BYTES + (hash as u32 % self.slots) as usize * SLOT_BYTES
    }
    fn entry_at(&self, n: u32) -> usize {
        HEADER_BYTES + self.slots as usize * SLOT_BYTES + (n as usize - 1) * ENTRY_BYTES
    }

    /// Makes sure every page the next entry writes has blocks on disk.
    fn ensure_room(&mut self) -> std::io::Result<()> {
        let need = (self.entry_at(self.count()) + ENTRY_BYTES) as u64;
        if need <= self.allocated {
            return Ok(());
        }
        let len = self.map.len() as u64;
        let to = (need + ALLOCATE_AHEAD_BYTES).min(len);
        // From 0: the header and slot table of a file opened after a restart may be holes.
        allocate(&self.file, 0, to)?;
        self.allocated = to;
        Ok(())
    }

    /// Adds one entry; the caller checked the file is not full and has room.
    fn put(&mut self, hash: i32, phy: u64, store_ms: i64) {
        let n = self.count();
        if n == 1 {
            self.set_i64(0, store_ms);
            self.set_i64(16, phy as i64);
        }
        let slot = self.slot_at(hash);
        let prev = self.i32(slot);
        let diff = ((store_ms - self.begin_timestamp()) / 1000).clamp(0, i32::MAX as i64) as i32;
        let at = self.entry_at(n);
        self.set_i32(at, hash);
        self.set_i64(at + 4, phy as i64);
        self.set_i32(at + 12, diff);
        self.set_i32(at + 16, prev);
        self.set_i32(slot, n as i32);
        self.set_i64(8, store_ms.max(self.end_timestamp()));
        self.set_i64(24, (phy as i64).max(self.end_phy_offset()));
        self.set_i32(36, n as i32 + 1);
    }

    /// Physical offsets of entries for `hash` stored within [begin_ms, end_ms], newest first.
    fn select(&self, hash: i32, begin_ms: i64, end_ms: i64, max: usize, out: &mut Vec<u64>) {
        if self.count() <= 1 || end_ms < self.begin_timestamp() || begin_ms > self.end_timestamp() {
            return;
        }
        let mut n = self.i32(self.slot_at(hash));
        let mut steps = 0u32;
        while n > 0 && (n as u32) < self.count() && out.len() < max && steps < self.entries {
            let at = self.entry_at(n as u32);
            let stored = self.begin_timestamp() + self.i32(at + 12) as i64 * 1000;
            // Entries hold whole seconds: widen the range by a second so none is missed; the
            // caller checks the record's exact store time.
            if self.i32(at) == hash && stored >= begin_ms - 1000 && stored <= end_ms {
                out.push(self.i64(at + 4) as u64);
            }
            let prev = self.i32(at + 16);
            if prev >= n {
                break; // a damaged chain: never loop
            }
            n = prev;
            steps += 1;
        }
    }
}

/// A shard's index files, oldest first; the last one takes new entries.
pub struct KeyIndex {
    dir: PathBuf,
    config: IndexConfig,
    files: Vec<IndexFile>,
    /// Entries not written because their blocks could not be allocated.
    refused: u64,
}

impl KeyIndex {
    /// Opens the files under `dir` (sorted by name, their first physical offset). A damaged
    /// file is an error naming it; the caller rebuilds the index from the log.
    #[allow(
        clippy::disallowed_methods,
        reason = "start-up, before the shard serves"
    )]
    pub fn open(dir: &Path, config: IndexConfig) -> Result<KeyIndex, String> {
        let mut files = Vec::new();
        if config.enabled {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
                .map_err(|e| format!("{}: {e}", dir.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_none())
                .collect();
            names.sort();
            for path in names {
                files.push(IndexFile::open(&path)?);
            }
        }
        Ok(KeyIndex {
            dir: dir.to_path_buf(),
            config,
            files,
            refused: 0,
        })
    }

    /// Removes every index file (before a rebuild from the whole log).
    #[allow(
        clippy::disallowed_methods,
        reason = "start-up, before the shard serves"
    )]
    pub fn discard(dir: &Path) -> std::io::Result<()> {
        match std::fs::remove_dir_all(dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Indexes one appended message under its keys and UNIQ_KEY.
    pub fn add(&mut self, topic: &str, properties: &str, phy: u64, store_ms: i64) {
        if !self.config.enabled {
            return;
        }
        if let Some(keys) = find_property(properties, property::KEYS) {
            for key in keys.split(' ').filter(|k| !k.is_empty()) {
                self.put(key_hash(topic, key), phy, store_ms);
            }
        }
        if let Some(uniq) = find_property(properties, property::UNIQ_KEY) {
            self.put(key_hash(topic, uniq), phy, store_ms);
        }
    }

    fn put(&mut self, hash: i32, phy: u64, store_ms: i64) {
        if self.files.last().is_none_or(IndexFile::is_full) {
            // Named by first offset, then sequence: a tiny file can fill within one message.
            let seq = self.files.last().map_or(0, |f| sequence_of(&f.path) + 1);
            let path = self.dir.join(format!("{phy:020}_{seq:06}"));
            match IndexFile::create(&path, self.config.slots, self.config.entries) {
                Ok(f) => self.files.push(f),
                Err(e) => return self.refuse(&format!("index file {}: {e}", path.display())),
            }
        }
        let file = self.files.last_mut().expect("a file was opened above");
        if let Err(e) = file.ensure_room() {
            return self.refuse(&format!("index {}: {e}", self.dir.display()));
        }
        file.put(hash, phy, store_ms);
    }

    /// Counts an entry that could not be written, with one line per power of two: a full
    /// disk refuses every message.
    fn refuse(&mut self, why: &str) {
        self.refused += 1;
        if self.refused.is_power_of_two() {
            log::error!("{why}; {} index entries not written so far", self.refused);
        }
    }

    /// Candidate physical offsets for `topic#key` stored within [begin_ms, end_ms], newest
    /// file first, at most `max` (before the caller's checks).
    pub fn lookup(
        &self,
        topic: &str,
        key: &str,
        begin_ms: i64,
        end_ms: i64,
        max: usize,
    ) -> Vec<u64> {
        let hash = key_hash(topic, key);
        let mut out = Vec::new();
        for f in self.files.iter().rev() {
            f.select(hash, begin_ms, end_ms, max, &mut out);
            if out.len() >= max {
                break;
            }
        }
        out
    }

    /// The newest file's end timestamp and physical offset (QUERY_MESSAGE's answer header).
    pub fn last_update(&self) -> (i64, i64) {
        self.files
            .last()
            .map_or((0, 0), |f| (f.end_timestamp(), f.end_phy_offset()))
    }

    /// Closes the files that point only below `log_min` (into deleted log segments), never
    /// the newest, and returns their paths for the caller to remove. The caller must not
    /// hold `regions()` of them (the store removes files only between persist rounds).
    pub fn close_below(&mut self, log_min: u64) -> Vec<PathBuf> {
        let newest = self.files.len().saturating_sub(1);
        let stale = self.files[..newest]
            .iter()
            .take_while(|f| (f.end_phy_offset() as u64) < log_min)
            .count();
        self.files.drain(..stale).map(|f| f.path).collect()
    }

    /// The address and length of each mapping, for a sync off the shard thread.
    pub fn regions(&self) -> Vec<(usize, usize)> {
        self.files
            .iter()
            .map(|f| (f.map.as_ptr() as usize, f.map.len()))
            .collect()
    }

    #[cfg(test)]
    #[allow(clippy::disallowed_methods, reason = "tests read the directory")]
    fn file_names(&self) -> Vec<PathBuf> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        names.sort();
        names
    }
}

/// The sequence number a file's name ends with (`<first offset>_<sequence>`).
fn sequence_of(path: &Path) -> u64 {
    path.file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.rsplit('_').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Writes the dirty pages of `regions` (from `KeyIndex::regions`) to disk.
///
/// # Safety
/// The mappings must stay mapped until this returns: `KeyIndex` never unmaps a file while the
/// store is open, and the store outlives its persist rounds.
pub unsafe fn sync_regions(regions: &[(usize, usize)]) -> std::io::Result<()> {
    for &(addr, len) in regions {
        // SAFETY: the caller guarantees the region is a live mapping; msync reads no memory
        // through Rust references.
        if unsafe { libc::msync(addr as *mut libc::c_void, len, libc::MS_SYNC) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::disallowed_methods, reason = "tests damage files directly")]

    use super::*;

    fn props(keys: &str, uniq: &str) -> String {
        format!("KEYS\u{1}{keys}\u{2}UNIQ_KEY\u{1}{uniq}\u{2}")
    }

    #[test]
    fn hashes_match_java_string_hash_code() {
        // "T#k".hashCode(): 'T' = 84, '#' = 35, 'k' = 107
        assert_eq!(key_hash("T", "k"), 84 * 961 + 35 * 31 + 107);
    }

    #[test]
    fn a_file_smaller_than_one_messages_keys_rolls_over_within_it() {
        let dir = tempfile::tempdir().unwrap();
        let config = IndexConfig {
            enabled: true,
            slots: 1,
            entries: 1,
        };
        let mut index = KeyIndex::open(dir.path(), config).unwrap();
        index.add("T", &props("a b", "U"), 500, 1_000);
        assert_eq!(index.file_names().len(), 3);
        for key in ["a", "b", "U"] {
            assert_eq!(index.lookup("T", key, 0, i64::MAX, 8), [500], "{key}");
        }
        drop(index);
        let again = KeyIndex::open(dir.path(), config).unwrap();
        assert_eq!(again.lookup("T", "a", 0, i64::MAX, 8), [500]);
    }

    #[test]
    fn keys_are_found_newest_first_across_files_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let config = IndexConfig {
            enabled: true,
            slots: 7,
            entries: 10,
        };
        let mut index = KeyIndex::open(dir.path(), config).unwrap();
        for i in 0..30u64 {
            let key = if i % 3 == 0 { "order-a" } else { "order-b" };
            index.add(
                "T",
                &props(&format!("{key} common"), &format!("U{i}")),
                i * 100,
                1_000_000 + i as i64 * 1000,
            );
        }
        // 90 entries over files of 10.
        assert_eq!(index.file_names().len(), 9);
        let a = index.lookup("T", "order-a", 0, i64::MAX, 64);
        assert_eq!(
            a,
            (0..30)
                .rev()
                .filter(|i| i % 3 == 0)
                .map(|i| i * 100)
                .collect::<Vec<_>>()
        );
        assert_eq!(index.lookup("T", "common", 0, i64::MAX, 5).len(), 5);
        assert_eq!(index.lookup("T", "U7", 0, i64::MAX, 64), [700]);
        assert!(index.lookup("Other", "U7", 0, i64::MAX, 64).is_empty());
        // Time range: messages 10..=12 were stored at 1_010_000..=1_012_000.
        let ranged = index.lookup("T", "common", 1_010_000, 1_012_000, 64);
        assert!(
            ranged.contains(&1000) && ranged.contains(&1200),
            "{ranged:?}"
        );
        assert!(!ranged.contains(&2000), "{ranged:?}");
        drop(index);
        let again = KeyIndex::open(dir.path(), config).unwrap();
        assert_eq!(again.lookup("T", "U29", 0, i64::MAX, 64), [2900]);
        // A damaged header is named.
        let first = again.file_names()[0].clone();
        drop(again);
        std::fs::write(&first, [0u8; 12]).unwrap();
        let err = KeyIndex::open(dir.path(), config).err().unwrap();
        assert!(err.contains(&first.display().to_string()), "{err}");
    }
}
