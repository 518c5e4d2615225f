//! Crash recovery (F28, F29): `kill -9` during a produce loop, with SYNC_FLUSH and with
//! ASYNC_FLUSH; after a restart on the same store every acknowledged message reads back, in
//! order, and no record is corrupt.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use bytes::Bytes;
use common::Petrel;
use petrel::client::{Client, Message, MessageQueue, PullRequest};
use petrel_shards::broker::metadata::TopicConfig;
use petrel_shards::remoting::response;

fn crash_during_produce(flush: &str) {
    let dir = tempfile::tempdir().unwrap();
    let petrel = Petrel::start(
        "standalone",
        dir.path(),
        &[
            flush,
            "mappedFileSizeCommitLog=1048576",
            "maxMessageSize=65536",
        ],
    );
    let mut client = Client::new(&petrel.namesrv());
    client
        .create_topic(&petrel.front_door(), &TopicConfig::new("TC", 2, 6))
        .unwrap();
    let (broker, addr) = petrel.brokers()[0].clone();
    let ns = petrel.namesrv();
    let stop = Arc::new(AtomicBool::new(false));
    let (acked_tx, acked_rx) = mpsc::channel();
    let producers: Vec<_> = (0..2)
        .map(|queue_id| {
            let (ns, addr, broker, stop, acked) = (
                ns.clone(),
                addr.clone(),
                broker.clone(),
                stop.clone(),
                acked_tx.clone(),
            );
            std::thread::spawn(move || {
                let mut client = Client::new(&ns);
                let q = MessageQueue {
                    topic: "TC".into(),
                    broker_name: broker,
                    queue_id,
                };
                // Bodies of ~2 KiB so the log rolls over 1 MiB segments during the run.
                for i in 0..20_000u32 {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let body = format!("{queue_id}-{i}-{}", "x".repeat(2000));
                    match client.send_to(
                        &addr,
                        &q,
                        &Message::new(Bytes::from(body), Default::default()),
                    ) {
                        Ok(r) => acked.send((queue_id, r.queue_offset, i)).unwrap(),
                        Err(_) => return,
                    }
                }
            })
        })
        .collect();
    drop(acked_tx);
    // Crash once enough sends were acknowledged to span several segments.
    let mut acked = Vec::new();
    while acked.len() < 1500 {
        acked.push(
            acked_rx
                .recv_timeout(Duration::from_secs(30))
                .expect("sends are acknowledged"),
        );
    }
    petrel.kill9();
    stop.store(true, Ordering::Relaxed);
    for p in producers {
        p.join().unwrap();
    }
    acked.extend(acked_rx.try_iter());

    let petrel = Petrel::start(
        "standalone",
        dir.path(),
        &[
            flush,
            "mappedFileSizeCommitLog=1048576",
            "maxMessageSize=65536",
        ],
    );
    let (broker, addr) = petrel.brokers()[0].clone();
    let mut client = Client::new(&petrel.namesrv());
    for queue_id in 0..2 {
        let q = MessageQueue {
            topic: "TC".into(),
            broker_name: broker.clone(),
            queue_id,
        };
        let mut bodies = Vec::new();
        let mut offset = 0;
        loop {
            let req = PullRequest {
                group: "G",
                queue: &q,
                offset,
                max: 32,
                subscription: "*",
                suspend: None,
            };
            let r = client.pull(&addr, &req).unwrap();
            if r.code == response::PULL_NOT_FOUND {
                break;
            }
            assert_eq!(r.code, response::SUCCESS, "pull from {offset}");
            for m in &r.messages {
                assert_eq!(
                    m.queue_offset,
                    bodies.len() as i64,
                    "queue offsets are dense"
                );
                bodies.push(String::from_utf8(m.body.to_vec()).expect("bodies are intact"));
            }
            offset = r.next_begin_offset;
        }
        // Every stored message is one this queue's producer sent, in send order.
        for (n, body) in bodies.iter().enumerate() {
            assert!(
                body.starts_with(&format!("{queue_id}-{n}-")),
                "message {n} of queue {queue_id}: {}",
                &body[..20]
            );
            assert_eq!(body.len(), format!("{queue_id}-{n}-").len() + 2000);
        }
        // Every acknowledged message is stored.
        for (q, queue_offset, i) in acked.iter().filter(|a| a.0 == queue_id) {
            assert!(
                (*queue_offset as usize) < bodies.len(),
                "acked message {q}-{i} at {queue_offset} lost ({} stored)",
                bodies.len()
            );
        }
    }
}

#[test]
fn kill_9_loses_no_acknowledged_message_with_sync_flush() {
    crash_during_produce("flushDiskType=SYNC_FLUSH");
}

#[test]
fn kill_9_loses_no_acknowledged_message_with_async_flush() {
    crash_during_produce("flushDiskType=ASYNC_FLUSH");
}
