//! The controllers agree on the controller's state with Raft (raft-rs, a state machine with
//! no threads or runtime of its own, driven here by one task on the name server's executor).
//! `controllerDLegerPeers` names the group (`n0-ip:port;n1-ip:port;…`, as RocketMQ's does),
//! `controllerDLegerSelfId` this one; they talk over the remoting protocol on those ports.
//! One controller with no peers is a group of one.
//!
//! Only the leader decides (elections, in-sync sets); each decision is proposed as the
//! controller's whole new state, and a broker is answered only once the state its answer
//! reflects is committed in the leader's own term. Followers keep hearing every broker's
//! heartbeat, so a new leader knows at once who lives.
//!
//! Why raft-rs rather than openraft: openraft runs its core as tasks it spawns on an async
//! runtime (tokio unless adapted) behind async storage and network traits; raft-rs is a
//! plain state machine (`tick`, `step`, `ready`, `advance`) that a single-threaded glommio
//! executor drives with no adapter, and it is TiKV's, long in production. Its messages are
//! rust-protobuf 2 types, parsed only from what arrives on the peers' port, which belongs
//! on a private network.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use petrel_shards::net::rpc_client::RpcClient;
use petrel_shards::remoting::{request, ExtFields, RemotingCommand};
use petrel_shards::runtime::watermark::{Signal, Watermark};
use protobuf::Message as _;
use raft::prelude::{Entry, Message};
use raft::{Config, RawNode, StateRole};
use slog::Drain;

use super::raft_log::RaftLog;

/// One Raft tick; elections take 10 to 20 of them, heartbeats go every 3.
pub const TICK: Duration = Duration::from_millis(100);
/// Messages queued for a peer that does not take them; older ones are dropped (Raft resends).
const OUTBOX: usize = 1024;
const SEND_TIMEOUT: Duration = Duration::from_secs(1);

/// The group as configured: this controller's Raft id and every member's (id, name, addr).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    pub self_id: u64,
    pub members: Vec<(u64, String, String)>,
}

impl Membership {
    /// A controller alone.
    pub fn alone() -> Membership {
        Membership {
            self_id: 1,
            members: vec![(1, "n0".into(), String::new())],
        }
    }

    /// `controllerDLegerPeers` and `controllerDLegerSelfId`; ids follow the list's order.
    pub fn parse(peers: &str, self_name: &str) -> Result<Membership, String> {
        let mut members = Vec::new();
        for (i, peer) in peers
            .split(';')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .enumerate()
        {
            let (name, addr) = peer
                .split_once('-')
                .ok_or_else(|| format!("controllerDLegerPeers: {peer:?} is not name-ip:port"))?;
            addr.parse::<std::net::SocketAddr>()
                .map_err(|_| format!("controllerDLegerPeers: {addr:?} of {name} is not ip:port"))?;
            if members.iter().any(|(_, n, _)| n == name) {
                return Err(format!("controllerDLegerPeers: {name} is named twice"));
            }
            members.push((i as u64 + 1, name.to_string(), addr.to_string()));
        }
        let self_id = members
            .iter()
            .find(|(_, n, _)| n == self_name)
            .map(|(id, _, _)| *id)
            .ok_or_else(|| {
                format!("controllerDLegerSelfId {self_name:?} is not among controllerDLegerPeers {peers:?}")
            })?;
        Ok(Membership { self_id, members })
    }

    /// Where this controller listens for its peers, if it has any.
    pub fn own_addr(&self) -> Option<&str> {
        if self.members.len() < 2 {
            return None;
        }
        self.members
            .iter()
            .find(|(id, _, _)| *id == self.self_id)
            .map(|(_, _, a)| a.as_str())
    }
}

struct Peer {
    addr: String,
    outbox: RefCell<VecDeque<Message>>,
    ready: Signal,
}

/// What a committed entry asks of the controller.
pub enum Applied {
    /// A state this leader proposed in its own term is committed.
    Own(Vec<u8>),
    /// A state set by another leader (or before this leadership): take it.
    Adopt(Vec<u8>),
}

pub struct Consensus {
    node: RefCell<RawNode<RaftLog>>,
    log: RaftLog,
    path: PathBuf,
    membership: Membership,
    peers: BTreeMap<u64, Peer>,
    inbox: RefCell<Vec<Message>>,
    /// Raised when a message arrived or the controller's state changed.
    pub wake: Signal,
    /// Leaderships taken or lost so far; a waiter fails when it moves.
    changes: Cell<u64>,
    /// Set once this leader applied everything committed before its term.
    serving: Cell<bool>,
    leader_start: Cell<u64>,
    /// The controller version committed in this leadership; nudged when leadership changes.
    pub committed: Watermark,
    /// The name-server address of each peer, as its messages say.
    namesrv_of: RefCell<BTreeMap<u64, String>>,
    namesrv_port: Cell<u16>,
    rpc: RpcClient,
}

impl Consensus {
    pub fn new(membership: Membership, log: RaftLog, path: PathBuf) -> Result<Consensus, String> {
        let config = Config {
            id: membership.self_id,
            election_tick: 10,
            heartbeat_tick: 3,
            check_quorum: true,
            pre_vote: true,
            ..Default::default()
        };
        config.validate().map_err(|e| e.to_string())?;
        let logger = slog::Logger::root(slog_stdlog::StdLog.fuse(), slog::o!());
        let mut node = RawNode::new(&config, log.clone(), &logger).map_err(|e| e.to_string())?;
        if membership.members.len() == 1 {
            node.campaign().map_err(|e| e.to_string())?;
        }
        let peers = membership
            .members
            .iter()
            .filter(|(id, _, _)| *id != membership.self_id)
            .map(|(id, _, addr)| {
                let peer = Peer {
                    addr: addr.clone(),
                    outbox: RefCell::new(VecDeque::new()),
                    ready: Signal::default(),
                };
                (*id, peer)
            })
            .collect();
        Ok(Consensus {
            node: RefCell::new(node),
            log,
            path,
            membership,
            peers,
            inbox: RefCell::new(Vec::new()),
            wake: Signal::default(),
            changes: Cell::new(0),
            serving: Cell::new(false),
            leader_start: Cell::new(0),
            committed: Watermark::new(0),
            namesrv_of: RefCell::new(BTreeMap::new()),
            namesrv_port: Cell::new(0),
            rpc: RpcClient::default(),
        })
    }

    /// Whether `port` is the one this controller's peers reach it on.
    pub fn is_peer_port(&self, port: u16) -> bool {
        self.membership
            .own_addr()
            .and_then(|a| a.parse::<std::net::SocketAddr>().ok())
            .is_some_and(|a| a.port() == port)
    }

    pub fn set_namesrv_port(&self, port: u16) {
        self.namesrv_port.set(port);
    }

    /// The state the log starts from, before any entry is applied.
    pub fn initial_state(&self) -> Vec<u8> {
        self.log.snapshot_state()
    }

    /// The state the last applied entry set.
    pub fn applied_state(&self) -> Vec<u8> {
        self.log.applied_state()
    }

    /// Whether this controller leads and may decide and answer.
    pub fn serving(&self) -> bool {
        self.serving.get()
    }

    pub fn changes(&self) -> u64 {
        self.changes.get()
    }

    /// This controller's name in the group and the leader's name-server address, if known
    /// (`own` when this one leads).
    pub fn leader(&self, own: &str) -> (String, Option<String>) {
        let node = self.node.borrow();
        let leader = node.raft.leader_id;
        let name = |id: u64| {
            self.membership
                .members
                .iter()
                .find(|(i, _, _)| *i == id)
                .map(|(_, n, _)| n.clone())
                .unwrap_or_default()
        };
        let addr = if leader == self.membership.self_id {
            Some(own.to_string())
        } else {
            self.namesrv_of.borrow().get(&leader).cloned()
        };
        (name(leader), addr.filter(|_| leader != 0))
    }

    pub fn peer_names(&self) -> String {
        let list: Vec<String> = self
            .membership
            .members
            .iter()
            .map(|(_, n, a)| format!("{n}-{a}"))
            .collect();
        list.join(";")
    }

    /// A CONTROLLER_RAFT_MESSAGE from a peer: its messages are stepped by the driver.
    pub fn receive(
        &self,
        cmd: &RemotingCommand,
        peer_host: Option<std::net::IpAddr>,
    ) -> Result<(), String> {
        let from: u64 = cmd
            .field("from")
            .unwrap_or_default()
            .parse()
            .map_err(|_| "no from field")?;
        if !self.peers.contains_key(&from) {
            return Err(format!("raft message from {from}, which is not a peer"));
        }
        if let (Some(port), Some(host)) = (cmd.field("namesrvPort"), peer_host) {
            self.namesrv_of
                .borrow_mut()
                .insert(from, format!("{host}:{port}"));
        }
        let mut body = &cmd.body[..];
        let mut inbox = self.inbox.borrow_mut();
        while body.len() >= 4 {
            let len = u32::from_be_bytes(body[..4].try_into().expect("4 bytes")) as usize;
            let bytes = body.get(4..4 + len).ok_or("truncated raft message")?;
            let msg = Message::parse_from_bytes(bytes).map_err(|e| e.to_string())?;
            if msg.to == self.membership.self_id && msg.from == from {
                inbox.push(msg);
            }
            body = &body[4 + len..];
        }
        drop(inbox);
        self.wake.raise();
        Ok(())
    }

    fn send(&self, messages: Vec<Message>) {
        for msg in messages {
            let Some(peer) = self.peers.get(&msg.to) else {
                continue;
            };
            let mut outbox = peer.outbox.borrow_mut();
            if outbox.len() == OUTBOX {
                outbox.pop_front();
            }
            outbox.push_back(msg);
            peer.ready.raise();
        }
    }

    /// Carries queued messages to the peer `id`, for as long as the name server runs.
    pub async fn run_sender(&self, id: u64) {
        let peer = &self.peers[&id];
        let mut last_error = String::new();
        loop {
            peer.ready.wait().await;
            let batch: Vec<Message> = peer.outbox.borrow_mut().drain(..).collect();
            if batch.is_empty() {
                continue;
            }
            let mut body = BytesMut::new();
            for msg in &batch {
                let bytes = msg.write_to_bytes().expect("raft messages encode");
                body.put_u32(bytes.len() as u32);
                body.put_slice(&bytes);
            }
            let mut ext = ExtFields::new();
            ext.insert("from", self.membership.self_id.to_string());
            ext.insert("namesrvPort", self.namesrv_port.get().to_string());
            let cmd =
                RemotingCommand::request(request::CONTROLLER_RAFT_MESSAGE, ext, body.freeze());
            let outcome = match self.rpc.call(&peer.addr, cmd, SEND_TIMEOUT).await {
                Ok(reply) if reply.code == 0 => Ok(()),
                Ok(reply) => Err(format!(
                    "code {}: {}",
                    reply.code,
                    reply.remark.unwrap_or_default()
                )),
                Err(e) => Err(e.to_string()),
            };
            match outcome {
                Ok(()) if !last_error.is_empty() => {
                    log::info!("controller: peer {} reached again", peer.addr);
                    last_error.clear();
                }
                Ok(()) => {}
                Err(e) => {
                    if e != last_error {
                        log::warn!("controller: peer {}: {e}", peer.addr);
                        last_error = e;
                    }
                    self.node.borrow_mut().report_unreachable(id);
                    glommio::timer::sleep(TICK).await;
                }
            }
        }
    }

    /// One turn of the driver: ticks when `tick`, steps what arrived, proposes `proposal`
    /// (the controller's new state) if this one serves, then handles what Raft made ready.
    /// `apply` is given each committed state.
    pub async fn turn(
        &self,
        tick: bool,
        proposal: Option<Vec<u8>>,
        apply: &mut dyn FnMut(Applied),
    ) -> bool {
        {
            let mut node = self.node.borrow_mut();
            if tick {
                node.tick();
            }
            for msg in self.inbox.borrow_mut().drain(..) {
                if let Err(e) = node.step(msg) {
                    log::debug!("controller: raft message refused: {e}");
                }
            }
        }
        let proposed = match proposal {
            Some(state) if self.serving() => {
                let mut node = self.node.borrow_mut();
                node.propose(Vec::new(), state).is_ok()
            }
            _ => false,
        };
        self.handle_ready(apply).await;
        proposed
    }

    async fn handle_ready(&self, apply: &mut dyn FnMut(Applied)) {
        let mut ready = {
            let mut node = self.node.borrow_mut();
            if !node.has_ready() {
                return;
            }
            node.ready()
        };
        self.send(ready.take_messages());
        if !ready.snapshot().is_empty() {
            self.log.apply_snapshot(ready.snapshot());
            apply(Applied::Adopt(ready.snapshot().data.to_vec()));
        }
        self.apply_entries(ready.take_committed_entries(), apply);
        let mut dirty = !ready.entries().is_empty() || !ready.snapshot().is_empty();
        self.log.append(ready.entries());
        if let Some(hard) = ready.hs() {
            self.log.set_hard_state(hard);
            dirty = true;
        }
        if let Some(soft) = ready.ss() {
            let leads = soft.raft_state == StateRole::Leader;
            log::warn!(
                "controller: {} of {} is {:?} (leader {})",
                self.name(self.membership.self_id),
                self.membership.members.len(),
                soft.raft_state,
                self.name(soft.leader_id)
            );
            self.changes.set(self.changes.get() + 1);
            self.serving.set(false);
            if leads {
                self.leader_start
                    .set(self.node.borrow().raft.raft_log.last_index());
            }
            self.committed.nudge();
        }
        if dirty {
            self.persist().await;
        }
        self.send(ready.take_persisted_messages());
        let mut light = self.node.borrow_mut().advance(ready);
        if let Some(commit) = light.commit_index() {
            self.log.set_commit(commit);
        }
        self.send(light.take_messages());
        self.apply_entries(light.take_committed_entries(), apply);
        self.node.borrow_mut().advance_apply();
        self.check_serving();
    }

    fn apply_entries(&self, entries: Vec<Entry>, apply: &mut dyn FnMut(Applied)) {
        for entry in entries {
            self.log.applied(&entry);
            if entry.data.is_empty() {
                continue;
            }
            let (leads, term) = {
                let node = self.node.borrow();
                (node.raft.state == StateRole::Leader, node.raft.term)
            };
            if leads && entry.term == term && self.serving() {
                apply(Applied::Own(entry.data.to_vec()));
            } else {
                apply(Applied::Adopt(entry.data.to_vec()));
            }
        }
    }

    /// A leader serves once it applied its own first entry: all before it is applied too.
    fn check_serving(&self) {
        if self.serving.get() {
            return;
        }
        let node = self.node.borrow();
        if node.raft.state == StateRole::Leader
            && node.raft.raft_log.applied >= self.leader_start.get()
        {
            self.serving.set(true);
            self.changes.set(self.changes.get() + 1);
            log::info!(
                "controller: {} leads at term {}",
                self.name(self.membership.self_id),
                node.raft.term
            );
        }
    }

    /// Writes the log until the write succeeds: nothing it holds is acted on before.
    async fn persist(&self) {
        loop {
            let bytes = self.log.to_bytes();
            match petrel_shards::store::atomic_file::write_off_shard(self.path.clone(), bytes).await
            {
                Ok(()) => return,
                Err(e) => {
                    log::error!(
                        "controller: writing {} failed: {e}; retrying",
                        self.path.display()
                    );
                    glommio::timer::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    fn name(&self, id: u64) -> String {
        self.membership
            .members
            .iter()
            .find(|(i, _, _)| *i == id)
            .map_or_else(|| "none".to_string(), |(_, n, _)| n.clone())
    }

    pub fn peer_ids(&self) -> Vec<u64> {
        self.peers.keys().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_are_parsed_as_rocketmq_writes_them_and_mistakes_are_named() {
        let m = Membership::parse(
            "n0-127.0.0.1:9878;n1-127.0.0.1:9868;n2-127.0.0.1:9858",
            "n1",
        )
        .unwrap();
        assert_eq!(m.self_id, 2);
        assert_eq!(m.own_addr(), Some("127.0.0.1:9868"));
        assert_eq!(
            m.members[2],
            (3, "n2".to_string(), "127.0.0.1:9858".to_string())
        );
        let e = Membership::parse("n0-127.0.0.1:9878", "n3").unwrap_err();
        assert!(e.contains("controllerDLegerSelfId \"n3\""), "{e}");
        let e = Membership::parse("n0:127.0.0.1:9878", "n0").unwrap_err();
        assert!(e.contains("is not name-ip:port"), "{e}");
        let e = Membership::parse("n0-localhost", "n0").unwrap_err();
        assert!(e.contains("\"localhost\" of n0 is not ip:port"), "{e}");
        assert_eq!(
            Membership::parse("n0-127.0.0.1:1", "n0")
                .unwrap()
                .own_addr(),
            None
        );
    }
}
