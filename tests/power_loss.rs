//! Power loss under SYNC_FLUSH (F28): the store lives on an ext4 loop device whose power the
//! test cuts (ext4's shutdown ioctl without flushing: what was not on the device is gone)
//! while two producers send, then kills the broker, remounts (the journal replays), restarts
//! and checks that every acknowledged message is there, whole and in order, round after
//! round on the same store. Needs root for the loop device; skips with the reason where it
//! cannot.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::disk::LoopDisk;
use common::{create_topic, pull_all, queue, Petrel};
use petrel::client::{properties, Client, Message};
use petrel_shards::remoting::response;

const ROUNDS: usize = 4;
const PROPS: &[&str] = &[
    "flushDiskType=SYNC_FLUSH",
    "mappedFileSizeCommitLog=1048576",
    "maxMessageSize=65536",
];

#[test]
fn every_message_acknowledged_under_sync_flush_survives_a_power_cut() {
    let disk = match LoopDisk::mount(256) {
        Ok(d) => d,
        Err(reason) => {
            println!("skipped: cannot make a loop-device filesystem here ({reason})");
            return;
        }
    };
    let store = disk.path();
    // Acknowledgements as the producers received them, and when. Only those received before
    // the power was cut count: after the cut the broker lives on (a real power cut would
    // have stopped it), and an fdatasync racing the shutdown ioctl may still return success.
    let acked: Arc<Mutex<Vec<(Instant, String)>>> = Arc::default();
    let mut kept: Vec<String> = Vec::new();
    for round in 0..ROUNDS {
        let petrel = Petrel::start("standalone", &store, PROPS);
        let mut client = Client::new(&petrel.namesrv());
        if round == 0 {
            create_topic(&mut client, &petrel, "Power", 2);
        }
        let brokers = petrel.brokers();
        let (name, addr) = brokers[0].clone();
        // Everything acknowledged in earlier rounds is still there, in order.
        check(&mut client, &addr, &name, &kept);

        let stop = Arc::new(AtomicBool::new(false));
        let producers: Vec<_> = (0..2)
            .map(|p| {
                let (ns, addr, name, stop, acked) = (
                    petrel.namesrv(),
                    addr.clone(),
                    name.clone(),
                    stop.clone(),
                    acked.clone(),
                );
                std::thread::spawn(move || {
                    let mut client = Client::new(&ns);
                    let q = queue("Power", &name, p);
                    let mut i = 0;
                    while !stop.load(Ordering::SeqCst) {
                        let body = format!("r{round}-p{p}-{i:06}-{}", "x".repeat(500));
                        let msg = Message::new(body.clone(), properties(None, None, &[]));
                        match client.send_to(&addr, &q, &msg) {
                            Ok(r) if r.code == response::SUCCESS => {
                                acked.lock().unwrap().push((Instant::now(), body))
                            }
                            _ => return,
                        }
                        i += 1;
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(700 + 300 * round as u64));
        let cut = Instant::now();
        disk.cut_power();
        stop.store(true, Ordering::SeqCst);
        for p in producers {
            p.join().unwrap();
        }
        let mut acked = acked.lock().unwrap();
        kept.extend(acked.drain(..).filter(|(at, _)| *at < cut).map(|(_, b)| b));
        petrel.kill9();
        disk.remount();
    }
    let petrel = Petrel::start("standalone", &store, PROPS);
    let mut client = Client::new(&petrel.namesrv());
    let (name, addr) = petrel.brokers()[0].clone();
    assert!(kept.len() > 100, "only {} sends acknowledged", kept.len());
    check(&mut client, &addr, &name, &kept);
}

/// Every body in `acked` is stored in its queue, in the order it was acknowledged.
fn check(client: &mut Client, addr: &str, broker: &str, acked: &[String]) {
    for p in 0..2 {
        let stored: Vec<String> = pull_all(client, addr, &queue("Power", broker, p), "*")
            .iter()
            .map(|m| String::from_utf8_lossy(&m.body).into_owned())
            .collect();
        let mine = format!("-p{p}-");
        let want: Vec<&String> = acked.iter().filter(|b| b.contains(&mine)).collect();
        let mut at = 0;
        for body in &want {
            match stored[at..].iter().position(|s| s == *body) {
                Some(i) => at += i + 1,
                None => panic!(
                    "acknowledged {} is not stored after the power cut ({} of {} acknowledged stored on queue {p})",
                    &body[..20],
                    want.iter().filter(|b| stored.contains(b)).count(),
                    want.len()
                ),
            }
        }
    }
}
