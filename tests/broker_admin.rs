//! End-to-end tests of a `petrel standalone` process's client-management and admin requests:
//! heartbeats and consumer membership, the front door across shards, offsets by time and
//! subscription groups.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{create_topic, eventually, pull_all, queue, standalone};
use petrel::client::{Client, Connection, Message, PullRequest};
use petrel_shards::broker::metadata::TopicConfig;
use petrel_shards::remoting::{request, response, ExtFields, RemotingCommand};

fn heartbeat(conn: &mut Connection, client_id: &str, group: &str, topic: &str) -> RemotingCommand {
    let body = serde_json::json!({
        "clientID": client_id,
        "producerDataSet": [],
        "consumerDataSet": [{
            "groupName": group, "consumeType": "CONSUME_PASSIVELY", "messageModel": "CLUSTERING",
            "consumeFromWhere": "CONSUME_FROM_FIRST_OFFSET", "unitMode": false,
            "subscriptionDataSet": [{"topic": topic, "subString": "*", "tagsSet": [], "codeSet": [],
                "subVersion": 1, "expressionType": "TAG", "classFilterMode": false}]
        }]
    });
    conn.call(RemotingCommand::request(
        request::HEART_BEAT,
        ExtFields::new(),
        Bytes::from(body.to_string()),
    ))
    .unwrap()
}

#[test]
fn heartbeats_register_consumers_and_notify_members_when_the_group_changes() {
    let (_dir, petrel) = standalone(&[]);
    let mut client = Client::new(&petrel.namesrv());
    create_topic(&mut client, &petrel, "TH", 4);
    let (_, addr) = petrel.brokers()[0].clone();
    let mut first = Connection::connect(&addr, Duration::from_secs(5)).unwrap();
    assert_eq!(heartbeat(&mut first, "c1", "GH", "TH").code, 0);
    let mut second = Connection::connect(&addr, Duration::from_secs(5)).unwrap();
    assert_eq!(heartbeat(&mut second, "c2", "GH", "TH").code, 0);
    // The first member is told that the group changed.
    let notify = loop {
        let cmd = first.receive_any().unwrap();
        if !cmd.is_response() {
            break cmd;
        }
    };
    assert_eq!(notify.code, request::NOTIFY_CONSUMER_IDS_CHANGED);
    assert_eq!(notify.field("consumerGroup"), Some("GH"));
    let group = [("consumerGroup", "GH".to_string())];
    let list = client
        .call_fields(&addr, request::GET_CONSUMER_LIST_BY_GROUP, &group)
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&list.body),
        r#"{"consumerIdList":["c1","c2"]}"#
    );
    // The retry topic was created and registered.
    eventually(Duration::from_secs(10), || client.route("%RETRY%GH").ok());
    drop(second);
    let list = eventually(Duration::from_secs(10), || {
        let l = client
            .call_fields(&addr, request::GET_CONSUMER_LIST_BY_GROUP, &group)
            .unwrap();
        (String::from_utf8_lossy(&l.body) == r#"{"consumerIdList":["c1"]}"#).then_some(l)
    });
    assert_eq!(list.code, 0);
}

#[test]
fn the_front_door_splits_a_topic_across_two_shards() {
    let (_dir, petrel) = standalone(&["shards=2"]);
    let mut client = Client::new(&petrel.namesrv());
    client
        .create_topic(&petrel.front_door(), &TopicConfig::new("TS", 8, 6))
        .unwrap();
    let route = eventually(Duration::from_secs(10), || {
        client.route("TS").ok().filter(|r| r.queue_datas.len() == 2)
    });
    let mut counts: Vec<_> = route
        .queue_datas
        .iter()
        .map(|q| (q.broker_name.clone(), q.write_queue_nums))
        .collect();
    counts.sort();
    assert_eq!(
        counts,
        vec![
            ("broker-a-s0".to_string(), 4),
            ("broker-a-s1".to_string(), 4)
        ]
    );
    // Each shard stores its own queues.
    for (i, (broker, addr)) in petrel.brokers().into_iter().enumerate() {
        let q = queue("TS", &broker, 3);
        client
            .send_to(
                &addr,
                &q,
                &Message::new(Bytes::from(format!("s{i}")), Default::default()),
            )
            .unwrap();
        let got = pull_all(&mut client, &addr, &q, "*");
        assert_eq!(got.len(), 1);
        assert_eq!(&got[0].body[..], format!("s{i}").as_bytes());
    }
    // A group created at the front door exists on every shard: disabled consumption holds on both.
    let group = r#"{"groupName":"GFront","consumeEnable":false}"#;
    let create = RemotingCommand::request(
        request::UPDATE_AND_CREATE_SUBSCRIPTIONGROUP,
        ExtFields::new(),
        Bytes::from_static(group.as_bytes()),
    );
    assert_eq!(client.call(&petrel.front_door(), create).unwrap().code, 0);
    for (broker, addr) in petrel.brokers() {
        let q = queue("TS", &broker, 0);
        let req = PullRequest {
            group: "GFront",
            queue: &q,
            offset: 0,
            max: 1,
            subscription: "*",
            suspend: None,
        };
        let err = client.pull(&addr, &req).unwrap_err();
        assert!(err.to_string().starts_with("code 16:"), "{broker}: {err}");
    }
    let all = client
        .call(
            &petrel.front_door(),
            RemotingCommand::request(
                request::GET_ALL_TOPIC_CONFIG,
                ExtFields::new(),
                Bytes::new(),
            ),
        )
        .unwrap();
    let table: serde_json::Value = serde_json::from_slice(&all.body).unwrap();
    assert_eq!(table["topicConfigTable"]["TS"]["writeQueueNums"], 8);
}

#[test]
fn offsets_by_time_and_subscription_groups_are_served() {
    let (_dir, petrel) = standalone(&[]);
    let mut client = Client::new(&petrel.namesrv());
    create_topic(&mut client, &petrel, "TT", 1);
    let (broker, addr) = petrel.brokers()[0].clone();
    let q = queue("TT", &broker, 0);
    let tq = || vec![("topic", "TT".to_string()), ("queueId", "0".to_string())];
    let earliest = client
        .call_fields(&addr, request::GET_EARLIEST_MSG_STORETIME, &tq())
        .unwrap();
    assert_eq!(earliest.field("timestamp"), Some("-1"), "empty queue");
    let before = petrel::client::now_ms();
    for i in 0..5 {
        client
            .send_to(
                &addr,
                &q,
                &Message::new(Bytes::from(format!("t{i}")), Default::default()),
            )
            .unwrap();
    }
    let stored = pull_all(&mut client, &addr, &q, "*");
    let first_store = stored[0].store_timestamp;
    let last_store = stored[4].store_timestamp;
    assert!(first_store >= before);
    let earliest = client
        .call_fields(&addr, request::GET_EARLIEST_MSG_STORETIME, &tq())
        .unwrap();
    assert_eq!(
        earliest.field("timestamp"),
        Some(first_store.to_string().as_str())
    );
    let search = |client: &mut Client, ts: i64| {
        let mut f = tq();
        f.push(("timestamp", ts.to_string()));
        client
            .call_fields(&addr, request::SEARCH_OFFSET_BY_TIMESTAMP, &f)
            .unwrap()
            .field("offset")
            .unwrap()
            .to_string()
    };
    assert_eq!(search(&mut client, before - 1000), "0");
    assert_eq!(search(&mut client, last_store + 1000), "5");
    let min = client
        .call_fields(&addr, request::GET_MIN_OFFSET, &tq())
        .unwrap();
    assert_eq!(min.field("offset"), Some("0"));

    let group = r#"{"groupName":"GSub","consumeEnable":false,"retryMaxTimes":3}"#;
    let create = RemotingCommand::request(
        request::UPDATE_AND_CREATE_SUBSCRIPTIONGROUP,
        ExtFields::new(),
        Bytes::from_static(group.as_bytes()),
    );
    assert_eq!(client.call(&addr, create).unwrap().code, 0);
    // A group with consumption disabled may not pull.
    let req = PullRequest {
        group: "GSub",
        queue: &q,
        offset: 0,
        max: 1,
        subscription: "*",
        suspend: None,
    };
    let err = client.pull(&addr, &req).unwrap_err();
    assert!(err.to_string().starts_with("code 16:"), "{err}");
    let bad = RemotingCommand::request(
        request::UPDATE_AND_CREATE_SUBSCRIPTIONGROUP,
        ExtFields::new(),
        Bytes::from_static(br#"{"groupName":"bad group"}"#),
    );
    let reply = client.call(&addr, bad).unwrap();
    assert_eq!(reply.code, response::INVALID_PARAMETER);
}

/// A pull that leaves the subscription to the heartbeat (as push consumers do).
fn pull_by_heartbeat(client: &mut Client, addr: &str, group: &str, topic: &str) -> RemotingCommand {
    client
        .call_fields(
            addr,
            request::PULL_MESSAGE,
            &[
                ("consumerGroup", group.to_string()),
                ("topic", topic.to_string()),
                ("queueId", "0".to_string()),
                ("queueOffset", "0".to_string()),
                ("maxMsgNums", "32".to_string()),
                ("sysFlag", "0".to_string()),
                ("commitOffset", "0".to_string()),
                ("suspendTimeoutMillis", "0".to_string()),
                ("subVersion", "0".to_string()),
            ],
        )
        .unwrap()
}

#[test]
fn members_of_a_group_that_subscribe_differently_are_told_so() {
    let (_dir, petrel) = standalone(&[]);
    let mut client = Client::new(&petrel.namesrv());
    create_topic(&mut client, &petrel, "TSubA", 1);
    create_topic(&mut client, &petrel, "TSubB", 1);
    let (_, addr) = petrel.brokers()[0].clone();
    let mut a = Connection::connect(&addr, Duration::from_secs(5)).unwrap();
    assert_eq!(heartbeat(&mut a, "c1", "GSub", "TSubA").code, 0);
    let reply = pull_by_heartbeat(&mut client, &addr, "GSub", "TSubA");
    assert_eq!(reply.code, response::PULL_NOT_FOUND);
    // A second member of the group subscribes to another topic: the group's subscription is
    // the latest member's, and the first member's pulls are refused with F24's words.
    let mut b = Connection::connect(&addr, Duration::from_secs(5)).unwrap();
    assert_eq!(heartbeat(&mut b, "c2", "GSub", "TSubB").code, 0);
    let reply = pull_by_heartbeat(&mut client, &addr, "GSub", "TSubA");
    assert_eq!(reply.code, response::SUBSCRIPTION_NOT_EXIST);
    assert_eq!(
        reply.remark.as_deref(),
        Some("the consumer's subscription not exist")
    );
    // A group nobody heartbeats for has no subscription at all.
    let reply = pull_by_heartbeat(&mut client, &addr, "GNobody", "TSubA");
    assert_eq!(reply.code, response::SUBSCRIPTION_NOT_EXIST);
    assert_eq!(
        reply.remark.as_deref(),
        Some("the consumer's group info not exist")
    );
}
