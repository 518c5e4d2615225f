//! One commit-log segment file: preallocated to its full size, written through io_uring
//! (`BufferedFile::write_at`), read through a read-only memory map of the same page cache.
//! Named by the 20-digit commit-log offset of its first byte (spec §7.2).

use std::path::{Path, PathBuf};
use std::rc::Rc;

use glommio::io::{BufferedFile, OpenOptions};
use memmap2::Mmap;

use super::CommitLogError;

pub struct Segment {
    pub base: u64,
    pub path: PathBuf,
    file: Rc<BufferedFile>,
    map: Mmap,
    /// When it was last written (its mtime at open): retention's clock, as RocketMQ's
    /// `lastModified`.
    pub written_ms: std::cell::Cell<i64>,
}

pub fn segment_name(base: u64) -> String {
    format!("{base:020}")
}

impl Segment {
    /// Opens (creating if needed) the segment starting at `base`, preallocated to `bytes`.
    pub async fn open(dir: &Path, base: u64, bytes: u64) -> Result<Segment, CommitLogError> {
        let path = dir.join(segment_name(base));
        let io = |source| CommitLogError::Io {
            path: path.clone(),
            source,
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .buffered_open(&path)
            .await
            .map_err(|e| io(e.into()))?;
        let size = file.file_size().await.map_err(|e| io(e.into()))?;
        if size < bytes {
            file.pre_allocate(bytes, false)
                .await
                .map_err(|e| io(e.into()))?;
        }
        let (map, written_ms) = map_file(&path, bytes).map_err(io)?;
        Ok(Segment {
            base,
            path,
            file: Rc::new(file),
            map,
            written_ms: std::cell::Cell::new(written_ms),
        })
    }

    pub fn len(&self) -> u64 {
        self.map.len() as u64
    }

    pub fn bytes(&self) -> &[u8] {
        &self.map
    }

    pub fn file(&self) -> Rc<BufferedFile> {
        self.file.clone()
    }

    /// Zeroes everything from `from` to the segment end: recovery calls it on the torn tail so
    /// that no stale entry past the cut can ever be read as valid later.
    pub async fn zero_from(&self, from: u64) -> Result<(), CommitLogError> {
        let io = |e: glommio::GlommioError<()>| CommitLogError::Io {
            path: self.path.clone(),
            source: e.into(),
        };
        self.file.truncate(from).await.map_err(io)?;
        self.file
            .pre_allocate(self.len(), false)
            .await
            .map_err(io)?;
        Ok(())
    }
}

/// Removes the file of segment `base` if a failed preallocation left it empty, so that a
/// restart does not find a segment that holds nothing.
pub fn discard_empty(dir: &Path, base: u64) {
    let path = dir.join(segment_name(base));
    #[allow(
        clippy::disallowed_methods,
        reason = "a metadata call and an unlink after a failed preallocation, rare"
    )]
    if std::fs::metadata(&path).is_ok_and(|m| m.len() == 0) {
        let _ = std::fs::remove_file(&path);
    }
}

/// Maps the segment; with its mtime in ms since the epoch.
fn map_file(path: &Path, bytes: u64) -> std::io::Result<(Mmap, i64)> {
    #[allow(
        clippy::disallowed_methods,
        reason = "mapping happens once per segment, at open"
    )]
    let file = std::fs::File::open(path)?;
    let modified = file.metadata()?.modified()?;
    let written_ms = modified
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let len = usize::try_from(bytes).map_err(|_| std::io::Error::other("segment too large"))?;
    // SAFETY: the map is read-only and covers the preallocated length, which the file never
    // shrinks below while mapped (`zero_from` re-extends it before returning). Writes go
    // through the same page cache, so the map sees them once `write_at` completes.
    let map = unsafe { memmap2::MmapOptions::new().len(len).map(&file) }?;
    Ok((map, written_ms))
}
