//! A slave's log: entries copied from its master at the same offsets, the master's segment
//! seals, a new start where the master's log now starts, and the cut a replica that parted from its master makes before it follows again.

use std::path::{Path, PathBuf};

use super::entry::{self, BLANK_BYTES};
use super::{list_segments, segment, CommitLog};

impl CommitLog {
    /// Appends entries copied from a master's log at the same offset (a slave's replica):
    /// `bytes` must start at the log end and hold whole, valid entries within one segment,
    /// which the caller checked. Returns the new end.
    pub fn append_replica(&self, start: u64, bytes: &[u8]) -> u64 {
        assert_eq!(
            start,
            self.reserved_end.get(),
            "replica bytes must start at the log end"
        );
        let segment_bytes = self.config.segment_bytes;
        assert!(
            start % segment_bytes + bytes.len() as u64 <= segment_bytes,
            "replica bytes cross a segment end"
        );
        self.pending.borrow_mut().bytes.extend_from_slice(bytes);
        let end = start + bytes.len() as u64;
        self.reserved_end.set(end);
        self.wake_writer.raise();
        end
    }

    /// Closes the segment holding `start` (the log end) with a blank marker, as the master's
    /// log did there. Returns the new end, the next segment's first offset.
    pub fn seal_replica(&self, start: u64) -> Result<u64, String> {
        if start != self.reserved_end.get() {
            return Err(format!(
                "seal at {start}, but the log ends at {}",
                self.reserved_end.get()
            ));
        }
        let segment_bytes = self.config.segment_bytes;
        let remaining = segment_bytes - start % segment_bytes;
        if (remaining as usize) < BLANK_BYTES {
            return Err(format!("seal at {start} leaves no room for a blank marker"));
        }
        entry::push_blank(&mut self.pending.borrow_mut().bytes, remaining as usize);
        self.reserved_end.set(start + remaining);
        self.wake_writer.raise();
        Ok(start + remaining)
    }

    /// Starts the log again at `first`, a segment's first offset past its end: for a slave
    /// whose master's log now starts there (retention deleted what this log lacks). Every
    /// segment below `first` is closed and its path returned for the caller to remove; the
    /// next replica bytes go at `first`. Nothing may wait to be written.
    pub fn restart_at(&self, first: u64) -> Result<Vec<PathBuf>, String> {
        let end = self.reserved_end.get();
        if !self.pending.borrow().bytes.is_empty() || self.durable.get() != end {
            return Err(format!(
                "restart at {first}: bytes below {end} wait to be written"
            ));
        }
        if first <= end || !first.is_multiple_of(self.config.segment_bytes) {
            return Err(format!(
                "restart at {first}: not a segment start past the log end {end}"
            ));
        }
        let doomed: Vec<PathBuf> = {
            let mut segments = self.segments.borrow_mut();
            let below = segments.partition_point(|s| s.base < first);
            segments.drain(..below).map(|s| s.path).collect()
        };
        self.restarted_at.set(first);
        self.pending.borrow_mut().start = first;
        self.reserved_end.set(first);
        self.synced.set(first);
        self.durable.advance(first);
        self.want_segment.raise();
        Ok(doomed)
    }
}

/// Cuts the closed log in `dir` at `at` (an entry boundary): the segment holding `at` is
/// zeroed from there, later segments are removed, and both are on disk before it returns.
/// For a replica whose log parted from its master's; the log must not be open.
#[allow(
    clippy::disallowed_methods,
    reason = "start-up, before the shard serves"
)]
pub fn truncate_closed(dir: &Path, segment_bytes: u64, at: u64) -> std::io::Result<()> {
    use std::io::{Seek, Write};
    let base_at = at - at % segment_bytes;
    for base in list_segments(dir)? {
        let path = dir.join(segment::segment_name(base));
        if base > base_at {
            std::fs::remove_file(&path)?;
        } else if base == base_at {
            let mut file = std::fs::OpenOptions::new().write(true).open(&path)?;
            let len = file.metadata()?.len();
            let from = at - base;
            file.seek(std::io::SeekFrom::Start(from))?;
            let zeros = vec![0u8; 1 << 20];
            let mut left = len.saturating_sub(from);
            while left > 0 {
                let n = left.min(zeros.len() as u64) as usize;
                file.write_all(&zeros[..n])?;
                left -= n as u64;
            }
            file.sync_all()?;
        }
    }
    std::fs::File::open(dir)?.sync_all()
}
