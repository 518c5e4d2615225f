//! Automatic failover with the stock Java client (5.5.0): a producer that only polls routes
//! rides through masters killed again and again under the controller, and nothing it was
//! answered SEND_OK is lost.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::eventually;
use common::ha::{controller, cycles, held_bodies, Pair};
use common::java::Driver;

const JAVA_TOPIC: &str = "JavaFailover";

#[test]
fn a_java_producer_rides_through_masters_killed_again_and_again_and_loses_nothing_acknowledged() {
    let cycles = cycles(3);
    let (_ns_dir, _namesrv, ns, mut client) = controller();
    let mut pair = Pair::start(&mut client, &ns, Some(JAVA_TOPIC));

    let stop_dir = tempfile::tempdir().unwrap();
    let stop = stop_dir.path().join("stop");
    let producer = Driver::start(&["steady", &ns, JAVA_TOPIC, stop.to_str().unwrap(), "900"]);
    let mut lines = Vec::new();
    let drain = |lines: &mut Vec<serde_json::Value>| {
        lines.extend(producer.lines.try_iter());
    };
    // The producer is under way once its first send is acknowledged.
    eventually(Duration::from_secs(60), || {
        drain(&mut lines);
        lines.iter().any(|l| l["status"] == "SEND_OK").then_some(())
    });
    let mut kills = Vec::new();
    for cycle in 0..cycles {
        std::thread::sleep(Duration::from_millis(1500));
        let (killed_at, took) = pair.kill_master(&mut client, &ns);
        kills.push(killed_at);
        eprintln!("cycle {cycle}: routes name the new master after {took:?}");
        drain(&mut lines);
    }
    // The last failover's new master must take sends too before the producer stops.
    let last_kill = *kills.last().unwrap();
    eventually(Duration::from_secs(30), || {
        drain(&mut lines);
        lines
            .iter()
            .any(|l| l["status"] == "SEND_OK" && l["t"].as_i64().unwrap() > last_kill)
            .then_some(())
    });
    std::fs::write(&stop, b"").unwrap();
    lines.extend(producer.finish(Duration::from_secs(60)));

    let body = |l: &serde_json::Value| format!("steady-{}", l["i"]);
    let acked: Vec<String> = lines
        .iter()
        .filter(|l| l["status"] == "SEND_OK")
        .map(body)
        .collect();
    let tried = lines.iter().filter(|l| l.get("i").is_some()).count();
    let failed = tried - acked.len();
    // What the client saw: from each kill to its next acknowledged send.
    let outages: Vec<i64> = kills
        .iter()
        .map(|&k| {
            lines
                .iter()
                .filter(|l| l["status"] == "SEND_OK")
                .filter_map(|l| l["t"].as_i64())
                .find(|&t| t > k)
                .unwrap()
                - k
        })
        .collect();

    let held = held_bodies(&mut client, pair.master(), JAVA_TOPIC, 2);
    let held_set: BTreeSet<&String> = held.iter().collect();
    let lost: Vec<&String> = acked.iter().filter(|b| !held_set.contains(b)).collect();
    let duplicates = held.len() - held_set.len();
    let acked_set: BTreeSet<&String> = acked.iter().collect();
    let unacked_held = held_set.iter().filter(|b| !acked_set.contains(*b)).count();
    let never_sent: Vec<&&String> = held_set
        .iter()
        .filter(|b| {
            b.strip_prefix("steady-")
                .and_then(|i| i.parse::<usize>().ok())
                .is_none_or(|i| i >= tried)
        })
        .collect();
    eprintln!(
        "java: {cycles} failovers; client outage per kill (ms) {outages:?}; {tried} sends, {} acknowledged, {failed} not acknowledged, {} lost, {duplicates} duplicated, {unacked_held} stored without SEND_OK",
        acked.len(),
        lost.len()
    );
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
    assert!(never_sent.is_empty(), "never sent: {never_sent:?}");
    // A send is tried on the dead broker's queues only, so no retry stores it twice.
    assert_eq!(duplicates, 0, "duplicated messages");
    assert!(
        outages.iter().all(|&ms| ms <= 15_000),
        "client outage per kill (ms): {outages:?}"
    );
}
