//! Ordered-message support over the wire: queue locks of orderly consumers (LOCK_BATCH_MQ /
//! UNLOCK_BATCH_MQ), and `updateTopic -o true` writing the order config to every name server,
//! which routes then carry as `orderTopicConf`.

mod common;

use std::time::{Duration, Instant};

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

/// One orderly consumer's connection to the shard, as its client id.
struct Member {
    id: &'static str,
    client: Client,
}

impl Member {
    fn new(petrel: &Petrel, id: &'static str) -> Member {
        Member {
            id,
            client: Client::new(&petrel.namesrv()),
        }
    }

    fn lock(&mut self, petrel: &Petrel, queues: &[i32]) -> Vec<i64> {
        let addr = petrel.brokers()[0].1.clone();
        lock_call(
            &mut self.client,
            &addr,
            request::LOCK_BATCH_MQ,
            self.id,
            queues,
        )
    }

    fn unlock(&mut self, petrel: &Petrel, queues: &[i32]) {
        let addr = petrel.brokers()[0].1.clone();
        lock_call(
            &mut self.client,
            &addr,
            request::UNLOCK_BATCH_MQ,
            self.id,
            queues,
        );
    }

    /// UNREGISTER_CLIENT, as a consumer shutting down sends it.
    fn leave(&mut self, petrel: &Petrel) {
        let addr = petrel.brokers()[0].1.clone();
        let mut ext = ExtFields::new();
        ext.insert("clientID", self.id);
        ext.insert("consumerGroup", "GLock");
        let cmd = RemotingCommand::request(request::UNREGISTER_CLIENT, ext, Bytes::new());
        let reply = self.client.call(&addr, cmd).unwrap();
        assert_eq!(reply.code, response::SUCCESS, "{:?}", reply.remark);
    }
}

const NONE: [i64; 0] = [];

/// The hand-over rules, each step decided by the broker alone: a lock changes hands on unlock,
/// on its holder leaving the group, or on expiry; never on a closed connection, and never
/// because the broker restarted, cleanly or by a crash.
#[test]
fn a_queue_lock_changes_hands_only_by_unlock_leaving_or_expiry_and_survives_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let start = || Petrel::start("standalone", dir.path(), &[]);
    let petrel = start();
    let mut c1 = Member::new(&petrel, "c1");
    let mut c2 = Member::new(&petrel, "c2");
    assert_eq!(c1.lock(&petrel, &[0, 1]), [0, 1]);
    // c1's connection closes: it may still be consuming what it fetched, so it keeps its queues.
    drop(c1);
    assert_eq!(c2.lock(&petrel, &[0, 1]), NONE);
    // A clean restart forgets no lock.
    assert!(petrel.terminate().success());
    let petrel = start();
    let mut c2 = Member::new(&petrel, "c2");
    assert_eq!(c2.lock(&petrel, &[0, 1]), NONE);
    let mut c1 = Member::new(&petrel, "c1");
    assert_eq!(c1.lock(&petrel, &[0, 1]), [0, 1], "the holder refreshes");
    // Nor does a crash right after a grant was answered.
    assert_eq!(c2.lock(&petrel, &[2]), [2]);
    petrel.kill9();
    let petrel = start();
    let mut c3 = Member::new(&petrel, "c3");
    assert_eq!(c3.lock(&petrel, &[0, 1, 2]), NONE);
    // Unlocking frees a queue at once, and only the holder's unlock counts.
    let mut c1 = Member::new(&petrel, "c1");
    let mut c2 = Member::new(&petrel, "c2");
    c2.unlock(&petrel, &[0]);
    assert_eq!(c3.lock(&petrel, &[0]), NONE);
    c1.unlock(&petrel, &[0]);
    assert_eq!(c3.lock(&petrel, &[0]), [0]);
    // Leaving the group frees every queue the member held there.
    c1.leave(&petrel);
    assert_eq!(c3.lock(&petrel, &[1]), [1]);
    c2.leave(&petrel);
    assert_eq!(c3.lock(&petrel, &[2]), [2]);
    // An unlock is remembered across a restart too.
    c3.unlock(&petrel, &[0, 1]);
    assert!(petrel.terminate().success());
    let petrel = start();
    let mut c4 = Member::new(&petrel, "c4");
    assert_eq!(c4.lock(&petrel, &[0, 1, 2]), [0, 1]);
}

/// A lock nobody refreshes goes to the next client once `rebalanceLockMaxLiveTime` has passed
/// since its last refresh, and never before.
#[test]
fn an_unrefreshed_lock_expires_after_its_live_time_and_not_before() {
    let live = Duration::from_millis(1500);
    let (_dir, petrel) = standalone(&[&format!("rebalanceLockMaxLiveTime={}", live.as_millis())]);
    let mut c1 = Member::new(&petrel, "c1");
    let mut c2 = Member::new(&petrel, "c2");
    let locked_at = Instant::now();
    assert_eq!(c1.lock(&petrel, &[0]), [0]);
    // The broker decided before its answer arrived: time the answer.
    let taken = eventually(Duration::from_secs(30), || {
        let got = c2.lock(&petrel, &[0]);
        (got == [0]).then(Instant::now)
    });
    assert!(
        taken.duration_since(locked_at) >= live,
        "c2 took the lock {:?} after c1's grant",
        taken.duration_since(locked_at)
    );
    // Now c2 holds it, and c1 is refused until c2's lock expires in turn.
    assert_eq!(c1.lock(&petrel, &[0]), NONE);
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
    // Its ready line comes before its first registration has reached the name server.
    let mut client = Client::new(&plain.namesrv());
    eventually(Duration::from_secs(10), || {
        let info = client.cluster_info().ok()?;
        info["clusterAddrTable"]["DefaultCluster"]
            .is_array()
            .then_some(())
    });
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
    eventually(Duration::from_secs(10), || client.route("Fifo").ok());
    assert_eq!(order_conf(&plain.namesrv(), "Fifo"), None);
}
