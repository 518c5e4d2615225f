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

/// Reads the JSON file at `path`; a missing file is `T::default()`, a damaged one an error
/// naming it. Blocking: for start-up.
#[allow(
    clippy::disallowed_methods,
    reason = "start-up, before the shard serves"
)]
pub fn read_json<T: serde::de::DeserializeOwned + Default>(path: &Path) -> std::io::Result<T> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}: {e}", path.display()),
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(T::default()),
        Err(e) => Err(e),
    }
}

/// A shard's small state kept in one JSON file: loaded at start-up, changed in memory, and
/// written whole (atomically, off the shard) by `persist` when it changed since the last write.
pub struct JsonState<T> {
    path: PathBuf,
    current: std::cell::RefCell<T>,
    persisted: std::cell::RefCell<T>,
}

impl<T> JsonState<T>
where
    T: serde::Serialize + serde::de::DeserializeOwned + Default + Clone + PartialEq,
{
    pub fn load(path: PathBuf) -> std::io::Result<JsonState<T>> {
        let current: T = read_json(&path)?;
        Ok(JsonState {
            path,
            persisted: std::cell::RefCell::new(current.clone()),
            current: std::cell::RefCell::new(current),
        })
    }

    pub fn borrow(&self) -> std::cell::Ref<'_, T> {
        self.current.borrow()
    }

    pub fn borrow_mut(&self) -> std::cell::RefMut<'_, T> {
        self.current.borrow_mut()
    }

    /// The state as JSON, for a slave.
    pub fn to_json_value(&self) -> serde_json::Value {
        serde_json::to_value(&*self.current.borrow()).expect("state serializes")
    }

    /// Takes the state a master sent; written at the next `persist`.
    pub fn replace_from(&self, value: serde_json::Value) -> Result<(), String> {
        let state: T = serde_json::from_value(value).map_err(|e| e.to_string())?;
        *self.current.borrow_mut() = state;
        Ok(())
    }

    /// Writes the state if it changed since the last write.
    pub async fn persist(&self) -> std::io::Result<()> {
        let state = self.current.borrow().clone();
        if *self.persisted.borrow() == state {
            return Ok(());
        }
        let bytes = serde_json::to_vec(&state).expect("state serializes");
        write_off_shard(self.path.clone(), bytes).await?;
        *self.persisted.borrow_mut() = state;
        Ok(())
    }
}
