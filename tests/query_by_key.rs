//! The key index end to end (F12): QUERY_MESSAGE by business key through `petrel admin
//! queryMsgByKey` and Petrel's client, across two shards, with small index files so they roll
//! over; the time range and the 64-message cap hold, and the index survives a clean restart
//! and a `kill -9`.

mod common;

use std::collections::BTreeSet;

use common::{create_topic, queue, Petrel};
use petrel::client::{now_ms, properties, Client, KeyQuery, Message, MessageExt};

const SMALL_INDEX: [&str; 3] = ["shards=2", "maxHashSlotNum=64", "maxIndexNum=100"];

fn query(petrel: &Petrel, key: &str, max: usize, begin_ms: i64) -> Vec<MessageExt> {
    let mut client = Client::new(&petrel.namesrv());
    let q = KeyQuery {
        topic: "Keyed",
        key,
        max,
        begin_ms,
        end_ms: i64::MAX,
        unique: false,
    };
    let mut out = Vec::new();
    for (name, addr) in petrel.brokers() {
        out.extend(client.query_by_key(&addr, &name, &q).unwrap());
    }
    out
}

fn ids(messages: &[MessageExt]) -> BTreeSet<String> {
    messages.iter().map(|m| m.msg_id.clone()).collect()
}

#[test]
fn messages_are_found_by_key_within_the_time_range_and_after_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let petrel = Petrel::start("standalone", dir.path(), &SMALL_INDEX);
    let mut client = Client::new(&petrel.namesrv());
    create_topic(&mut client, &petrel, "Keyed", 2);
    let brokers = petrel.brokers();
    // 80 messages to shard 0 carry the key "all" too; 20 go to shard 1.
    let mut sent: Vec<(usize, String)> = Vec::new();
    let mut middle = 0;
    for i in 0..100usize {
        let (name, addr) = &brokers[usize::from(i >= 80)];
        let keys = if i < 80 {
            format!("k-{} all", i % 5)
        } else {
            format!("k-{}", i % 5)
        };
        let msg = Message::new(format!("body-{i}"), properties(None, Some(&keys), &[]));
        let r = client
            .send_to(addr, &queue("Keyed", name, 0), &msg)
            .unwrap();
        sent.push((i, r.msg_id));
        if i == 39 {
            // Everything after this instant is stored later than `middle`.
            middle = now_ms() + 1;
            while now_ms() < middle {
                std::hint::spin_loop();
            }
        }
    }
    let want = |pred: &dyn Fn(usize) -> bool| -> BTreeSet<String> {
        sent.iter()
            .filter(|(i, _)| pred(*i))
            .map(|(_, id)| id.clone())
            .collect()
    };
    let check = |petrel: &Petrel| {
        let k3 = query(petrel, "k-3", 64, 0);
        assert_eq!(k3.len(), 20, "no duplicates");
        assert_eq!(ids(&k3), want(&|i| i % 5 == 3));
        for m in &k3 {
            assert_eq!(
                m.properties.get("KEYS").unwrap().split(' ').next(),
                Some("k-3")
            );
        }
        // The 64 cap: 80 carry "all" on one shard.
        let all = query(petrel, "all", 1000, 0);
        assert_eq!(all.len(), 64);
        assert_eq!(query(petrel, "all", 10, 0).len(), 10);
        // The time range: only what was stored from `middle` on.
        let late = query(petrel, "k-1", 64, middle);
        assert_eq!(ids(&late), want(&|i| i % 5 == 1 && i >= 40));
        assert!(query(petrel, "k-9", 64, 0).is_empty());
        // A key is matched whole, not as a prefix.
        assert!(query(petrel, "k", 64, 0).is_empty());
    };
    check(&petrel);

    let stdout = common::admin_ok(
        &petrel.namesrv(),
        &["queryMsgByKey", "-t", "Keyed", "-k", "k-2"],
    );
    let mut lines = stdout.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["#Message", "ID", "#QID", "#Offset"]);
    let listed: BTreeSet<String> = lines
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect();
    assert_eq!(listed, want(&|i| i % 5 == 2));

    assert!(petrel.terminate().success());
    let petrel = Petrel::start("standalone", dir.path(), &SMALL_INDEX);
    check(&petrel);
    // Messages indexed after the last checkpoint are indexed again by recovery after a
    // kill -9: found once each.
    let mut client = Client::new(&petrel.namesrv());
    let (name, addr) = petrel.brokers()[0].clone();
    let mut fresh = BTreeSet::new();
    for i in 0..10 {
        let msg = Message::new(format!("fresh-{i}"), properties(None, Some("fresh"), &[]));
        fresh.insert(
            client
                .send_to(&addr, &queue("Keyed", &name, 0), &msg)
                .unwrap()
                .msg_id,
        );
    }
    petrel.kill9();
    let petrel = Petrel::start("standalone", dir.path(), &SMALL_INDEX);
    check(&petrel);
    let found = query(&petrel, "fresh", 64, 0);
    assert_eq!(found.len(), 10, "{found:?}");
    assert_eq!(ids(&found), fresh);
}
