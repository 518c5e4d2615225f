//! Three name servers, each running a controller (`controllerDLegerPeers`), agree on the
//! controller's state by Raft: real processes on loopback. The leading controller may die
//! and another leads; a master killed after that is still replaced by its in-sync slave with
//! nothing acknowledged lost; a controller that comes back holds what was decided without
//! it, and all of them restarted at once still agree on it.

mod common;

use std::path::Path;
use std::time::Duration;

use common::ha::{await_in_sync, await_master, held_bodies, in_sync_pair, SHARDS};
use common::{apache_mqadmin, eventually, queue, Petrel};
use petrel::client::{properties, Client, Message};
use petrel_shards::remoting::{request, response};

const TOPIC: &str = "Agreed";

/// `n` loopback ports free a moment ago, below the ephemeral range (32768 and up), so that
/// no outgoing connection takes one while its controller is down.
fn free_ports(n: usize) -> Vec<u16> {
    let seed = std::process::id() as u64
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos() as u64;
    let mut held = Vec::new();
    for i in 0..4000u64 {
        let port = 20000 + ((seed.wrapping_mul(2654435761) + i * 7919) % 12000) as u16;
        if let Ok(l) = std::net::TcpListener::bind(("127.0.0.1", port)) {
            held.push(l);
            if held.len() == n {
                break;
            }
        }
    }
    assert_eq!(held.len(), n, "no free ports below 32000");
    held.iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

fn start_controller(dir: &Path, peers: &str, i: usize, port: u16) -> Petrel {
    let props = [
        "enableControllerInNamesrv=true".to_string(),
        format!("controllerDLegerPeers={peers}"),
        format!("controllerDLegerSelfId=n{i}"),
        format!("namesrvListenPort={port}"),
    ];
    let props: Vec<&str> = props.iter().map(String::as_str).collect();
    // Restarted at once on its old port, a name server has been seen (1 run in ~10, only
    // right after a kill -9 of all three) to find the port still in use; it is retried.
    for _ in 0..4 {
        let started = std::panic::catch_unwind(|| Petrel::start("namesrv", dir, &props));
        if let Ok(petrel) = started {
            return petrel;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    Petrel::start("namesrv", dir, &props)
}

/// The controller that leads, once every live one in `live` names the same leader.
fn leader(client: &mut Client, addrs: &[String], live: &[usize]) -> Option<usize> {
    let mut leaders = Vec::new();
    let mut named = Vec::new();
    for &i in live {
        let reply = client
            .call_fields(&addrs[i], request::CONTROLLER_GET_METADATA_INFO, &[])
            .ok()?;
        if reply.field("isLeader") == Some("true") {
            leaders.push(i);
        }
        named.push(reply.field("controllerLeaderAddress")?.to_string());
    }
    let [lead] = leaders[..] else { return None };
    named.iter().all(|a| *a == addrs[lead]).then_some(lead)
}

fn send(client: &mut Client, master: &Petrel, from: usize, n: usize, acked: &mut Vec<String>) {
    for i in from..from + n {
        let (name, addr) = &master.brokers()[i % SHARDS];
        let body = format!("m{i:05}");
        let msg = Message::new(body.clone(), properties(None, Some(&body), &[]));
        let q = queue(TOPIC, name, (i % 2) as i32);
        let r = client.send_to(addr, &q, &msg).unwrap();
        assert_eq!(r.code, response::SUCCESS, "message {i} to {addr}");
        acked.push(body);
    }
}

/// The master each group's committed state names, as `controller-raft.json` in `dir` holds
/// it: the last state in the file.
fn masters_on_disk(dir: &Path) -> serde_json::Value {
    let bytes = std::fs::read(dir.join("controller/controller-raft.json")).unwrap();
    let saved: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let last = saved["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["state"].as_str().filter(|s| !s.is_empty()))
        .next_back()
        .or(saved["snapshotState"].as_str())
        .unwrap()
        .to_string();
    let state: serde_json::Value = serde_json::from_str(&last).unwrap();
    (0..SHARDS)
        .map(|s| state["groups"][format!("broker-a-s{s}")]["master"].clone())
        .collect()
}

#[test]
fn three_controllers_survive_their_leaders_death_and_still_fail_a_master_over() {
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let ports = free_ports(6);
    let peers: String = ports[..3]
        .iter()
        .enumerate()
        .map(|(i, p)| format!("n{i}-127.0.0.1:{p}"))
        .collect::<Vec<_>>()
        .join(";");
    let mut controllers: Vec<Option<Petrel>> = (0..3)
        .map(|i| Some(start_controller(dirs[i].path(), &peers, i, ports[3 + i])))
        .collect();
    let addrs: Vec<String> = controllers
        .iter()
        .map(|c| c.as_ref().unwrap().namesrv())
        .collect();
    let ns = addrs.join(";");
    let mut client = Client::new(&ns);
    let first = eventually(Duration::from_secs(20), || {
        leader(&mut client, &addrs, &[0, 1, 2])
    });

    // A follower sends the asker to the leader.
    let follower = (first + 1) % 3;
    let reply = client
        .call_fields(
            &addrs[follower],
            request::CONTROLLER_GET_SYNC_STATE_DATA,
            &[],
        )
        .unwrap();
    assert_eq!(reply.code, response::CONTROLLER_NOT_LEADER);
    let remark = reply.remark.unwrap_or_default();
    assert!(remark.contains(&addrs[first]), "{remark}");

    let replica_dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let (a, b) = in_sync_pair(
        &mut client,
        &ns,
        [replica_dirs[0].path(), replica_dirs[1].path()],
        Some(TOPIC),
    );
    let mut acked = Vec::new();
    send(&mut client, &a, 0, 40, &mut acked);

    // The leading controller dies: the other two elect a leader, and the master keeps its
    // in-sync slave, so sends go on answering SEND_OK.
    controllers[first].take().unwrap().kill9();
    let live: Vec<usize> = (0..3).filter(|i| *i != first).collect();
    let second = eventually(Duration::from_secs(20), || {
        leader(&mut client, &addrs, &live)
    });
    assert_ne!(second, first);
    await_in_sync(&mut client, &ns, &[1, 2]);
    send(&mut client, &a, 40, 40, &mut acked);

    // The master dies: the new leader hands its groups to the in-sync slave.
    a.kill9();
    let took = await_master(&mut client, &b);
    assert!(took <= Duration::from_secs(10), "failover took {took:?}");
    let mut held = held_bodies(&mut client, &b, TOPIC, 2);
    held.sort();
    acked.sort();
    assert_eq!(held, acked, "held vs acknowledged");
    send(&mut client, &b, 80, 20, &mut acked);

    // Apache mqadmin, pointed at a follower, is sent on to the leader by its metadata.
    let follower = live.iter().copied().find(|i| *i != second).unwrap();
    let (ok, out, err) = apache_mqadmin(
        &[
            "getSyncStateSet",
            "-a",
            &addrs[follower],
            "-b",
            "broker-a-s0",
        ],
        Duration::from_secs(300),
    );
    assert!(ok, "mqadmin getSyncStateSet: {out}{err}");
    assert!(out.contains("#MasterBrokerId\t2"), "{out}");

    // The dead controller comes back on its old ports and learns what was decided.
    controllers[first] = Some(start_controller(
        dirs[first].path(),
        &peers,
        first,
        ports[3 + first],
    ));
    assert_eq!(
        eventually(Duration::from_secs(20), || leader(
            &mut client,
            &addrs,
            &[0, 1, 2]
        )),
        second
    );
    eventually(Duration::from_secs(20), || {
        let masters = masters_on_disk(dirs[first].path());
        (masters.as_array().unwrap().iter().all(|m| m == 2)).then_some(())
    });

    // Every controller dies at once and comes back: what they agreed is still agreed, and
    // the master serves on, with nothing it acknowledged lost.
    for c in &mut controllers {
        c.take().unwrap().kill9();
    }
    for (i, controller) in controllers.iter_mut().enumerate() {
        *controller = Some(start_controller(dirs[i].path(), &peers, i, ports[3 + i]));
    }
    let third = eventually(Duration::from_secs(20), || {
        leader(&mut client, &addrs, &[0, 1, 2])
    });
    let reply = client
        .call_fields(&addrs[third], request::CONTROLLER_GET_SYNC_STATE_DATA, &[])
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    for s in 0..SHARDS {
        let group = &body["replicasInfoTable"][format!("broker-a-s{s}")];
        assert_eq!(
            (&group["masterBrokerId"], &group["masterEpoch"]),
            (&2.into(), &2.into()),
            "{body}"
        );
    }
    await_master(&mut client, &b);
    send(&mut client, &b, 100, 20, &mut acked);
    let mut held = held_bodies(&mut client, &b, TOPIC, 2);
    held.sort();
    acked.sort();
    assert_eq!(
        held, acked,
        "held vs acknowledged after the controllers' restart"
    );
}
