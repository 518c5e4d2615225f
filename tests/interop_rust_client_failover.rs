//! Automatic failover with the third-party `rocketmq-client-rust` 1.0.0 producer: it sends
//! through masters killed again and again under the controller (finding each new master by
//! polling routes, every 10 s at the least this client allows), and nothing it was answered
//! SEND_OK is lost, duplicated or invented.

mod common;
#[path = "interop_rust_client/harness.rs"]
mod harness;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::eventually;
use common::ha::{controller, cycles, held_bodies, now_ms, Pair};
use harness::{with_client_at, Spec};
use rocketmq_client_rust::{DefaultMQProducer, SendStatus};

const TOPIC: &str = "RustFailover";

/// One send's outcome: its body, whether it was answered SEND_OK, and when it ended.
struct Outcome {
    body: String,
    acked: bool,
}

/// Sends one message after another until `stop`, recording each outcome and the time of the
/// last SEND_OK in `last_ack`.
fn produce(ns: String, stop: Arc<AtomicBool>, last_ack: Arc<AtomicI64>) -> Vec<Outcome> {
    with_client_at(&ns, Duration::from_secs(600), |env| async move {
        let mut config = env.config("failover-producer");
        config.set_poll_name_server_interval(10_000);
        let mut producer = DefaultMQProducer::builder(env.rt.clone())
            .client_config(config)
            .producer_group("PG_failover")
            .send_msg_timeout(3000)
            .retry_times_when_send_failed(2)
            .build();
        producer.start().await.expect("producer starts");
        let mut outcomes = Vec::new();
        for i in 0.. {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let spec = Spec {
                kind: "steady",
                i,
                tags: None,
            };
            let sent = producer.send(spec.message(TOPIC)).await;
            let acked = matches!(&sent, Ok(Some(r)) if r.send_status == SendStatus::SendOk);
            if acked {
                last_ack.store(now_ms(), Ordering::Relaxed);
            } else {
                // The master is gone until the routes name its successor.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            outcomes.push(Outcome {
                body: spec.body(),
                acked,
            });
        }
        producer.shutdown().await;
        outcomes
    })
}

#[test]
fn a_rust_client_producer_rides_through_killed_masters_and_loses_nothing_acknowledged() {
    let cycles = cycles(2);
    let (_ns_dir, _namesrv, ns, mut client) = controller();
    let mut pair = Pair::start(&mut client, &ns, Some(TOPIC));
    let stop = Arc::new(AtomicBool::new(false));
    let last_ack = Arc::new(AtomicI64::new(0));
    let producer = {
        let (ns, stop, last_ack) = (ns.clone(), stop.clone(), last_ack.clone());
        std::thread::spawn(move || produce(ns, stop, last_ack))
    };
    let acked_since = |t: i64| (last_ack.load(Ordering::Relaxed) > t).then_some(());
    eventually(Duration::from_secs(60), || acked_since(0));
    let mut outages = Vec::new();
    for cycle in 0..cycles {
        std::thread::sleep(Duration::from_millis(1500));
        let (killed_at, took) = pair.kill_master(&mut client, &ns);
        // The client polls routes every 10 s at best: it must find the new master by then.
        eventually(Duration::from_secs(40), || acked_since(killed_at));
        outages.push(last_ack.load(Ordering::Relaxed) - killed_at);
        eprintln!("cycle {cycle}: routes named the new master after {took:?}");
    }
    stop.store(true, Ordering::Relaxed);
    let outcomes = producer.join().expect("the producer thread");

    let acked: Vec<&String> = outcomes
        .iter()
        .filter(|o| o.acked)
        .map(|o| &o.body)
        .collect();
    let tried: BTreeSet<&String> = outcomes.iter().map(|o| &o.body).collect();
    let held = held_bodies(&mut client, pair.master(), TOPIC, 2);
    let held_set: BTreeSet<&String> = held.iter().collect();
    let lost: Vec<&&String> = acked.iter().filter(|b| !held_set.contains(**b)).collect();
    let duplicates = held.len() - held_set.len();
    let never_sent: Vec<&&String> = held_set.iter().filter(|b| !tried.contains(*b)).collect();
    let acked_set: BTreeSet<&String> = acked.iter().copied().collect();
    let unacked_held = held_set.iter().filter(|b| !acked_set.contains(*b)).count();
    eprintln!(
        "rust client: {cycles} failovers; outage per kill until the next SEND_OK (ms) {outages:?}; {} sends, {} acknowledged, {} lost, {duplicates} duplicated, {unacked_held} stored without SEND_OK",
        outcomes.len(),
        acked.len(),
        lost.len()
    );
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
    assert!(never_sent.is_empty(), "never sent: {never_sent:?}");
    // Every try of a send goes to the dead broker's queues, so no retry stores it twice.
    assert_eq!(duplicates, 0, "duplicated messages");
}
