//! Automatic failover under the controller (`enableControllerMode`, with the controller in
//! the name server): real processes on loopback. A killed master is replaced by its in-sync
//! slave within seconds, nothing answered SEND_OK is lost, the old master rejoins as a slave
//! of the new one, and an operator's election fences a live master.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::ha::{
    await_in_sync, await_master, controller, cycles, held_bodies, replica, replica_with,
    routed_master, Pair, SHARDS,
};
use common::{eventually, pull_all, queue, Petrel};
use petrel::client::{properties, Client, Message};
use petrel_shards::broker::metadata::TopicConfig;
use petrel_shards::remoting::{request, response};

const TOPIC: &str = "Failover";

/// GET_BROKER_RUNTIME_INFO's table of the shard at `addr`.
fn runtime_table(client: &mut Client, addr: &str) -> serde_json::Value {
    let reply = client
        .call_fields(addr, request::GET_BROKER_RUNTIME_INFO, &[])
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    body["table"].clone()
}

/// Sends messages `from..from + n` across both shards' queues; each must be SEND_OK.
fn send(client: &mut Client, master: &Petrel, from: usize, n: usize, acked: &mut Vec<String>) {
    for i in from..from + n {
        let (name, addr) = &master.brokers()[i % SHARDS];
        let q = queue(TOPIC, name, ((i / SHARDS) % 2) as i32);
        let body = format!("m{i:05}-{}", "x".repeat(500));
        let msg = Message::new(body.clone(), properties(None, Some(&format!("k{i}")), &[]));
        let r = client.send_to(addr, &q, &msg).unwrap();
        assert_eq!(r.code, response::SUCCESS, "message {i} to {addr}");
        acked.push(body);
    }
}

/// Every acknowledged message is in `petrel`'s queues exactly once, and nothing else is.
fn assert_holds_exactly(client: &mut Client, petrel: &Petrel, acked: &[String]) {
    let mut held = held_bodies(client, petrel, TOPIC, 2);
    held.sort();
    let mut want = acked.to_vec();
    want.sort();
    assert_eq!(held.len(), want.len(), "messages held vs acknowledged");
    assert!(
        held == want,
        "the held messages differ from the acknowledged"
    );
}

#[test]
fn a_killed_master_is_replaced_by_its_in_sync_slave_and_nothing_acknowledged_is_lost() {
    let (_ns_dir, _namesrv, ns, mut client) = controller();
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());

    let a = replica(a_dir.path(), &ns, 1);
    await_master(&mut client, &a);
    client
        .create_topic(&a.front_door(), &TopicConfig::new(TOPIC, 4, 6))
        .unwrap();
    let mut acked = Vec::new();
    // Alone in its in-sync set, the master answers SEND_OK at its own durability.
    send(&mut client, &a, 0, 40, &mut acked);
    let b = replica(b_dir.path(), &ns, 2);
    await_in_sync(&mut client, &ns, &[1, 2]);
    send(&mut client, &a, 40, 160, &mut acked);

    // The master dies: its in-sync slave takes over, and holds everything acknowledged.
    a.kill9();
    let took = await_master(&mut client, &b);
    assert!(took <= Duration::from_secs(5), "failover took {took:?}");
    assert_holds_exactly(&mut client, &b, &acked);
    send(&mut client, &b, 200, 60, &mut acked);

    // The old master comes back as a slave of the new one and catches up.
    let a = replica(a_dir.path(), &ns, 1);
    await_in_sync(&mut client, &ns, &[1, 2]);
    send(&mut client, &b, 260, 40, &mut acked);

    // An operator's election moves the master back to it; the live old master is fenced.
    let reply = client
        .call_fields(
            &ns,
            request::CONTROLLER_ELECT_MASTER,
            &[
                ("brokerName", "broker-a-s0".into()),
                ("brokerId", "1".into()),
                ("designateElect", "true".into()),
            ],
        )
        .unwrap();
    assert_eq!(reply.code, response::SUCCESS, "{:?}", reply.remark);
    assert_eq!(reply.field("masterBrokerId"), Some("1"));
    let (s0_name, b_s0) = b.brokers()[0].clone();
    let a_s0 = a.brokers()[0].1.clone();
    eventually(Duration::from_secs(10), || {
        (routed_master(&mut client, 0).as_deref() == Some(a_s0.as_str())).then_some(())
    });
    eventually(Duration::from_secs(5), || {
        (runtime_table(&mut client, &b_s0)["brokerRole"] == "SLAVE").then_some(())
    });
    let fenced = eventually(Duration::from_secs(5), || {
        let refused = client.send_to(
            &b_s0,
            &queue(TOPIC, &s0_name, 0),
            &Message::new("refused", properties(None, None, &[])),
        );
        match refused {
            Err(petrel::client::ClientError::Broker { code, remark }) => Some((code, remark)),
            Ok(r) => {
                // Taken just before the fence: acknowledged only if SEND_OK, and then it
                // must survive.
                if r.code == response::SUCCESS {
                    acked.push("refused".into());
                }
                None
            }
            Err(e) => panic!("{e}"),
        }
    });
    assert_eq!(fenced.0, response::SERVICE_NOT_AVAILABLE);
    assert!(
        fenced.1.contains("not the master the controller elected"),
        "{}",
        fenced.1
    );

    // Shard 1 fails over again when its master, the replica that came back, is killed too.
    b.kill9();
    let took = await_master(&mut client, &a);
    assert!(
        took <= Duration::from_secs(5),
        "second failover took {took:?}"
    );
    send(&mut client, &a, 300, 60, &mut acked);
    assert_holds_exactly(&mut client, &a, &acked);
}

/// Sends unique messages to whichever replica routes name master, until told to stop:
/// (every body tried, every body answered SEND_OK).
/// Sends to each shard's routed master until `stop`, counting acknowledgements in `progress`.
fn produce_until(
    ns: String,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    progress: std::sync::Arc<std::sync::atomic::AtomicUsize>,
) -> (Vec<String>, Vec<String>) {
    use std::sync::atomic::Ordering;
    let mut client = Client::new(&ns);
    let (mut tried, mut acked) = (Vec::new(), Vec::new());
    let mut masters: Vec<Option<String>> = vec![None; SHARDS];
    let mut i = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let shard = i % SHARDS;
        let Some(addr) = masters[shard].clone() else {
            masters[shard] = routed_master(&mut client, shard);
            std::thread::sleep(Duration::from_millis(20));
            continue;
        };
        let q = queue(
            TOPIC,
            &format!("broker-a-s{shard}"),
            ((i / SHARDS) % 2) as i32,
        );
        let body = format!("p{i:06}");
        let msg = Message::new(body.clone(), properties(None, Some(&format!("k{i}")), &[]));
        tried.push(body.clone());
        match client.send_to(&addr, &q, &msg) {
            Ok(r) if r.code == response::SUCCESS => {
                acked.push(body);
                progress.fetch_add(1, Ordering::Relaxed);
            }
            // Not acknowledged: a dead or fenced master, or one waiting for its slave.
            _ => masters[shard] = None,
        }
        i += 1;
    }
    (tried, acked)
}

#[test]
fn a_master_killed_again_and_again_under_load_loses_no_acknowledged_message() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let cycles = cycles(4);
    let (_ns_dir, _namesrv, ns, mut client) = controller();
    let mut pair = Pair::start(&mut client, &ns, Some(TOPIC));

    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let producer = {
        let (ns, stop) = (ns.clone(), stop.clone());
        std::thread::spawn(move || produce_until(ns, stop, Default::default()))
    };
    let mut took = Vec::new();
    for cycle in 0..cycles {
        std::thread::sleep(Duration::from_millis(700));
        // Kill whichever replica is master now, mid-stream.
        took.push(pair.kill_master(&mut client, &ns).1);
        eprintln!("cycle {cycle}: failover in {:?}", took.last().unwrap());
    }
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let (tried, acked) = producer.join().unwrap();

    let held = held_bodies(&mut client, pair.master(), TOPIC, 2);
    let held_set: BTreeSet<&String> = held.iter().collect();
    let tried_set: BTreeSet<&String> = tried.iter().collect();
    let lost: Vec<&String> = acked.iter().filter(|b| !held_set.contains(b)).collect();
    let duplicates = held.len() - held_set.len();
    let unknown: Vec<&&String> = held_set
        .iter()
        .filter(|b| !tried_set.contains(*b))
        .collect();
    let unacked_held = held_set.len() - acked.len() + lost.len();
    let slowest = took.iter().max().unwrap();
    eprintln!(
        "{cycles} failovers, slowest {slowest:?}; {} sent, {} acknowledged, {} lost, {duplicates} duplicated, {unacked_held} stored without SEND_OK",
        tried.len(),
        acked.len(),
        lost.len()
    );
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
    assert_eq!(duplicates, 0);
    assert!(unknown.is_empty(), "never sent: {unknown:?}");
    assert!(
        acked.len() > cycles * 10,
        "too few acknowledged: {}",
        acked.len()
    );
    assert!(
        *slowest <= Duration::from_secs(5),
        "slowest failover {slowest:?}"
    );
}

/// Every queue of `b` holds what `a`'s does, message for message.
fn assert_same_queues(client: &mut Client, a: &Petrel, b: &Petrel) -> Vec<String> {
    let mut bodies = Vec::new();
    for ((name, a_addr), (_, b_addr)) in a.brokers().into_iter().zip(b.brokers()) {
        for queue_id in 0..2 {
            let q = queue(TOPIC, &name, queue_id);
            let on_a = eventually(Duration::from_secs(20), || {
                let (x, y) = (
                    pull_all(client, &a_addr, &q, "*"),
                    pull_all(client, &b_addr, &q, "*"),
                );
                let same = x.len() == y.len()
                    && x.iter().zip(&y).all(|(m, n)| {
                        m.body == n.body && m.commit_log_offset == n.commit_log_offset
                    });
                same.then_some(x)
            });
            bodies.extend(
                on_a.into_iter()
                    .map(|m| String::from_utf8(m.body.to_vec()).unwrap()),
            );
        }
    }
    bodies
}

/// Asks the controller to make replica `id` master of every group.
fn elect(client: &mut Client, namesrv: &str, id: i64) {
    for shard in 0..SHARDS {
        let reply = client
            .call_fields(
                namesrv,
                request::CONTROLLER_ELECT_MASTER,
                &[
                    ("brokerName", format!("broker-a-s{shard}")),
                    ("brokerId", id.to_string()),
                    ("designateElect", "true".into()),
                ],
            )
            .unwrap();
        assert_eq!(reply.code, response::SUCCESS, "{:?}", reply.remark);
    }
}

#[test]
fn a_fenced_master_holding_records_its_successor_never_got_cuts_them_at_restart_and_follows() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let (_ns_dir, _namesrv, ns, mut client) = controller();
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let quick = ["syncFlushTimeout=500"];
    // The master hears from the controller only every 2 s, so it is fenced well after its
    // successor stopped following it.
    let slow = [
        "syncFlushTimeout=500",
        "brokerHeartbeatInterval=2000",
        "controllerHeartBeatTimeoutMills=10000",
    ];
    let a = replica_with(a_dir.path(), &ns, 1, &slow);
    await_master(&mut client, &a);
    client
        .create_topic(&a.front_door(), &TopicConfig::new(TOPIC, 4, 6))
        .unwrap();
    let b = replica_with(b_dir.path(), &ns, 2, &quick);
    await_in_sync(&mut client, &ns, &[1, 2]);

    // The master is switched while a producer writes to it: until it hears it is fenced it
    // takes records its successor, which stopped following, never gets.
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let progress = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let producer = {
        let (ns, stop, progress) = (ns.clone(), stop.clone(), progress.clone());
        std::thread::spawn(move || produce_until(ns, stop, progress))
    };
    // Only a producer that already sends to the master keeps sending to it once replaced.
    eventually(Duration::from_secs(20), || {
        (progress.load(Ordering::Relaxed) >= 2 * SHARDS * 10).then_some(())
    });
    elect(&mut client, &ns, 2);
    await_master(&mut client, &b);
    std::thread::sleep(Duration::from_millis(2500));
    stop.store(true, Ordering::Relaxed);
    let (tried, acked) = producer.join().unwrap();
    eventually(Duration::from_secs(10), || {
        a.stderr_lines()
            .iter()
            .any(|l| l.contains("restart this broker"))
            .then_some(())
    });

    // Restarted, it cuts its log where the logs part, rebuilds its queues and follows.
    assert!(a.terminate().success());
    let a = replica_with(a_dir.path(), &ns, 1, &quick);
    await_in_sync(&mut client, &ns, &[1, 2]);
    let cut = a
        .stderr_lines()
        .into_iter()
        .any(|l| l.contains("cutting it there"));
    assert!(cut, "the old master did not cut its log");
    let mut more = Vec::new();
    send(&mut client, &b, 0, 20, &mut more);
    let held = assert_same_queues(&mut client, &b, &a);
    let held: BTreeSet<&String> = held.iter().collect();
    let tried: BTreeSet<&String> = tried.iter().chain(&more).collect();
    let lost: Vec<&String> = acked
        .iter()
        .chain(&more)
        .filter(|m| !held.contains(m))
        .collect();
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
    assert!(
        held.iter().all(|m| tried.contains(m)),
        "a message never sent is held"
    );
}
