//! What a master shard knows of its slave: how far the slave's log is durable, and whether it
//! is in sync. On a SYNC_MASTER this gates both sides of a message: a send is answered only
//! once the slave holds it (or with SLAVE_NOT_AVAILABLE / FLUSH_SLAVE_TIMEOUT), and consumers
//! see a message only once the slave holds it, unless no slave is in sync, when the master
//! serves what it holds alone, as an ASYNC_MASTER with no slave does.

use std::cell::Cell;

use crate::runtime::watermark::Watermark;

/// RocketMQ's `haMaxGapNotInSync`: a slave further behind than this is not in sync.
pub const MAX_GAP_IN_SYNC: u64 = 256 << 20;

pub struct Replicated {
    /// SYNC_MASTER: sends and reads wait for the slave.
    pub sync: bool,
    /// The slave's durable log end (the highest among connected slaves).
    acked: Watermark,
    slaves: Cell<u32>,
    /// Counts the times the last slave went away, so a send waiting on it stops waiting.
    losses: Cell<u64>,
    /// On a slave: the master's durable end, as its last frame said.
    master_end: Cell<u64>,
}

/// How a SYNC_MASTER answers a send whose record ends at `end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncOutcome {
    /// The slave holds it.
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
            acked: Watermark::new(0),
            slaves: Cell::new(0),
            losses: Cell::new(0),
            master_end: Cell::new(0),
        }
    }

    pub fn acked(&self) -> u64 {
        self.acked.get()
    }

    pub fn slaves(&self) -> u32 {
        self.slaves.get()
    }

    /// A slave is connected and no more than `MAX_GAP_IN_SYNC` behind `log_end`.
    pub fn in_sync(&self, log_end: u64) -> bool {
        self.slaves.get() > 0 && log_end.saturating_sub(self.acked.get()) <= MAX_GAP_IN_SYNC
    }

    /// On a slave: the master said its log is durable to `end`.
    pub fn note_master_end(&self, end: u64) {
        self.master_end.set(end);
    }

    pub fn master_end(&self) -> u64 {
        self.master_end.get()
    }

    pub fn slave_connected(&self, from: u64) {
        self.slaves.set(self.slaves.get() + 1);
        self.slave_acked(from);
    }

    pub fn slave_acked(&self, durable: u64) {
        if durable > self.acked.get() {
            self.acked.advance(durable);
        }
    }

    pub fn slave_lost(&self) {
        self.slaves.set(self.slaves.get().saturating_sub(1));
        if self.slaves.get() == 0 {
            self.losses.set(self.losses.get() + 1);
            self.acked.nudge();
        }
    }

    /// How far consumers may see, given the master's durable end.
    pub fn visible(&self, durable: u64) -> u64 {
        if self.sync && self.in_sync(durable) {
            durable.min(self.acked.get())
        } else {
            durable
        }
    }

    /// Waits until the slave holds `end`, the last slave goes away, or `timeout` passes.
    pub async fn wait(&self, end: u64, timeout: std::time::Duration) -> SyncOutcome {
        let losses = self.losses.get();
        let settled = self
            .acked
            .wait_until(|acked| acked >= end || self.losses.get() != losses);
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
        if self.acked.get() >= end {
            SyncOutcome::Replicated
        } else if in_time {
            SyncOutcome::SlaveNotAvailable
        } else {
            SyncOutcome::Timeout
        }
    }
}
