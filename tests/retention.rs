//! Retention (F30) and the disk guard through the wire: expired segments are deleted while a
//! consumer reads, consumers below the new first offset are moved to it, a disk past
//! `diskMaxUsedSpaceRatio` loses its expired segments at any hour, one past the forced-clean
//! level its oldest ones, and one past `diskSpaceWarningLevelRatio` refuses sends until space
//! is back. The disk tests mount a small tmpfs (root); they skip with the reason where they
//! cannot.

mod common;

use std::time::{Duration, Instant};

use common::disk::{ballast, SmallDisk};
use common::{create_topic, delete_at_every_hour, eventually, min_offset, pull_all, queue, Petrel};
use petrel::client::{properties, Client, Message, MessageQueue, PullRequest};
use petrel_shards::remoting::{request, response};

/// An hour that is not the present one (nor the next, in case the test crosses it).
fn another_hour() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let local = std::process::Command::new("date")
        .arg("+%H")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(secs / 3600 % 24);
    format!("deleteWhen={:02}", (local + 12) % 24)
}

fn send(client: &mut Client, addr: &str, q: &MessageQueue, i: usize) -> Result<(), String> {
    let body = format!("m{i:06}-{}", "x".repeat(1000));
    let msg = Message::new(body, properties(None, Some(&format!("k{i}")), &[]));
    match client.send_to(addr, q, &msg) {
        Ok(r) if r.code == response::SUCCESS => Ok(()),
        Ok(r) => Err(format!("code {}", r.code)),
        Err(e) => Err(e.to_string()),
    }
}

fn segments(petrel: &Petrel) -> usize {
    std::fs::read_dir(petrel.store.join("shard-0").join("commitlog"))
        .unwrap()
        .count()
}

/// The number in a body `m000123-xxx…`.
fn number(body: &[u8]) -> usize {
    std::str::from_utf8(&body[1..7]).unwrap().parse().unwrap()
}

#[test]
fn expired_segments_are_deleted_while_a_consumer_reads_and_consumers_move_up() {
    let dir = tempfile::tempdir().unwrap();
    let extra = [
        "mappedFileSizeCommitLog=131072".to_string(),
        "maxMessageSize=8192".to_string(),
        "fileReservedTime=0.0005".to_string(), // 1.8 s
        delete_at_every_hour(),
        "cleanResourceInterval=200".to_string(),
    ];
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let petrel = Petrel::start("standalone", dir.path(), &extra);
    let mut client = Client::new(&petrel.namesrv());
    create_topic(&mut client, &petrel, "Aging", 1);
    let (name, addr) = petrel.brokers()[0].clone();
    let q = queue("Aging", &name, 0);
    // A group that committed early, then went away.
    for i in 0..300 {
        send(&mut client, &addr, &q, i).unwrap();
    }
    let commit = |client: &mut Client, offset: i64| {
        let fields = [
            ("topic", "Aging".to_string()),
            ("consumerGroup", "G_early".to_string()),
            ("queueId", "0".to_string()),
            ("commitOffset", offset.to_string()),
        ];
        let r = client
            .call_fields(&addr, request::UPDATE_CONSUMER_OFFSET, &fields)
            .unwrap();
        assert_eq!(r.code, response::SUCCESS, "{:?}", r.remark);
    };
    commit(&mut client, 5);
    let before = segments(&petrel);
    assert!(before >= 3, "{before} segments");

    // A consumer reads from 0 while the producer goes on and retention deletes behind it.
    let reader = {
        let (namesrv, addr, q) = (petrel.namesrv(), addr.clone(), q.clone());
        std::thread::spawn(move || {
            let mut client = Client::new(&namesrv);
            let (mut offset, mut seen, mut moved) = (0i64, Vec::new(), 0);
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                let req = PullRequest {
                    group: "G_reader",
                    queue: &q,
                    offset,
                    max: 8,
                    subscription: "*",
                    suspend: None,
                };
                let r = client.pull(&addr, &req).unwrap();
                match r.code {
                    response::SUCCESS => seen.extend(r.messages.iter().map(|m| number(&m.body))),
                    response::PULL_OFFSET_MOVED => moved += 1,
                    response::PULL_NOT_FOUND if r.next_begin_offset >= 600 => break,
                    _ => std::thread::sleep(Duration::from_millis(20)),
                }
                offset = r.next_begin_offset;
                std::thread::sleep(Duration::from_millis(5));
            }
            (seen, moved)
        })
    };
    for i in 300..600 {
        send(&mut client, &addr, &q, i).unwrap();
        std::thread::sleep(Duration::from_millis(8));
    }
    let (seen, _moved) = reader.join().unwrap();
    // What the reader got is in order, with no message twice, up to the last one sent.
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "out of order");
    assert_eq!(seen.last(), Some(&599));

    let min = eventually(Duration::from_secs(15), || {
        let min = min_offset(&mut client, &addr, &q);
        (min >= 300).then_some(min)
    });
    assert!(segments(&petrel) < before + 5, "old segments stay");
    // A pull below the first offset is moved there; the first message is whole.
    let req = PullRequest {
        group: "G_late",
        queue: &q,
        offset: 0,
        max: 4,
        subscription: "*",
        suspend: None,
    };
    let r = client.pull(&addr, &req).unwrap();
    assert_eq!(r.code, response::PULL_OFFSET_MOVED);
    assert!(r.next_begin_offset >= min, "{} {min}", r.next_begin_offset);
    let first = pull_all(&mut client, &addr, &q, "*");
    assert_eq!(number(&first[0].body), 600 - first.len());
    assert_eq!(number(&first.last().unwrap().body), 599);
    // The group that committed 5 now stands at the first offset kept.
    let r = client
        .call_fields(
            &addr,
            request::QUERY_CONSUMER_OFFSET,
            &[
                ("topic", "Aging".to_string()),
                ("consumerGroup", "G_early".to_string()),
                ("queueId", "0".to_string()),
            ],
        )
        .unwrap();
    let committed: i64 = r.field("offset").unwrap().parse().unwrap();
    assert!(
        committed >= min,
        "committed {committed}, first offset {min}"
    );
    // A restart keeps the first offset.
    let store = petrel.store.clone();
    let min_now = min_offset(&mut client, &addr, &q);
    assert!(petrel.terminate().success());
    let petrel = Petrel::start(
        "standalone",
        &store,
        &["mappedFileSizeCommitLog=131072", "maxMessageSize=8192"],
    );
    let mut client = Client::new(&petrel.namesrv());
    let (_, addr) = petrel.brokers()[0].clone();
    assert!(min_offset(&mut client, &addr, &q) >= min_now);
    send(&mut client, &addr, &q, 600).unwrap();
    let all = pull_all(&mut client, &addr, &q, "*");
    assert_eq!(number(&all.last().unwrap().body), 600);
}

fn mount(mib: u32) -> Option<SmallDisk> {
    match SmallDisk::mount(mib) {
        Ok(d) => Some(d),
        Err(reason) => {
            println!("skipped: cannot mount a tmpfs here ({reason})");
            None
        }
    }
}

#[test]
fn a_disk_past_the_max_ratio_loses_expired_segments_at_any_hour_and_past_the_warning_refuses_sends()
{
    let Some(disk) = mount(48) else { return };
    let store = disk.path();
    let extra = [
        "mappedFileSizeCommitLog=1048576".to_string(),
        "maxMessageSize=65536".to_string(),
        "messageIndexEnable=false".to_string(),
        "fileReservedTime=0.0005".to_string(),
        another_hour(),
        "cleanResourceInterval=200".to_string(),
        "cleanFileForciblyEnable=false".to_string(),
        "diskSpaceWarningLevelRatio=90".to_string(),
    ];
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let petrel = Petrel::start("standalone", &store, &extra);
    let mut client = Client::new(&petrel.namesrv());
    create_topic(&mut client, &petrel, "Ratio", 1);
    let (name, addr) = petrel.brokers()[0].clone();
    let q = queue("Ratio", &name, 0);
    // About 8 segments; it is not the hour to delete, so they stay, expired or not.
    for i in 0..8000 {
        send(&mut client, &addr, &q, i).unwrap();
    }
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(min_offset(&mut client, &addr, &q), 0, "deleted off hours");
    // Past 75 %: the expired segments go now.
    let used = disk.used_percent();
    ballast(
        &store,
        "ballast",
        ((78.0 - used).max(1.0) / 100.0 * 48.0 * 1048576.0) as usize,
    );
    let min = eventually(Duration::from_secs(10), || {
        let min = min_offset(&mut client, &addr, &q);
        (min > 0).then_some(min)
    });
    assert!(min >= 6000, "first offset {min}");
    assert!(disk.used_percent() < 75.0, "{:.1}%", disk.used_percent());

    // Past the warning level with nothing left to delete: sends are refused, reads go on.
    let used = disk.used_percent();
    ballast(
        &store,
        "ballast-2",
        ((93.0 - used) / 100.0 * 48.0 * 1048576.0) as usize,
    );
    let started = Instant::now();
    let mut last_ok = 7999;
    let refusal = eventually(Duration::from_secs(5), || {
        match send(&mut client, &addr, &q, last_ok + 1) {
            Ok(()) => {
                last_ok += 1;
                None
            }
            Err(e) => Some(e),
        }
    });
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(
        refusal.contains("maybe disk full") && refusal.contains("diskSpaceWarningLevelRatio"),
        "{refusal}"
    );
    let kept = pull_all(&mut client, &addr, &q, "*");
    assert_eq!(number(&kept.last().unwrap().body), last_ok);
    // Space comes back: sends resume within seconds, without a restart.
    std::fs::remove_file(store.join("ballast-2")).unwrap();
    let freed = Instant::now();
    eventually(Duration::from_secs(10), || {
        send(&mut client, &addr, &q, last_ok + 1).ok()
    });
    assert!(
        freed.elapsed() < Duration::from_secs(5),
        "{:?}",
        freed.elapsed()
    );
}

#[test]
fn past_the_forced_clean_level_the_oldest_segments_go_and_sends_go_on() {
    let Some(disk) = mount(40) else { return };
    let store = disk.path();
    let petrel = Petrel::start(
        "standalone",
        &store,
        &[
            "mappedFileSizeCommitLog=1048576",
            "maxMessageSize=65536",
            "messageIndexEnable=false",
            "cleanResourceInterval=200",
            "diskSpaceCleanForciblyRatio=60",
            "diskSpaceWarningLevelRatio=90",
        ],
    );
    let mut client = Client::new(&petrel.namesrv());
    create_topic(&mut client, &petrel, "Flood", 1);
    let (name, addr) = petrel.brokers()[0].clone();
    let q = queue("Flood", &name, 0);
    // More than the disk holds, nothing expired (72 h): forced cleaning makes the room.
    let (mut refused, mut last_ok) = (0, 0);
    for i in 0..48_000 {
        match send(&mut client, &addr, &q, i) {
            Ok(()) => last_ok = i,
            Err(_) => {
                refused += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
    assert!(refused < 100, "{refused} sends refused");
    assert!(disk.used_percent() < 90.0, "{:.1}%", disk.used_percent());
    let min = min_offset(&mut client, &addr, &q);
    assert!(min > 10_000, "first offset {min}");
    let kept = pull_all(&mut client, &addr, &q, "*");
    assert_eq!(number(&kept.last().unwrap().body), last_ok);
    assert!(kept.len() < 40_000, "{} kept", kept.len());
    assert!(kept
        .windows(2)
        .all(|w| number(&w[0].body) < number(&w[1].body)));
}

#[test]
fn apache_mqadmin_delete_expired_commit_log_deletes_expired_segments_off_hours() {
    let dir = tempfile::tempdir().unwrap();
    let extra = [
        "mappedFileSizeCommitLog=131072".to_string(),
        "maxMessageSize=8192".to_string(),
        "fileReservedTime=0.0005".to_string(),
        another_hour(),
        "cleanResourceInterval=200".to_string(),
    ];
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let petrel = Petrel::start("standalone", dir.path(), &extra);
    let mut client = Client::new(&petrel.namesrv());
    create_topic(&mut client, &petrel, "Manual", 1);
    let (name, addr) = petrel.brokers()[0].clone();
    let q = queue("Manual", &name, 0);
    for i in 0..400 {
        send(&mut client, &addr, &q, i).unwrap();
    }
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(min_offset(&mut client, &addr, &q), 0, "deleted off hours");
    let (ok, out, err) = common::apache_mqadmin(
        &[
            "deleteExpiredCommitLog",
            "-n",
            &petrel.namesrv(),
            "-b",
            &petrel.front_door(),
        ],
        Duration::from_secs(120),
    );
    assert!(ok, "{out}{err}");
    let min = eventually(Duration::from_secs(10), || {
        let min = min_offset(&mut client, &addr, &q);
        (min > 0).then_some(min)
    });
    let kept = pull_all(&mut client, &addr, &q, "*");
    assert_eq!(number(&kept[0].body) as i64, min);
    assert_eq!(number(&kept.last().unwrap().body), 399);
}
