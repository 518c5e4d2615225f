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

#[test]
fn java_messages_acked_by_a_sync_master_are_consumed_from_its_slave_after_the_master_is_killed() {
    let ns_dir = tempfile::tempdir().unwrap();
    let namesrv = Petrel::start("namesrv", ns_dir.path(), &[]);
    let ns = namesrv.namesrv();
    let (m_dir, s_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let ns_prop = format!("namesrvAddr={ns}");
    let master = Petrel::start(
        "broker",
        m_dir.path(),
        &[&ns_prop, "shards=2", "brokerRole=SYNC_MASTER"],
    );
    let slave = Petrel::start(
        "broker",
        s_dir.path(),
        &[
            &ns_prop,
            "shards=2",
            "brokerRole=SLAVE",
            "brokerId=1",
            &format!("haMasterAddress={}", master.ha_addr()),
        ],
    );
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
