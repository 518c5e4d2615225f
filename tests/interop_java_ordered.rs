//! Ordered messages with the stock Java client (5.5.0): orderly push consumers
//! (MessageListenerOrderly, holding queue locks on the broker) keep each order key's sequence
//! across a rebalance between two consumers, in-place retries and a broker restart; a topic
//! made with `updateTopic -o true` keeps one global order.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::java::{produce, produce_from, Driver};
use common::{eventually, Petrel};
use petrel::client::Client;
use petrel_shards::broker::metadata::TopicConfig;
use serde_json::Value;

/// The broker logs every lock grant, refresh, refusal, expiry and release, so that a failure
/// here shows who held each queue when (each line below carries the client's `wallMs`).
const LOCK_LOG: &str = "warn,petrel_shards::broker::locks=debug";

fn idx(line: &Value) -> u64 {
    line["idx"].as_str().unwrap().parse().unwrap()
}

/// Reads both consumers' lines until `want` distinct messages were consumed successfully.
fn collect(drivers: &[&Driver], want: usize, limit: Duration) -> Vec<Value> {
    let deadline = Instant::now() + limit;
    let mut lines = Vec::new();
    let mut consumed = BTreeSet::new();
    while consumed.len() < want {
        assert!(
            Instant::now() < deadline,
            "only {} of {want} consumed in {limit:?}",
            consumed.len()
        );
        let mut idle = true;
        for d in drivers {
            while let Ok(line) = d.lines.try_recv() {
                assert!(line.get("error").is_none(), "driver failed: {line}");
                if line["result"] == "SUCCESS" {
                    consumed.insert(idx(&line));
                }
                lines.push(line);
                idle = false;
            }
        }
        if idle {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    lines
}

#[test]
fn java_orderly_consumers_keep_each_keys_order_across_retries_and_a_broker_restart() {
    let ns_dir = tempfile::tempdir().unwrap();
    let namesrv = Petrel::start("namesrv", ns_dir.path(), &[]);
    let ns = namesrv.namesrv();
    // The broker comes back on the ports the OS gave it first, so the running consumers find
    // it again after its restart.
    let store = tempfile::tempdir().unwrap();
    let ns_prop = format!("namesrvAddr={ns}");
    let broker = Petrel::start_logged("broker", store.path(), &[&ns_prop], LOCK_LOG);
    let port = |addr: &str| addr.rsplit_once(':').unwrap().1.to_string();
    let same_ports = [
        ns_prop.clone(),
        format!("listenPort={}", port(&broker.front_door())),
        format!("shardListenPortBase={}", port(&broker.brokers()[0].1)),
    ];
    let same_ports: Vec<&str> = same_ports.iter().map(String::as_str).collect();
    let mut client = Client::new(&ns);
    client
        .create_topic(&broker.front_door(), &TopicConfig::new("JavaOrder", 4, 6))
        .unwrap();
    eventually(Duration::from_secs(10), || client.route("JavaOrder").ok());

    let consumer = |instance: &str| {
        let d = Driver::start(&[
            "orderly",
            &ns,
            "GJavaOrder",
            "JavaOrder",
            "1000000",
            "300",
            "97",
            instance,
        ]);
        d.read_until("started", Duration::from_secs(60));
        d
    };
    let (c1, c2) = (consumer("c1"), consumer("c2"));
    produce_from(&ns, "JavaOrder", 1000, "order12", 0);
    let before = broker.brokers();
    assert!(broker.terminate().success());
    let broker = Petrel::start_logged("broker", store.path(), &same_ports, LOCK_LOG);
    assert_eq!(
        broker.brokers(),
        before,
        "the broker is back where the consumers knew it"
    );
    produce_from(&ns, "JavaOrder", 1000, "order12", 1000);
    let mut lines = collect(&[&c1, &c2], 2000, Duration::from_secs(240));
    lines.sort_by_key(|l| l["at"].as_i64().unwrap());

    // Per order key, messages are first consumed in the order they were sent: never one
    // before its predecessor (redeliveries after the restart may repeat, never skip ahead).
    let mut last_first: BTreeMap<String, u64> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    for l in lines.iter().filter(|l| l["result"] == "SUCCESS") {
        let (key, i) = (l["okey"].as_str().unwrap().to_string(), idx(l));
        assert_eq!(key, format!("order-{}", i % 12), "{l}");
        if seen.insert(i) {
            if let Some(prev) = last_first.insert(key.clone(), i) {
                assert_eq!(i, prev + 12, "{key}: {i} consumed right after {prev}");
            } else {
                assert!(i < 12, "{key} started at {i}");
            }
        }
    }
    assert_eq!(seen.len(), 2000);
    // A message that asked for a pause holds its queue: until it is consumed, nothing stored
    // behind it is delivered from that queue (a member taking the queue over may replay
    // messages before it, from the group's committed offset, as RocketMQ allows).
    let suspended: Vec<&Value> = lines.iter().filter(|l| l["result"] == "SUSPEND").collect();
    assert!(suspended.len() >= 12, "{} pauses", suspended.len());
    for s in &suspended {
        let same_queue = |l: &&Value| l["broker"] == s["broker"] && l["queueId"] == s["queueId"];
        let later = lines
            .iter()
            .filter(same_queue)
            .filter(|l| l["at"].as_i64() > s["at"].as_i64());
        let mut consumed = false;
        for l in later {
            if l["msgId"] == s["msgId"] && l["result"] == "SUCCESS" {
                consumed = true;
                break;
            }
            assert!(
                l["queueOffset"].as_i64() <= s["queueOffset"].as_i64(),
                "{l} overtook the paused {s}"
            );
        }
        assert!(consumed, "the paused {s} was never consumed");
    }
    // The group's two members split the queues: each consumed, each queue mostly by one.
    let by: BTreeSet<&str> = lines
        .iter()
        .map(|l| l["instance"].as_str().unwrap())
        .collect();
    assert_eq!(by.len(), 2, "both members consumed");
}

#[test]
fn java_a_topic_made_with_order_true_is_consumed_in_send_order() {
    let dir = tempfile::tempdir().unwrap();
    let petrel = Petrel::start("standalone", dir.path(), &["orderMessageEnable=true"]);
    let ns = petrel.namesrv();
    common::admin_ok(
        &ns,
        &[
            "updateTopic",
            "-b",
            &petrel.front_door(),
            "-t",
            "JavaFifo",
            "-r",
            "1",
            "-w",
            "1",
            "-o",
            "true",
        ],
    );
    let mut client = Client::new(&ns);
    eventually(Duration::from_secs(10), || client.route("JavaFifo").ok());
    // Plain sends: the producer takes its queues from the route's orderTopicConf.
    produce(&ns, "JavaFifo", 200, "sync");
    let d = Driver::start(&[
        "orderly",
        &ns,
        "GJavaFifo",
        "JavaFifo",
        "200",
        "120",
        "0",
        "only",
    ]);
    let lines = d.finish(Duration::from_secs(150));
    let order: Vec<u64> = lines
        .iter()
        .filter(|l| l["result"] == "SUCCESS")
        .map(idx)
        .collect();
    assert_eq!(order, (0..200).collect::<Vec<_>>());
}
