//! Runtime broker config (F38): GET_BROKER_CONFIG and UPDATE_BROKER_CONFIG through Apache
//! RocketMQ's own mqadmin and `petrel admin`, on a two-shard process. A change reaches every
//! shard and takes effect at once (retention deletes with the new `fileReservedTime`), bad
//! input is refused naming what was wrong with nothing changed, and a restart keeps it.
//! Auto-creation turned on while running makes TBW102, so stock producers create topics.

mod common;

use std::time::Duration;

use common::java::produce;
use common::{
    admin, admin_ok, apache_mqadmin, create_topic, delete_at_every_hour, eventually, min_offset,
    queue, Petrel,
};
use petrel::client::{properties, Client, Message};

/// The value `getBrokerConfig` printed for `key` (`key<spaces>=  value`).
fn printed<'a>(out: &'a str, key: &str) -> Vec<&'a str> {
    out.lines()
        .filter_map(|l| l.split_once("=  "))
        .filter(|(k, _)| k.trim() == key)
        .map(|(_, v)| v.trim())
        .collect()
}

#[test]
fn a_key_changed_at_runtime_reaches_every_shard_acts_at_once_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let every_hour = delete_at_every_hour();
    let props = [
        "shards=2",
        "mappedFileSizeCommitLog=131072",
        "maxMessageSize=8192",
        "cleanResourceInterval=200",
        every_hour.as_str(),
    ];
    let petrel = Petrel::start("standalone", dir.path(), &props);
    let ns = petrel.namesrv();
    let brokers = petrel.brokers();
    let limit = Duration::from_secs(120);

    // Apache mqadmin reads every key; the cluster form asks each shard.
    let (ok, out, err) = apache_mqadmin(
        &["getBrokerConfig", "-n", &ns, "-c", "DefaultCluster"],
        limit,
    );
    assert!(ok, "{out}{err}");
    assert_eq!(printed(&out, "fileReservedTime"), ["72", "72"], "{out}");
    assert_eq!(printed(&out, "brokerName"), ["broker-a", "broker-a"]);
    assert_eq!(printed(&out, "shards"), ["2", "2"]);

    // Messages on both shards, then a change sent to shard 1 only.
    let mut client = Client::new(&ns);
    create_topic(&mut client, &petrel, "Aged", 2);
    for (name, addr) in &brokers {
        let q = queue("Aged", name, 0);
        for i in 0..300 {
            let msg = Message::new(
                format!("{i}-{}", "x".repeat(1000)),
                properties(None, None, &[]),
            );
            client.send_to(addr, &q, &msg).unwrap();
        }
        assert_eq!(min_offset(&mut client, addr, &q), 0);
    }
    let (ok, out, err) = apache_mqadmin(
        &[
            "updateBrokerConfig",
            "-n",
            &ns,
            "-b",
            &brokers[1].1,
            "-k",
            "fileReservedTime",
            "-v",
            "0.0005",
        ],
        limit,
    );
    assert!(
        ok && out.contains("update broker config success"),
        "{out}{err}"
    );
    // Both shards delete what is older than 1.8 s now.
    for (name, addr) in &brokers {
        let q = queue("Aged", name, 0);
        eventually(Duration::from_secs(10), || {
            (min_offset(&mut client, addr, &q) > 0).then_some(())
        });
    }
    let out = admin_ok(&ns, &["getBrokerConfig", "-c", "DefaultCluster"]);
    assert_eq!(
        printed(&out, "fileReservedTime"),
        ["0.0005", "0.0005"],
        "{out}"
    );

    // Refused, naming what was wrong; nothing changes.
    for (key, value, says) in [
        ("listenPort", "1234", "read at start-up only"),
        ("diskMaxUsedSpaceRatio", "200", "between 10 and 95"),
        ("noSuchKey", "1", "not a broker config key"),
    ] {
        let (ok, out, err) = admin(
            &ns,
            &[
                "updateBrokerConfig",
                "-b",
                &brokers[0].1,
                "-k",
                key,
                "-v",
                value,
            ],
        );
        assert!(!ok && err.contains(says), "{key}: {out}{err}");
    }
    let (ok, out, err) = apache_mqadmin(
        &[
            "updateBrokerConfig",
            "-n",
            &ns,
            "-b",
            &brokers[0].1,
            "-k",
            "deleteWhen",
            "-v",
            "25",
        ],
        limit,
    );
    assert!(
        !out.contains("update broker config success"),
        "{ok} {out}{err}"
    );
    let out = admin_ok(&ns, &["getBrokerConfig", "-b", &brokers[0].1]);
    assert_eq!(printed(&out, "diskMaxUsedSpaceRatio"), ["75"]);
    assert_eq!(
        printed(&out, "deleteWhen"),
        [&every_hour["deleteWhen=".len()..]]
    );

    // A restart keeps the change (broker.conf's value is overridden by it).
    let store = petrel.store.clone();
    assert!(petrel.terminate().success());
    let petrel = Petrel::start("standalone", &store, &props);
    let out = admin_ok(
        &petrel.namesrv(),
        &["getBrokerConfig", "-c", "DefaultCluster"],
    );
    assert_eq!(
        printed(&out, "fileReservedTime"),
        ["0.0005", "0.0005"],
        "{out}"
    );
}

#[test]
fn auto_creation_turned_on_at_runtime_lets_a_stock_producer_make_its_topic() {
    let dir = tempfile::tempdir().unwrap();
    let props = ["shards=2", "autoCreateTopicEnable=false"];
    let petrel = Petrel::start("standalone", dir.path(), &props);
    let ns = petrel.namesrv();
    let brokers = petrel.brokers();
    let mut client = Client::new(&ns);
    let (name, addr) = &brokers[0];
    let msg = Message::new("first", properties(None, None, &[]));
    let err = client
        .send_to(addr, &queue("MadeBySend", name, 0), &msg)
        .unwrap_err();
    assert!(err.to_string().contains("MadeBySend"), "{err}");
    assert!(
        client.route("TBW102").is_err(),
        "no template while auto-creation is off"
    );

    admin_ok(
        &ns,
        &[
            "updateBrokerConfig",
            "-b",
            &brokers[1].1,
            "-k",
            "autoCreateTopicEnable",
            "-v",
            "true",
        ],
    );
    let route = eventually(Duration::from_secs(10), || {
        client
            .route("TBW102")
            .ok()
            .filter(|r| r.publish_queues("TBW102").len() >= 2)
    });
    assert!(route.broker_addr(&brokers[1].0).is_some());
    // Apache's Java producer sends to a topic nobody created, through TBW102's route.
    for line in produce(&ns, "MadeByJava", 4, "sync") {
        assert_eq!(line["status"], "SEND_OK", "{line}");
    }
    eventually(Duration::from_secs(10), || client.route("MadeByJava").ok());
}
