//! Queue locks of orderly consumers (spec §4.10). An orderly push consumer consumes a queue
//! only while it holds the queue's lock on the broker, so two members of a group never
//! consume one queue at once, even while a rebalance moves it. A lock lasts 60 s from its
//! last refresh (clients refresh every 20 s); another client takes it only once it expired.
//! Like RocketMQ, a closed connection does not release its locks: the client may still be
//! consuming what it fetched, and the expiry is what makes a hand-over safe.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// `rocketmq.broker.rebalance.lockMaxLiveTime`.
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
}

/// Locks of one shard's queues, per consumer group.
#[derive(Default)]
pub struct QueueLocks {
    groups: HashMap<String, HashMap<(String, i32), Holder>>,
}

impl QueueLocks {
    /// Locks (or refreshes) each queue for `client_id`; returns those it now holds.
    pub fn lock(
        &mut self,
        group: &str,
        client_id: &str,
        queues: &[MessageQueue],
        now: Instant,
    ) -> Vec<MessageQueue> {
        let table = self.groups.entry(group.to_string()).or_default();
        let mut held = Vec::with_capacity(queues.len());
        for mq in queues {
            let key = (mq.topic.clone(), mq.queue_id);
            let free = table.get(&key).is_none_or(|h| {
                h.client_id == client_id || now.duration_since(h.refreshed) > LOCK_MAX_LIVE
            });
            if free {
                table.insert(
                    key,
                    Holder {
                        client_id: client_id.to_string(),
                        refreshed: now,
                    },
                );
                held.push(mq.clone());
            }
        }
        held
    }

    /// Releases the queues `client_id` holds among `queues`; others' locks stay.
    pub fn unlock(&mut self, group: &str, client_id: &str, queues: &[MessageQueue]) {
        let Some(table) = self.groups.get_mut(group) else {
            return;
        };
        for mq in queues {
            let key = (mq.topic.clone(), mq.queue_id);
            if table.get(&key).is_some_and(|h| h.client_id == client_id) {
                table.remove(&key);
            }
        }
        if table.is_empty() {
            self.groups.remove(group);
        }
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
        let mut locks = QueueLocks::default();
        let t0 = Instant::now();
        assert_eq!(locks.lock("G", "c1", &[mq(0), mq(1)], t0), [mq(0), mq(1)]);
        // Another client gets only the queue nobody holds.
        assert_eq!(locks.lock("G", "c2", &[mq(1), mq(2)], t0), [mq(2)]);
        // Another group is independent.
        assert_eq!(locks.lock("H", "c2", &[mq(1)], t0), [mq(1)]);
        // A refresh keeps the lock alive past the first expiry.
        let t1 = t0 + Duration::from_secs(50);
        assert_eq!(locks.lock("G", "c1", &[mq(0)], t1), [mq(0)]);
        let t2 = t0 + Duration::from_secs(61);
        assert_eq!(locks.lock("G", "c2", &[mq(0), mq(1)], t2), [mq(1)]);
        // Only the holder can release.
        locks.unlock("G", "c2", &[mq(0)]);
        assert!(locks.lock("G", "c3", &[mq(0)], t2).is_empty());
        locks.unlock("G", "c1", &[mq(0)]);
        assert_eq!(locks.lock("G", "c2", &[mq(0)], t2), [mq(0)]);
    }
}
