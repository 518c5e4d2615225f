//! Files that are rewritten whole (offsets, config) are replaced atomically: write a temp file,
//! fsync it, rename it over the old one, fsync the directory. A crash leaves the old file or
//! the new one, never a mix.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Replaces `path` with `bytes`. Blocking: call it off the shard (`write_off_shard`) or at
/// start-up.
#[allow(
    clippy::disallowed_methods,
    reason = "runs on the blocking pool or at start-up"
)]
pub fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension("tmp");
    {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

/// `write` on glommio's blocking pool, so the shard keeps serving during the fsyncs.
pub async fn write_off_shard(path: PathBuf, bytes: Vec<u8>) -> std::io::Result<()> {
    glommio::executor()
        .spawn_blocking(move || write(&path, &bytes))
        .await
}
