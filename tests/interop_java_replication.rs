//! Replication with the stock Java client (5.5.0): a Java producer's messages acknowledged by
//! a SYNC_MASTER (SEND_OK) are all on the slave, and after the master is killed (`kill -9`) a
//! Java push consumer reads every one of them from the slave through the route's brokerId 1.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::java::{produce, Driver};
use common::{eventually, queue, Petrel};
use petrel::client::{properties, Client, Message};
use petrel_shards::broker::metadata::TopicConfig;
use petrel_shards::remoting::response;

/// A name server, a two-shard master (with `master_extra`) and its slave (brokerId 1); the
/// temporary stores live as long as the returned guard.
struct Stage {
    _dirs: [tempfile::TempDir; 3],
    _namesrv: Petrel,
    ns: String,
    master: Petrel,
    slave: Petrel,
}

fn stage(master_extra: &[&str]) -> Stage {
    let dirs = [(); 3].map(|_| tempfile::tempdir().unwrap());
    let namesrv = Petrel::start("namesrv", dirs[0].path(), &[]);
    let ns = namesrv.namesrv();
    let ns_prop = format!("namesrvAddr={ns}");
    let mut props = vec![ns_prop.as_str(), "shards=2"];
    props.extend_from_slice(master_extra);
    let master = Petrel::start("broker", dirs[1].path(), &props);
    let ha = format!("haMasterAddress={}", master.ha_addr());
    let slave = Petrel::start(
        "broker",
        dirs[2].path(),
        &[&ns_prop, "shards=2", "brokerRole=SLAVE", "brokerId=1", &ha],
    );
    Stage {
        _dirs: dirs,
        _namesrv: namesrv,
        ns,
        master,
        slave,
    }
}

#[test]
fn java_messages_acked_by_a_sync_master_are_consumed_from_its_slave_after_the_master_is_killed() {
    // Bound by name, so the store and the name server live to the end of the test.
    let Stage {
        _dirs,
        _namesrv,
        ns,
        master,
        slave,
    } = stage(&["brokerRole=SYNC_MASTER"]);
    let mut client = Client::new(&ns);
    for topic in ["JavaHA", "Probe"] {
        client
            .create_topic(&master.front_door(), &TopicConfig::new(topic, 4, 6))
            .unwrap();
    }
    // Both shards' slaves are in sync once a probe on each is acknowledged as replicated.
    for (name, addr) in master.brokers() {
        eventually(Duration::from_secs(20), || {
            let msg = Message::new("probe", properties(None, None, &[]));
            let r = client
                .send_to(&addr, &queue("Probe", &name, 0), &msg)
                .ok()?;
            (r.code == response::SUCCESS).then_some(())
        });
    }
    eventually(Duration::from_secs(30), || {
        let route = client.route("JavaHA").ok()?;
        route
            .broker_datas
            .iter()
            .all(|b| b.broker_addrs.len() == 2)
            .then_some(())
    });
    // Every send must come back SEND_OK: the produce driver counts anything else as failed.
    let sent = produce(&ns, "JavaHA", 100, "sync");
    let sent: BTreeSet<String> = sent
        .iter()
        .filter_map(|l| l["msgId"].as_str().map(str::to_string))
        .collect();
    assert_eq!(sent.len(), 100);
    master.kill9();
    let lines = Driver::start(&["push", &ns, "GJavaHA", "JavaHA", "*", "100", "120", "0"])
        .finish(Duration::from_secs(150));
    let got: BTreeSet<String> = lines
        .iter()
        .filter_map(|l| l["msgId"].as_str().map(str::to_string))
        .collect();
    assert_eq!(got, sent, "consumed from the slave");
    let brokers: BTreeSet<&str> = lines.iter().filter_map(|l| l["broker"].as_str()).collect();
    assert_eq!(brokers.len(), 2, "both shards' slaves served: {brokers:?}");
    drop(slave);
}

/// A raw pull of queue 0 from `offset` (subscription in the request, as lite consumers send).
fn pull(client: &mut Client, addr: &str, offset: i64) -> petrel_shards::remoting::RemotingCommand {
    let fields = [
        ("consumerGroup", "GSlaveRead".to_string()),
        ("topic", "JavaSlaveRead".to_string()),
        ("queueId", "0".to_string()),
        ("queueOffset", offset.to_string()),
        ("maxMsgNums", "8".to_string()),
        ("sysFlag", "4".to_string()),
        ("commitOffset", "0".to_string()),
        ("suspendTimeoutMillis", "0".to_string()),
        ("subscription", "*".to_string()),
        ("subVersion", "0".to_string()),
    ];
    client
        .call_fields(
            addr,
            petrel_shards::remoting::request::PULL_MESSAGE,
            &fields,
        )
        .unwrap()
}

/// GET_BROKER_RUNTIME_INFO's `msgGetTotalTodayNow` summed over `petrel`'s shards.
fn messages_got(client: &mut Client, petrel: &Petrel) -> u64 {
    petrel
        .brokers()
        .iter()
        .map(|(_, addr)| {
            let reply = client
                .call_fields(
                    addr,
                    petrel_shards::remoting::request::GET_BROKER_RUNTIME_INFO,
                    &[],
                )
                .unwrap();
            let body: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
            body["table"]["msgGetTotalTodayNow"]
                .as_str()
                .unwrap()
                .parse::<u64>()
                .unwrap()
        })
        .sum()
}

#[test]
fn with_slave_read_enable_a_consumer_far_behind_is_sent_to_the_slave_and_back() {
    // With a window of 0 % of RAM every read short of the log's end counts as far behind.
    // Bound by name, so the store and the name server live to the end of the test.
    let Stage {
        _dirs,
        _namesrv,
        ns,
        master,
        slave,
    } = stage(&["slaveReadEnable=true", "accessMessageInMemoryMaxRatio=0"]);
    let mut client = Client::new(&ns);
    client
        .create_topic(
            &master.front_door(),
            &TopicConfig::new("JavaSlaveRead", 4, 6),
        )
        .unwrap();
    // More per queue than one pull takes (32), so that the consumer comes back for more.
    let sent = produce(&ns, "JavaSlaveRead", 400, "sync");
    assert_eq!(sent.len(), 400);
    let (m0, s0) = (master.brokers()[0].1.clone(), slave.brokers()[0].1.clone());
    // The slave holds shard 0's queue 0 once its pull from the start finds the master's end.
    let end: i64 = pull(&mut client, &m0, 0)
        .field("maxOffset")
        .unwrap()
        .parse()
        .unwrap();
    eventually(Duration::from_secs(20), || {
        let r = pull(&mut client, &s0, 0);
        (r.field("maxOffset") == Some(end.to_string().as_str())).then_some(())
    });

    // The master sends a reader far behind to the group's whichBrokerWhenConsumeSlowly (1).
    let r = pull(&mut client, &m0, 0);
    assert_eq!(r.code, response::SUCCESS);
    assert_eq!(r.field("suggestWhichBrokerId"), Some("1"));
    // The slave (window 40 % of RAM) finds that reader caught up and sends it back.
    let r = pull(&mut client, &s0, 0);
    assert_eq!(r.code, response::SUCCESS);
    assert_eq!(r.field("suggestWhichBrokerId"), Some("0"));
    let r = pull(&mut client, &s0, end);
    assert_eq!(r.code, response::PULL_NOT_FOUND);
    assert_eq!(r.field("suggestWhichBrokerId"), Some("0"));

    // A stock Java push consumer follows the suggestions: every message, part of them read
    // from the slave.
    let before = messages_got(&mut client, &slave);
    let lines = Driver::start(&[
        "push",
        &ns,
        "GJavaSlaveRead",
        "JavaSlaveRead",
        "*",
        "400",
        "90",
        "0",
    ])
    .finish(Duration::from_secs(120));
    let got: BTreeSet<String> = lines
        .iter()
        .filter_map(|l| l["msgId"].as_str().map(str::to_string))
        .collect();
    let sent: BTreeSet<String> = sent
        .iter()
        .filter_map(|l| l["msgId"].as_str().map(str::to_string))
        .collect();
    let other: Vec<&serde_json::Value> =
        lines.iter().filter(|l| l.get("msgId").is_none()).collect();
    assert!(
        got == sent,
        "consumed {} of {} messages; the driver also said {other:?}",
        got.len(),
        sent.len()
    );
    let from_slave = messages_got(&mut client, &slave) - before;
    assert!(
        from_slave > 0,
        "the slave served none of the consumer's pulls"
    );
    drop(master);
}
