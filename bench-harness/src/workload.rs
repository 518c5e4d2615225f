//! Workloads in YAML with OpenMessaging Benchmark's field names, plus three of Petrel's own
//! for the ways a RocketMQ producer sends (`producerMode`, `inFlight`, `batchSize`).

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProducerMode {
    /// Each producer waits for the ack of every request, with `inFlight` of them outstanding.
    Sync,
    /// Callbacks instead of waiting: `inFlight` bounds the outstanding sends (default 1000).
    Async,
    /// SEND_BATCH_MESSAGE with `batchSize` messages per request.
    Batch,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Workload {
    pub name: String,
    pub topics: u32,
    pub partitions_per_topic: u32,
    /// Bytes per message body.
    pub message_size: usize,
    #[serde(default = "one")]
    pub subscriptions_per_topic: u32,
    #[serde(default = "one")]
    pub consumer_per_subscription: u32,
    #[serde(default = "one")]
    pub producers_per_topic: u32,
    /// Messages per second over all producers; 0 probes the highest rate the broker acks.
    pub producer_rate: f64,
    /// Consumers hold off until this much is published and unread, then drain it.
    #[serde(default, rename = "consumerBacklogSizeGB")]
    pub consumer_backlog_size_gb: f64,
    pub test_duration_minutes: f64,
    #[serde(default)]
    pub warmup_duration_minutes: f64,
    /// Accepted for OpenMessaging workloads; queues are always picked round-robin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_distributor: Option<String>,
    /// Accepted for OpenMessaging workloads; bodies are always random bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_file: Option<String>,
    #[serde(default = "async_mode")]
    pub producer_mode: ProducerMode,
    /// Outstanding requests per producer; defaults by mode: sync 1, async 1000, batch 16.
    #[serde(default)]
    pub in_flight: Option<u32>,
    #[serde(default = "one")]
    pub batch_size: u32,
}

fn one() -> u32 {
    1
}

fn async_mode() -> ProducerMode {
    ProducerMode::Async
}

/// The largest body RocketMQ brokers accept by default (`maxMessageSize`).
const MESSAGE_SIZE_MAX: usize = 4 << 20;

impl Workload {
    pub fn load(path: &Path) -> anyhow::Result<Workload> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading workload {}", path.display()))?;
        Workload::parse(&text).with_context(|| format!("workload {}", path.display()))
    }

    pub fn parse(text: &str) -> anyhow::Result<Workload> {
        let w: Workload = serde_yaml_ng::from_str(text)?;
        w.validate()?;
        Ok(w)
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        let positive = [
            ("topics", self.topics),
            ("partitionsPerTopic", self.partitions_per_topic),
            ("producersPerTopic", self.producers_per_topic),
            ("batchSize", self.batch_size),
        ];
        for (name, v) in positive {
            if v == 0 {
                bail!("`{name}` must be at least 1");
            }
        }
        if self.in_flight == Some(0) {
            bail!("`inFlight` must be at least 1");
        }
        if self.subscriptions_per_topic > 0 && self.consumer_per_subscription == 0 {
            bail!("`consumerPerSubscription` must be at least 1 when there are subscriptions");
        }
        if !(1..=MESSAGE_SIZE_MAX).contains(&self.message_size) {
            bail!("`messageSize` must be 1 to {MESSAGE_SIZE_MAX} bytes");
        }
        let durations = [
            ("testDurationMinutes", self.test_duration_minutes),
            ("warmupDurationMinutes", self.warmup_duration_minutes),
            ("producerRate", self.producer_rate),
            ("consumerBacklogSizeGB", self.consumer_backlog_size_gb),
        ];
        for (name, v) in durations {
            if !v.is_finite() || v < 0.0 {
                bail!("`{name}` must be a number >= 0, not {v}");
            }
        }
        if self.test_duration_minutes == 0.0 {
            bail!("`testDurationMinutes` must be more than 0");
        }
        if self.batch_size > 1 && self.producer_mode != ProducerMode::Batch {
            bail!("`batchSize` needs `producerMode: batch`");
        }
        if self.consumer_backlog_size_gb > 0.0 && self.subscriptions_per_topic == 0 {
            bail!("`consumerBacklogSizeGB` needs at least one subscription");
        }
        Ok(())
    }

    pub fn in_flight(&self) -> usize {
        let default = match self.producer_mode {
            ProducerMode::Sync => 1,
            ProducerMode::Async => 1000,
            ProducerMode::Batch => 16,
        };
        self.in_flight.unwrap_or(default) as usize
    }

    pub fn test_duration(&self) -> Duration {
        Duration::from_secs_f64(self.test_duration_minutes * 60.0)
    }

    pub fn warmup_duration(&self) -> Duration {
        Duration::from_secs_f64(self.warmup_duration_minutes * 60.0)
    }

    pub fn backlog_bytes(&self) -> u64 {
        (self.consumer_backlog_size_gb * (1u64 << 30) as f64) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIMPLE: &str = "
name: simple
topics: 1
partitionsPerTopic: 10
messageSize: 1024
payloadFile: payload/payload-1Kb.data
subscriptionsPerTopic: 1
consumerPerSubscription: 1
producersPerTopic: 1
producerRate: 50000
consumerBacklogSizeGB: 0
testDurationMinutes: 15
";

    #[test]
    fn an_openmessaging_workload_reads_with_petrels_defaults() {
        let w = Workload::parse(SIMPLE).unwrap();
        assert_eq!(w.partitions_per_topic, 10);
        assert_eq!(w.producer_mode, ProducerMode::Async);
        assert_eq!(w.in_flight(), 1000);
        assert_eq!(w.test_duration(), Duration::from_secs(900));
        assert_eq!(w.warmup_duration(), Duration::ZERO);
    }

    #[test]
    fn a_bad_field_is_named() {
        let typo = SIMPLE.replace("producerRate", "producerRat");
        let e = format!("{:#}", Workload::parse(&typo).unwrap_err());
        assert!(e.contains("producerRat"), "{e}");
        let zero = SIMPLE.replace("partitionsPerTopic: 10", "partitionsPerTopic: 0");
        let e = format!("{:#}", Workload::parse(&zero).unwrap_err());
        assert!(e.contains("`partitionsPerTopic` must be at least 1"), "{e}");
        let batch = format!("{SIMPLE}batchSize: 8\n");
        let e = format!("{:#}", Workload::parse(&batch).unwrap_err());
        assert!(e.contains("producerMode: batch"), "{e}");
    }

    #[test]
    fn shipped_workloads_parse_and_ci_sizes_match_them() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("workloads");
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "yaml") {
                let full = Workload::load(&path).unwrap();
                let ci = Workload::load(&dir.join("ci").join(path.file_name().unwrap())).unwrap();
                assert_eq!(full.name, ci.name, "{}", path.display());
                assert_eq!(full.message_size, ci.message_size, "{}", path.display());
                assert_eq!(full.producer_mode, ci.producer_mode, "{}", path.display());
                assert!(ci.test_duration() <= Duration::from_secs(10));
                names.push(full.name);
            }
        }
        assert!(names.len() >= 7, "{names:?}");
    }
}
