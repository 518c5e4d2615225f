//! Transactional messages with the stock Java client (5.5.0) against `petrel standalone` with
//! short check settings: committed half messages are delivered exactly as sent, rolled-back
//! ones never; a half message whose outcome was unknown when its producer went away is checked
//! back with another producer of the group; one never resolved is discarded after
//! `transactionCheckMax` checks. Open transactions survive a broker restart.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::java::Driver;
use common::{eventually, Petrel};
use petrel::client::Client;
use petrel_shards::broker::metadata::TopicConfig;
use serde_json::Value;

const SETTINGS: [&str; 3] = [
    "transactionTimeOut=1000",
    "transactionCheckInterval=500",
    "transactionCheckMax=3",
];

fn idx(line: &Value) -> u64 {
    line["idx"].as_str().unwrap().parse().unwrap()
}

/// Sends `count` transactional messages; returns the send lines by index.
fn txsend(ns: &str, topic: &str, count: usize, group: &str, plan: &str) -> BTreeMap<u64, Value> {
    let lines = Driver::start(&["txsend", ns, topic, &count.to_string(), group, plan])
        .finish(Duration::from_secs(120));
    let done = lines.last().unwrap();
    assert_eq!(done["sent"], count, "{lines:?}");
    lines
        .iter()
        .filter(|l| l.get("i").is_some())
        .map(|l| (l["i"].as_u64().unwrap(), l.clone()))
        .collect()
}

/// Check-back lines until `want` arrived.
fn checks(driver: &Driver, want: usize, limit: Duration) -> Vec<Value> {
    let deadline = Instant::now() + limit;
    let mut out = Vec::new();
    while out.len() < want {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = driver
            .lines
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("{} of {want} check-backs: {out:?}", out.len()));
        assert!(line.get("error").is_none(), "{line}");
        if line.get("check").is_some() {
            out.push(line);
        }
    }
    out
}

#[test]
fn java_transactions_commit_roll_back_and_are_checked_back_after_the_producer_left() {
    let dir = tempfile::tempdir().unwrap();
    let petrel = Petrel::start("standalone", dir.path(), &SETTINGS);
    let ns = petrel.namesrv();
    let mut client = Client::new(&ns);
    client
        .create_topic(&petrel.front_door(), &TopicConfig::new("JavaTx", 2, 6))
        .unwrap();
    eventually(Duration::from_secs(10), || client.route("JavaTx").ok());
    drop(client);

    // Message i's local transaction: commit (i % 3 == 0), roll back (1) or unknown (2). The
    // producer then exits, leaving ten transactions open.
    let sent = txsend(&ns, "JavaTx", 30, "PGJavaTx", "cru");
    assert!(sent.values().all(|l| l["status"] == "SEND_OK"), "{sent:?}");
    // Open transactions survive a restart of the broker.
    assert!(petrel.terminate().success());
    let petrel = Petrel::start("standalone", dir.path(), &SETTINGS);
    let ns = petrel.namesrv();
    // Another producer of the group answers the check-backs: even idx commit, odd roll back.
    let checker = Driver::start(&["txcheck", &ns, "PGJavaTx", "JavaTx", "1000", "120", "byIdx"]);
    let seen = checks(&checker, 10, Duration::from_secs(60));
    let checked: BTreeSet<u64> = seen.iter().map(idx).collect();
    assert_eq!(
        checked,
        (0..30).filter(|i| i % 3 == 2).collect::<BTreeSet<_>>(),
        "{seen:?}"
    );
    for c in &seen {
        assert_eq!(
            c["topic"], "JavaTx",
            "the check carries the real topic: {c}"
        );
        // The client decodes the check's body as a plain stored message, so its msgId is the
        // offsetMsgId; the transaction id is the UNIQ_KEY the send returned.
        assert_eq!(c["transactionId"], sent[&idx(c)]["msgId"], "{c}");
        assert_eq!(c["checkTimes"], "1", "{c}");
    }
    let expected: BTreeSet<u64> = (0..30)
        .filter(|i| i % 3 == 0 || (i % 3 == 2 && i % 2 == 0))
        .collect();
    let lines = Driver::start(&[
        "push",
        &ns,
        "GJavaTx",
        "JavaTx",
        "*",
        &expected.len().to_string(),
        "60",
        "0",
    ])
    .finish(Duration::from_secs(90));
    let got: Vec<&Value> = lines.iter().filter(|l| l.get("body").is_some()).collect();
    assert_eq!(
        got.iter().map(|l| idx(l)).collect::<BTreeSet<_>>(),
        expected,
        "{got:?}"
    );
    assert_eq!(got.len(), expected.len(), "each committed message once");
    for m in &got {
        let i = idx(m);
        assert_eq!(m["msgId"], sent[&i]["msgId"], "{m}");
        assert_eq!(m["body"], format!("body-{i}"));
        assert_eq!(m["keys"], format!("key-{i}"));
        assert_eq!(m["color"], "blue");
    }
    // Nothing rolled back or still open shows up later: a second reader of the group finds
    // the group's offsets at the end of what was committed.
    drop(checker);
    let again = Driver::start(&["push", &ns, "GJavaTxLate", "JavaTx", "*", "0", "8", "3"])
        .finish(Duration::from_secs(30));
    let late: BTreeSet<u64> = again
        .iter()
        .filter(|l| l.get("body").is_some())
        .map(idx)
        .collect();
    assert_eq!(late, expected, "{again:?}");
}

#[test]
fn java_a_transaction_nobody_resolves_is_checked_at_most_transaction_check_max_times() {
    let dir = tempfile::tempdir().unwrap();
    let petrel = Petrel::start("standalone", dir.path(), &SETTINGS);
    let ns = petrel.namesrv();
    let mut client = Client::new(&ns);
    client
        .create_topic(&petrel.front_door(), &TopicConfig::new("JavaTxLost", 1, 6))
        .unwrap();
    eventually(Duration::from_secs(10), || client.route("JavaTxLost").ok());
    let sent = txsend(&ns, "JavaTxLost", 2, "PGJavaTxLost", "u");
    let checker = Driver::start(&[
        "txcheck",
        &ns,
        "PGJavaTxLost",
        "JavaTxLost",
        "1000",
        "120",
        "unknown",
    ]);
    let seen = checks(&checker, 6, Duration::from_secs(60));
    let mut times: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for c in &seen {
        times
            .entry(idx(c))
            .or_default()
            .push(c["checkTimes"].as_str().unwrap().to_string());
    }
    for (i, t) in &times {
        assert_eq!(t, &["1", "2", "3"], "message {i}: {seen:?}");
    }
    // Then discarded to TRANS_CHECK_MAX_TIME_TOPIC, and never checked again.
    let route = eventually(Duration::from_secs(10), || {
        client.route("TRANS_CHECK_MAX_TIME_TOPIC").ok()
    });
    let q = route
        .subscribe_queues("TRANS_CHECK_MAX_TIME_TOPIC")
        .pop()
        .unwrap();
    let addr = route.broker_addr(&q.broker_name).unwrap().to_string();
    let discarded = eventually(Duration::from_secs(10), || {
        let m = common::pull_all(&mut client, &addr, &q, "*");
        (m.len() == 2).then_some(m)
    });
    let ids: BTreeSet<&str> = sent
        .values()
        .map(|l| l["msgId"].as_str().unwrap())
        .collect();
    for m in &discarded {
        assert!(ids.contains(m.msg_id.as_str()), "{m:?}");
    }
    assert!(
        checker.lines.recv_timeout(Duration::from_secs(3)).is_err(),
        "checked again after the last allowed check"
    );
}
