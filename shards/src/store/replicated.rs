//! What a master shard knows of its slaves: how far each slave's log is durable, and whether
//! they are in sync. On a SYNC_MASTER this gates both sides of a message: a send is answered
//! only once the slaves hold it (or with SLAVE_NOT_AVAILABLE / FLUSH_SLAVE_TIMEOUT), and
//! consumers see a message only once the slaves hold it, unless none is in sync, when the
//! master serves what it holds alone, as an ASYNC_MASTER with no slave does.
//!
//! Which slaves a send waits for: without a controller, the one furthest ahead. With one, every
//! slave in the in-sync set the controller confirmed (`confirm`), so that whichever of them the
//! controller elects next holds every message answered SEND_OK. A slave the master sees in
//! sync counts only once the controller has confirmed it; one the master lost keeps counting
//! (sends wait) until the controller has confirmed its removal. With no slave confirmed, the
//! master's own durability answers: the controller elects no other replica before it.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};

use crate::runtime::watermark::Watermark;

/// RocketMQ's `haMaxGapNotInSync`: a slave further behind than this is not in sync.
pub const MAX_GAP_IN_SYNC: u64 = 256 << 20;

/// A slave joins the in-sync set once this close to the master's end.
pub const JOIN_GAP: u64 = 4 << 20;

/// A connected slave, as `slave_connected` names it.
pub type FollowerId = u64;

struct Follower {
    replica_id: i64,
    acked: u64,
}

pub struct Replicated {
    /// SYNC_MASTER: sends and reads wait for the slave.
    pub sync: bool,
    /// Wakes sends waiting on slaves whenever an ack, a slave or the in-sync set changes.
    changes: Watermark,
    followers: RefCell<BTreeMap<FollowerId, Follower>>,
    next_follower: Cell<FollowerId>,
    /// In controller mode, the slaves (by brokerId) the controller confirmed in sync.
    confirmed: RefCell<Option<BTreeSet<i64>>>,
    /// Counts the times a slave a send waits on went away, so such a send stops waiting.
    losses: Cell<u64>,
    /// No longer the master (fenced by the controller): waiting sends stop waiting.
    fenced: Cell<bool>,
    /// On a slave: the master's durable end, as its last frame said.
    master_end: Cell<u64>,
}

/// How a SYNC_MASTER answers a send whose record ends at `end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncOutcome {
    /// The slaves hold it.
    Replicated,
    /// No slave in sync: stored on the master only.
    SlaveNotAvailable,
    /// The slave did not confirm within `syncFlushTimeout`.
    Timeout,
}

impl Replicated {
    pub fn new(sync: bool) -> Replicated {
        Replicated {
            sync,
            changes: Watermark::new(0),
            followers: RefCell::new(BTreeMap::new()),
            next_follower: Cell::new(0),
            confirmed: RefCell::new(None),
            losses: Cell::new(0),
            fenced: Cell::new(false),
            master_end: Cell::new(0),
        }
    }

    /// The shard stopped being the master (`true`) or became it (`false`).
    pub fn set_fenced(&self, fenced: bool) {
        self.fenced.set(fenced);
        self.changes.nudge();
    }

    /// How far the slaves a send waits for hold the log; `None` if one of them is not
    /// connected or there is none (`u64::MAX` under a controller that confirmed no slave).
    pub fn acked_level(&self) -> Option<u64> {
        let followers = self.followers.borrow();
        let best = |id: Option<i64>| {
            followers
                .values()
                .filter(|f| id.is_none_or(|id| f.replica_id == id))
                .map(|f| f.acked)
                .max()
        };
        match &*self.confirmed.borrow() {
            None => best(None),
            // The master alone is in sync: what it holds is as replicated as it gets, and no
            // other replica can be elected before it.
            Some(set) if set.is_empty() => Some(u64::MAX),
            Some(set) => set
                .iter()
                .map(|id| best(Some(*id)))
                .try_fold(u64::MAX, |low, acked| acked.map(|a| low.min(a))),
        }
    }

    /// The highest durable end any connected slave acknowledged (0 with none).
    pub fn acked(&self) -> u64 {
        self.followers
            .borrow()
            .values()
            .map(|f| f.acked)
            .max()
            .unwrap_or(0)
    }

    pub fn slaves(&self) -> u32 {
        self.followers.borrow().len() as u32
    }

    /// Each connected slave's brokerId and acknowledged end.
    pub fn follower_acks(&self) -> Vec<(i64, u64)> {
        self.followers
            .borrow()
            .values()
            .map(|f| (f.replica_id, f.acked))
            .collect()
    }

    /// The slaves a send waits for are connected and no more than `MAX_GAP_IN_SYNC` behind
    /// `log_end`.
    pub fn in_sync(&self, log_end: u64) -> bool {
        self.acked_level()
            .is_some_and(|acked| log_end.saturating_sub(acked) <= MAX_GAP_IN_SYNC)
    }

    /// Controller mode: the in-sync slaves the controller confirmed (the master excluded).
    pub fn confirm(&self, slaves: BTreeSet<i64>) {
        let mut confirmed = self.confirmed.borrow_mut();
        if confirmed.as_ref() != Some(&slaves) {
            *confirmed = Some(slaves);
            drop(confirmed);
            self.losses.set(self.losses.get() + 1);
            self.changes.nudge();
        }
    }

    /// The slaves this master sees in sync now, to propose to the controller: members stay
    /// while connected and within `MAX_GAP_IN_SYNC`; others join once within `JOIN_GAP`, so a
    /// send never waits long on a slave that has only just joined.
    pub fn seen_in_sync(&self, log_end: u64) -> BTreeSet<i64> {
        let confirmed = self.confirmed.borrow();
        let member = |id: i64| confirmed.as_ref().is_some_and(|set| set.contains(&id));
        self.followers
            .borrow()
            .values()
            .filter(|f| {
                let gap = log_end.saturating_sub(f.acked);
                gap <= JOIN_GAP || (member(f.replica_id) && gap <= MAX_GAP_IN_SYNC)
            })
            .map(|f| f.replica_id)
            .collect()
    }

    /// On a slave: the master said its log is durable to `end`.
    pub fn note_master_end(&self, end: u64) {
        self.master_end.set(end);
    }

    pub fn master_end(&self) -> u64 {
        self.master_end.get()
    }

    pub fn slave_connected(&self, replica_id: i64, from: u64) -> FollowerId {
        let id = self.next_follower.get();
        self.next_follower.set(id + 1);
        self.followers.borrow_mut().insert(
            id,
            Follower {
                replica_id,
                acked: from,
            },
        );
        self.changes.nudge();
        id
    }

    pub fn slave_acked(&self, follower: FollowerId, durable: u64) {
        if let Some(f) = self.followers.borrow_mut().get_mut(&follower) {
            f.acked = f.acked.max(durable);
        }
        self.changes.nudge();
    }

    pub fn slave_lost(&self, follower: FollowerId) {
        self.followers.borrow_mut().remove(&follower);
        self.losses.set(self.losses.get() + 1);
        self.changes.nudge();
    }

    /// How far consumers may see, given the master's durable end.
    pub fn visible(&self, durable: u64) -> u64 {
        match self.acked_level() {
            Some(acked) if self.sync && durable.saturating_sub(acked) <= MAX_GAP_IN_SYNC => {
                durable.min(acked)
            }
            _ => durable,
        }
    }

    /// Under a controller: a slave the send waits for may leave the in-sync set, so a send
    /// waits for the controller instead of failing when one goes away.
    pub fn controlled(&self) -> bool {
        self.confirmed.borrow().is_some()
    }

    /// Waits until the slaves hold `end`, one of them goes away (without a controller), the
    /// shard is fenced, or `timeout` passes.
    pub async fn wait(&self, end: u64, timeout: std::time::Duration) -> SyncOutcome {
        let losses = self.losses.get();
        let held = || self.acked_level().is_some_and(|acked| acked >= end);
        let gone = || self.fenced.get() || (!self.controlled() && self.losses.get() != losses);
        let settled = self.changes.wait_until(|_| held() || gone());
        let in_time = futures_lite::future::or(
            async {
                settled.await;
                true
            },
            async {
                glommio::timer::sleep(timeout).await;
                false
            },
        )
        .await;
        if held() {
            SyncOutcome::Replicated
        } else if in_time {
            SyncOutcome::SlaveNotAvailable
        } else {
            SyncOutcome::Timeout
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_controller_the_slave_furthest_ahead_counts() {
        let r = Replicated::new(true);
        assert_eq!(r.acked_level(), None);
        let a = r.slave_connected(1, 100);
        let b = r.slave_connected(2, 50);
        r.slave_acked(b, 300);
        assert_eq!(r.acked_level(), Some(300));
        r.slave_lost(b);
        assert_eq!(r.acked_level(), Some(100));
        r.slave_lost(a);
        assert!(!r.in_sync(0));
    }

    #[test]
    fn with_a_controller_every_confirmed_slave_counts_and_only_those() {
        let r = Replicated::new(true);
        let a = r.slave_connected(1, 100);
        r.confirm(BTreeSet::new());
        assert_eq!(
            r.acked_level(),
            Some(u64::MAX),
            "the master alone is in sync"
        );
        assert!(r.in_sync(1 << 40));
        assert_eq!(r.seen_in_sync(100), BTreeSet::from([1]));
        r.confirm(BTreeSet::from([1, 2]));
        assert_eq!(
            r.acked_level(),
            None,
            "slave 2 is confirmed but not connected"
        );
        let b = r.slave_connected(2, 80);
        assert_eq!(r.acked_level(), Some(80));
        r.slave_acked(b, 500);
        assert_eq!(r.acked_level(), Some(100));
        r.slave_lost(a);
        assert_eq!(r.acked_level(), None, "a lost slave counts until removed");
        r.confirm(BTreeSet::from([2]));
        assert_eq!(r.acked_level(), Some(500));
        assert_eq!(r.visible(600), 500);
    }
}
