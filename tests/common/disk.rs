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

/// An ext4 filesystem on a loop device, mounted for the test; thawed, unmounted and detached
/// on drop. Unlike a tmpfs it can be frozen (`fsfreeze`), which stalls every write to it: a
/// disk that stops keeping up.
pub struct LoopDisk {
    _image_dir: tempfile::TempDir,
    mount_point: tempfile::TempDir,
    device: String,
}

fn run(cmd: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .map_err(|e| format!("{cmd}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

impl LoopDisk {
    /// Makes and mounts an ext4 of `mib` MiB, or says why it cannot.
    pub fn mount(mib: u32) -> Result<LoopDisk, String> {
        let image_dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let image = image_dir.path().join("disk.img");
        std::fs::File::create(&image)
            .and_then(|f| f.set_len(mib as u64 * 1048576))
            .map_err(|e| e.to_string())?;
        let image = image.display().to_string();
        let device = run("losetup", &["-f", "--show", &image])?;
        let mount_point = tempfile::tempdir().map_err(|e| e.to_string())?;
        let disk = LoopDisk {
            _image_dir: image_dir,
            mount_point,
            device,
        };
        run("mkfs.ext4", &["-q", "-F", &disk.device])?;
        let dir = disk.path().display().to_string();
        run("mount", &[&disk.device, &dir])?;
        Ok(disk)
    }

    pub fn path(&self) -> PathBuf {
        self.mount_point.path().to_path_buf()
    }

    /// Stalls every write to the filesystem until the guard is thawed or dropped. Hold the
    /// guard below the broker that uses the disk: a process cannot exit while one of its
    /// threads waits on a frozen filesystem, so it must thaw first, even when a test fails.
    pub fn freeze(&self) -> Frozen<'_> {
        run("fsfreeze", &["-f", &self.path().display().to_string()]).unwrap();
        Frozen { disk: self }
    }
}

impl LoopDisk {
    /// Cuts the power: ext4's shutdown ioctl without flushing the journal or data
    /// (`EXT4_GOING_FLAGS_NOLOGFLUSH`), so whatever was not on the device yet is lost, and
    /// every later I/O on the filesystem fails.
    pub fn cut_power(&self) {
        use std::os::fd::AsRawFd;
        const EXT4_IOC_SHUTDOWN: libc::c_ulong = 0x8004_587D; // _IOR('X', 125, __u32)
        const NOLOGFLUSH: u32 = 2;
        let dir = std::fs::File::open(self.path()).unwrap();
        let flags = NOLOGFLUSH;
        // SAFETY: the ioctl reads one u32 from a valid pointer; `dir` is an open descriptor.
        let rc = unsafe { libc::ioctl(dir.as_raw_fd(), EXT4_IOC_SHUTDOWN, &flags) };
        assert_eq!(rc, 0, "shutdown ioctl: {}", std::io::Error::last_os_error());
    }

    /// Unmounts and mounts again, as after a reboot: the journal is replayed.
    pub fn remount(&self) {
        let dir = self.path().display().to_string();
        let mut last = String::new();
        for _ in 0..50 {
            match run("umount", &[&dir]) {
                Ok(_) => {
                    run("mount", &[&self.device, &dir]).unwrap();
                    return;
                }
                Err(e) => last = e,
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("cannot unmount {dir}: {last}");
    }
}

/// A frozen `LoopDisk`; thawed on drop.
pub struct Frozen<'a> {
    disk: &'a LoopDisk,
}

impl Frozen<'_> {
    pub fn thaw(self) {}
}

impl Drop for Frozen<'_> {
    fn drop(&mut self) {
        let _ = run("fsfreeze", &["-u", &self.disk.path().display().to_string()]);
    }
}

impl Drop for LoopDisk {
    fn drop(&mut self) {
        let dir = self.path().display().to_string();
        let _ = run("fsfreeze", &["-u", &dir]);
        let _ = run("umount", &["-l", &dir]);
        let _ = run("losetup", &["-d", &self.device]);
    }
}
