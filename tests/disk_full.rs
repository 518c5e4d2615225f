//! A full disk never kills the broker: on a small tmpfs, sends are refused once the space is
//! gone, the process keeps serving, and every message it acknowledged is still readable.
//! Needs root to mount the tmpfs; skips with the reason printed where it cannot.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{pull_all, queue, Petrel};
use petrel::client::{properties, Client, Message};
use petrel_shards::broker::metadata::TopicConfig;
use petrel_shards::remoting::{request, response};

/// A tmpfs of `mib` MiB mounted for the test, unmounted on drop.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(mib: u32) -> Result<SmallDisk, String> {
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

    fn path(&self) -> PathBuf {
        self.dir.path().to_path_buf()
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

/// Writes a file in `dir` until the filesystem has no byte left.
fn fill(dir: &Path) {
    use std::io::Write;
    let mut f = std::fs::File::create(dir.join("filler")).unwrap();
    let chunk = vec![0u8; 64 << 10];
    while f.write_all(&chunk).is_ok() {}
    let byte = [0u8; 1];
    while f.write_all(&byte).is_ok() {}
    let _ = f.sync_all();
}

fn assert_alive(petrel: &mut Petrel) {
    if let Some(status) = petrel.exited() {
        panic!("the broker died on a full disk: {status}");
    }
}

#[test]
fn a_full_disk_refuses_sends_and_keeps_every_acknowledged_message_readable() {
    let disk = match SmallDisk::mount(64) {
        Ok(d) => d,
        Err(reason) => {
            println!("skipped: cannot mount a tmpfs here ({reason})");
            return;
        }
    };
    let store: &Path = &disk.path();
    // Index files as large as by default (sparse, 420 MB each): their pages, not the log's,
    // are what a full disk used to fault on.
    let mut petrel = Petrel::start(
        "standalone",
        store,
        &["mappedFileSizeCommitLog=1048576", "maxMessageSize=65536"],
    );
    let mut client = Client::new(&petrel.namesrv());
    client
        .create_topic(&petrel.front_door(), &TopicConfig::new("Full", 1, 6))
        .unwrap();
    let (name, addr) = petrel.brokers()[0].clone();
    let q = queue("Full", &name, 0);
    let mut acked = Vec::new();
    let mut refused = 0;
    for i in 0..6000 {
        let body = format!("m{i:05}-{}", "x".repeat(16 << 10));
        let msg = Message::new(
            body.clone(),
            properties(None, Some(&format!("key-{i}")), &[]),
        );
        match client.send_to(&addr, &q, &msg) {
            Ok(r) if r.code == response::SUCCESS => acked.push(body),
            _ => refused += 1,
        }
        if refused >= 200 {
            break;
        }
    }
    assert!(
        refused >= 200,
        "64 MiB held {} messages of 16 KiB",
        acked.len()
    );
    assert!(!acked.is_empty());
    // Whatever a failed preallocation left free goes too, then more sends come.
    fill(store);
    for i in 0..500 {
        let msg = Message::new(
            format!("late-{i}"),
            properties(None, Some(&format!("late-key-{i}")), &[]),
        );
        if let Ok(r) = client.send_to(&addr, &q, &msg) {
            assert_ne!(
                r.code,
                response::SUCCESS,
                "a send was acknowledged on a full disk"
            );
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    assert_alive(&mut petrel);
    // Still serving: every acknowledged message is there, in order, intact.
    let got = pull_all(&mut client, &addr, &q, "*");
    let bodies: Vec<String> = got
        .iter()
        .map(|m| String::from_utf8_lossy(&m.body).into_owned())
        .collect();
    assert_eq!(bodies[..acked.len()], acked[..]);
    let reply = client
        .call_fields(
            &addr,
            request::GET_MAX_OFFSET,
            &[("topic", "Full".into()), ("queueId", "0".into())],
        )
        .unwrap();
    assert_eq!(reply.code, response::SUCCESS);
    assert_alive(&mut petrel);
}
