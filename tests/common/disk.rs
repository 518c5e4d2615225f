//! A small filesystem for disk-full and retention tests: a tmpfs mounted for the test and
//! unmounted on drop. Needs root; `mount` says why where it cannot.

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    /// Mounts a tmpfs of `mib` MiB, or says why it cannot.
    pub fn mount(mib: u32) -> Result<SmallDisk, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(dir.path())
            .output()
            .map_err(|e| format!("mount: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
        }
        Ok(SmallDisk { dir })
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    /// Percent of the filesystem's blocks in use, as `df` shows it.
    pub fn used_percent(&self) -> f64 {
        let out = Command::new("df")
            .args(["--output=used,size", "-B1"])
            .arg(self.dir.path())
            .output()
            .expect("df runs");
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text.lines().nth(1).expect("df prints a line");
        let mut numbers = line.split_whitespace().map(|n| n.parse::<f64>().unwrap());
        let (used, size) = (numbers.next().unwrap(), numbers.next().unwrap());
        used * 100.0 / size
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Writes `bytes` of ballast into `dir/name` (synced), space an operator frees later.
pub fn ballast(dir: &Path, name: &str, bytes: usize) {
    use std::io::Write;
    let mut f = std::fs::File::create(dir.join(name)).unwrap();
    let chunk = vec![1u8; 1 << 20];
    let mut left = bytes;
    while left > 0 {
        let n = left.min(chunk.len());
        f.write_all(&chunk[..n]).unwrap();
        left -= n;
    }
    f.sync_all().unwrap();
}
