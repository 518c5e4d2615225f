//! Queue locks of orderly consumers (spec §4.10). An orderly push consumer consumes a queue
//! only while it holds the queue's lock on the broker, so two members of a group never
//! consume one queue at once, even while a rebalance moves it. A lock lasts
//! `rebalanceLockMaxLiveTime` (60 s) from its last refresh (clients refresh every 20 s and stop
//! consuming 30 s after their last successful one); another client takes it only once it
//! expired, or after its holder unlocked it or unregistered from the group.
//!
//! Like RocketMQ, a closed connection does not release its locks: the client may still be
//! consuming what it fetched, and the expiry is what makes a hand-over safe.
//!
//! Unlike RocketMQ, the table survives a restart. Every change of hands is written to
//! `locks.json`, and a lock request that was granted a queue is answered only once the file
//! names the new holder. A restarted broker gives each lock it finds a fresh lifetime, so the
//! holder keeps its queue by refreshing it, and no other client gets a queue whose holder may
//! still be consuming it. RocketMQ keeps the table in memory only: after its restart, the first
//! member to ask gets every queue while the old holders still consume theirs.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::net::Connection;
use crate::remoting::RemotingCommand;
use crate::runtime::watermark::Signal;
use crate::store::atomic_file;

/// `rebalanceLockMaxLiveTime` (RocketMQ's `rocketmq.broker.rebalance.lockMaxLiveTime`).
pub const LOCK_MAX_LIVE: Duration = Duration::from_secs(60);

/// A queue as clients name it (fields in fastjson's order).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageQueue {
    pub broker_name: String,
    pub queue_id: i32,
    pub topic: String,
}

struct Holder {
    client_id: String,
    refreshed: Instant,
    /// The table's version when this holder got the queue.
    since: u64,
}

/// Locks of one shard's queues, per consumer group.
pub struct QueueLocks {
    max_live: Duration,
    groups: HashMap<String, HashMap<(String, i32), Holder>>,
    /// Counts changes of hands: a queue granted to a new holder, or released.
    version: u64,
}

/// What a lock request got.
#[derive(Debug, PartialEq, Eq)]
pub struct Locked {
    pub held: Vec<MessageQueue>,
    /// The table version that must be on disk before the client may hear of `held`.
    pub durable_at: u64,
}

impl QueueLocks {
    pub fn new(max_live: Duration) -> QueueLocks {
        QueueLocks {
            max_live,
            groups: HashMap::new(),
            version: 0,
        }
    }

    pub fn version(&self) -> u64 {
        self.version
    }

    /// Locks (or refreshes) each queue for `client_id`; returns those it now holds.
    pub fn lock(
        &mut self,
        group: &str,
        client_id: &str,
        queues: &[MessageQueue],
        now: Instant,
    ) -> Locked {
        let table = self.groups.entry(group.to_string()).or_default();
        let mut locked = Locked {
            held: Vec::with_capacity(queues.len()),
            durable_at: 0,
        };
        for mq in queues {
            let key = (mq.topic.clone(), mq.queue_id);
            let name = || format!("{group} {}/{}/{}", mq.broker_name, mq.topic, mq.queue_id);
            match table.get_mut(&key) {
                Some(h) if h.client_id == client_id => {
                    log::debug!("lock {}: refreshed by {client_id}", name());
                    h.refreshed = now;
                    locked.durable_at = locked.durable_at.max(h.since);
                }
                Some(h) if now.saturating_duration_since(h.refreshed) <= self.max_live => {
                    log::debug!(
                        "lock {}: refused to {client_id}, held by {}",
                        name(),
                        h.client_id
                    );
                    continue;
                }
                expired => {
                    match expired {
                        Some(h) => log::info!(
                            "lock {}: {}'s lock expired, granted to {client_id}",
                            name(),
                            h.client_id
                        ),
                        None => log::debug!("lock {}: granted to {client_id}", name()),
                    }
                    self.version += 1;
                    table.insert(
                        key,
                        Holder {
                            client_id: client_id.to_string(),
                            refreshed: now,
                            since: self.version,
                        },
                    );
                    locked.durable_at = self.version;
                }
            }
            locked.held.push(mq.clone());
        }
        if table.is_empty() {
            self.groups.remove(group);
        }
        locked
    }

    /// Releases the queues `client_id` holds among `queues`; others' locks stay.
    pub fn unlock(&mut self, group: &str, client_id: &str, queues: &[MessageQueue]) {
        let keys: Vec<(String, i32)> = queues
            .iter()
            .map(|mq| (mq.topic.clone(), mq.queue_id))
            .collect();
        self.release(group, client_id, |key| keys.contains(key));
    }

    /// Releases every queue of `group` that `client_id` holds: it left the group.
    pub fn unlock_all(&mut self, group: &str, client_id: &str) {
        self.release(group, client_id, |_| true);
    }

    fn release(&mut self, group: &str, client_id: &str, chosen: impl Fn(&(String, i32)) -> bool) {
        let Some(table) = self.groups.get_mut(group) else {
            return;
        };
        let before = table.len();
        table.retain(|key, h| {
            let release = h.client_id == client_id && chosen(key);
            if release {
                log::debug!("lock {group} {}/{}: released by {client_id}", key.0, key.1);
            }
            !release
        });
        if table.len() != before {
            self.version += 1;
        }
        if table.is_empty() {
            self.groups.remove(group);
        }
    }

    /// The live locks, for the file.
    fn snapshot(&self, now: Instant) -> LockFile {
        let mut locks: Vec<LockEntry> = self
            .groups
            .iter()
            .flat_map(|(group, table)| {
                table
                    .iter()
                    .filter(|(_, h)| now.saturating_duration_since(h.refreshed) <= self.max_live)
                    .map(|((topic, queue_id), h)| LockEntry {
                        group: group.clone(),
                        topic: topic.clone(),
                        queue_id: *queue_id,
                        client_id: h.client_id.clone(),
                    })
            })
            .collect();
        locks.sort();
        LockFile { locks }
    }

    /// The table a restarted broker starts from: every lock found gets a whole lifetime from
    /// `now`, since its holder may have refreshed it just before the stop.
    fn restore(file: LockFile, max_live: Duration, now: Instant) -> QueueLocks {
        let mut locks = QueueLocks::new(max_live);
        for e in file.locks {
            locks.groups.entry(e.group).or_default().insert(
                (e.topic, e.queue_id),
                Holder {
                    client_id: e.client_id,
                    refreshed: now,
                    since: 0,
                },
            );
        }
        locks
    }
}

/// `locks.json`: who holds which queue.
#[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
struct LockFile {
    locks: Vec<LockEntry>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "camelCase")]
struct LockEntry {
    group: String,
    topic: String,
    queue_id: i32,
    client_id: String,
}

/// A shard's lock table with its file: answers that report a newly granted queue wait until
/// the file holds the grant.
pub struct DurableLocks {
    path: PathBuf,
    table: RefCell<QueueLocks>,
    written: Cell<u64>,
    waiting: RefCell<Vec<(u64, Rc<Connection>, RemotingCommand)>>,
    changed: Signal,
}

impl DurableLocks {
    /// Loads `<dir>/locks.json`. Blocking: for start-up.
    pub fn load(dir: &std::path::Path, max_live: Duration) -> std::io::Result<DurableLocks> {
        let path = dir.join("locks.json");
        let file: LockFile = atomic_file::read_json(&path)?;
        if !file.locks.is_empty() {
            log::info!(
                "{}: {} queue locks kept from before the restart, each for {max_live:?} unless refreshed",
                path.display(),
                file.locks.len()
            );
        }
        Ok(DurableLocks {
            path,
            table: RefCell::new(QueueLocks::restore(file, max_live, Instant::now())),
            written: Cell::new(0),
            waiting: RefCell::new(Vec::new()),
            changed: Signal::default(),
        })
    }

    /// Locks `queues` for `client_id`, then sends `reply(held)` on `conn` (none for a oneway
    /// request) once what it reports is on disk.
    pub fn lock(
        &self,
        group: &str,
        client_id: &str,
        queues: &[MessageQueue],
        conn: Option<&Rc<Connection>>,
        reply: impl FnOnce(Vec<MessageQueue>) -> RemotingCommand,
    ) {
        let locked = self
            .table
            .borrow_mut()
            .lock(group, client_id, queues, Instant::now());
        self.changed.raise();
        let Some(conn) = conn else {
            return;
        };
        let reply = reply(locked.held);
        if locked.durable_at <= self.written.get() {
            conn.send(&reply);
        } else {
            self.waiting
                .borrow_mut()
                .push((locked.durable_at, conn.clone(), reply));
        }
    }

    pub fn unlock(&self, group: &str, client_id: &str, queues: &[MessageQueue]) {
        self.table.borrow_mut().unlock(group, client_id, queues);
        self.changed.raise();
    }

    pub fn unlock_all(&self, group: &str, client_id: &str) {
        self.table.borrow_mut().unlock_all(group, client_id);
        self.changed.raise();
    }

    /// Writes the table whenever it changed hands, then sends the answers that waited for it.
    /// A failed write is retried every second; the answers wait, so no client hears of a
    /// grant a restart could forget.
    pub async fn run_persister(&self, shard_id: usize) {
        loop {
            self.changed.wait().await;
            let (version, file) = {
                let table = self.table.borrow();
                (table.version(), table.snapshot(Instant::now()))
            };
            if version == self.written.get() {
                continue;
            }
            let bytes = serde_json::to_vec(&file).expect("the lock table serializes");
            if let Err(e) = atomic_file::write_off_shard(self.path.clone(), bytes).await {
                log::error!(
                    "shard {shard_id}: writing {} failed: {e}; retrying",
                    self.path.display()
                );
                glommio::timer::sleep(Duration::from_secs(1)).await;
                self.changed.raise();
                continue;
            }
            self.written.set(version);
            let ready: Vec<_> = {
                let mut waiting = self.waiting.borrow_mut();
                let (ready, still) = waiting.drain(..).partition(|(at, _, _)| *at <= version);
                *waiting = still;
                ready
            };
            for (_, conn, reply) in ready {
                conn.send(&reply);
            }
        }
    }

    /// Writes the table if it changed since the last write (clean shutdown).
    pub async fn persist(&self) -> std::io::Result<()> {
        let (version, file) = {
            let table = self.table.borrow();
            (table.version(), table.snapshot(Instant::now()))
        };
        if version == self.written.get() {
            return Ok(());
        }
        let bytes = serde_json::to_vec(&file).expect("the lock table serializes");
        atomic_file::write_off_shard(self.path.clone(), bytes).await?;
        self.written.set(self.written.get().max(version));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mq(q: i32) -> MessageQueue {
        MessageQueue {
            broker_name: "b".into(),
            queue_id: q,
            topic: "T".into(),
        }
    }

    #[test]
    fn a_lock_is_exclusive_until_it_expires_or_is_released() {
        let mut locks = QueueLocks::new(LOCK_MAX_LIVE);
        let t0 = Instant::now();
        assert_eq!(
            locks.lock("G", "c1", &[mq(0), mq(1)], t0).held,
            [mq(0), mq(1)]
        );
        // Another client gets only the queue nobody holds.
        assert_eq!(locks.lock("G", "c2", &[mq(1), mq(2)], t0).held, [mq(2)]);
        // Another group is independent.
        assert_eq!(locks.lock("H", "c2", &[mq(1)], t0).held, [mq(1)]);
        // A refresh keeps the lock alive past the first expiry.
        let t1 = t0 + Duration::from_secs(50);
        assert_eq!(locks.lock("G", "c1", &[mq(0)], t1).held, [mq(0)]);
        let t2 = t0 + Duration::from_secs(61);
        assert_eq!(locks.lock("G", "c2", &[mq(0), mq(1)], t2).held, [mq(1)]);
        // Only the holder can release.
        locks.unlock("G", "c2", &[mq(0)]);
        assert!(locks.lock("G", "c3", &[mq(0)], t2).held.is_empty());
        locks.unlock("G", "c1", &[mq(0)]);
        assert_eq!(locks.lock("G", "c2", &[mq(0)], t2).held, [mq(0)]);
        // Leaving the group releases all of a client's queues there, and only there.
        assert_eq!(locks.lock("H", "c2", &[mq(1)], t2).held, [mq(1)]);
        locks.unlock_all("G", "c2");
        assert_eq!(
            locks.lock("G", "c3", &[mq(0), mq(1), mq(2)], t2).held,
            [mq(0), mq(1), mq(2)]
        );
        assert!(locks.lock("H", "c3", &[mq(1)], t2).held.is_empty());
    }

    #[test]
    fn only_a_change_of_hands_needs_the_disk_and_a_refresh_waits_for_its_grant() {
        let mut locks = QueueLocks::new(LOCK_MAX_LIVE);
        let t0 = Instant::now();
        let first = locks.lock("G", "c1", &[mq(0)], t0);
        assert_eq!(first.durable_at, 1);
        // A refresh changes no hands, but reports the grant it depends on.
        assert_eq!(locks.lock("G", "c1", &[mq(0)], t0).durable_at, 1);
        assert_eq!(locks.version(), 1);
        // A refusal reports nothing.
        assert_eq!(locks.lock("G", "c2", &[mq(0)], t0).durable_at, 0);
        locks.unlock("G", "c2", &[mq(0)]);
        assert_eq!(locks.version(), 1, "not c2's to release");
        locks.unlock("G", "c1", &[mq(0)]);
        assert_eq!(locks.version(), 2);
        assert_eq!(locks.lock("G", "c2", &[mq(0)], t0).durable_at, 3);
    }

    #[test]
    fn a_restored_lock_is_live_for_a_whole_lifetime_and_only_live_locks_are_kept() {
        let live = Duration::from_secs(60);
        let mut locks = QueueLocks::new(live);
        let t0 = Instant::now();
        locks.lock("G", "c1", &[mq(0)], t0);
        locks.lock("G", "c2", &[mq(1)], t0 + Duration::from_secs(30));
        // At 70 s c1's lock has expired and is left out; c2's is kept.
        let file = locks.snapshot(t0 + Duration::from_secs(70));
        assert_eq!(file.locks.len(), 1);
        assert_eq!(file.locks[0].client_id, "c2");
        let round_trip: LockFile =
            serde_json::from_slice(&serde_json::to_vec(&file).unwrap()).unwrap();
        let start = t0 + Duration::from_secs(200);
        let mut restored = QueueLocks::restore(round_trip, live, start);
        assert!(restored
            .lock("G", "c3", &[mq(1)], start + live)
            .held
            .is_empty());
        assert_eq!(restored.lock("G", "c2", &[mq(1)], start).held, [mq(1)]);
        assert_eq!(restored.lock("G", "c3", &[mq(0)], start).held, [mq(0)]);
    }
}
