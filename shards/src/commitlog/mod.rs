//! One shard's commit log: an ordered sequence of segments holding records in RocketMQ's
//! format (spec §7.1) followed by a crc32c trailer (`entry.rs`).
//!
//! Lives on one shard and never leaves it. Appends are assigned a physical offset at once and
//! buffered in `pending`; the shard's writer task hands each pending batch to the kernel in one
//! `write_at` (group commit), then, for SYNC_FLUSH, one `fdatasync`. `durable` rises to the end
//! of each completed batch: ASYNC_FLUSH acknowledges at write completion (the bytes are in the
//! page cache and survive `kill -9`), SYNC_FLUSH after the fdatasync that covers them. Reads are
//! served only below `durable`.

pub mod entry;
pub mod recovery;
mod replica;
pub use replica::truncate_closed;
mod segment;

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use glommio::io::BufferedFile;

use crate::record::RecordView;
use crate::runtime::watermark::{Signal, Watermark};
use entry::{entry_bytes, BLANK_BYTES};
use recovery::{scan_segment, End};
use segment::Segment;

#[derive(Debug, thiserror::Error)]
pub enum CommitLogError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("commit log corrupt in sealed segment {path} at offset {offset}: {reason}")]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
    #[error("commit log is not writable after an earlier I/O error")]
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushDiskType {
    Async,
    Sync,
}

#[derive(Debug, Clone)]
pub struct CommitLogConfig {
    pub dir: PathBuf,
    pub segment_bytes: u64,
    pub flush: FlushDiskType,
}

struct Pending {
    /// Commit-log offset of `bytes[0]`.
    start: u64,
    bytes: Vec<u8>,
}

pub struct CommitLog {
    config: CommitLogConfig,
    segments: RefCell<Vec<Segment>>,
    pending: RefCell<Pending>,
    /// End of everything assigned so far (= `pending.start + pending.bytes.len()`).
    reserved_end: std::cell::Cell<u64>,
    durable: Rc<Watermark>,
    /// Everything below this offset has been fdatasync'ed.
    synced: std::cell::Cell<u64>,
    wake_writer: Signal,
    /// Wakes the preallocator: the log end crossed half a segment.
    want_segment: Signal,
    /// The last preallocation failed (a full disk): appends that need the missing segment
    /// are refused until one succeeds.
    preallocation_failed: std::cell::Cell<bool>,
    /// When the write in flight began, if one is.
    write_started: std::cell::Cell<Option<std::time::Instant>>,
    /// Where a slave's log last started again (`restart_at`): no segment below is made.
    restarted_at: std::cell::Cell<u64>,
}

impl CommitLog {
    /// Opens the log in `config.dir`, scanning every segment. `on_record` sees each valid record
    /// in log order, so the caller can rebuild its consume queues. The torn tail of the last
    /// segment is cut and zeroed; an invalid entry inside an older segment is an error.
    ///
    /// Segments wholly below `scan_from` (a checkpoint: everything below it is known good and
    /// already indexed) are opened without a scan; the scan starts at `scan_from`.
    pub async fn open(
        config: CommitLogConfig,
        scan_from: u64,
        mut on_record: impl FnMut(u64, &RecordView<'_>),
    ) -> Result<Rc<CommitLog>, CommitLogError> {
        let io = |source| CommitLogError::Io {
            path: config.dir.clone(),
            source,
        };
        #[allow(
            clippy::disallowed_methods,
            reason = "start-up, before the shard serves"
        )]
        std::fs::create_dir_all(&config.dir).map_err(io)?;
        let bases = list_segments(&config.dir).map_err(io)?;
        let mut opened = Vec::with_capacity(bases.len());
        for base in bases.iter().copied() {
            opened.push(Segment::open(&config.dir, base, config.segment_bytes).await?);
        }
        // Segments preallocated ahead of the log end hold nothing yet: the log ends in the
        // last segment that has an entry (or is the first).
        let written = |s: &Segment| {
            s.bytes()
                .get(..BLANK_BYTES)
                .is_some_and(|b| b.iter().any(|x| *x != 0))
        };
        let last_written = opened.iter().rposition(written).unwrap_or(0);
        let mut segments = Vec::new();
        let mut end = 0u64;
        for (i, segment) in opened.into_iter().enumerate() {
            let base = segment.base;
            if i > last_written {
                segments.push(segment);
                continue;
            }
            let last = i == last_written;
            if !last && base + segment.len() <= scan_from {
                end = base + segment.len();
                segments.push(segment);
                continue;
            }
            let from = scan_from.saturating_sub(base).min(segment.len()) as usize;
            let scan = scan_segment(&segment.bytes()[from..], base + from as u64, &mut on_record);
            let valid_to = (from + scan.valid_bytes) as u64;
            match (&scan.end, last) {
                (End::Invalid(reason), false) => {
                    return Err(CommitLogError::Corrupt {
                        path: segment.path.clone(),
                        offset: base + valid_to,
                        reason: reason.clone(),
                    })
                }
                (End::Invalid(reason), true) => {
                    log::warn!(
                        "commit log {}: cutting torn tail at offset {}: {reason}",
                        segment.path.display(),
                        base + valid_to
                    );
                    segment.zero_from(valid_to).await?;
                }
                (End::Tail, true) => segment.zero_from(valid_to).await?,
                _ => {}
            }
            end = match scan.end {
                End::Sealed | End::Full => base + segment.len(),
                End::Zeros | End::Tail | End::Invalid(_) if !last => base + segment.len(),
                End::Zeros | End::Tail | End::Invalid(_) => base + valid_to,
            };
            segments.push(segment);
        }
        let log = CommitLog {
            config,
            segments: RefCell::new(segments),
            pending: RefCell::new(Pending {
                start: end,
                bytes: Vec::new(),
            }),
            reserved_end: std::cell::Cell::new(end),
            durable: Rc::new(Watermark::new(end)),
            synced: std::cell::Cell::new(end),
            wake_writer: Signal::default(),
            want_segment: Signal::default(),
            preallocation_failed: std::cell::Cell::new(false),
            write_started: std::cell::Cell::new(None),
            restarted_at: std::cell::Cell::new(0),
        };
        Ok(Rc::new(log))
    }

    pub fn config(&self) -> &CommitLogConfig {
        &self.config
    }

    /// Everything below this offset is acknowledged and may be served.
    pub fn durable(&self) -> &Watermark {
        &self.durable
    }

    /// The durable watermark, shared with the connections that wait on it.
    pub fn durable_rc(&self) -> Rc<Watermark> {
        self.durable.clone()
    }

    pub fn reserved_end(&self) -> u64 {
        self.reserved_end.get()
    }

    /// Largest record `append` accepts: an entry plus a blank marker must fit a segment.
    pub fn record_bytes_max(&self) -> usize {
        self.config.segment_bytes as usize - BLANK_BYTES - entry::TRAILER_BYTES
    }

    /// Assigns the next physical offset to a record of `record_bytes`, lets `encode` write it
    /// at that offset, and adds the crc32c trailer. Returns the record's offset and the end of
    /// its entry (wait for `durable() >= end` before acknowledging).
    pub fn append(
        &self,
        record_bytes: usize,
        encode: impl FnOnce(u64, &mut Vec<u8>),
    ) -> (u64, u64) {
        assert!(
            record_bytes <= self.record_bytes_max(),
            "record {record_bytes} over segment"
        );
        let mut pending = self.pending.borrow_mut();
        let mut offset = self.reserved_end.get();
        let segment_bytes = self.config.segment_bytes;
        let used = offset % segment_bytes;
        let need = (entry_bytes(record_bytes) + BLANK_BYTES) as u64;
        if used + need > segment_bytes {
            entry::push_blank(&mut pending.bytes, (segment_bytes - used) as usize);
            offset += segment_bytes - used;
        }
        let start = pending.bytes.len();
        encode(offset, &mut pending.bytes);
        assert_eq!(
            pending.bytes.len() - start,
            record_bytes,
            "encoder wrote a different size"
        );
        entry::push_trailer(&mut pending.bytes, start);
        let end = offset + entry_bytes(record_bytes) as u64;
        let half = segment_bytes / 2;
        if offset % segment_bytes < half && end % segment_bytes >= half {
            self.want_segment.raise();
        }
        self.reserved_end.set(end);
        drop(pending);
        self.wake_writer.raise();
        (offset, end)
    }

    fn has_segment(&self, base: u64) -> bool {
        self.segments.borrow().iter().rev().any(|s| s.base == base)
    }

    /// Whether an append of up to `headroom()` bytes can be taken now: the log has not failed,
    /// and the segments it would land in exist, unless nothing says they cannot be made. Once
    /// a preallocation failed (a full disk), appends that need the missing segment are refused
    /// before they take an offset, instead of failing the log when it is written.
    pub fn writable(&self) -> bool {
        if self.durable.failed() {
            return false;
        }
        if !self.preallocation_failed.get() {
            return true;
        }
        let segment_bytes = self.config.segment_bytes;
        let end = self.reserved_end.get();
        let base = end - end % segment_bytes;
        let remaining = base + segment_bytes - end;
        self.has_segment(base)
            && (remaining >= self.headroom() || self.has_segment(base + segment_bytes))
    }

    /// Room a request may need in the current segment: two of the largest records.
    fn headroom(&self) -> u64 {
        (2 * self.record_bytes_max() as u64 + BLANK_BYTES as u64).min(self.config.segment_bytes / 2)
    }

    /// Makes the segment the log end lies in, and the next one once the end is past half of
    /// the current, ahead of the writer, so a full disk shows before an append needs the
    /// space. A failure is retried every second; appends resume once one succeeds.
    pub async fn run_preallocator(self: Rc<Self>) {
        let segment_bytes = self.config.segment_bytes;
        let mut failures = 0u64;
        loop {
            let end = self.reserved_end.get();
            let base = end - end % segment_bytes;
            let want = if !self.has_segment(base) {
                Some(base)
            } else if end - base >= segment_bytes / 2 && !self.has_segment(base + segment_bytes) {
                Some(base + segment_bytes)
            } else {
                None
            };
            let Some(want) = want else {
                futures_lite::future::or(
                    self.want_segment.wait(),
                    glommio::timer::sleep(std::time::Duration::from_secs(1)),
                )
                .await;
                continue;
            };
            match Segment::open(&self.config.dir, want, segment_bytes).await {
                Ok(segment) => {
                    if failures > 0 {
                        log::info!(
                            "commit log {}: segment {want} preallocated after {failures} failed attempts; appends resume",
                            self.config.dir.display()
                        );
                    }
                    failures = 0;
                    self.preallocation_failed.set(false);
                    if want < self.restarted_at.get() {
                        // The log started again past it (`restart_at`) while it was made.
                        let path = segment.path.clone();
                        drop(segment);
                        let _ = glommio::io::remove(&path).await;
                    } else if !self.has_segment(want) {
                        let mut segments = self.segments.borrow_mut();
                        let at = segments.partition_point(|s| s.base < want);
                        segments.insert(at, segment);
                    }
                }
                Err(e) => {
                    failures += 1;
                    self.preallocation_failed.set(true);
                    if failures.is_power_of_two() {
                        log::error!("{e}; appends that need segment {want} are refused ({failures} attempts)");
                    }
                    segment::discard_empty(&self.config.dir, want);
                    glommio::timer::sleep(std::time::Duration::from_secs(1)).await;
                }
            }
        }
    }

    /// The entry at `offset` (below `durable`): `Some(Ok(entry bytes))` for a record,
    /// `Some(Err(()))` for the blank marker that closes its segment, `None` if there is no
    /// durable entry there.
    pub fn entry_at(&self, offset: u64) -> Option<Result<u64, ()>> {
        let head = self.with_bytes(offset, BLANK_BYTES, |b| {
            (
                i32::from_be_bytes(b[0..4].try_into().expect("4 bytes")),
                i32::from_be_bytes(b[4..8].try_into().expect("4 bytes")),
            )
        })?;
        match head {
            (_, entry::BLANK_MAGIC) => Some(Err(())),
            (size, _) if size > 0 => {
                let len = entry_bytes(size as usize) as u64;
                (offset + len <= self.durable.get()).then_some(Ok(len))
            }
            _ => None,
        }
    }

    /// Waits for pending bytes, then writes them (and syncs for SYNC_FLUSH). Returns the range
    /// that became durable. Only the shard's writer task calls this.
    pub async fn write_pending(&self) -> Result<(u64, u64), CommitLogError> {
        loop {
            if !self.pending.borrow().bytes.is_empty() {
                break;
            }
            self.wake_writer.wait().await;
        }
        let (start, bytes) = {
            let mut pending = self.pending.borrow_mut();
            let start = pending.start;
            let bytes = std::mem::replace(&mut pending.bytes, Vec::with_capacity(64 << 10));
            pending.start = start + bytes.len() as u64;
            (start, bytes)
        };
        let end = start + bytes.len() as u64;
        self.write_started.set(Some(std::time::Instant::now()));
        let result = self.write_range(start, bytes).await;
        self.write_started.set(None);
        if let Err(e) = result {
            log::error!("commit log write failed, refusing further appends: {e}");
            self.durable.fail();
            return Err(e);
        }
        self.durable.advance(end);
        if self.config.flush == FlushDiskType::Sync {
            self.synced.set(end);
        }
        Ok((start, end))
    }

    async fn write_range(&self, start: u64, mut bytes: Vec<u8>) -> Result<(), CommitLogError> {
        let segment_bytes = self.config.segment_bytes;
        let mut offset = start;
        let mut touched = Vec::new();
        while !bytes.is_empty() {
            let base = offset - offset % segment_bytes;
            let file = self.segment_file(base).await?;
            let room = (base + segment_bytes - offset) as usize;
            // The common batch lies in one segment and is handed over without a copy.
            let rest = if bytes.len() > room {
                bytes.split_off(room)
            } else {
                Vec::new()
            };
            let len = bytes.len() as u64;
            write_all(&file, bytes, offset - base)
                .await
                .map_err(|source| CommitLogError::Io {
                    path: self.config.dir.join(segment::segment_name(base)),
                    source,
                })?;
            touched.push((base, file));
            self.touch(base);
            offset += len;
            bytes = rest;
        }
        if self.config.flush == FlushDiskType::Sync {
            for (base, file) in touched {
                file.fdatasync().await.map_err(|e| CommitLogError::Io {
                    path: self.config.dir.join(segment::segment_name(base)),
                    source: e.into(),
                })?;
            }
        }
        Ok(())
    }

    fn touch(&self, base: u64) {
        if let Some(s) = self.segments.borrow().iter().rev().find(|s| s.base == base) {
            s.written_ms.set(now_ms());
        }
    }

    /// The oldest offset held: the first segment's, once retention deleted older ones.
    pub fn min_offset(&self) -> u64 {
        self.segments
            .borrow()
            .first()
            .map_or(self.reserved_end.get(), |s| s.base)
            .min(self.reserved_end.get())
    }

    /// The oldest segments retention may delete, oldest first, at most `max`: those last
    /// written before `written_before_ms` (any, when `forced`), stopping at the first that
    /// is not. The segment holding the last durable byte is always kept.
    pub fn deletable(&self, written_before_ms: i64, forced: bool, max: usize) -> Vec<(u64, i64)> {
        let segment_bytes = self.config.segment_bytes;
        let last = self.durable.get().saturating_sub(1);
        let keep_from = last - last % segment_bytes;
        self.segments
            .borrow()
            .iter()
            .take_while(|s| {
                s.base < keep_from && (forced || s.written_ms.get() < written_before_ms)
            })
            .take(max)
            .map(|s| (s.base, s.written_ms.get()))
            .collect()
    }

    /// Drops the oldest segment, which must start at `base`, and returns its path for the
    /// caller to remove: reads below the next segment find nothing from now on.
    pub fn close_oldest(&self, base: u64) -> Option<PathBuf> {
        let mut segments = self.segments.borrow_mut();
        if segments.first().is_none_or(|s| s.base != base) {
            return None;
        }
        Some(segments.remove(0).path)
    }

    /// How long the write in flight has taken so far (None when the writer is idle): a
    /// stalled disk shows here first.
    pub fn write_in_flight_for(&self) -> Option<std::time::Duration> {
        self.write_started.get().map(|at| at.elapsed())
    }

    /// Bytes appended but not yet durable.
    pub fn pending_bytes(&self) -> u64 {
        self.reserved_end.get() - self.durable.get()
    }

    /// Everything below this offset has reached the disk (fdatasync completed).
    pub fn synced_end(&self) -> u64 {
        self.synced.get()
    }

    /// fdatasync of the segments written since the last sync, for the ASYNC_FLUSH background
    /// flusher and shutdown.
    pub async fn sync(&self) -> Result<(), CommitLogError> {
        let target = self.durable.get();
        let from = self.synced.get();
        let segment_bytes = self.config.segment_bytes;
        let files: Vec<(u64, Rc<BufferedFile>)> = self
            .segments
            .borrow()
            .iter()
            .filter(|s| s.base + segment_bytes > from && s.base < target.max(from + 1))
            .map(|s| (s.base, s.file()))
            .collect();
        for (base, file) in files {
            file.fdatasync().await.map_err(|e| CommitLogError::Io {
                path: self.config.dir.join(segment::segment_name(base)),
                source: e.into(),
            })?;
        }
        self.synced.set(self.synced.get().max(target));
        Ok(())
    }

    async fn segment_file(&self, base: u64) -> Result<Rc<BufferedFile>, CommitLogError> {
        if let Some(s) = self.segments.borrow().iter().rev().find(|s| s.base == base) {
            return Ok(s.file());
        }
        let segment = Segment::open(&self.config.dir, base, self.config.segment_bytes).await?;
        let file = segment.file();
        self.segments.borrow_mut().push(segment);
        Ok(file)
    }

    /// Calls `f` with the durable bytes `[offset, offset + len)`, if present.
    pub fn with_bytes<R>(&self, offset: u64, len: usize, f: impl FnOnce(&[u8]) -> R) -> Option<R> {
        if offset + len as u64 > self.durable.get() {
            return None;
        }
        let segments = self.segments.borrow();
        let base = offset - offset % self.config.segment_bytes;
        let segment = segments.iter().rev().find(|s| s.base == base)?;
        let from = (offset - base) as usize;
        let bytes = segment.bytes().get(from..from + len)?;
        Some(f(bytes))
    }
}

/// Writes `bytes` at `pos`. Segments are preallocated, so a short write cannot come from a full
/// disk; it is treated as an I/O error (the log stops accepting appends, nothing is acked).
async fn write_all(file: &BufferedFile, bytes: Vec<u8>, pos: u64) -> std::io::Result<()> {
    let len = bytes.len();
    let written = file
        .write_at(bytes, pos)
        .await
        .map_err(std::io::Error::from)?;
    if written != len {
        return Err(std::io::Error::new(
            std::io::ErrorKind::WriteZero,
            format!("short write: {written} of {len} bytes at {pos}"),
        ));
    }
    Ok(())
}

/// Milliseconds since the epoch, as segment times are kept.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The first offset of the oldest segment in `dir` (0 if there is none): above 0, retention
/// deleted what came before.
pub fn first_segment_base(dir: &Path) -> u64 {
    list_segments(dir)
        .ok()
        .and_then(|b| b.first().copied())
        .unwrap_or(0)
}

fn list_segments(dir: &Path) -> std::io::Result<Vec<u64>> {
    let mut bases = Vec::new();
    #[allow(
        clippy::disallowed_methods,
        reason = "start-up, before the shard serves"
    )]
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.len() == 20 {
            if let Ok(base) = name.parse::<u64>() {
                bases.push(base);
            }
        }
    }
    bases.sort_unstable();
    Ok(bases)
}

#[cfg(test)]
mod tests;
