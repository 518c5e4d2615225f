//! A full disk never kills the broker: on a small tmpfs, sends are refused once the space is
//! gone, the process keeps serving, and every message it acknowledged is still readable.
//! Needs root to mount the tmpfs; skips with the reason printed where it cannot.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::disk::SmallDisk;
use common::{eventually, pull_all, queue, Petrel};
use petrel::client::{properties, Client, Message};
use petrel_shards::broker::metadata::TopicConfig;
use petrel_shards::remoting::response;

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

/// Every body in queue `Full`/0, in order.
fn stored(client: &mut Client, addr: &str) -> Vec<String> {
    let q = queue("Full", "broker-a-s0", 0);
    pull_all(client, addr, &q, "*")
        .iter()
        .map(|m| String::from_utf8_lossy(&m.body).into_owned())
        .collect()
}

fn assert_alive(petrel: &mut Petrel) {
    if let Some(status) = petrel.exited() {
        panic!("the broker died on a full disk: {status}");
    }
}

/// Retention must not delete what the test checks: no forced cleaning. Writes are refused
/// past 90 % of the disk, or when the disk is truly full, whichever the log meets first.
const FULL_DISK_PROPERTIES: &[&str] = &[
    "mappedFileSizeCommitLog=1048576",
    "maxMessageSize=65536",
    "cleanFileForciblyEnable=false",
    "diskSpaceWarningLevelRatio=90",
];

#[test]
fn a_full_disk_refuses_sends_and_keeps_every_acknowledged_message_readable() {
    let disk = match SmallDisk::mount(72) {
        Ok(d) => d,
        Err(reason) => {
            println!("skipped: cannot mount a tmpfs here ({reason})");
            return;
        }
    };
    let store: &Path = &disk.path();
    // Ballast an operator frees later, so that space really comes back.
    // Enough that freeing it brings use below diskSpaceWarningLevelRatio whatever the log
    // took first.
    std::fs::write(store.join("ballast"), vec![1u8; 16 << 20]).unwrap();
    // Index files as large as by default (sparse, 420 MB each): their pages, not the log's,
    // are what a full disk used to fault on.
    let mut petrel = Petrel::start("standalone", store, FULL_DISK_PROPERTIES);
    let mut client = Client::new(&petrel.namesrv());
    client
        .create_topic(&petrel.front_door(), &TopicConfig::new("Full", 1, 6))
        .unwrap();
    let (name, addr) = petrel.brokers()[0].clone();
    let q = queue("Full", &name, 0);
    let mut acked = Vec::new();
    let mut refusals = Vec::new();
    for i in 0..6000 {
        let body = format!("m{i:05}-{}", "x".repeat(16 << 10));
        let msg = Message::new(
            body.clone(),
            properties(None, Some(&format!("key-{i}")), &[]),
        );
        match client.send_to(&addr, &q, &msg) {
            Ok(r) if r.code == response::SUCCESS => acked.push(body),
            Ok(r) => refusals.push(format!("code {}", r.code)),
            Err(e) => refusals.push(e.to_string()),
        }
        if refusals.len() >= 200 {
            break;
        }
    }
    assert!(
        refusals.len() >= 200,
        "56 MiB held {} messages of 16 KiB",
        acked.len()
    );
    assert!(!acked.is_empty());
    assert!(
        refusals.iter().all(|r| r.contains("maybe disk full")),
        "{:?}",
        &refusals[..3]
    );
    // Whatever is left goes too, then more sends come.
    fill(store);
    for i in 0..500 {
        let msg = Message::new(
            format!("late-{i}"),
            properties(None, Some(&format!("late-key-{i}")), &[]),
        );
        if let Ok(r) = client.send_to(&addr, &q, &msg) {
            assert_ne!(r.code, response::SUCCESS, "acknowledged on a full disk");
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    assert_alive(&mut petrel);
    // Still serving, and exactly what was acknowledged is stored: refused sends took nothing.
    assert_eq!(stored(&mut client, &addr), acked);
    // A restart on the full disk starts and serves reads.
    assert!(petrel.terminate().success(), "clean stop on a full disk");
    let mut petrel = Petrel::start("standalone", store, FULL_DISK_PROPERTIES);
    let mut client = Client::new(&petrel.namesrv());
    let (_, addr) = petrel.brokers()[0].clone();
    assert_eq!(stored(&mut client, &addr), acked);
    let msg = Message::new("while full", properties(None, None, &[]));
    match client.send_to(&addr, &q, &msg) {
        Ok(r) => panic!(
            "acknowledged on a full disk after a restart: code {}",
            r.code
        ),
        Err(e) => assert!(e.to_string().contains("maybe disk full"), "{e}"),
    }
    assert_alive(&mut petrel);
    // Space comes back: sends resume within 5 s, with no restart.
    std::fs::remove_file(store.join("filler")).unwrap();
    std::fs::remove_file(store.join("ballast")).unwrap();
    let freed = Instant::now();
    let resumed = eventually(Duration::from_secs(10), || {
        let msg = Message::new("resumed", properties(None, None, &[]));
        let r = client.send_to(&addr, &q, &msg).ok()?;
        (r.code == response::SUCCESS).then(Instant::now)
    });
    let waited = resumed.duration_since(freed);
    assert!(
        waited < Duration::from_secs(5),
        "sends resumed {waited:?} after space came back"
    );
    acked.push("resumed".into());
    assert_eq!(stored(&mut client, &addr), acked);
    // And a restart finds it all.
    assert!(petrel.terminate().success());
    let petrel = Petrel::start("standalone", store, FULL_DISK_PROPERTIES);
    let mut client = Client::new(&petrel.namesrv());
    let (_, addr) = petrel.brokers()[0].clone();
    assert_eq!(stored(&mut client, &addr), acked);
}
