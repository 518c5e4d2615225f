//! Flow control (F33): a shard refuses new sends with SYSTEM_BUSY (code 2) while its disk
//! does not keep up, so that memory stays bounded under a flood and producers back off, as
//! stock clients do on RocketMQ's busy answers:
//! - the write in flight has taken longer than `waitTimeMillsInSendQueue` (a stalled disk):
//!   `[PCBUSY_CLEAN_QUEUE]broker busy, …`;
//! - more messages than `sendThreadPoolQueueCapacity` wait to become durable (or, on a
//!   SYNC_MASTER, replicated), or more bytes than `sendQueueMaxBytes` wait to be written:
//!   `[OVERLOAD]system busy, …`.
//!
//! What was taken before the refusal is written and answered as usual.

use std::time::Duration;

use super::Store;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowConfig {
    /// `waitTimeMillsInSendQueue`.
    pub wait_time: Duration,
    /// `sendThreadPoolQueueCapacity`: messages waiting at most.
    pub queue_capacity: usize,
    /// `sendQueueMaxBytes` (Petrel's): bytes appended and not yet written, at most.
    pub queue_bytes_max: u64,
}

impl Default for FlowConfig {
    fn default() -> Self {
        FlowConfig {
            wait_time: Duration::from_millis(200),
            queue_capacity: 10_000,
            queue_bytes_max: 256 << 20,
        }
    }
}

impl FlowConfig {
    /// Applies `key=value` if `key` is one of flow control's (None if it is not).
    pub fn set(&mut self, key: &str, value: &str) -> Option<Result<(), String>> {
        let number = |min: u64, max: u64| match value.trim().parse::<u64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(format!("must be between {min} and {max}")),
        };
        let result = match key {
            "waitTimeMillsInSendQueue" => {
                number(1, 600_000).map(|ms| self.wait_time = Duration::from_millis(ms))
            }
            "sendThreadPoolQueueCapacity" => {
                number(1, 10_000_000).map(|n| self.queue_capacity = n as usize)
            }
            "sendQueueMaxBytes" => number(1 << 20, 64 << 30).map(|n| self.queue_bytes_max = n),
            _ => return None,
        };
        Some(result)
    }

    /// The keys with their values as broker.conf spells them.
    pub fn properties(&self) -> Vec<(&'static str, String)> {
        vec![
            (
                "waitTimeMillsInSendQueue",
                self.wait_time.as_millis().to_string(),
            ),
            (
                "sendThreadPoolQueueCapacity",
                self.queue_capacity.to_string(),
            ),
            ("sendQueueMaxBytes", self.queue_bytes_max.to_string()),
        ]
    }
}

impl Store {
    /// Why a new send is refused as busy now, if it is.
    pub fn busy(&self) -> Option<String> {
        let flow = self.flow.get();
        let waiting = self.dispatch.borrow().len();
        if let Some(age) = self.log.write_in_flight_for() {
            if age > flow.wait_time {
                return Some(format!(
                    "[PCBUSY_CLEAN_QUEUE]broker busy, start flow control for a while, period in queue: {}ms, size of queue: {waiting}",
                    age.as_millis()
                ));
            }
        }
        let bytes = self.log.pending_bytes();
        if waiting >= flow.queue_capacity || bytes >= flow.queue_bytes_max {
            return Some(format!(
                "[OVERLOAD]system busy, start flow control for a while: {waiting} messages ({bytes} bytes) wait for the disk, more than sendThreadPoolQueueCapacity {} or sendQueueMaxBytes {}",
                flow.queue_capacity, flow.queue_bytes_max
            ));
        }
        None
    }

    pub fn flow(&self) -> FlowConfig {
        self.flow.get()
    }

    pub fn set_flow(&self, flow: FlowConfig) {
        self.flow.set(flow);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_bad_values_name_the_bounds() {
        let mut flow = FlowConfig::default();
        assert_eq!(flow.set("waitTimeMillsInSendQueue", "500"), Some(Ok(())));
        assert_eq!(flow.set("sendThreadPoolQueueCapacity", "64"), Some(Ok(())));
        assert_eq!(flow.set("sendQueueMaxBytes", "16777216"), Some(Ok(())));
        let mut again = FlowConfig::default();
        for (k, v) in flow.properties() {
            assert_eq!(again.set(k, &v), Some(Ok(())));
        }
        assert_eq!(again, flow);
        let bad = flow.set("sendQueueMaxBytes", "10").unwrap().unwrap_err();
        assert!(bad.contains("between 1048576"), "{bad}");
        assert_eq!(flow.set("listenPort", "1"), None);
    }
}
