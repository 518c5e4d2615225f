//! Master–slave replication between real processes: a slave (`brokerRole=SLAVE`) follows every
//! shard of its master through the HA port, holds the same log bytes at the same offsets,
//! serves reads and refuses writes, and catches up after it was killed.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::pair::{
    max_offset, segments, send, send_one, slave, slave_of, stage, MAX_MESSAGE, SHARDS,
};
use common::relay::Relay;
use common::{eventually, pull_all, queue, Petrel};
use petrel::client::{properties, Client, Message, MessageExt};
use petrel_shards::remoting::{request, response};

/// Every queue of the slave holds what the master's does, message for message.
fn assert_same_queues(client: &mut Client, master: &Petrel, slave: &Petrel, total: usize) {
    let mut seen = 0;
    for (shard, ((name, m_addr), (s_name, s_addr))) in master
        .brokers()
        .iter()
        .zip(slave.brokers().iter())
        .enumerate()
    {
        assert_eq!(name, s_name, "shard {shard} has one broker name on both");
        for queue_id in 0..2 {
            let want = max_offset(client, m_addr, queue_id);
            eventually(Duration::from_secs(30), || {
                (max_offset(client, s_addr, queue_id) == want).then_some(())
            });
            let q = queue("Replicated", name, queue_id);
            let on_master = pull_all(client, m_addr, &q, "*");
            let on_slave = pull_all(client, s_addr, &q, "*");
            assert_eq!(on_master.len(), want as usize);
            assert_eq!(on_slave.len(), on_master.len());
            for (a, b) in on_master.iter().zip(&on_slave) {
                assert_eq!(a.body, b.body);
                assert_eq!(a.commit_log_offset, b.commit_log_offset);
                assert_eq!(a.queue_offset, b.queue_offset);
                assert_eq!(a.properties, b.properties);
            }
            seen += on_slave.len();
        }
    }
    assert_eq!(seen, total);
}

/// Both stores hold the same commit-log bytes at the same offsets, segment for segment.
fn assert_same_segments(m_dir: &Path, s_dir: &Path) {
    for shard in 0..SHARDS {
        let (m, s) = (segments(m_dir, shard), segments(s_dir, shard));
        assert_eq!(
            m.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            s.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            "shard {shard}: segment names"
        );
        for ((name, a), (_, b)) in m.iter().zip(&s) {
            assert!(a == b, "shard {shard} segment {name} differs");
        }
    }
}

#[test]
fn a_slave_holds_its_masters_log_byte_for_byte_serves_reads_and_catches_up_after_a_crash() {
    let (stage, master_broker) = stage(&[]);
    let (ns, m_dir, s_dir, mut client) = stage.parts();
    // Messages from before the slave existed reach it too.
    send(&mut client, &master_broker, 0, 150);
    let slave_broker = slave(s_dir, ns, &master_broker.ha_addr());
    send(&mut client, &master_broker, 150, 150);
    assert_same_queues(&mut client, &master_broker, &slave_broker, 300);

    // clusterList shows each shard's role, and no lag once the slave caught up.
    eventually(Duration::from_secs(20), || {
        let out = common::admin_ok(ns, &["clusterList"]);
        let rows: Vec<Vec<&str>> = out
            .lines()
            .skip(1)
            .map(|l| l.split_whitespace().collect())
            .collect();
        let roles: Vec<(&str, &str, &str)> = rows.iter().map(|r| (r[2], r[4], r[5])).collect();
        let want = [("0", "ASYNC_MASTER", "0"), ("1", "SLAVE", "0")];
        (rows.len() == 2 * SHARDS && roles.iter().all(|r| want.contains(r))).then_some(())
    });

    // Routes list the slave as brokerId 1 of each shard's broker name.
    let route = eventually(Duration::from_secs(30), || {
        let route = client.route("Replicated").ok()?;
        route
            .broker_datas
            .iter()
            .all(|b| b.broker_addrs.len() == 2)
            .then_some(route)
    });
    for (name, addr) in slave_broker.brokers() {
        let data = route
            .broker_datas
            .iter()
            .find(|b| b.broker_name == name)
            .unwrap();
        assert_eq!(data.broker_addrs.get("1"), Some(&addr), "{name}");
    }

    // A slave refuses writes, naming why.
    let (name, addr) = slave_broker.brokers()[0].clone();
    let err = client
        .send_to(
            &addr,
            &queue("Replicated", &name, 0),
            &Message::new("nope", properties(None, None, &[])),
        )
        .unwrap_err();
    assert!(err.to_string().contains("is a slave"), "{err}");

    // Killed, it starts again from its own log end and catches up.
    slave_broker.kill9();
    send(&mut client, &master_broker, 300, 150);
    let slave_broker = slave(s_dir, ns, &master_broker.ha_addr());
    send(&mut client, &master_broker, 450, 50);
    assert_same_queues(&mut client, &master_broker, &slave_broker, 500);

    // The same bytes at the same offsets, segment for segment (500 × 3 KiB crosses several
    // 256 KiB segments per shard).
    assert!(slave_broker.terminate().success());
    assert!(master_broker.terminate().success());
    for shard in 0..SHARDS {
        let count = segments(m_dir, shard).len();
        assert!(count >= 3, "shard {shard}: {count} segments");
    }
    assert_same_segments(m_dir, s_dir);
}

#[test]
fn a_slave_that_does_not_match_its_master_is_refused_with_the_reason() {
    let (stage, master_broker) = stage(&[]);
    let (ns, s_dir) = (&stage.ns, stage.s_dir.path());
    // Another segment size: the logs could not hold the same bytes at the same offsets.
    let slave_broker = Petrel::start(
        "broker",
        s_dir,
        &[
            &format!("namesrvAddr={ns}"),
            &format!("shards={SHARDS}"),
            "mappedFileSizeCommitLog=524288",
            MAX_MESSAGE,
            "brokerRole=SLAVE",
            "brokerId=1",
            &format!("haMasterAddress={}", master_broker.ha_addr()),
        ],
    );
    let line = eventually(Duration::from_secs(20), || {
        slave_broker
            .stderr_lines()
            .into_iter()
            .find(|l| l.contains("the master refused"))
    });
    assert!(
        line.contains("mappedFileSizeCommitLog 524288 is not the master's 262144"),
        "{line}"
    );
    // Roles that cannot work stop start-up with a line naming the key.
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec!["broker".to_string()];
    for p in common::test_properties(dir.path())
        .into_iter()
        .chain(["brokerRole=SLAVE".to_string(), format!("namesrvAddr={ns}")])
    {
        args.push("-p".into());
        args.push(p);
    }
    let (status, stderr) = common::run_to_exit(&args);
    assert!(!status.success());
    assert!(
        stderr.contains("brokerRole=SLAVE needs brokerId 1 or more"),
        "{stderr}"
    );
}

#[test]
fn a_sync_master_answers_once_its_slave_holds_a_message_and_says_when_it_cannot() {
    let (stage, master_broker) = stage(&["brokerRole=SYNC_MASTER", "syncFlushTimeout=2000"]);
    let (ns, s_dir, mut client) = (&stage.ns, stage.s_dir.path(), Client::new(&stage.ns));
    // No slave yet: stored on the master alone, and said so; a message given back too.
    assert_eq!(send_one(&mut client, &master_broker, 0).code, 11);
    let (name, m_addr) = master_broker.brokers()[0].clone();
    let first = pull_all(&mut client, &m_addr, &queue("Replicated", &name, 0), "*");
    assert_eq!(give_back(&mut client, &m_addr, &first[0]), 11);
    let slave_broker = slave(s_dir, ns, &master_broker.ha_addr());
    let mut i = 1;
    eventually(Duration::from_secs(20), || {
        i += 1;
        (send_one(&mut client, &master_broker, i - 1).code == response::SUCCESS).then_some(())
    });
    // In sync: every answer means the slave already serves the message.
    for _ in 0..60 {
        let r = send_one(&mut client, &master_broker, i);
        assert_eq!(r.code, response::SUCCESS, "message {i}");
        let (_, slave_addr) = &slave_broker.brokers()[i % SHARDS];
        let held = max_offset(&mut client, slave_addr, r.queue_id);
        assert!(
            held > r.queue_offset,
            "message {i} at {} but the slave holds {held}",
            r.queue_offset
        );
        i += 1;
    }
    // A message given back is answered once the slave holds its dead letter.
    let given: Vec<_> = pull_all(&mut client, &m_addr, &queue("Replicated", &name, 0), "*");
    let s_addr = slave_broker.brokers()[0].1.clone();
    let held_before = dead_letters(&mut client, &s_addr);
    for (n, m) in given.iter().take(5).enumerate() {
        assert_eq!(give_back(&mut client, &m_addr, m), response::SUCCESS);
        assert_eq!(
            dead_letters(&mut client, &s_addr),
            held_before + n as i64 + 1
        );
    }
    // The slave dies: no send is answered as replicated, and the loss is noticed.
    slave_broker.kill9();
    let mut codes = Vec::new();
    while !codes.contains(&11) {
        assert!(codes.len() < 20, "codes after the slave died: {codes:?}");
        codes.push(send_one(&mut client, &master_broker, i).code);
        i += 1;
    }
    assert!(codes.iter().all(|c| *c == 11 || *c == 12), "{codes:?}");
    // Back, it catches up with everything, including what only the master held.
    let slave_broker = slave(s_dir, ns, &master_broker.ha_addr());
    eventually(Duration::from_secs(20), || {
        i += 1;
        (send_one(&mut client, &master_broker, i - 1).code == response::SUCCESS).then_some(())
    });
    assert_same_queues(&mut client, &master_broker, &slave_broker, i);
}

/// Gives `m` back as a consumer of `GBack` would, straight to its dead-letter queue: the code
/// of the answer.
fn give_back(client: &mut Client, addr: &str, m: &MessageExt) -> i32 {
    let fields = [
        ("offset", m.commit_log_offset.to_string()),
        ("group", "GBack".to_string()),
        ("delayLevel", "-1".to_string()),
        ("originMsgId", m.msg_id.clone()),
        ("originTopic", m.topic.clone()),
    ];
    let reply = client.call_fields(addr, request::CONSUMER_SEND_MSG_BACK, &fields);
    reply.unwrap().code
}

/// Messages in `%DLQ%GBack` at `addr`.
fn dead_letters(client: &mut Client, addr: &str) -> i64 {
    let fields = [
        ("topic", "%DLQ%GBack".to_string()),
        ("queueId", "0".to_string()),
    ];
    let reply = client
        .call_fields(addr, request::GET_MAX_OFFSET, &fields)
        .unwrap();
    reply.field("offset").map_or(0, |o| o.parse().unwrap())
}

fn committed(client: &mut Client, addr: &str, queue_id: i32) -> Option<i64> {
    let reply = client
        .call_fields(
            addr,
            request::QUERY_CONSUMER_OFFSET,
            &[
                ("consumerGroup", "GTables".into()),
                ("topic", "Replicated".into()),
                ("queueId", queue_id.to_string()),
            ],
        )
        .unwrap();
    (reply.code == response::SUCCESS).then(|| reply.field("offset").unwrap().parse().unwrap())
}

fn commit(client: &mut Client, addr: &str, queue_id: i32, offset: i64) {
    let reply = client
        .call_fields(
            addr,
            request::UPDATE_CONSUMER_OFFSET,
            &[
                ("consumerGroup", "GTables".into()),
                ("topic", "Replicated".into()),
                ("queueId", queue_id.to_string()),
                ("commitOffset", offset.to_string()),
            ],
        )
        .unwrap();
    assert_eq!(reply.code, response::SUCCESS, "{:?}", reply.remark);
}

#[test]
fn a_slave_takes_its_masters_tables_and_offsets_and_keeps_commits_made_on_it() {
    let (stage, master_broker) = stage(&[]);
    let (ns, s_dir, mut client) = (&stage.ns, stage.s_dir.path(), Client::new(&stage.ns));
    // No haMasterAddress: the name server names the master.
    let slave_broker = slave_of(s_dir, ns, &[]);
    common::admin_ok(
        ns,
        &[
            "updateSubGroup",
            "-b",
            &master_broker.front_door(),
            "-g",
            "GTables",
            "-r",
            "7",
        ],
    );
    send(&mut client, &master_broker, 0, 8);
    let (_, m_addr) = master_broker.brokers()[0].clone();
    let (_, s_addr) = slave_broker.brokers()[0].clone();
    commit(&mut client, &m_addr, 0, 3);
    eventually(Duration::from_secs(20), || {
        (committed(&mut client, &s_addr, 0) == Some(3)).then_some(())
    });
    // The master stops; a consumer commits on the slave, which keeps it across its restart
    // along with what came from the master.
    assert!(master_broker.terminate().success());
    commit(&mut client, &s_addr, 1, 2);
    assert!(slave_broker.terminate().success());
    let slave_broker = slave(s_dir, ns, "127.0.0.1:9");
    let (_, s_addr) = slave_broker.brokers()[0].clone();
    assert_eq!(committed(&mut client, &s_addr, 0), Some(3));
    assert_eq!(committed(&mut client, &s_addr, 1), Some(2));
    let topics = client
        .call_fields(&s_addr, request::GET_ALL_TOPIC_CONFIG, &[])
        .unwrap();
    let topics: serde_json::Value = serde_json::from_slice(&topics.body).unwrap();
    let topic = &topics["topicConfigTable"]["Replicated"];
    assert_eq!(topic["writeQueueNums"], 2, "{topics}");
    assert_eq!(topic["perm"], 6, "{topics}");
    let groups = std::fs::read_to_string(s_dir.join("shard-1/subscriptionGroup.json")).unwrap();
    let groups: serde_json::Value = serde_json::from_str(&groups).unwrap();
    assert_eq!(
        groups["subscriptionGroupTable"]["GTables"]["retryMaxTimes"], 7,
        "{groups}"
    );
}

#[test]
fn a_corrupted_replication_frame_is_dropped_and_fetched_again() {
    let (stage, master_broker) = stage(&[]);
    let (ns, m_dir, s_dir, mut client) = stage.parts();
    send(&mut client, &master_broker, 0, 200);
    // 200 × 3 KiB over two shards: byte 150 000 of the first stream is inside its log data.
    let relay = Relay::start(master_broker.ha_addr(), Some(150_000));
    let slave_broker = slave(s_dir, ns, &relay.addr);
    assert_same_queues(&mut client, &master_broker, &slave_broker, 200);
    let noticed = slave_broker
        .stderr_lines()
        .into_iter()
        .find(|l| l.contains("crc32c mismatch") && l.contains("fetching again from"));
    assert!(noticed.is_some(), "the slave did not report the bad frame");
    assert!(slave_broker.terminate().success());
    assert!(master_broker.terminate().success());
    assert_same_segments(m_dir, s_dir);
}

/// A partition between a SYNC_MASTER and its slave (nothing passes, no connection closes):
/// after `haHousekeepingInterval` of silence the master stops waiting for the slave, so sends
/// are answered at once as stored on the master alone; healed, the slave follows again and
/// holds every message, those sent during the partition too.
#[test]
fn a_partition_between_master_and_slave_is_noticed_and_healed() {
    let housekeeping = "haHousekeepingInterval=3000";
    let (stage, master_broker) = stage(&[
        "brokerRole=SYNC_MASTER",
        "syncFlushTimeout=3000",
        housekeeping,
    ]);
    let (ns, _, s_dir, mut client) = stage.parts();
    let relay = Relay::start(master_broker.ha_addr(), None);
    let via = format!("haMasterAddress={}", relay.addr);
    let slave_broker = slave_of(s_dir, ns, &[&via, housekeeping]);
    let mut i = 0;
    // Both shards in sync: two sends in a row, one to each, replicated.
    let both_replicated = |client: &mut Client, i: &mut usize| {
        eventually(Duration::from_secs(30), || {
            *i += 2;
            let codes = [*i - 2, *i - 1].map(|n| send_one(client, &master_broker, n).code);
            (codes == [response::SUCCESS; 2]).then_some(())
        })
    };
    both_replicated(&mut client, &mut i);
    for _ in 0..20 {
        assert_eq!(
            send_one(&mut client, &master_broker, i).code,
            response::SUCCESS
        );
        i += 1;
    }
    relay.cut();
    let cut_at = Instant::now();
    // A send waits `syncFlushTimeout` for the silent slave (12) until the shard drops it (11).
    let mut codes = Vec::new();
    let mut dropped = [false; SHARDS];
    while !dropped.iter().all(|d| *d) {
        assert!(
            cut_at.elapsed() < Duration::from_secs(20),
            "codes while cut: {codes:?}"
        );
        let code = send_one(&mut client, &master_broker, i).code;
        assert!(
            code == 11 || code == 12,
            "codes while cut: {codes:?}, then {code}"
        );
        dropped[i % SHARDS] |= code == 11;
        codes.push(code);
        i += 1;
    }
    // Answered at once now: well below the 3 s a send waiting for the slave takes.
    for _ in 0..6 {
        let sent = Instant::now();
        assert_eq!(send_one(&mut client, &master_broker, i).code, 11);
        assert!(
            sent.elapsed() < Duration::from_millis(1500),
            "{:?}",
            sent.elapsed()
        );
        i += 1;
    }
    let said = |p: &Petrel, what: &str| p.stderr_lines().iter().any(|l| l.contains(what));
    assert!(said(&master_broker, "slave silent for 3s"));
    relay.heal();
    both_replicated(&mut client, &mut i);
    assert!(said(&slave_broker, "the master was silent for 3s"));
    assert_same_queues(&mut client, &master_broker, &slave_broker, i);
}
