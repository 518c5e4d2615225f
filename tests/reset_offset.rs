//! Resetting a group's progress by time (F23), RocketMQ 5's server-side way: `petrel admin
//! resetOffsetByTime` while a stock Java push consumer runs (it is sent back to the start and
//! gets everything again), and offline resets to the past, the future and the end, checked
//! through the committed offsets.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::java::{produce, Driver};
use common::{admin_ok, create_topic, queue, standalone};
use petrel::client::{now_ms, properties, Client, Message};
use petrel_shards::remoting::request;

fn committed(client: &mut Client, addr: &str, group: &str, queue_id: i32) -> i64 {
    let reply = client
        .call_fields(
            addr,
            request::QUERY_CONSUMER_OFFSET,
            &[
                ("consumerGroup", group.to_string()),
                ("topic", "Reset".to_string()),
                ("queueId", queue_id.to_string()),
            ],
        )
        .unwrap();
    reply.field("offset").unwrap().parse().unwrap()
}

#[test]
fn a_running_java_consumer_is_sent_back_to_the_start() {
    let (_dir, petrel) = standalone(&[]);
    let ns = petrel.namesrv();
    let mut client = Client::new(&ns);
    create_topic(&mut client, &petrel, "JavaReset", 2);
    produce(&ns, "JavaReset", 20, "sync");
    let consumer = Driver::start(&["push", &ns, "GJavaReset", "JavaReset", "*", "40", "90", "0"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    while seen.values().sum::<usize>() < 20 {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = consumer.lines.recv_timeout(left).expect("20 deliveries");
        if let Some(body) = line["body"].as_str() {
            *seen.entry(body.to_string()).or_default() += 1;
        }
    }
    let out = admin_ok(
        &ns,
        &[
            "resetOffsetByTime",
            "-g",
            "GJavaReset",
            "-t",
            "JavaReset",
            "-s",
            "0",
        ],
    );
    let rows: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows[0], ["#brokerName", "#queueId", "#offset"]);
    assert_eq!(
        rows[1..],
        [vec!["broker-a-s0", "0", "0"], vec!["broker-a-s0", "1", "0"]]
    );
    // The consumer is told at its next pull and starts over: every message a second time.
    let lines = consumer.finish(Duration::from_secs(90));
    for l in &lines {
        if let Some(body) = l["body"].as_str() {
            *seen.entry(body.to_string()).or_default() += 1;
        }
    }
    assert_eq!(seen.len(), 20);
    assert!(seen.values().all(|n| *n == 2), "{seen:?}");
}

#[test]
fn offline_resets_go_to_the_past_the_future_and_the_end() {
    let (_dir, petrel) = standalone(&[]);
    let ns = petrel.namesrv();
    let mut client = Client::new(&ns);
    create_topic(&mut client, &petrel, "Reset", 1);
    let (name, addr) = petrel.brokers()[0].clone();
    let q = queue("Reset", &name, 0);
    let mut middle = 0;
    for i in 0..10 {
        client
            .send_to(
                &addr,
                &q,
                &Message::new(format!("m{i}"), properties(None, None, &[])),
            )
            .unwrap();
        if i == 3 {
            middle = now_ms() + 1;
            while now_ms() < middle {
                std::hint::spin_loop();
            }
        }
    }
    let group = "GReset";
    admin_ok(&ns, &["updateSubGroup", "-b", &addr, "-g", group]);
    let reset = |client: &mut Client, ms: i64| {
        let rows = client.reset_offset(&addr, group, "Reset", ms).unwrap();
        assert_eq!(rows.len(), 1);
        rows[0].1
    };
    assert_eq!(
        reset(&mut client, middle),
        4,
        "the first message stored from `middle` on"
    );
    assert_eq!(committed(&mut client, &addr, group, 0), 4);
    assert_eq!(
        reset(&mut client, now_ms() + 3_600_000),
        10,
        "a future time: all consumed"
    );
    assert_eq!(
        reset(&mut client, 0),
        0,
        "before everything: nothing consumed"
    );
    assert_eq!(reset(&mut client, -1), 10, "-1: the end");
    assert_eq!(committed(&mut client, &addr, group, 0), 10);
    // An unknown group is refused by name, and nothing is created.
    let err = client
        .reset_offset(&addr, "NoSuchGroup", "Reset", 0)
        .unwrap_err();
    assert!(err.to_string().contains("NoSuchGroup"), "{err}");
}
