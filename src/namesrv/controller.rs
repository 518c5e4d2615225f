//! The controller (`enableControllerInNamesrv=true`): for each broker group (a shard's broker
//! name) it knows the master, the epoch it was elected in and the in-sync set, and elects a
//! new master when the master dies. Brokers in controller mode send BROKER_HEARTBEAT every
//! `brokerHeartbeatInterval`; the answer names the master, its epoch and the in-sync set.
//!
//! The rules, which are what keeps every message answered SEND_OK through a failover:
//! - Only a replica in the in-sync set may be elected (unless `enableElectUncleanMaster`), and
//!   of those the live one whose log reaches furthest. A SYNC_MASTER answers SEND_OK only
//!   once every other member of the set it was confirmed holds the message, so any of them
//!   has it. The set of a new master is itself alone; it grows as its slaves catch up.
//! - Only the master of the current epoch changes the in-sync set, through its heartbeats.
//! - A replica is dead once silent for its `heartbeatTimeoutMills` or once the connection its
//!   heartbeats came on closes (a killed process closes it at once).
//! - Every change is committed by a majority of the controllers (on their disks) before any
//!   answer reflects it, so no controller, restarted or newly leading, names two masters in
//!   one epoch. Only the leading controller decides; the others keep who lives.
//!
//! Pure state: every method takes the time it acts at. The Raft group agrees on `encode()`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// A group's durable state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    pub cluster: String,
    pub epoch: u64,
    pub master: Option<i64>,
    pub sync_state_set: BTreeSet<i64>,
    pub sync_state_set_epoch: u64,
}

/// A replica as its last heartbeat described it.
#[derive(Debug, Clone)]
struct Replica {
    addr: String,
    ha_addr: String,
    log_end: u64,
    last_seen: Instant,
    timeout: Duration,
    connection_id: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heartbeat {
    pub cluster: String,
    pub broker_name: String,
    pub broker_id: i64,
    pub addr: String,
    pub ha_addr: String,
    pub epoch: u64,
    pub log_end: u64,
    /// From a master: the replicas it sees in sync, itself among them.
    pub proposed_sync_set: Option<BTreeSet<i64>>,
    pub timeout: Duration,
    pub connection_id: u64,
}

/// What a replica is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub master: Option<i64>,
    pub master_addr: String,
    pub master_ha_addr: String,
    pub epoch: u64,
    pub sync_state_set: BTreeSet<i64>,
}

pub struct Controller {
    groups: BTreeMap<String, Group>,
    replicas: HashMap<(String, i64), Replica>,
    unclean: bool,
    started: Instant,
    /// Bumped at every change of `groups`.
    version: u64,
    /// Whether this controller decides (the serving Raft leader); the others only keep
    /// who lives.
    leading: bool,
}

/// The state the controllers agree on: every entry of their Raft log holds one.
#[derive(Serialize, Deserialize)]
struct Agreed {
    version: u64,
    groups: BTreeMap<String, Group>,
}

impl Controller {
    pub fn new(groups: BTreeMap<String, Group>, unclean: bool, now: Instant) -> Controller {
        Controller {
            groups,
            replicas: HashMap::new(),
            unclean,
            started: now,
            version: 0,
            leading: true,
        }
    }

    pub fn load(bytes: &[u8], unclean: bool, now: Instant) -> Result<Controller, String> {
        let groups = if bytes.is_empty() {
            BTreeMap::new()
        } else {
            serde_json::from_slice(bytes).map_err(|e| e.to_string())?
        };
        Ok(Controller::new(groups, unclean, now))
    }

    /// The state as a Raft entry holds it.
    pub fn encode(&self) -> Vec<u8> {
        let agreed = Agreed {
            version: self.version,
            groups: self.groups.clone(),
        };
        serde_json::to_vec(&agreed).expect("controller state serializes")
    }

    /// The version of an encoded state.
    pub fn version_of(bytes: &[u8]) -> Result<u64, String> {
        serde_json::from_slice::<Agreed>(bytes)
            .map(|a| a.version)
            .map_err(|e| e.to_string())
    }

    /// Takes a committed state (empty: none yet); its version.
    pub fn adopt(&mut self, bytes: &[u8]) -> Result<u64, String> {
        if bytes.is_empty() {
            return Ok(self.version);
        }
        let agreed: Agreed = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        self.groups = agreed.groups;
        self.version = agreed.version;
        Ok(self.version)
    }

    pub fn leading(&self) -> bool {
        self.leading
    }

    /// Starts or stops deciding. A new leader gives masters it never heard from a grace
    /// period from now.
    pub fn set_leading(&mut self, leading: bool, now: Instant) {
        if leading && !self.leading {
            self.started = now;
        }
        self.leading = leading;
    }

    pub fn version(&self) -> u64 {
        self.version
    }

    pub fn groups(&self) -> &BTreeMap<String, Group> {
        &self.groups
    }

    /// Each live replica of `name`: (brokerId, address, log end).
    pub fn live_replicas(&self, name: &str) -> Vec<(i64, String, u64)> {
        let mut out: Vec<_> = self
            .replicas
            .iter()
            .filter(|((n, _), _)| n == name)
            .map(|((_, id), r)| (*id, r.addr.clone(), r.log_end))
            .collect();
        out.sort();
        out
    }

    pub fn heartbeat(&mut self, hb: &Heartbeat, now: Instant) -> Answer {
        let key = (hb.broker_name.clone(), hb.broker_id);
        self.replicas.insert(
            key,
            Replica {
                addr: hb.addr.clone(),
                ha_addr: hb.ha_addr.clone(),
                log_end: hb.log_end,
                last_seen: now,
                timeout: hb.timeout,
                connection_id: hb.connection_id,
            },
        );
        if !self.leading {
            return self.answer(&hb.broker_name);
        }
        let group = self.groups.entry(hb.broker_name.clone()).or_default();
        if group.cluster != hb.cluster {
            group.cluster = hb.cluster.clone();
            self.version += 1;
        }
        let group = &self.groups[&hb.broker_name];
        if group.master == Some(hb.broker_id) && hb.epoch == group.epoch {
            if let Some(proposed) = &hb.proposed_sync_set {
                if proposed.contains(&hb.broker_id) && *proposed != group.sync_state_set {
                    let group = self.groups.get_mut(&hb.broker_name).expect("exists");
                    log::info!(
                        "controller: {} in-sync set {:?} -> {:?} (epoch {})",
                        hb.broker_name,
                        group.sync_state_set,
                        proposed,
                        group.epoch
                    );
                    group.sync_state_set = proposed.clone();
                    group.sync_state_set_epoch += 1;
                    self.version += 1;
                }
            }
        }
        if self.groups[&hb.broker_name].master.is_none() {
            self.elect(&hb.broker_name, None);
        }
        self.answer(&hb.broker_name)
    }

    /// What a replica of `name` is told (no master, epoch 0, for a group never heard of).
    pub fn answer(&self, name: &str) -> Answer {
        let Some(group) = self.groups.get(name) else {
            return Answer {
                master: None,
                master_addr: String::new(),
                master_ha_addr: String::new(),
                epoch: 0,
                sync_state_set: BTreeSet::new(),
            };
        };
        let live = group
            .master
            .and_then(|m| self.replicas.get(&(name.to_string(), m)));
        Answer {
            master: group.master,
            master_addr: live.map(|r| r.addr.clone()).unwrap_or_default(),
            master_ha_addr: live.map(|r| r.ha_addr.clone()).unwrap_or_default(),
            epoch: group.epoch,
            sync_state_set: group.sync_state_set.clone(),
        }
    }

    /// Elects a master for `name` among its live replicas: `designated` if given (it must be
    /// eligible), else the eligible one whose log reaches furthest. False if none is.
    fn elect(&mut self, name: &str, designated: Option<i64>) -> bool {
        let Some(group) = self.groups.get(name) else {
            return false;
        };
        let eligible = |id: i64| {
            self.unclean || group.sync_state_set.is_empty() || group.sync_state_set.contains(&id)
        };
        let best = self
            .replicas
            .iter()
            .filter(|((n, id), _)| n == name && eligible(*id))
            .filter(|((_, id), _)| designated.is_none_or(|d| d == *id))
            .max_by_key(|((_, id), r)| (r.log_end, std::cmp::Reverse(*id)))
            .map(|((_, id), _)| *id);
        let Some(id) = best else {
            if group.master.is_some() {
                log::warn!("controller: {name} has no live in-sync replica to elect; writes wait for one of {:?}", group.sync_state_set);
            }
            return false;
        };
        let group = self.groups.get_mut(name).expect("exists");
        group.epoch += 1;
        group.master = Some(id);
        group.sync_state_set = BTreeSet::from([id]);
        group.sync_state_set_epoch += 1;
        self.version += 1;
        log::warn!(
            "controller: elected brokerId {id} master of {name} at epoch {}",
            group.epoch
        );
        true
    }

    /// A replica is gone: if it was a master, the group elects another.
    fn lost(&mut self, name: &str, id: i64, why: &str) {
        self.replicas.remove(&(name.to_string(), id));
        if !self.leading {
            return;
        }
        let Some(group) = self.groups.get_mut(name) else {
            return;
        };
        if group.master == Some(id) {
            log::warn!(
                "controller: master brokerId {id} of {name} lost ({why}) at epoch {}",
                group.epoch
            );
            group.master = None;
            self.version += 1;
            self.elect(name, None);
        }
    }

    /// Drops replicas silent past their timeout; masters that never came back after a
    /// controller restart count as silent since it started.
    pub fn expire(&mut self, now: Instant) {
        let dead: Vec<(String, i64)> = self
            .replicas
            .iter()
            .filter(|(_, r)| now.duration_since(r.last_seen) > r.timeout)
            .map(|(k, _)| k.clone())
            .collect();
        for (name, id) in dead {
            self.lost(&name, id, "no heartbeat");
        }
        let grace = Duration::from_secs(10);
        if now.duration_since(self.started) > grace {
            let unheard: Vec<(String, i64)> = self
                .groups
                .iter()
                .filter_map(|(name, g)| Some((name.clone(), g.master?)))
                .filter(|k| !self.replicas.contains_key(k))
                .collect();
            for (name, id) in unheard {
                self.lost(&name, id, "not heard from since the controller started");
            }
        }
    }

    /// The connection heartbeats came on closed: those replicas are dead.
    pub fn connection_closed(&mut self, connection_id: u64) {
        let gone: Vec<(String, i64)> = self
            .replicas
            .iter()
            .filter(|(_, r)| r.connection_id == connection_id)
            .map(|(k, _)| k.clone())
            .collect();
        for (name, id) in gone {
            self.lost(&name, id, "its connection closed");
        }
    }

    /// An operator's election (mqadmin electMaster): `designated`, or the best eligible
    /// replica, becomes master with a new epoch.
    pub fn elect_master(&mut self, name: &str, designated: Option<i64>) -> Result<Answer, String> {
        if !self.groups.contains_key(name) {
            return Err(format!(
                "broker group {name} is not known to the controller"
            ));
        }
        if let Some(id) = designated {
            if !self.replicas.contains_key(&(name.to_string(), id)) {
                return Err(format!("brokerId {id} of {name} is not alive"));
            }
        }
        if !self.elect(name, designated) {
            return Err(format!(
                "no live replica of {name} can be elected (in-sync set {:?})",
                self.groups[name].sync_state_set
            ));
        }
        Ok(self.answer(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hb(id: i64, epoch: u64, log_end: u64, conn: u64) -> Heartbeat {
        Heartbeat {
            cluster: "c".into(),
            broker_name: "b-s0".into(),
            broker_id: id,
            addr: format!("127.0.0.1:{}", 1000 + id),
            ha_addr: format!("127.0.0.1:{}", 2000 + id),
            epoch,
            log_end,
            proposed_sync_set: None,
            timeout: Duration::from_secs(3),
            connection_id: conn,
        }
    }

    fn ids(list: &[i64]) -> BTreeSet<i64> {
        list.iter().copied().collect()
    }

    #[test]
    fn the_first_replica_is_elected_and_the_next_follows_it() {
        let t = Instant::now();
        let mut c = Controller::new(BTreeMap::new(), false, t);
        let a = c.heartbeat(&hb(1, 0, 0, 10), t);
        assert_eq!((a.master, a.epoch), (Some(1), 1));
        assert_eq!(a.master_ha_addr, "127.0.0.1:2001");
        let b = c.heartbeat(&hb(2, 0, 0, 20), t);
        assert_eq!((b.master, b.epoch), (Some(1), 1));
        assert_eq!(b.sync_state_set, ids(&[1]));
    }

    #[test]
    fn a_dead_master_is_replaced_by_an_in_sync_slave_only() {
        let t = Instant::now();
        let mut c = Controller::new(BTreeMap::new(), false, t);
        c.heartbeat(&hb(1, 0, 0, 10), t);
        c.heartbeat(&hb(2, 0, 0, 20), t);
        // Slave 2 is not in sync yet: the master's death leaves the group without a master.
        c.connection_closed(10);
        let a = c.heartbeat(&hb(2, 1, 500, 20), t);
        assert_eq!(a.master, None);
        assert_eq!(a.epoch, 1);
        // The old master comes back: it is in the set, so it is elected again.
        let a = c.heartbeat(&hb(1, 1, 600, 11), t);
        assert_eq!((a.master, a.epoch), (Some(1), 2));
        // It confirms slave 2 in sync; a stale-epoch proposal is ignored.
        let mut stale = hb(1, 1, 600, 11);
        stale.proposed_sync_set = Some(ids(&[1]));
        let mut ok = hb(1, 2, 700, 11);
        ok.proposed_sync_set = Some(ids(&[1, 2]));
        assert_eq!(c.heartbeat(&ok, t).sync_state_set, ids(&[1, 2]));
        assert_eq!(c.heartbeat(&stale, t).sync_state_set, ids(&[1, 2]));
        // A slave cannot change the set.
        let mut slave = hb(2, 2, 700, 20);
        slave.proposed_sync_set = Some(ids(&[2]));
        assert_eq!(c.heartbeat(&slave, t).sync_state_set, ids(&[1, 2]));
        // Now the master's silence elects slave 2, alone in its new set.
        c.expire(t + Duration::from_secs(2));
        c.heartbeat(&hb(2, 2, 700, 20), t + Duration::from_secs(4));
        c.expire(t + Duration::from_secs(4));
        let a = c.heartbeat(&hb(2, 2, 700, 20), t + Duration::from_secs(4));
        assert_eq!((a.master, a.epoch), (Some(2), 3));
        assert_eq!(a.sync_state_set, ids(&[2]));
        assert_eq!(a.master_addr, "127.0.0.1:1002");
    }

    #[test]
    fn the_in_sync_replica_furthest_ahead_wins_and_unclean_election_is_opt_in() {
        let t = Instant::now();
        let mut c = Controller::new(BTreeMap::new(), false, t);
        c.heartbeat(&hb(1, 0, 0, 10), t);
        c.heartbeat(&hb(2, 1, 90, 20), t);
        c.heartbeat(&hb(3, 1, 80, 30), t);
        let mut p = hb(1, 1, 100, 10);
        p.proposed_sync_set = Some(ids(&[1, 2, 3]));
        c.heartbeat(&p, t);
        c.connection_closed(10);
        assert_eq!(c.groups()["b-s0"].master, Some(2));
        // Out of the set: replica 3 is not elected when 2 dies too, unless unclean is on.
        c.connection_closed(20);
        assert_eq!(c.groups()["b-s0"].master, None);
        let mut unclean = Controller::new(c.groups().clone(), true, t);
        unclean.heartbeat(&hb(3, 2, 80, 31), t);
        assert_eq!(unclean.groups()["b-s0"].master, Some(3));
    }

    #[test]
    fn state_survives_a_restart_and_a_master_unheard_since_is_replaced() {
        let t = Instant::now();
        let mut c = Controller::new(BTreeMap::new(), false, t);
        c.heartbeat(&hb(1, 0, 0, 10), t);
        let mut p = hb(1, 1, 10, 10);
        p.proposed_sync_set = Some(ids(&[1, 2]));
        c.heartbeat(&hb(2, 1, 10, 20), t);
        c.heartbeat(&p, t);
        let mut back = Controller::new(BTreeMap::new(), false, t);
        assert_eq!(back.adopt(&c.encode()), Ok(c.version()));
        assert_eq!(back.groups(), c.groups());
        // Slave 2 is heard, master 1 is not: past the grace period 2 takes over.
        back.heartbeat(&hb(2, 1, 10, 21), t);
        back.expire(t + Duration::from_secs(5));
        assert_eq!(back.groups()["b-s0"].master, Some(1));
        back.heartbeat(&hb(2, 1, 10, 21), t + Duration::from_secs(11));
        back.expire(t + Duration::from_secs(11));
        assert_eq!(back.groups()["b-s0"].master, Some(2));
        assert_eq!(back.groups()["b-s0"].epoch, 2);
        assert!(back.elect_master("b-s0", Some(7)).is_err());
        assert!(back.elect_master("nope", None).is_err());
    }

    #[test]
    fn a_controller_that_does_not_lead_keeps_who_lives_and_decides_nothing() {
        let t = Instant::now();
        let mut c = Controller::new(BTreeMap::new(), false, t);
        c.set_leading(false, t);
        c.heartbeat(&hb(1, 0, 0, 10), t);
        assert!(c.groups().is_empty());
        assert_eq!(c.live_replicas("b-s0").len(), 1);
        // Leading, it elects the replica it already heard; the grace runs from then.
        c.set_leading(true, t + Duration::from_secs(30));
        c.heartbeat(&hb(1, 0, 0, 10), t + Duration::from_secs(30));
        assert_eq!(c.groups()["b-s0"].master, Some(1));
        c.expire(t + Duration::from_secs(31));
        assert_eq!(c.groups()["b-s0"].master, Some(1));
    }
}
