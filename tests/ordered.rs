//! Ordered-message support over the wire: queue locks of orderly consumers (LOCK_BATCH_MQ /
//! UNLOCK_BATCH_MQ), and `updateTopic -o true` writing the order config to every name server,
//! which routes then carry as `orderTopicConf`.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{admin_ok, eventually, standalone, Petrel};
use petrel::client::Client;
use petrel_shards::remoting::{request, response, ExtFields, RemotingCommand};
use serde_json::{json, Value};

fn lock_call(client: &mut Client, addr: &str, code: i32, who: &str, queues: &[i32]) -> Vec<i64> {
    let mq_set: Vec<Value> = queues
        .iter()
        .map(|q| json!({"brokerName": "broker-a-s0", "queueId": q, "topic": "Locked"}))
        .collect();
    let body = json!({"consumerGroup": "GLock", "clientId": who, "mqSet": mq_set, "onlyThisBroker": false});
    let reply = client
        .call(
            addr,
            RemotingCommand::request(code, ExtFields::new(), Bytes::from(body.to_string())),
        )
        .unwrap();
    assert_eq!(reply.code, response::SUCCESS, "{:?}", reply.remark);
    if code == request::UNLOCK_BATCH_MQ {
        return Vec::new();
    }
    let held: Value = serde_json::from_slice(&reply.body).unwrap();
    let mut ids: Vec<i64> = held["lockOKMQSet"]
        .as_array()
        .unwrap()
        .iter()
        .map(|mq| mq["queueId"].as_i64().unwrap())
        .collect();
    ids.sort();
    ids
}

#[test]
fn a_queue_lock_belongs_to_one_client_until_it_lets_go() {
    let (_dir, petrel) = standalone(&[]);
    let addr = petrel.brokers()[0].1.clone();
    let mut client = Client::new(&petrel.namesrv());
    let lock = request::LOCK_BATCH_MQ;
    let unlock = request::UNLOCK_BATCH_MQ;
    assert_eq!(lock_call(&mut client, &addr, lock, "c1", &[0, 1]), [0, 1]);
    assert_eq!(lock_call(&mut client, &addr, lock, "c2", &[1, 2]), [2]);
    // A refresh by the holder succeeds.
    assert_eq!(lock_call(&mut client, &addr, lock, "c1", &[0, 1]), [0, 1]);
    // Only the holder can release.
    lock_call(&mut client, &addr, unlock, "c2", &[0]);
    assert_eq!(
        lock_call(&mut client, &addr, lock, "c2", &[0]),
        Vec::<i64>::new()
    );
    lock_call(&mut client, &addr, unlock, "c1", &[0]);
    assert_eq!(lock_call(&mut client, &addr, lock, "c2", &[0, 1]), [0]);
    // A body that is not a lock request is an error naming it.
    let reply = client
        .call(
            &addr,
            RemotingCommand::request(lock, ExtFields::new(), Bytes::from_static(b"{}")),
        )
        .unwrap();
    assert_eq!(reply.code, response::SYSTEM_ERROR);
    assert!(
        reply
            .remark
            .as_deref()
            .unwrap_or("")
            .contains("lock request"),
        "{:?}",
        reply.remark
    );
}

fn order_conf(namesrv: &str, topic: &str) -> Option<String> {
    let mut ext = ExtFields::new();
    ext.insert("topic", topic);
    let reply = Client::new(namesrv)
        .call(
            namesrv,
            RemotingCommand::request(request::GET_ROUTEINFO_BY_TOPIC, ext, Bytes::new()),
        )
        .ok()?;
    let route: Value = serde_json::from_slice(&reply.body).ok()?;
    route["orderTopicConf"].as_str().map(str::to_string)
}

#[test]
fn update_topic_with_order_true_reaches_every_name_server_and_survives_a_restart() {
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let ns1 = Petrel::start("namesrv", d1.path(), &["orderMessageEnable=true"]);
    let ns2 = Petrel::start("namesrv", d2.path(), &["orderMessageEnable=true"]);
    let list = format!("{};{}", ns1.namesrv(), ns2.namesrv());
    let dir = tempfile::tempdir().unwrap();
    let broker = Petrel::start(
        "broker",
        dir.path(),
        &["shards=2", &format!("namesrvAddr={list}")],
    );
    // Through the front door, the queues split over the two shards, and the config says so.
    let out = admin_ok(
        &list,
        &[
            "updateTopic",
            "-b",
            &broker.front_door(),
            "-t",
            "Fifo",
            "-r",
            "4",
            "-w",
            "4",
            "-o",
            "true",
        ],
    );
    assert!(out.contains("order=true"), "{out}");
    // Straight to one shard: that shard's name.
    let shard1 = broker.brokers()[1].1.clone();
    admin_ok(
        &list,
        &[
            "updateTopic",
            "-b",
            &shard1,
            "-t",
            "Fifo1",
            "-r",
            "1",
            "-w",
            "1",
            "-o",
            "true",
        ],
    );
    for ns in [ns1.namesrv(), ns2.namesrv()] {
        let conf = eventually(Duration::from_secs(10), || order_conf(&ns, "Fifo"));
        assert_eq!(conf, "broker-a-s0:2;broker-a-s1:2");
        let conf = eventually(Duration::from_secs(10), || order_conf(&ns, "Fifo1"));
        assert_eq!(conf, "broker-a-s1:1");
    }
    // The KV store is a file: a restarted name server still has it.
    let ns1_dir = ns1.store.clone();
    assert!(ns1.terminate().success());
    let ns1 = Petrel::start("namesrv", &ns1_dir, &["orderMessageEnable=true"]);
    let ns = ns1.namesrv();
    let order_kv = |key: &str| {
        let fields = [
            ("namespace", "ORDER_TOPIC_CONFIG".to_string()),
            ("key", key.to_string()),
        ];
        Client::new(&ns)
            .call_fields(&ns, request::GET_KV_CONFIG, &fields)
            .unwrap()
    };
    let reply = order_kv("Fifo1");
    assert_eq!(reply.code, response::SUCCESS);
    assert_eq!(reply.field("value"), Some("broker-a-s1:1"));
    let reply = order_kv("NoSuchTopic");
    assert_eq!(reply.code, response::QUERY_NOT_FOUND);
    // Without orderMessageEnable (RocketMQ's default) routes leave the config out.
    let d3 = tempfile::tempdir().unwrap();
    let plain = Petrel::start("namesrv", d3.path(), &[]);
    let broker2_dir = tempfile::tempdir().unwrap();
    let _broker2 = Petrel::start(
        "broker",
        broker2_dir.path(),
        &[&format!("namesrvAddr={}", plain.namesrv())],
    );
    admin_ok(
        &plain.namesrv(),
        &[
            "updateTopic",
            "-c",
            "DefaultCluster",
            "-t",
            "Fifo",
            "-r",
            "1",
            "-w",
            "1",
            "-o",
            "true",
        ],
    );
    let mut client = Client::new(&plain.namesrv());
    eventually(Duration::from_secs(10), || client.route("Fifo").ok());
    assert_eq!(order_conf(&plain.namesrv(), "Fifo"), None);
}
