//! The controller's service on a name server (`enableControllerInNamesrv`): the Raft driver
//! that keeps the controllers' state agreed (consensus.rs) and the requests brokers and
//! mqadmin send it. Only the serving leader decides and answers; the others keep hearing
//! heartbeats and answer CONTROLLER_NOT_LEADER with the leader's address.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use petrel_shards::net::Connection;
use petrel_shards::remoting::headers::{Fields, HeaderError};
use petrel_shards::remoting::{request, response, RemotingCommand};

use super::consensus::{Applied, Consensus, TICK};
use super::controller::{Answer, Controller, Heartbeat};
use super::{json_body, ok_json};

/// How long an answer waits for the state it reflects to be committed.
const COMMIT_TIMEOUT: Duration = Duration::from_secs(3);

/// The controller and the Raft group that agrees on its state.
pub struct ControllerState {
    pub state: RefCell<Controller>,
    pub raft: Consensus,
}

impl ControllerState {
    pub fn new(mut state: Controller, raft: Consensus) -> Result<ControllerState, String> {
        state.adopt(&raft.initial_state())?;
        state.set_leading(false, Instant::now());
        Ok(ControllerState {
            state: RefCell::new(state),
            raft,
        })
    }

    /// Something changed that may need proposing.
    pub fn changed(&self) {
        self.raft.wake.raise();
    }

    /// Drives Raft for as long as the name server runs: ticks, steps peers' messages,
    /// proposes the controller's state whenever the leader changed it, applies what commits.
    pub async fn run(&self) {
        let mut next_tick = Instant::now() + TICK;
        let mut proposed = 0u64;
        loop {
            let now = Instant::now();
            if now < next_tick {
                futures_lite::future::or(
                    self.raft.wake.wait(),
                    glommio::timer::sleep(next_tick - now),
                )
                .await;
            }
            let tick = Instant::now() >= next_tick;
            if tick {
                next_tick = Instant::now() + TICK;
            }
            self.follow_leadership(&mut proposed);
            let proposal = {
                let state = self.state.borrow();
                (self.raft.serving() && state.version() > proposed)
                    .then(|| (state.version(), state.encode()))
            };
            let version = proposal.as_ref().map_or(proposed, |p| p.0);
            let (state, committed) = (&self.state, &self.raft.committed);
            let mut apply = |applied: Applied| {
                let outcome = match applied {
                    Applied::Own(bytes) => Controller::version_of(&bytes),
                    Applied::Adopt(bytes) => state.borrow_mut().adopt(&bytes),
                };
                match outcome {
                    Ok(v) if v > committed.get() => committed.advance(v),
                    Ok(_) => {}
                    Err(e) => log::error!("controller: a committed state does not parse: {e}"),
                }
            };
            if self
                .raft
                .turn(tick, proposal.map(|p| p.1), &mut apply)
                .await
            {
                proposed = version;
            }
            self.follow_leadership(&mut proposed);
        }
    }

    /// The controller decides only while Raft says this one serves as leader. Leading or
    /// not, it starts from the last committed state: what a deposed leader changed and never
    /// committed is dropped, never committed later by surprise.
    fn follow_leadership(&self, proposed: &mut u64) {
        let serving = self.raft.serving();
        if self.state.borrow().leading() != serving {
            let mut state = self.state.borrow_mut();
            if let Err(e) = state.adopt(&self.raft.applied_state()) {
                log::error!("controller: the committed state does not parse: {e}");
            }
            state.set_leading(serving, Instant::now());
            *proposed = state.version();
        }
    }

    /// Waits until what the controller holds now is committed by a majority in this
    /// leadership.
    async fn committed(&self) -> Result<(), String> {
        if !self.raft.serving() {
            return Err(self.not_leader());
        }
        let changes = self.raft.changes();
        let version = self.state.borrow().version();
        self.changed();
        let raft = &self.raft;
        let waited = glommio::timer::timeout(COMMIT_TIMEOUT, async {
            let _ = raft
                .committed
                .wait_until(|v| v >= version || raft.changes() != changes)
                .await;
            Ok(())
        })
        .await;
        if raft.changes() != changes || !raft.serving() {
            return Err(format!(
                "this controller lost its leadership before the change committed; {}",
                self.not_leader()
            ));
        }
        waited.map_err(|_| format!("the change was not committed by a majority of the controllers within {COMMIT_TIMEOUT:?}"))
    }

    fn not_leader(&self) -> String {
        match self.raft.leader("").1.filter(|a| !a.is_empty()) {
            Some(addr) => format!("this controller is not the leader; the leader is {addr}"),
            None => "this controller is not the leader, and no leader is known yet".to_string(),
        }
    }

    /// BROKER_HEARTBEAT, CONTROLLER_ELECT_MASTER, CONTROLLER_GET_REPLICA_INFO and
    /// CONTROLLER_GET_SYNC_STATE_DATA: answered by the leader once the state they reflect is
    /// committed. CONTROLLER_GET_METADATA_INFO names the leader; CONTROLLER_RAFT_MESSAGE
    /// carries peers' Raft messages.
    pub async fn request(&self, conn: &Rc<Connection>, cmd: &RemotingCommand) -> RemotingCommand {
        match cmd.code {
            request::CONTROLLER_GET_METADATA_INFO => return self.metadata(conn, cmd),
            request::CONTROLLER_RAFT_MESSAGE => {
                if !self.raft.is_peer_port(conn.local.port()) {
                    return RemotingCommand::response(response::NO_PERMISSION, cmd.opaque)
                        .with_remark("raft messages are taken only on this controller's controllerDLegerPeers port".to_string());
                }
                return match self.raft.receive(cmd, Some(conn.peer.ip())) {
                    Ok(()) => RemotingCommand::response(response::SUCCESS, cmd.opaque),
                    Err(e) => {
                        log::warn!("controller: from {}: {e}", conn.peer);
                        RemotingCommand::response(response::SYSTEM_ERROR, cmd.opaque).with_remark(e)
                    }
                };
            }
            _ => {}
        }
        let f = Fields(&cmd.ext_fields);
        if cmd.code == request::BROKER_HEARTBEAT {
            // Every controller keeps who lives, so that a new leader knows at once.
            match parse_heartbeat(&f, conn.id) {
                Ok(hb) => {
                    self.state.borrow_mut().heartbeat(&hb, Instant::now());
                    self.changed();
                }
                Err(e) => {
                    return RemotingCommand::response(response::SYSTEM_ERROR, cmd.opaque)
                        .with_remark(e.to_string())
                }
            }
        }
        if !self.raft.serving() {
            return RemotingCommand::response(response::CONTROLLER_NOT_LEADER, cmd.opaque)
                .with_remark(self.not_leader());
        }
        let outcome = match cmd.code {
            request::BROKER_HEARTBEAT => f
                .str("brokerName")
                .map(|name| Some(name.to_string()))
                .map_err(|e| (response::SYSTEM_ERROR, e.to_string())),
            request::CONTROLLER_ELECT_MASTER => match parse_election(&f) {
                Ok((name, designated)) => {
                    let elected = self.state.borrow_mut().elect_master(&name, designated);
                    elected.map(|_| Some(name)).map_err(|e| {
                        log::warn!("controller: electMaster refused: {e}");
                        (response::CONTROLLER_ELECT_MASTER_FAILED, e)
                    })
                }
                Err(e) => Err((response::SYSTEM_ERROR, e.to_string())),
            },
            request::CONTROLLER_GET_REPLICA_INFO => f
                .str("brokerName")
                .map(|name| Some(name.to_string()))
                .map_err(|e| (response::SYSTEM_ERROR, e.to_string())),
            _ => Ok(None),
        };
        let name = match outcome {
            Ok(name) => name,
            Err((code, remark)) => {
                return RemotingCommand::response(code, cmd.opaque).with_remark(remark)
            }
        };
        if let Err(e) = self.committed().await {
            return RemotingCommand::response(response::CONTROLLER_NOT_LEADER, cmd.opaque)
                .with_remark(e);
        }
        let state = self.state.borrow();
        match name {
            Some(name) => {
                let reply = answer_fields(
                    RemotingCommand::response(response::SUCCESS, cmd.opaque),
                    &state.answer(&name),
                    state
                        .groups()
                        .get(&name)
                        .map_or(0, |g| g.sync_state_set_epoch),
                );
                if cmd.code == request::CONTROLLER_ELECT_MASTER {
                    reply.with_body(json_body(&member_group(&state, &name)))
                } else {
                    reply
                }
            }
            None => match requested_names(&cmd.body) {
                Ok(names) => ok_json(cmd, &sync_state_data(&state, names.as_deref())),
                Err(e) => {
                    RemotingCommand::response(response::SYSTEM_ERROR, cmd.opaque).with_remark(e)
                }
            },
        }
    }

    /// CONTROLLER_GET_METADATA_INFO: which controller leads, at the address the asker used
    /// when it is this one.
    fn metadata(&self, conn: &Rc<Connection>, cmd: &RemotingCommand) -> RemotingCommand {
        let me = conn.local.to_string();
        let (leader, addr) = self.raft.leader(&me);
        let peers = match self.raft.peer_ids().is_empty() {
            true => me,
            false => self.raft.peer_names(),
        };
        RemotingCommand::response(response::SUCCESS, cmd.opaque)
            .with_field("group", "petrel-controller".to_string())
            .with_field("controllerLeaderId", leader)
            .with_field("controllerLeaderAddress", addr.unwrap_or_default())
            .with_field("isLeader", self.raft.serving().to_string())
            .with_field("peers", peers)
    }

    /// Every live replica heard on `connection_id` is gone.
    pub fn connection_closed(&self, connection_id: u64) {
        self.state.borrow_mut().connection_closed(connection_id);
        self.changed();
    }

    /// Looks for replicas past their heartbeat timeout, for as long as the name server runs.
    pub async fn run_expiry(&self, every: Duration) {
        loop {
            glommio::timer::sleep(every).await;
            self.state.borrow_mut().expire(Instant::now());
            self.changed();
        }
    }
}

/// CONTROLLER_ELECT_MASTER: the group, and the replica to elect if one is designated.
fn parse_election(f: &Fields<'_>) -> Result<(String, Option<i64>), HeaderError> {
    let name = f.str("brokerName")?.to_string();
    let designated = f.opt_i64("brokerId")?.filter(|id| *id >= 0);
    let designate = f.opt_str("designateElect") != Some("false");
    Ok((name, designated.filter(|_| designate)))
}

fn parse_heartbeat(f: &Fields<'_>, connection_id: u64) -> Result<Heartbeat, HeaderError> {
    let proposed = match f.opt_str("syncStateSet") {
        Some(csv) => Some(
            petrel_shards::replication::controller::parse_ids(csv).map_err(|_| {
                HeaderError::NotNumber {
                    field: "syncStateSet",
                    value: csv.to_string(),
                }
            })?,
        ),
        None => None,
    };
    Ok(Heartbeat {
        cluster: f.str("clusterName")?.to_string(),
        broker_name: f.str("brokerName")?.to_string(),
        broker_id: f.i64("brokerId")?,
        addr: f.str("brokerAddr")?.to_string(),
        ha_addr: f.opt_str("haServerAddr").unwrap_or_default().to_string(),
        epoch: f.opt_i64("epoch")?.unwrap_or(0).max(0) as u64,
        log_end: f.opt_i64("maxOffset")?.unwrap_or(0).max(0) as u64,
        proposed_sync_set: proposed,
        timeout: Duration::from_millis(
            f.opt_i64("heartbeatTimeoutMills")?.unwrap_or(3000).max(500) as u64,
        ),
        connection_id,
    })
}

fn answer_fields(reply: RemotingCommand, answer: &Answer, sync_epoch: u64) -> RemotingCommand {
    reply
        .with_field("masterBrokerId", answer.master.unwrap_or(-1).to_string())
        .with_field("masterAddress", answer.master_addr.clone())
        .with_field("masterHaAddress", answer.master_ha_addr.clone())
        .with_field("masterEpoch", answer.epoch.to_string())
        .with_field("syncStateSetEpoch", sync_epoch.to_string())
        .with_field(
            "syncStateSet",
            petrel_shards::replication::controller::format_ids(&answer.sync_state_set),
        )
}

/// CONTROLLER_GET_SYNC_STATE_DATA's body: a JSON list of group names, or nothing for all.
fn requested_names(body: &[u8]) -> Result<Option<Vec<String>>, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice::<Vec<String>>(body)
        .map(Some)
        .map_err(|e| format!("the body must be a JSON list of broker names: {e}"))
}

/// A group's live replicas by brokerId (BrokerMemberGroup, electMaster's answer body).
fn member_group(state: &Controller, name: &str) -> serde_json::Value {
    let addrs: serde_json::Map<_, _> = state
        .live_replicas(name)
        .into_iter()
        .map(|(id, addr, _)| (id.to_string(), serde_json::json!(addr)))
        .collect();
    serde_json::json!({
        "cluster": state.groups().get(name).map(|g| g.cluster.clone()).unwrap_or_default(),
        "brokerName": name,
        "brokerAddrs": addrs,
    })
}

/// The master, epoch and replicas in and out of sync of the groups in `names` (all when
/// `None`): mqadmin getSyncStateSet's BrokerReplicasInfo.
fn sync_state_data(state: &Controller, names: Option<&[String]>) -> serde_json::Value {
    let mut table = serde_json::Map::new();
    for (name, group) in state.groups() {
        if names.is_some_and(|names| !names.contains(name)) {
            continue;
        }
        let live = state.live_replicas(name);
        let replica = |id: &i64, addr: &str| serde_json::json!({ "brokerName": name, "brokerId": id, "brokerAddress": addr, "alive": live.iter().any(|(l, _, _)| l == id) });
        let addr_of = |id: &i64| {
            live.iter()
                .find(|(l, _, _)| l == id)
                .map(|(_, a, _)| a.clone())
                .unwrap_or_default()
        };
        let in_sync: Vec<_> = group
            .sync_state_set
            .iter()
            .map(|id| replica(id, &addr_of(id)))
            .collect();
        let not_in_sync: Vec<_> = live
            .iter()
            .filter(|(id, _, _)| !group.sync_state_set.contains(id))
            .map(|(id, addr, _)| replica(id, addr))
            .collect();
        table.insert(
            name.clone(),
            serde_json::json!({
                "clusterName": group.cluster,
                "masterBrokerId": group.master.unwrap_or(-1),
                "masterAddress": group.master.map(|m| addr_of(&m)).unwrap_or_default(),
                "masterEpoch": group.epoch,
                "syncStateSetEpoch": group.sync_state_set_epoch,
                "inSyncReplicas": in_sync,
                "notInSyncReplicas": not_in_sync,
                "logEnds": live.iter().map(|(id, _, end)| (id.to_string(), serde_json::json!(end))).collect::<serde_json::Map<_, _>>(),
            }),
        );
    }
    serde_json::json!({ "replicasInfoTable": table })
}
