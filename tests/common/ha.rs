//! Replicas of `broker-a` under a controller in the name server (`enableControllerMode`):
//! starting them, and waiting for the controller's and the routes' view of them.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use petrel::client::Client;
use petrel_shards::broker::metadata::TopicConfig;
use petrel_shards::remoting::{request, response};

use super::{eventually, pull_all, queue, Petrel};

pub const SHARDS: usize = 2;

/// A replica `id` (brokerId) of `broker-a` under the controller at `namesrv`.
pub fn replica(store: &Path, namesrv: &str, id: u32) -> Petrel {
    replica_with(store, namesrv, id, &[])
}

pub fn replica_with(store: &Path, namesrv: &str, id: u32, extra: &[&str]) -> Petrel {
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
pub fn routed_master(client: &mut Client, shard: usize) -> Option<String> {
    let info = client.cluster_info().ok()?;
    let name = format!("broker-a-s{shard}");
    info["brokerAddrTable"][&name]["brokerAddrs"]["0"]
        .as_str()
        .map(str::to_string)
}

/// Waits until routes name `petrel`'s shards as the masters; returns how long it took.
pub fn await_master(client: &mut Client, petrel: &Petrel) -> Duration {
    let start = Instant::now();
    let addrs: Vec<String> = petrel.brokers().into_iter().map(|(_, a)| a).collect();
    eventually(Duration::from_secs(20), || {
        (0..SHARDS)
            .all(|s| routed_master(client, s).as_deref() == Some(addrs[s].as_str()))
            .then_some(())
    });
    start.elapsed()
}

/// The controller's in-sync set of every group, as the leading controller of the
/// `;`-separated `namesrv` list says (empty sets while none leads).
pub fn sync_sets(client: &mut Client, namesrv: &str) -> Vec<BTreeSet<i64>> {
    let replies: Vec<_> = namesrv
        .split(';')
        .filter_map(|addr| {
            client
                .call_fields(addr, request::CONTROLLER_GET_SYNC_STATE_DATA, &[])
                .ok()
        })
        .collect();
    // While no controller leads (an election), no set is known.
    let Some(reply) = replies.iter().find(|r| r.code == response::SUCCESS) else {
        return vec![BTreeSet::new(); SHARDS];
    };
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

pub fn await_in_sync(client: &mut Client, namesrv: &str, ids: &[i64]) {
    let want: BTreeSet<i64> = ids.iter().copied().collect();
    eventually(Duration::from_secs(30), || {
        sync_sets(client, namesrv)
            .iter()
            .all(|set| *set == want)
            .then_some(())
    });
}

/// How many failovers a kill loop runs: `PETREL_FAILOVER_CYCLES`, else `default`.
pub fn cycles(default: usize) -> usize {
    std::env::var("PETREL_FAILOVER_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A name server running the controller: its store, the process, its address, a client.
pub fn controller() -> (tempfile::TempDir, Petrel, String, Client) {
    let dir = tempfile::tempdir().unwrap();
    let namesrv = Petrel::start("namesrv", dir.path(), &["enableControllerInNamesrv=true"]);
    let ns = namesrv.namesrv();
    let client = Client::new(&ns);
    (dir, namesrv, ns, client)
}

/// Replica 1 in `dirs[0]`, elected master, with `topic` (4 queues) if given; then replica 2
/// in `dirs[1]`, once both are in sync.
pub fn in_sync_pair(
    client: &mut Client,
    ns: &str,
    dirs: [&Path; 2],
    topic: Option<&str>,
) -> (Petrel, Petrel) {
    let a = replica(dirs[0], ns, 1);
    await_master(client, &a);
    if let Some(topic) = topic {
        client
            .create_topic(&a.front_door(), &TopicConfig::new(topic, 4, 6))
            .unwrap();
    }
    let b = replica(dirs[1], ns, 2);
    await_in_sync(client, ns, &[1, 2]);
    (a, b)
}

/// Two replicas, one of them master, that a kill loop takes turns killing.
pub struct Pair {
    dirs: [tempfile::TempDir; 2],
    replicas: [Option<Petrel>; 2],
    /// Which of the two is master now.
    master: usize,
}

impl Pair {
    /// `in_sync_pair` in fresh directories: replica 1 is master.
    pub fn start(client: &mut Client, ns: &str, topic: Option<&str>) -> Pair {
        let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
        let (a, b) = in_sync_pair(client, ns, [dirs[0].path(), dirs[1].path()], topic);
        Pair {
            dirs,
            replicas: [Some(a), Some(b)],
            master: 0,
        }
    }

    pub fn master(&self) -> &Petrel {
        self.replicas[self.master]
            .as_ref()
            .expect("both replicas run between kills")
    }

    /// Kills the master with SIGKILL, waits until routes name the other replica, restarts
    /// the killed one and waits until both are in sync again. When the kill landed (ms since
    /// the epoch), and how long routes took to name the new master.
    pub fn kill_master(&mut self, client: &mut Client, ns: &str) -> (i64, Duration) {
        let killed = self.master;
        self.replicas[killed].take().expect("a master").kill9();
        let killed_at = now_ms();
        self.master = 1 - killed;
        let took = await_master(client, self.master());
        std::thread::sleep(Duration::from_millis(300));
        self.replicas[killed] = Some(replica(self.dirs[killed].path(), ns, killed as u32 + 1));
        await_in_sync(client, ns, &[1, 2]);
        (killed_at, took)
    }
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Every body in all `queues` queues of `petrel`'s shards for `topic`, in queue order.
pub fn held_bodies(client: &mut Client, petrel: &Petrel, topic: &str, queues: i32) -> Vec<String> {
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
