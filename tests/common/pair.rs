//! A name server, a master and its slave without a controller (`brokerRole=SLAVE`,
//! `haMasterAddress`): their stores, the topic `Replicated` they carry, and what the tests
//! of replication send and compare.

use std::path::Path;

use petrel::client::{properties, Client, Message, SendResult};
use petrel_shards::broker::metadata::TopicConfig;
use petrel_shards::remoting::{request, response};

use super::{queue, Petrel};

pub const SHARDS: usize = 2;
/// Small segments, so the stream crosses segment ends (and their blank markers).
pub const SEGMENT: &str = "mappedFileSizeCommitLog=262144";
pub const MAX_MESSAGE: &str = "maxMessageSize=65536";

pub fn master(store: &Path, namesrv: &str, extra: &[&str]) -> Petrel {
    let mut props = vec![
        format!("namesrvAddr={namesrv}"),
        format!("shards={SHARDS}"),
        SEGMENT.to_string(),
        MAX_MESSAGE.to_string(),
    ];
    props.extend(extra.iter().map(|s| s.to_string()));
    let props: Vec<&str> = props.iter().map(String::as_str).collect();
    Petrel::start("broker", store, &props)
}

pub fn slave(store: &Path, namesrv: &str, master_ha: &str) -> Petrel {
    let master = format!("haMasterAddress={master_ha}");
    slave_of(store, namesrv, &[&master])
}

/// A slave with `extra` in its config: following the master `haMasterAddress=…` names or,
/// without, the master its name server names.
pub fn slave_of(store: &Path, namesrv: &str, extra: &[&str]) -> Petrel {
    let ns = format!("namesrvAddr={namesrv}");
    let shards = format!("shards={SHARDS}");
    let mut props = vec![
        ns.as_str(),
        &shards,
        SEGMENT,
        MAX_MESSAGE,
        "brokerRole=SLAVE",
        "brokerId=1",
    ];
    props.extend(extra);
    Petrel::start("broker", store, &props)
}

/// Sends message `i` (3 KiB) to queue `(i / 2) % 2` of shard `i % 2`.
pub fn send_one(client: &mut Client, broker: &Petrel, i: usize) -> SendResult {
    let (name, addr) = &broker.brokers()[i % SHARDS];
    let q = queue("Replicated", name, ((i / SHARDS) % 2) as i32);
    let body = format!("m{i:05}-{}", "x".repeat(3000));
    let msg = Message::new(body, properties(Some("T"), Some(&format!("k{i}")), &[]));
    client.send_to(addr, &q, &msg).unwrap()
}

/// Sends messages `from..from + n`, each acknowledged as stored.
pub fn send(client: &mut Client, broker: &Petrel, from: usize, n: usize) {
    for i in from..from + n {
        assert_eq!(send_one(client, broker, i).code, response::SUCCESS);
    }
}

pub fn max_offset(client: &mut Client, addr: &str, queue_id: i32) -> i64 {
    let reply = client
        .call_fields(
            addr,
            request::GET_MAX_OFFSET,
            &[
                ("topic", "Replicated".into()),
                ("queueId", queue_id.to_string()),
            ],
        )
        .unwrap();
    reply.field("offset").unwrap().parse().unwrap()
}

/// The commit-log segments of one shard, as (name, bytes up to the last non-zero byte).
pub fn segments(store: &Path, shard: usize) -> Vec<(String, Vec<u8>)> {
    let dir = store.join(format!("shard-{shard}/commitlog"));
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let mut bytes = std::fs::read(dir.join(&name)).unwrap();
            let used = bytes.iter().rposition(|b| *b != 0).map_or(0, |p| p + 1);
            bytes.truncate(used);
            (name, bytes)
        })
        .filter(|(_, bytes)| !bytes.is_empty())
        .collect()
}

/// A name server and the stores of a master and its slave.
pub struct Stage {
    pub ns: String,
    pub m_dir: tempfile::TempDir,
    pub s_dir: tempfile::TempDir,
    _namesrv: Petrel,
    _ns_dir: tempfile::TempDir,
}

impl Stage {
    /// The name server's address, both stores, and a client of the name server.
    pub fn parts(&self) -> (&str, &Path, &Path, Client) {
        (
            &self.ns,
            self.m_dir.path(),
            self.s_dir.path(),
            Client::new(&self.ns),
        )
    }
}

/// Starts a name server and a master (with `extra` in its config) that has the topic
/// `Replicated`: 4 queues, 2 on each shard.
pub fn stage(extra: &[&str]) -> (Stage, Petrel) {
    let ns_dir = tempfile::tempdir().unwrap();
    let namesrv = Petrel::start("namesrv", ns_dir.path(), &[]);
    let ns = namesrv.namesrv();
    let m_dir = tempfile::tempdir().unwrap();
    let master_broker = master(m_dir.path(), &ns, extra);
    Client::new(&ns)
        .create_topic(
            &master_broker.front_door(),
            &TopicConfig::new("Replicated", 4, 6),
        )
        .unwrap();
    let stage = Stage {
        ns,
        m_dir,
        s_dir: tempfile::tempdir().unwrap(),
        _namesrv: namesrv,
        _ns_dir: ns_dir,
    };
    (stage, master_broker)
}
