//! Long polling (spec §4.4): a pull that finds nothing is parked by (topic, queue) and
//! re-executed when a message arrives on that queue or when its suspend time runs out.

use std::collections::HashMap;
use std::rc::{Rc, Weak};
use std::time::{Duration, Instant};

use super::Shard;
use crate::listener::pull_message::{execute, Suspend};
use crate::net::Connection;
use crate::remoting::{response, RemotingCommand};

/// How often parked pulls are checked for their deadline.
const EXPIRY_TICK: Duration = Duration::from_millis(100);
/// Never hold longer than this, whatever the client asked: its RPC timeout is 30 s.
pub const HOLD_MAX: Duration = Duration::from_secs(25);

pub struct HeldPull {
    pub conn: Weak<Connection>,
    pub request: RemotingCommand,
    pub deadline: Instant,
}

#[derive(Default)]
pub struct Holds {
    by_queue: HashMap<(String, i32), Vec<HeldPull>>,
}

impl Holds {
    pub fn park(&mut self, topic: &str, queue_id: i32, pull: HeldPull) {
        self.by_queue
            .entry((topic.to_string(), queue_id))
            .or_default()
            .push(pull);
    }

    fn take_queue(&mut self, topic: &str, queue_id: i32) -> Vec<HeldPull> {
        self.by_queue
            .remove(&(topic.to_string(), queue_id))
            .unwrap_or_default()
    }

    fn take_expired(&mut self, now: Instant) -> Vec<HeldPull> {
        let mut expired = Vec::new();
        for pulls in self.by_queue.values_mut() {
            let mut i = 0;
            while i < pulls.len() {
                if pulls[i].deadline <= now || pulls[i].conn.strong_count() == 0 {
                    expired.push(pulls.swap_remove(i));
                } else {
                    i += 1;
                }
            }
        }
        self.by_queue.retain(|_, pulls| !pulls.is_empty());
        expired
    }
}

/// Re-executes `held`; a result of "nothing yet" before the deadline parks it again.
fn retry(shard: &Shard, held: HeldPull, now: Instant) {
    let Some(conn) = held.conn.upgrade() else {
        return;
    };
    let Some(answer) = execute(shard, &conn, &held.request, Suspend::Forbidden) else {
        return;
    };
    if answer.code == response::PULL_NOT_FOUND && now < held.deadline {
        if let (Some(topic), Some(queue)) =
            (held.request.field("topic"), held.request.field("queueId"))
        {
            if let Ok(queue_id) = queue.parse::<i32>() {
                let topic = topic.to_string();
                shard.holds.borrow_mut().park(&topic, queue_id, held);
                return;
            }
        }
    }
    conn.send(&answer);
}

/// Re-executes at once the pulls parked on a queue (its offsets were reset).
pub fn wake_queue(shard: &Shard, topic: &str, queue_id: i32) {
    let held = shard.holds.borrow_mut().take_queue(topic, queue_id);
    let now = Instant::now();
    for pull in held {
        retry(shard, pull, now);
    }
}

pub async fn run_arrivals(shard: Rc<Shard>) {
    loop {
        let arrived = shard.store.wait_arrivals().await;
        let now = Instant::now();
        for (topic, queue_id) in arrived {
            let held = shard.holds.borrow_mut().take_queue(&topic, queue_id);
            for pull in held {
                retry(&shard, pull, now);
            }
        }
    }
}

pub async fn run_expiry(shard: Rc<Shard>) {
    loop {
        glommio::timer::sleep(EXPIRY_TICK).await;
        let now = Instant::now();
        let expired = shard.holds.borrow_mut().take_expired(now);
        for pull in expired {
            retry(&shard, pull, now);
        }
    }
}
