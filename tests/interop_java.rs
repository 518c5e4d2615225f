//! Interop with the Java client most RocketMQ users run (`org.apache.rocketmq:rocketmq-client`
//! 5.5.0), through the driver in `tests/common/java.rs`. Each test
//! starts a `petrel standalone` and runs the driver as a subprocess; the driver prints one JSON
//! object per line (per sent or received message), which the test checks.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::java::{produce, Driver};
use common::{eventually, Petrel};
use petrel::client::Client;
use petrel_shards::broker::metadata::TopicConfig;
use petrel_shards::remoting::request;
use serde_json::Value;

fn setup(topic: &str, queues: i32) -> (tempfile::TempDir, Petrel) {
    setup_with(topic, queues, &[])
}

fn setup_with(topic: &str, queues: i32, extra: &[&str]) -> (tempfile::TempDir, Petrel) {
    let dir = tempfile::tempdir().unwrap();
    let petrel = Petrel::start("standalone", dir.path(), extra);
    let mut client = Client::new(&petrel.namesrv());
    client
        .create_topic(&petrel.front_door(), &TopicConfig::new(topic, queues, 6))
        .unwrap();
    eventually(Duration::from_secs(10), || client.route(topic).ok());
    (dir, petrel)
}

/// Received messages, keyed by body, checked for what the driver's producer put in them.
fn check_received(lines: &[Value]) -> BTreeMap<String, Value> {
    let mut by_body = BTreeMap::new();
    for m in lines.iter().filter(|l| l.get("body").is_some()) {
        let body = m["body"].as_str().unwrap().to_string();
        let i: usize = body.strip_prefix("body-").unwrap().parse().unwrap();
        assert_eq!(
            m["tags"],
            if i.is_multiple_of(2) { "TagA" } else { "TagB" },
            "{m}"
        );
        assert_eq!(m["keys"], format!("key-{i}"), "{m}");
        assert_eq!(m["idx"], i.to_string(), "{m}");
        assert_eq!(m["color"], "blue", "{m}");
        assert_eq!(m["reconsumeTimes"], 0, "{m}");
        // The first delivery of each body; callers count duplicates where they matter.
        by_body.entry(body).or_insert_with(|| m.clone());
    }
    by_body
}

#[test]
fn java_producer_modes_and_push_consumer_round_trip() {
    let (dir, petrel) = setup("JavaT", 4);
    let ns = petrel.namesrv();
    let mut sent_ids = BTreeSet::new();
    let mut bodies = 0;
    for (mode, n) in [("sync", 20), ("async", 20), ("oneway", 10), ("batch", 20)] {
        for line in produce(&ns, "JavaT", n, mode) {
            if let Some(id) = line["msgId"].as_str() {
                sent_ids.insert(id.to_string());
            }
            if mode != "oneway" {
                assert_eq!(line["status"], "SEND_OK", "{mode}: {line}");
                assert_eq!(line["broker"], "broker-a-s0");
            }
        }
        bodies += n;
    }
    assert_eq!(
        sent_ids.len(),
        60,
        "every acknowledged message has its own id"
    );
    let lines = Driver::start(&[
        "push",
        &ns,
        "GJavaAll",
        "JavaT",
        "*",
        &bodies.to_string(),
        "90",
        "0",
    ])
    .finish(Duration::from_secs(120));
    let received: Vec<&Value> = lines.iter().filter(|l| l.get("body").is_some()).collect();
    assert_eq!(received.len(), 70, "exactly what was sent, no duplicates");
    let ids: BTreeSet<String> = received
        .iter()
        .map(|m| m["msgId"].as_str().unwrap().to_string())
        .collect();
    assert!(
        sent_ids.is_subset(&ids),
        "every acknowledged id is delivered"
    );
    // Bodies repeat across the four runs (each sends body-0..), so count per body.
    let mut per_body: BTreeMap<String, usize> = BTreeMap::new();
    for m in &received {
        *per_body
            .entry(m["body"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    assert_eq!(per_body["body-0"], 4);
    assert_eq!(per_body["body-19"], 3);
    check_received(&lines);
    // After a clean restart on the same store, every message and the group's committed
    // offsets are still there: the group gets nothing more, a new reader gets everything.
    assert!(petrel.terminate().success());
    let petrel = Petrel::start("standalone", dir.path(), &[]);
    let ns = petrel.namesrv();
    let again = Driver::start(&["push", &ns, "GJavaAll", "JavaT", "*", "0", "10", "4"])
        .finish(Duration::from_secs(60));
    assert!(
        again.iter().all(|l| l.get("body").is_none()),
        "the group's committed offsets were lost: {again:?}"
    );
    let all = Driver::start(&["pull", &ns, "GJavaAfterRestart", "JavaT", "90", "70"])
        .finish(Duration::from_secs(120));
    let read: Vec<&str> = all.iter().filter_map(|l| l["msgId"].as_str()).collect();
    let after: BTreeSet<&str> = read.iter().copied().collect();
    assert_eq!(read.len(), 70, "every message survives the restart, once");
    assert_eq!(after.len(), 70, "every message survives the restart, once");
    assert!(sent_ids.iter().all(|id| after.contains(id.as_str())));
}

#[test]
fn java_tag_filtered_consumer_and_offset_reader() {
    let (_dir, petrel) = setup("JavaTags", 2);
    let ns = petrel.namesrv();
    produce(&ns, "JavaTags", 40, "sync");
    let tag_a = Driver::start(&[
        "push",
        &ns,
        "GJavaTagA",
        "JavaTags",
        "TagA",
        "20",
        "90",
        "0",
    ])
    .finish(Duration::from_secs(120));
    let got = check_received(&tag_a);
    assert_eq!(got.len(), 20);
    assert!(got.values().all(|m| m["tags"] == "TagA"));
    let pulled = Driver::start(&["pull", &ns, "GJavaPull", "JavaTags", "90", "40"])
        .finish(Duration::from_secs(120));
    let got = check_received(&pulled);
    assert_eq!(got.len(), 40);
    // Per queue, every offset from 0, once each and in order.
    let mut per_queue: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for m in pulled.iter().filter(|l| l.get("body").is_some()) {
        per_queue
            .entry(m["queueId"].as_i64().unwrap())
            .or_default()
            .push(m["queueOffset"].as_i64().unwrap());
    }
    for (queue, offsets) in &per_queue {
        let expected: Vec<i64> = (0..offsets.len() as i64).collect();
        assert_eq!(offsets, &expected, "queue {queue}");
    }
}

#[test]
fn two_java_consumers_of_one_group_split_the_queues() {
    let (_dir, petrel) = setup("JavaSplit", 4);
    let ns = petrel.namesrv();
    let (_, addr) = petrel.brokers()[0].clone();
    let a = Driver::start(&[
        "push",
        &ns,
        "GJavaSplit",
        "JavaSplit",
        "*",
        "0",
        "120",
        "6",
        "inst-a",
    ]);
    let b = Driver::start(&[
        "push",
        &ns,
        "GJavaSplit",
        "JavaSplit",
        "*",
        "0",
        "120",
        "6",
        "inst-b",
    ]);
    a.read_until("started", Duration::from_secs(60));
    b.read_until("started", Duration::from_secs(60));
    // Wait until the broker knows both members, so the next rebalance splits the queues.
    let mut client = Client::new(&ns);
    eventually(Duration::from_secs(30), || {
        let reply = client
            .call_fields(
                &addr,
                request::GET_CONSUMER_LIST_BY_GROUP,
                &[("consumerGroup", "GJavaSplit".into())],
            )
            .ok()?;
        let list: Value = serde_json::from_slice(&reply.body).ok()?;
        (list["consumerIdList"].as_array()?.len() == 2).then_some(())
    });
    produce(&ns, "JavaSplit", 40, "sync");
    let got_a = a.finish(Duration::from_secs(150));
    let got_b = b.finish(Duration::from_secs(150));
    let queues = |lines: &[Value]| -> BTreeSet<i64> {
        lines
            .iter()
            .filter(|l| l.get("body").is_some())
            .map(|m| m["queueId"].as_i64().unwrap())
            .collect()
    };
    let (qa, qb) = (queues(&got_a), queues(&got_b));
    assert!(
        qa.is_disjoint(&qb),
        "both consumers read a queue: {qa:?} / {qb:?}"
    );
    assert!(
        !qa.is_empty() && !qb.is_empty(),
        "one consumer got nothing: {qa:?} / {qb:?}"
    );
    let (ma, mb) = (check_received(&got_a), check_received(&got_b));
    assert!(
        ma.keys().all(|k| !mb.contains_key(k)),
        "a message went to both consumers"
    );
    assert_eq!(ma.len() + mb.len(), 40);
}

#[test]
fn java_view_message_finds_each_message_by_its_offset_msg_id() {
    let (_dir, petrel) = setup("JavaView", 2);
    let ns = petrel.namesrv();
    let sent = produce(&ns, "JavaView", 6, "sync");
    let ids: Vec<&str> = sent
        .iter()
        .map(|l| l["offsetMsgId"].as_str().expect("an offsetMsgId"))
        .collect();
    let mut args = vec!["view", ns.as_str(), "JavaView"];
    args.extend(&ids);
    let lines = Driver::start(&args).finish(Duration::from_secs(120));
    for (line, s) in lines.iter().zip(&sent) {
        assert_eq!(line["topic"], "JavaView", "{line}");
        assert_eq!(line["body"], format!("body-{}", s["i"]), "{line}");
        assert_eq!(line["queueOffset"], s["queueOffset"], "{line}");
        let (_, offset) =
            petrel_shards::record::decode_offset_msg_id(s["offsetMsgId"].as_str().unwrap())
                .unwrap();
        assert_eq!(line["commitLogOffset"], offset, "{line}");
        assert_eq!(
            line["msgId"], s["msgId"],
            "the client-visible ID survives: {line}"
        );
    }
    assert_eq!(lines.len(), sent.len() + 1, "one line per ID, then done");
}

#[test]
fn java_delayed_messages_reach_a_push_consumer_after_their_level() {
    let (_dir, petrel) = setup_with("JavaDelay", 2, &["messageDelayLevel=1s 2s"]);
    let ns = petrel.namesrv();
    let sent = produce(&ns, "JavaDelay", 6, "delay2");
    assert!(sent.iter().all(|l| l["status"] == "SEND_OK"), "{sent:?}");
    let lines = Driver::start(&["push", &ns, "GJavaDelay", "JavaDelay", "*", "6", "60", "0"])
        .finish(Duration::from_secs(90));
    let got: Vec<&Value> = lines.iter().filter(|l| l.get("body").is_some()).collect();
    assert_eq!(got.len(), 6, "{lines:?}");
    let sent_ids: BTreeSet<&str> = sent.iter().filter_map(|l| l["msgId"].as_str()).collect();
    for m in got {
        assert!(sent_ids.contains(m["msgId"].as_str().unwrap()), "{m}");
        let waited = m["storeTimestamp"].as_i64().unwrap() - m["bornTimestamp"].as_i64().unwrap();
        assert!(
            waited >= 2000,
            "delivered {waited} ms after it was sent: {m}"
        );
        assert_eq!(m["reconsumeTimes"], 0, "{m}");
    }
}

#[test]
fn java_consumers_that_fail_get_retries_then_a_dead_letter_queue() {
    let (_dir, petrel) = setup_with("JavaRetry", 1, &["messageDelayLevel=1s 1s 1s 1s 1s 1s"]);
    let ns = petrel.namesrv();
    let sent = produce(&ns, "JavaRetry", 3, "sync");
    let ids: BTreeSet<&str> = sent.iter().filter_map(|l| l["msgId"].as_str()).collect();
    // A new group's retry topic appears with its first heartbeat, and the client would only
    // see its route at its next 30 s refresh; made beforehand, the test needs seconds.
    let mut admin = Client::new(&ns);
    for group in ["GJavaRetry", "GJavaDead"] {
        let retry = format!("%RETRY%{group}");
        admin
            .create_topic(&petrel.front_door(), &TopicConfig::new(&retry, 1, 6))
            .unwrap();
        eventually(Duration::from_secs(10), || admin.route(&retry).ok());
    }
    // Fails each message twice, then succeeds: three deliveries each, reconsumeTimes 0, 1, 2.
    let lines = Driver::start(&[
        "retry",
        &ns,
        "GJavaRetry",
        "JavaRetry",
        "2",
        "16",
        "9",
        "90",
    ])
    .finish(Duration::from_secs(120));
    let mut seen: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for l in lines.iter().filter(|l| l.get("body").is_some()) {
        seen.entry(l["msgId"].as_str().unwrap().to_string())
            .or_default()
            .push(l["reconsumeTimes"].as_i64().unwrap());
    }
    assert_eq!(
        seen.keys().map(String::as_str).collect::<BTreeSet<_>>(),
        ids,
        "{lines:?}"
    );
    for (id, mut times) in seen {
        times.sort();
        assert_eq!(times, [0, 1, 2], "{id}: {lines:?}");
    }
    // Always fails with at most 1 retry: two deliveries, then the dead-letter queue.
    let lines = Driver::start(&[
        "retry",
        &ns,
        "GJavaDead",
        "JavaRetry",
        "100",
        "1",
        "6",
        "90",
    ])
    .finish(Duration::from_secs(120));
    assert_eq!(
        lines.iter().filter(|l| l.get("body").is_some()).count(),
        6,
        "{lines:?}"
    );
    let mut client = Client::new(&ns);
    let route = eventually(Duration::from_secs(10), || {
        client.route("%DLQ%GJavaDead").ok()
    });
    let q = route
        .subscribe_queues("%DLQ%GJavaDead")
        .pop()
        .expect("one DLQ queue");
    let addr = route.broker_addr(&q.broker_name).unwrap().to_string();
    let dead = eventually(Duration::from_secs(10), || {
        let m = common::pull_all(&mut client, &addr, &q, "*");
        (m.len() == 3).then_some(m)
    });
    for m in dead {
        assert!(ids.contains(m.msg_id.as_str()), "{m:?}");
        assert_eq!(m.reconsume_times, 2);
        assert_eq!(m.properties.get("RETRY_TOPIC"), Some("JavaRetry"));
    }
}

#[test]
fn java_query_message_by_key_and_view_message_by_unique_key() {
    let (_dir, petrel) = setup("JavaKeys", 2);
    let ns = petrel.namesrv();
    let sent = produce(&ns, "JavaKeys", 20, "sync");
    let lines = Driver::start(&[
        "querykey",
        &ns,
        "JavaKeys",
        "key-7",
        "32",
        "0",
        &i64::MAX.to_string(),
    ])
    .finish(Duration::from_secs(60));
    let found: Vec<&Value> = lines.iter().filter(|l| l.get("body").is_some()).collect();
    assert_eq!(found.len(), 1, "{lines:?}");
    assert_eq!(found[0]["body"], "body-7");
    assert_eq!(found[0]["msgId"], sent[7]["msgId"]);
    // viewMessage with a UNIQ_KEY: not an offsetMsgId this broker holds, so the client falls
    // back to QUERY_MESSAGE with _UNIQUE_KEY_QUERY on every broker of the topic.
    let uniq = sent[12]["msgId"].as_str().unwrap();
    let lines = Driver::start(&["view", &ns, "JavaKeys", uniq]).finish(Duration::from_secs(60));
    assert_eq!(lines[0]["body"], "body-12", "{lines:?}");
    assert_eq!(lines[0]["msgId"], uniq);
}

#[test]
fn java_broadcasting_consumers_each_get_every_message_and_the_broker_keeps_no_progress() {
    let (_dir, petrel) = setup("JavaBcast", 2);
    let ns = petrel.namesrv();
    let consumer = |instance: &str| {
        let d = Driver::start(&[
            "push",
            &ns,
            "GJavaBcast",
            "JavaBcast",
            "*",
            "20",
            "90",
            "0",
            instance,
            "BROADCASTING",
        ]);
        d.read_until("started", Duration::from_secs(60));
        d
    };
    let (b1, b2) = (consumer("b1"), consumer("b2"));
    let sent = produce(&ns, "JavaBcast", 20, "sync");
    let ids: BTreeSet<&str> = sent.iter().filter_map(|l| l["msgId"].as_str()).collect();
    for d in [b1, b2] {
        let lines = d.finish(Duration::from_secs(120));
        let got: BTreeSet<&str> = lines.iter().filter_map(|l| l["msgId"].as_str()).collect();
        assert_eq!(got, ids, "every instance gets every message");
    }
    // Broadcast progress lives in the clients: nothing was committed on the broker.
    let mut client = Client::new(&ns);
    let addr = petrel.brokers()[0].1.clone();
    let stats = client
        .consume_stats(&addr, "GJavaBcast", Some("JavaBcast"))
        .unwrap()
        .queues;
    assert_eq!(stats.len(), 2);
    for q in stats {
        assert_eq!(q.consumer_offset, 0, "{q:?}");
        assert_eq!(q.broker_offset, 10, "{q:?}");
    }
}
