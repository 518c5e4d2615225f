//! Flow control (F33) against a disk that stops: the store lives on an ext4 loop device that
//! the test freezes (`fsfreeze`) under a flood of pipelined 16 KiB sends. New sends are
//! answered SYSTEM_BUSY with RocketMQ's remark at once, the broker's memory stays bounded
//! while the producers push more than half a GiB at it, sends succeed again once the disk
//! thaws, and every acknowledged message is stored. Needs root for the loop device; skips with
//! the reason where it cannot.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::disk::LoopDisk;
use common::{create_topic, eventually, pull_all, queue, rss_kib, Petrel};
use petrel::client::pipeline::{FrameReader, SendTemplate};
use petrel::client::{properties, Client, Message, MessageQueue};
use petrel_shards::remoting::response;

#[derive(Default)]
struct Tally {
    sent: AtomicU64,
    ok: AtomicU64,
    busy: AtomicU64,
    other: AtomicU64,
}

/// One pipelined producer connection: a writer thread sending until `stop`, and a reader
/// counting answers until every request sent is answered.
fn flood(
    addr: &str,
    topic: &str,
    id: u64,
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
) -> Vec<std::thread::JoinHandle<()>> {
    let stream = TcpStream::connect(addr).unwrap();
    let reader_stream = stream.try_clone().unwrap();
    let sent_here = Arc::new(AtomicU64::new(0));
    let done_sending = Arc::new(AtomicBool::new(false));
    let writer = {
        let (topic, stop, tally, sent_here, done) = (
            topic.to_string(),
            stop,
            tally.clone(),
            sent_here.clone(),
            done_sending.clone(),
        );
        std::thread::spawn(move || {
            let mut stream = stream;
            let mut template = SendTemplate::new("G_flood", &topic, 0, false, id);
            let body = vec![b'f'; 16 << 10];
            let mut out = Vec::new();
            let mut seq = 0u64;
            while !stop.load(Ordering::Relaxed) {
                out.clear();
                for _ in 0..8 {
                    template.encode(&mut out, seq as i32, 0, seq, 1, &body);
                    seq += 1;
                }
                if stream.write_all(&out).is_err() {
                    break;
                }
                sent_here.fetch_add(8, Ordering::SeqCst);
                tally.sent.fetch_add(8, Ordering::SeqCst);
            }
            done.store(true, Ordering::SeqCst);
        })
    };
    let reader = std::thread::spawn(move || {
        let mut reader = FrameReader::new(reader_stream);
        let mut answered = 0u64;
        loop {
            if done_sending.load(Ordering::SeqCst) && answered >= sent_here.load(Ordering::SeqCst) {
                return;
            }
            let Ok(frame) = reader.next_frame() else {
                return;
            };
            if !frame.is_response {
                continue;
            }
            answered += 1;
            let counter = match frame.code {
                response::SUCCESS => &tally.ok,
                response::SYSTEM_BUSY => &tally.busy,
                _ => &tally.other,
            };
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });
    vec![writer, reader]
}

/// One send on a connection of its own: Ok, or the refusal's text.
fn probe(client: &mut Client, addr: &str, q: &MessageQueue) -> Result<(), String> {
    let msg = Message::new("probe", properties(None, None, &[]));
    match client.send_to(addr, q, &msg) {
        Ok(r) if r.code == response::SUCCESS => Ok(()),
        Ok(r) => Err(format!("code {}", r.code)),
        Err(e) => Err(e.to_string()),
    }
}

#[test]
fn a_stalled_disk_turns_a_flood_away_with_system_busy_and_memory_stays_bounded() {
    let disk = match LoopDisk::mount(1024) {
        Ok(d) => d,
        Err(reason) => {
            println!("skipped: cannot make a loop-device filesystem here ({reason})");
            return;
        }
    };
    let store = disk.path();
    // The key index writes through a memory map, which a frozen filesystem stalls on the
    // shard's own thread; this test is about the log's queue.
    let petrel = Petrel::start(
        "standalone",
        &store,
        &[
            "messageIndexEnable=false",
            "waitTimeMillsInSendQueue=200",
            "sendQueueMaxBytes=16777216",
        ],
    );
    let mut client = Client::new(&petrel.namesrv());
    create_topic(&mut client, &petrel, "Flood", 1);
    let (name, addr) = petrel.brokers()[0].clone();
    let q = queue("Flood", &name, 0);
    probe(&mut client, &addr, &q).unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let threads: Vec<_> = (0..8)
        .flat_map(|i| flood(&addr, "Flood", i, stop.clone(), tally.clone()))
        .collect();
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        tally.ok.load(Ordering::SeqCst) > 0,
        "nothing stored before the freeze"
    );
    let before = rss_kib(petrel.pid()) / 1024;

    let frozen_disk = disk.freeze();
    let frozen = Instant::now();
    // A send taken in the first moments would wait for the thaw: probe once the write in
    // flight is older than waitTimeMillsInSendQueue.
    std::thread::sleep(Duration::from_millis(300));
    let mut fresh = Client::new(&petrel.namesrv());
    let refusal = probe(&mut fresh, &addr, &q).expect_err("a send taken while frozen");
    let refused_after = frozen.elapsed();
    assert!(
        refused_after < Duration::from_secs(1),
        "refused after {refused_after:?}"
    );
    assert!(
        refusal.contains("[PCBUSY_CLEAN_QUEUE]broker busy")
            || refusal.contains("[OVERLOAD]system busy"),
        "{refusal}"
    );
    let mut peak = 0;
    while frozen.elapsed() < Duration::from_secs(4) {
        peak = peak.max(rss_kib(petrel.pid()) / 1024);
        std::thread::sleep(Duration::from_millis(100));
    }
    let offered = tally.sent.load(Ordering::SeqCst) * 16 / 1024;
    assert!(
        peak < before + 96,
        "RSS rose from {before} MiB to {peak} MiB while the disk was frozen ({offered} MiB offered)"
    );

    frozen_disk.thaw();
    let thawed = Instant::now();
    eventually(Duration::from_secs(10), || {
        let mut fresh = Client::new(&petrel.namesrv());
        probe(&mut fresh, &addr, &q).ok()
    });
    assert!(
        thawed.elapsed() < Duration::from_secs(3),
        "{:?}",
        thawed.elapsed()
    );
    stop.store(true, Ordering::SeqCst);
    for t in threads {
        t.join().unwrap();
    }
    let (ok, busy, other) = (
        tally.ok.load(Ordering::SeqCst),
        tally.busy.load(Ordering::SeqCst),
        tally.other.load(Ordering::SeqCst),
    );
    assert!(busy > 0, "no flood send was refused ({ok} stored)");
    assert_eq!(other, 0, "{other} answers neither SUCCESS nor SYSTEM_BUSY");
    // Every acknowledged message is stored: the flood's and the two probes that got in.
    let stored = pull_all(&mut client, &addr, &q, "*");
    assert_eq!(stored.len() as u64, ok + 2, "{ok} flood sends acknowledged");
    println!("flood: {ok} stored, {busy} refused as busy, {offered} MiB offered, RSS {before} → {peak} MiB");
}
