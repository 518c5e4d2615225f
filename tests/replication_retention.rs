//! A slave behind its master's retention: a new, empty slave of a master that deleted
//! segments, and a slave stopped while its master wrote on and deleted past its end, each
//! starts its log again where the master's now starts and follows on from there.

mod common;

use std::path::Path;
use std::time::Duration;

use common::pair::{max_offset, segments, send, slave, stage, SHARDS};
use common::{eventually, queue, Petrel};
use petrel::client::{Client, MessageExt, MessageQueue, PullRequest};
use petrel_shards::remoting::response;

/// Messages of `q` at `addr` from `from` on, through plain pulls.
fn pull_from(client: &mut Client, addr: &str, q: &MessageQueue, from: i64) -> Vec<MessageExt> {
    let mut out = Vec::new();
    let mut offset = from;
    loop {
        let req = PullRequest {
            group: "G_range",
            queue: q,
            offset,
            max: 32,
            subscription: "*",
            suspend: None,
        };
        let r = client.pull(addr, &req).unwrap();
        if r.code != response::SUCCESS {
            assert_eq!(r.code, response::PULL_NOT_FOUND, "pull at {offset}");
            return out;
        }
        out.extend(r.messages);
        offset = r.next_begin_offset;
    }
}

/// Waits until retention left each shard of `store` one written segment: the log end's.
fn await_one_segment(store: &Path) {
    eventually(Duration::from_secs(30), || {
        (0..SHARDS)
            .all(|shard| segments(store, shard).len() == 1)
            .then_some(())
    });
}

/// The slave's queues start where the master's do and hold the same messages from there.
fn assert_same_retained(client: &mut Client, master: &Petrel, slave: &Petrel) {
    for ((name, m_addr), (_, s_addr)) in master.brokers().iter().zip(slave.brokers().iter()) {
        for queue_id in 0..2 {
            let want = max_offset(client, m_addr, queue_id);
            eventually(Duration::from_secs(30), || {
                (max_offset(client, s_addr, queue_id) == want).then_some(())
            });
            let q = queue("Replicated", name, queue_id);
            let first = common::min_offset(client, m_addr, &q);
            assert!(first > 0, "retention trimmed {name}:{queue_id}");
            assert_eq!(
                common::min_offset(client, s_addr, &q),
                first,
                "{name}:{queue_id}"
            );
            let (on_master, on_slave) = (
                pull_from(client, m_addr, &q, first),
                pull_from(client, s_addr, &q, first),
            );
            assert_eq!(on_master.len() as i64, want - first);
            assert_eq!(on_slave.len(), on_master.len());
            for (a, b) in on_master.iter().zip(&on_slave) {
                assert_eq!(
                    (&a.body, a.commit_log_offset, a.queue_offset),
                    (&b.body, b.commit_log_offset, b.queue_offset)
                );
            }
        }
    }
}

#[test]
fn a_slave_behind_its_masters_retention_starts_again_where_the_masters_log_starts() {
    let every_hour = common::delete_at_every_hour();
    let retention = [
        "fileReservedTime=0.0005",
        every_hour.as_str(),
        "cleanResourceInterval=200",
    ];
    let (stage, master_broker) = stage(&retention);
    let (ns, m_dir, s_dir, mut client) = stage.parts();
    // Three segments a shard, of which retention keeps the last.
    send(&mut client, &master_broker, 0, 400);
    await_one_segment(m_dir);
    // A new, empty slave begins at the master's first offset.
    let slave_broker = slave(s_dir, ns, &master_broker.ha_addr());
    assert_same_retained(&mut client, &master_broker, &slave_broker);

    // Stopped while the master writes on and deletes past its end, it drops what it held
    // and starts again there.
    slave_broker.kill9();
    send(&mut client, &master_broker, 400, 400);
    await_one_segment(m_dir);
    let slave_broker = slave(s_dir, ns, &master_broker.ha_addr());
    assert_same_retained(&mut client, &master_broker, &slave_broker);
    for shard in 0..SHARDS {
        let on_master = segments(m_dir, shard);
        let on_slave = segments(s_dir, shard);
        assert_eq!(
            on_slave.len(),
            1,
            "shard {shard}: the slave deleted what it held"
        );
        assert_eq!(on_slave[0].0, on_master[0].0, "shard {shard}");
    }
    // And it follows on.
    send(&mut client, &master_broker, 800, 40);
    assert_same_retained(&mut client, &master_broker, &slave_broker);
}
