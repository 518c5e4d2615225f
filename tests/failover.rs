//! Automatic failover under the controller (`enableControllerMode`, with the controller in
//! the name server): real processes on loopback. A killed master is replaced by its in-sync
//! slave within seconds, nothing answered SEND_OK is lost, the old master rejoins as a slave
//! of the new one, and an operator's election fences a live master. The stock Java client
//! (5.5.0) producing through repeated kills finds each new master through its routes.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{eventually, pull_all, queue, Petrel};
use petrel::client::{properties, Client, Message};
use petrel_shards::broker::metadata::TopicConfig;
use petrel_shards::remoting::{request, response};

const SHARDS: usize = 2;
const TOPIC: &str = "Failover";

/// A replica `id` (brokerId) of `broker-a` under the controller at `namesrv`.
fn replica(store: &Path, namesrv: &str, id: u32) -> Petrel {
    replica_with(store, namesrv, id, &[])
}

fn replica_with(store: &Path, namesrv: &str, id: u32, extra: &[&str]) -> Petrel {
    let mut props = vec![
        format!("namesrvAddr={namesrv}"),
        format!("shards={SHARDS}"),
        format!("brokerId={id}"),
        "enableControllerMode=true".into(),
        "brokerRole=SYNC_MASTER".into(),
        "brokerHeartbeatInterval=200".into(),
        "controllerHeartBeatTimeoutMills=2000".into(),
        "registerNameServerPeriod=1000".into(),
        "mappedFileSizeCommitLog=1048576".into(),
        "maxMessageSize=65536".into(),
    ];
    props.extend(extra.iter().map(|s| s.to_string()));
    let props: Vec<&str> = props.iter().map(String::as_str).collect();
    Petrel::start("broker", store, &props)
}

/// The address routes list as brokerId 0 of shard `shard`'s group, if any.
fn routed_master(client: &mut Client, shard: usize) -> Option<String> {
    let info = client.cluster_info().ok()?;
    let name = format!("broker-a-s{shard}");
    info["brokerAddrTable"][&name]["brokerAddrs"]["0"]
        .as_str()
        .map(str::to_string)
}

/// Waits until routes name `petrel`'s shards as the masters; returns how long it took.
fn await_master(client: &mut Client, petrel: &Petrel) -> Duration {
    let start = Instant::now();
    let addrs: Vec<String> = petrel.brokers().into_iter().map(|(_, a)| a).collect();
    eventually(Duration::from_secs(20), || {
        (0..SHARDS)
            .all(|s| routed_master(client, s).as_deref() == Some(addrs[s].as_str()))
            .then_some(())
    });
    start.elapsed()
}

/// The controller's in-sync set of every group.
fn sync_sets(client: &mut Client, namesrv: &str) -> Vec<BTreeSet<i64>> {
    let reply = client
        .call_fields(namesrv, request::CONTROLLER_GET_SYNC_STATE_DATA, &[])
        .unwrap();
    assert_eq!(reply.code, response::SUCCESS, "{:?}", reply.remark);
    let body: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    (0..SHARDS)
        .map(|s| {
            body["replicasInfoTable"][format!("broker-a-s{s}")]["inSyncReplicas"]
                .as_array()
                .map(|list| {
                    list.iter()
                        .map(|r| r["brokerId"].as_i64().unwrap())
                        .collect()
                })
                .unwrap_or_default()
        })
        .collect()
}

fn await_in_sync(client: &mut Client, namesrv: &str, ids: &[i64]) {
    let want: BTreeSet<i64> = ids.iter().copied().collect();
    eventually(Duration::from_secs(30), || {
        sync_sets(client, namesrv)
            .iter()
            .all(|set| *set == want)
            .then_some(())
    });
}

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
    let mut held = Vec::new();
    for (name, addr) in petrel.brokers() {
        for queue_id in 0..2 {
            let q = queue(TOPIC, &name, queue_id);
            held.extend(
                pull_all(client, &addr, &q, "*")
                    .into_iter()
                    .map(|m| String::from_utf8(m.body.to_vec()).unwrap()),
            );
        }
    }
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
    let ns_dir = tempfile::tempdir().unwrap();
    let namesrv = Petrel::start(
        "namesrv",
        ns_dir.path(),
        &["enableControllerInNamesrv=true"],
    );
    let ns = namesrv.namesrv();
    let mut client = Client::new(&ns);
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
fn produce_until(
    ns: String,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
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
            Ok(r) if r.code == response::SUCCESS => acked.push(body),
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
    let cycles: usize = std::env::var("PETREL_FAILOVER_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    let ns_dir = tempfile::tempdir().unwrap();
    let namesrv = Petrel::start(
        "namesrv",
        ns_dir.path(),
        &["enableControllerInNamesrv=true"],
    );
    let ns = namesrv.namesrv();
    let mut client = Client::new(&ns);
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let mut replicas = [Some(replica(dirs[0].path(), &ns, 1)), None];
    await_master(&mut client, replicas[0].as_ref().unwrap());
    client
        .create_topic(
            &replicas[0].as_ref().unwrap().front_door(),
            &TopicConfig::new(TOPIC, 4, 6),
        )
        .unwrap();
    replicas[1] = Some(replica(dirs[1].path(), &ns, 2));
    await_in_sync(&mut client, &ns, &[1, 2]);

    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let producer = {
        let (ns, stop) = (ns.clone(), stop.clone());
        std::thread::spawn(move || produce_until(ns, stop))
    };
    let mut master = 0;
    let mut took = Vec::new();
    for cycle in 0..cycles {
        std::thread::sleep(Duration::from_millis(700));
        // Kill whichever replica is master now, mid-stream.
        replicas[master].take().unwrap().kill9();
        let next = 1 - master;
        took.push(await_master(&mut client, replicas[next].as_ref().unwrap()));
        std::thread::sleep(Duration::from_millis(300));
        replicas[master] = Some(replica(dirs[master].path(), &ns, master as u32 + 1));
        await_in_sync(&mut client, &ns, &[1, 2]);
        eprintln!("cycle {cycle}: failover in {:?}", took.last().unwrap());
        master = next;
    }
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let (tried, acked) = producer.join().unwrap();

    let holder = replicas[master].as_ref().unwrap();
    let mut held = Vec::new();
    for (name, addr) in holder.brokers() {
        for queue_id in 0..2 {
            let q = queue(TOPIC, &name, queue_id);
            held.extend(
                pull_all(&mut client, &addr, &q, "*")
                    .into_iter()
                    .map(|m| String::from_utf8(m.body.to_vec()).unwrap()),
            );
        }
    }
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
    let ns_dir = tempfile::tempdir().unwrap();
    let namesrv = Petrel::start(
        "namesrv",
        ns_dir.path(),
        &["enableControllerInNamesrv=true"],
    );
    let ns = namesrv.namesrv();
    let mut client = Client::new(&ns);
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
    let producer = {
        let (ns, stop) = (ns.clone(), stop.clone());
        std::thread::spawn(move || produce_until(ns, stop))
    };
    std::thread::sleep(Duration::from_millis(500));
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

/// Every body in all `queues` queues of `petrel`'s shards for `topic`, in queue order.
fn held_bodies(client: &mut Client, petrel: &Petrel, topic: &str, queues: i32) -> Vec<String> {
    let mut held = Vec::new();
    for (name, addr) in petrel.brokers() {
        for queue_id in 0..queues {
            held.extend(
                pull_all(client, &addr, &queue(topic, &name, queue_id), "*")
                    .into_iter()
                    .map(|m| String::from_utf8(m.body.to_vec()).unwrap()),
            );
        }
    }
    held
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[test]
fn a_java_producer_rides_through_masters_killed_again_and_again_and_loses_nothing_acknowledged() {
    use common::java::Driver;
    const JAVA_TOPIC: &str = "JavaFailover";
    let cycles: usize = std::env::var("PETREL_FAILOVER_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let ns_dir = tempfile::tempdir().unwrap();
    let namesrv = Petrel::start(
        "namesrv",
        ns_dir.path(),
        &["enableControllerInNamesrv=true"],
    );
    let ns = namesrv.namesrv();
    let mut client = Client::new(&ns);
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let mut replicas = [Some(replica(dirs[0].path(), &ns, 1)), None];
    await_master(&mut client, replicas[0].as_ref().unwrap());
    client
        .create_topic(
            &replicas[0].as_ref().unwrap().front_door(),
            &TopicConfig::new(JAVA_TOPIC, 4, 6),
        )
        .unwrap();
    replicas[1] = Some(replica(dirs[1].path(), &ns, 2));
    await_in_sync(&mut client, &ns, &[1, 2]);

    let stop_dir = tempfile::tempdir().unwrap();
    let stop = stop_dir.path().join("stop");
    let producer = Driver::start(&["steady", &ns, JAVA_TOPIC, stop.to_str().unwrap(), "900"]);
    let mut lines = Vec::new();
    let drain = |lines: &mut Vec<serde_json::Value>| {
        lines.extend(producer.lines.try_iter());
    };
    // The producer is under way once its first send is acknowledged.
    eventually(Duration::from_secs(60), || {
        drain(&mut lines);
        lines.iter().any(|l| l["status"] == "SEND_OK").then_some(())
    });
    let mut master = 0;
    let mut kills = Vec::new();
    for cycle in 0..cycles {
        std::thread::sleep(Duration::from_millis(1500));
        replicas[master].take().unwrap().kill9();
        kills.push(now_ms());
        let next = 1 - master;
        let took = await_master(&mut client, replicas[next].as_ref().unwrap());
        replicas[master] = Some(replica(dirs[master].path(), &ns, master as u32 + 1));
        await_in_sync(&mut client, &ns, &[1, 2]);
        eprintln!("cycle {cycle}: routes name the new master after {took:?}");
        master = next;
        drain(&mut lines);
    }
    // The last failover's new master must take sends too before the producer stops.
    let last_kill = *kills.last().unwrap();
    eventually(Duration::from_secs(30), || {
        drain(&mut lines);
        lines
            .iter()
            .any(|l| l["status"] == "SEND_OK" && l["t"].as_i64().unwrap() > last_kill)
            .then_some(())
    });
    std::fs::write(&stop, b"").unwrap();
    lines.extend(producer.finish(Duration::from_secs(60)));

    let body = |l: &serde_json::Value| format!("steady-{}", l["i"]);
    let acked: Vec<String> = lines
        .iter()
        .filter(|l| l["status"] == "SEND_OK")
        .map(body)
        .collect();
    let tried = lines.iter().filter(|l| l.get("i").is_some()).count();
    let failed = tried - acked.len();
    // What the client saw: from each kill to its next acknowledged send.
    let outages: Vec<i64> = kills
        .iter()
        .map(|&k| {
            lines
                .iter()
                .filter(|l| l["status"] == "SEND_OK")
                .filter_map(|l| l["t"].as_i64())
                .find(|&t| t > k)
                .unwrap()
                - k
        })
        .collect();

    let holder = replicas[master].as_ref().unwrap();
    let held = held_bodies(&mut client, holder, JAVA_TOPIC, 2);
    let held_set: BTreeSet<&String> = held.iter().collect();
    let lost: Vec<&String> = acked.iter().filter(|b| !held_set.contains(b)).collect();
    let duplicates = held.len() - held_set.len();
    let acked_set: BTreeSet<&String> = acked.iter().collect();
    let unacked_held = held_set.iter().filter(|b| !acked_set.contains(*b)).count();
    let never_sent: Vec<&&String> = held_set
        .iter()
        .filter(|b| {
            b.strip_prefix("steady-")
                .and_then(|i| i.parse::<usize>().ok())
                .is_none_or(|i| i >= tried)
        })
        .collect();
    eprintln!(
        "java: {cycles} failovers; client outage per kill (ms) {outages:?}; {tried} sends, {} acknowledged, {failed} not acknowledged, {} lost, {duplicates} duplicated, {unacked_held} stored without SEND_OK",
        acked.len(),
        lost.len()
    );
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
    assert!(never_sent.is_empty(), "never sent: {never_sent:?}");
    // A send is tried on the dead broker's queues only, so no retry stores it twice.
    assert_eq!(duplicates, 0, "duplicated messages");
    assert!(
        outages.iter().all(|&ms| ms <= 15_000),
        "client outage per kill (ms): {outages:?}"
    );
}
